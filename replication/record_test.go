package replication

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/vclock"
)

func TestRecordRoundTrip(t *testing.T) {
	ts := log.TimestampOf(time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)) + 7
	raw := &log.Event{Position: log.Position{Shard: 3, Index: 42}, TS: ts, Origin: "east", Op: log.OpPatch,
		Collection: "users", ID: "u1", Version: 5, Principal: "alice", RequestID: "alice/k1", Clock: vclock.Clock{"east": 4, "west": 2}}
	tests := []struct {
		name      string
		env       feed.Envelope
		replicate []string
		wantOp    log.Op
		wantBody  string
	}{
		{"update", feed.Envelope{Op: feed.OpUpdate, Type: "aerolith.document.updated", Before: json.RawMessage(`{"a":1}`), After: json.RawMessage(`{"a":2}`)}, nil, log.OpPut, `{"a":2}`},
		{"create", feed.Envelope{Op: feed.OpCreate, Type: "aerolith.document.created", After: json.RawMessage(`{"a":1}`)}, []string{"west"}, log.OpPut, `{"a":1}`},
		{"delete", feed.Envelope{Op: feed.OpDelete, Type: "aerolith.document.deleted", Before: json.RawMessage(`{"a":1}`)}, nil, log.OpDelete, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := encodeRecord("aerolith.east", "c1", &tt.env, raw, tt.replicate, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if string(rec.Key) != "users/u1" || rec.Topic != "aerolith.east" {
				t.Fatalf("key %q topic %q", rec.Key, rec.Topic)
			}
			h := map[string]string{}
			for _, x := range rec.Headers {
				h[x.Key] = string(x.Value)
			}
			want := map[string]string{hdrID: "east-3-42", hdrType: tt.env.Type, hdrSpecVersion: "1.0", hdrOrigin: "east", hdrShard: "3", hdrIndex: "42",
				hdrSource: "/aerolith/c1/east/users", hdrTime: ts.Time().UTC().Format(time.RFC3339Nano), hdrContentType: "application/json"}
			if !reflect.DeepEqual(h, want) {
				t.Fatalf("headers %v\nwant %v", h, want)
			}
			d, err := decodeRecord(rec.Value, 2)
			if err != nil {
				t.Fatal(err)
			}
			e := d.ev
			if e.Origin != "east" || e.Shard != 3 || e.Index != 42 || e.Stream != 2 || e.TS != ts || e.Op != tt.wantOp ||
				e.Collection != "users" || e.ID != "u1" || string(e.Body) != tt.wantBody || !reflect.DeepEqual(e.Clock, raw.Clock) ||
				e.Principal != "alice" || e.RequestID != "alice/k1" || !reflect.DeepEqual(d.replicate, tt.replicate) {
				t.Fatalf("decoded %+v replicate %v", e, d.replicate)
			}
			var v map[string]any
			if err := json.Unmarshal(rec.Value, &v); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"before", "after", "op", "source", "ts_ms", "clock"} {
				if _, ok := v[k]; !ok {
					t.Errorf("value has no %q: %s", k, rec.Value)
				}
			}
		})
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	base := `"source":{"dc":"east","shard":1,"index":2,"collection":"c","id":"i","hlc":"9"},"clock":{"east":1}`
	for _, v := range []string{
		``, `[]`, `{"op":"c","after":{},}`,
		`{"op":"x","after":{},` + base + `}`,
		`{"op":"c","after":null,` + base + `}`,
		`{"op":"u","after":[1],` + base + `}`,
		`{"op":"c","after":{},"source":{"dc":"east","shard":1,"index":0,"collection":"c","id":"i","hlc":"9"}}`,
		`{"op":"c","after":{},"source":{"dc":"east","shard":1,"index":2,"collection":"c","id":"i","hlc":"x"}}`,
		`{"op":"d","source":{"shard":1,"index":2,"collection":"c","id":"i","hlc":"9"}}`,
	} {
		if _, err := decodeRecord([]byte(v), 0); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("decode %q: %v, want ErrInvalidRecord", v, err)
		}
	}
	if d, err := decodeRecord([]byte(`{"op":"d",`+base+`}`), 1); err != nil || d.ev.Op != log.OpDelete {
		t.Fatalf("delete: %+v %v", d, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"op":"c","after":{"a":1},"source":{"dc":"east","shard":1,"index":2,"collection":"c","id":"i","hlc":"9"},"clock":{"east":1}}`), int32(0))
	f.Add([]byte(`{"op":"d","source":{"dc":"w","shard":3,"index":1,"collection":"c","id":"i","hlc":"1"}}`), int32(3))
	f.Fuzz(func(t *testing.T, b []byte, p int32) {
		d, err := decodeRecord(b, p)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error does not wrap ErrInvalidRecord: %v", err)
			}
			return
		}
		if d.ev.Origin == "" || d.ev.Index == 0 || (d.ev.Op == log.OpPut && len(d.ev.Body) == 0) {
			t.Fatalf("accepted an incomplete record: %+v", d.ev)
		}
	})
}

func TestSendsTo(t *testing.T) {
	if !sendsTo(nil, "a") || !sendsTo([]string{"b", "a"}, "a") || sendsTo([]string{"b"}, "a") || sendsTo([]string{}, "a") {
		t.Fatal("sendsTo")
	}
}

func TestProgressStore(t *testing.T) {
	p := progress{dir: t.TempDir()}
	if tok, err := p.load(); err != nil || tok != "" {
		t.Fatalf("empty: %q %v", tok, err)
	}
	for _, tok := range []feed.Token{{1: 5, 2: 0}, {1: 7, 2: 3}} {
		if err := p.store(tok.Encode()); err != nil {
			t.Fatal(err)
		}
		got, err := p.load()
		if err != nil || got != tok.Encode() {
			t.Fatalf("load %q %v, want %q", got, err, tok.Encode())
		}
	}
	if err := os.WriteFile(filepath.Join(p.dir, progressFile), []byte("not a token"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.load(); err == nil {
		t.Fatal("a corrupt progress file loaded")
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Brokers: []string{"127.0.0.1:9092"}, DC: "east", DataDir: "/tmp/x"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{Brokers: []string{"nope"}, DC: "", Remotes: []string{"east", "bad name"}, SASLMechanism: "gssapi",
		TLSCertFile: "c", Partitions: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config passed")
	}
	for _, want := range []string{"broker \"nope\"", "datacenter name \"\"", "remote datacenter name \"bad name\"", "data dir", "SASL mechanism", "cert and the key", "partitions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
