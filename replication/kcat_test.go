package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/log"
)

// kcatBinary finds kcat (Debian package kafkacat), installing the package when it is
// absent and apt can reach its mirrors. It skips, loudly, only when apt cannot.
func kcatBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("apt-get"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "sh", "-c", "apt-get install -y kafkacat || (apt-get update && apt-get install -y kafkacat)").CombinedOutput()
		for _, name := range []string{"kcat", "kafkacat"} {
			if p, lerr := exec.LookPath(name); lerr == nil {
				return p
			}
		}
		t.Skipf("SKIPPING THE KCAT TEST: kcat is not installed and installing the Debian package kafkacat failed: %v\n%s", err, out)
	}
	t.Skip("SKIPPING THE KCAT TEST: kcat is not installed and there is no apt-get to install kafkacat")
	return ""
}

// TestKcatReadsShippedRecords: an ordinary Kafka tool reads what the shipper wrote: the
// key, the Debezium-style JSON value and the CloudEvents headers.
func TestKcatReadsShippedRecords(t *testing.T) {
	kcat := kcatBinary(t)
	k, err := StartDevKafka("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	east := openDC(t, "east")
	cfg := testConfig("east", k.Addr(), t.TempDir())
	cfg.NoApply = true
	r := startRep(t, cfg, east)
	defer r.Close()
	ctx := context.Background()
	var last log.Position
	for i, w := range []db.Write{
		{Op: log.OpPut, Collection: "users", ID: "ada", Body: []byte(`{"name":"Ada"}`)},
		{Op: log.OpPatch, Collection: "users", ID: "ada", Body: []byte(`{"born":1815}`)},
		{Op: log.OpDelete, Collection: "users", ID: "ada"},
	} {
		res, err := east.Write(ctx, "alice", w)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		last = res.Position
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.WaitShipped(wctx, last); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(wctx, kcat, "-b", k.Addr(), "-C", "-t", "aerolith.east", "-o", "beginning", "-e", "-q", "-J")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.Bytes())
	}
	type kcatRecord struct {
		Key     string   `json:"key"`
		Payload string   `json:"payload"`
		Headers []string `json:"headers"` // name, value, name, value, ...
	}
	var got []kcatRecord
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec kcatRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		got = append(got, rec)
	}
	if len(got) != 3 {
		t.Fatalf("kcat read %d records, want 3:\n%s", len(got), out)
	}
	wantOps := []string{"c", "u", "d"}
	wantAfter := []string{`{"name":"Ada"}`, `{"born":1815,"name":"Ada"}`, `null`}
	for i, rec := range got {
		h := map[string]string{}
		for j := 0; j+1 < len(rec.Headers); j += 2 {
			h[rec.Headers[j]] = rec.Headers[j+1]
		}
		for _, name := range []string{"ce_id", "ce_source", "ce_type", "ce_time", "ce_specversion", "aerolith_origin", "aerolith_shard", "aerolith_index"} {
			if h[name] == "" {
				t.Errorf("record %d has no header %s: %v", i, name, rec.Headers)
			}
		}
		if rec.Key != "users/ada" || h["ce_specversion"] != "1.0" || !strings.HasPrefix(h["ce_id"], "east-") || h["aerolith_origin"] != "east" {
			t.Errorf("record %d: key %q headers %v", i, rec.Key, h)
		}
		if _, err := time.Parse(time.RFC3339Nano, h["ce_time"]); err != nil {
			t.Errorf("record %d: ce_time %q: %v", i, h["ce_time"], err)
		}
		var v struct {
			Op     string          `json:"op"`
			After  json.RawMessage `json:"after"`
			Before json.RawMessage `json:"before"`
			Source struct {
				DC         string `json:"dc"`
				Collection string `json:"collection"`
				ID         string `json:"id"`
				Principal  string `json:"principal"`
			} `json:"source"`
			Clock map[string]uint64 `json:"clock"`
		}
		if err := json.Unmarshal([]byte(rec.Payload), &v); err != nil {
			t.Fatalf("record %d payload %q: %v", i, rec.Payload, err)
		}
		if v.Op != wantOps[i] || string(v.After) != wantAfter[i] || v.Source.DC != "east" || v.Source.Collection != "users" ||
			v.Source.ID != "ada" || v.Source.Principal != "alice" || v.Clock["east"] != uint64(i+1) {
			t.Errorf("record %d: %s", i, rec.Payload)
		}
	}
	if t.Failed() {
		t.Logf("kcat output:\n%s", out)
	}
}
