package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
)

// chain builds n chained events of shard 1.
func chain(n int) []*log.Event {
	var out []*log.Event
	var prev log.Hash
	for i := 1; i <= n; i++ {
		e := &log.Event{Position: log.Position{Shard: 1, Index: uint64(i)}, TS: log.Timestamp(i << 16), Origin: "dc1",
			Op: log.OpPut, Collection: "c", ID: fmt.Sprintf("d%d", i%3), Version: uint64(i), Body: []byte(fmt.Sprintf(`{"i":%d}`, i)),
			Principal: "anonymous", PrevHash: prev}
		prev = e.Hash()
		out = append(out, e)
	}
	return out
}

func items(evs []*log.Event) []Item {
	out := make([]Item, len(evs))
	for i, e := range evs {
		c := *e
		out[i] = Item{Index: e.Position.Index, Event: &c}
	}
	return out
}

func TestVerifyNamesTheAlteredEvent(t *testing.T) {
	evs := chain(10)
	head := evs[9].Hash()
	if rep := Verify(items(evs), Range{Shard: 1, Head: &head}); !rep.OK || rep.Events != 10 || rep.Head != HashHex(head) {
		t.Fatalf("intact chain: %+v", rep)
	}
	cases := []struct {
		name   string
		alter  func(it []Item)
		broken uint64
	}{
		{"body of a middle event", func(it []Item) { it[4].Event.Body = []byte(`{"i":999}`) }, 5},
		{"principal of the first event", func(it []Item) { it[0].Event.Principal = "mallory" }, 1},
		{"previous hash of an event", func(it []Item) { it[6].Event.PrevHash[0] ^= 1 }, 7},
		{"version of the last event", func(it []Item) { it[9].Event.Version++ }, 10},
		{"an event removed", func(it []Item) { it[3] = it[2] }, 4},
		{"undecodable", func(it []Item) { it[2].Event, it[2].Err = nil, fmt.Errorf("bad bytes") }, 3},
	}
	for _, tc := range cases {
		it := items(evs)
		tc.alter(it)
		rep := Verify(it, Range{Shard: 1, Head: &head})
		if rep.OK || rep.Break == nil || rep.Break.Position.Index != tc.broken {
			t.Errorf("%s: got %+v, want a break at %d", tc.name, rep.Break, tc.broken)
		}
	}
	// A sub-range anchored on the event before it.
	anchor := evs[2].Hash()
	if rep := Verify(items(evs[3:7]), Range{Shard: 1, Anchor: &anchor}); !rep.OK || rep.From != 4 || rep.To != 7 {
		t.Fatalf("anchored range: %+v", rep)
	}
}

func TestCheckpointsAndOfflineExport(t *testing.T) {
	key, err := LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	evs := chain(20)
	cp := Checkpoint{Shard: 1, Index: 12, Head: HashHex(evs[11].Hash()), HLC: 7, Node: 1}
	key.Sign(&cp)
	rng := Range{Shard: 1, Checkpoints: []Checkpoint{cp}, Keys: map[string]ed25519.PublicKey{key.ID: key.Public}}
	if rep := Verify(items(evs), rng); !rep.OK || rep.Checkpoints != 1 {
		t.Fatalf("with checkpoint: %+v", rep)
	}
	forged := cp
	forged.Head = HashHex(evs[10].Hash())
	rng.Checkpoints = []Checkpoint{forged}
	if rep := Verify(items(evs), rng); rep.OK || !strings.Contains(rep.Break.Reason, "signature") {
		t.Fatalf("forged checkpoint accepted: %+v", rep)
	}

	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Key(1, key.ID, key.Public); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := w.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Checkpoint(cp); err != nil {
		t.Fatal(err)
	}
	reps, err := VerifyExport(bytes.NewReader(buf.Bytes()), nil)
	if err != nil || len(reps) != 1 || !reps[0].OK || reps[0].Checkpoints != 1 {
		t.Fatalf("export: %+v %v", reps, err)
	}
	// Change one event's body in the file: verification names it.
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var l exportLine
	if err := json.Unmarshal([]byte(lines[9]), &l); err != nil {
		t.Fatal(err)
	}
	l.Event.BodyBase64 = "eyJpIjo5OTl9" // {"i":999}
	b, _ := json.Marshal(l)
	lines[9] = string(b)
	reps, err = VerifyExport(strings.NewReader(strings.Join(lines, "\n")), nil)
	if err != nil || reps[0].OK || reps[0].Break.Position.Index != l.Event.Position.Index {
		t.Fatalf("tampered export: %+v %v", reps, err)
	}
}
