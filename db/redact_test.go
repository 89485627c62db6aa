package db

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

func TestRedactionKeepsTheChainAndReplay(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, Config{DataDir: t.TempDir(), NodeID: 1, RaftAddr: loopback.FreeAddr(t), Shards: 2,
		RetainEvents: 4, SegmentEvents: 4, ArchiveInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w := func(op log.Op, id, body string) {
		t.Helper()
		if _, err := d.Write(ctx, "alice", Write{Op: op, Collection: "people", ID: id, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	w(log.OpPut, "p1", `{"name":"Ann","ssn":"123"}`)
	w(log.OpPatch, "p1", `{"city":"Oslo"}`)
	// Push p1's first events into the archive, so redaction meets both tiers: fill p1's
	// shard past the retention window.
	filled := 0
	for i := 0; filled < 12; i++ {
		id := fmt.Sprint("filler", i)
		if d.host.ShardOf("people", id) == d.host.ShardOf("people", "p1") {
			w(log.OpPut, id, `{"n":1}`)
			filled++
		}
	}
	if _, err := d.archiveOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w(log.OpPatch, "p1", `{"ssn":null}`)
	w(log.OpPut, "gone", `{"secret":"x"}`)
	w(log.OpDelete, "gone", ``)

	if _, err := d.Redact(ctx, "dpo", "people", "p1", "erasure request 42"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Redact(ctx, "dpo", "people", "gone", "erasure request 43"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Redact(ctx, "dpo", "people", "nobody", "x"); err == nil {
		t.Fatal("redacting a document that never existed")
	}
	doc, err := d.Get(ctx, "people", "p1", Linearizable)
	if err != nil || string(doc.Body) != `{"city":"Oslo","name":"Ann"}` {
		t.Fatalf("current version must stay: %s %v", doc.Body, err)
	}
	hist, _ := d.History(ctx, "people", "p1", Linearizable)
	if len(hist) != 3 || !hist[0].Redacted || hist[0].Body != nil || !hist[1].Redacted || hist[2].Redacted {
		t.Fatalf("history after redaction: %+v", hist)
	}
	// No erased body is readable anywhere in the event log, the chain verifies, and the
	// redaction itself is an event that says who and why.
	page, err := d.Events(ctx, EventsRequest{Collection: "people", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var sawRedaction bool
	for _, e := range page.Events {
		if strings.Contains(string(e.Body), "123") || strings.Contains(string(e.Body), "secret") {
			t.Fatalf("erased body still readable: %+v", e)
		}
		if e.Op == "redact" && e.ID == "p1" {
			sawRedaction = e.Principal == "dpo" && strings.Contains(string(e.Body), "erasure request 42")
		}
	}
	if !sawRedaction {
		t.Fatal("no redaction event with principal and reason")
	}
	for _, s := range d.shardIDs() {
		if rep, err := d.Verify(ctx, s, 0, 0); err != nil || !rep.OK {
			t.Fatalf("verify shard %d: %+v %v", s, rep, err)
		}
	}
	var buf bytes.Buffer
	if err := d.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	reps, err := audit.VerifyExport(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if !r.OK {
			t.Fatalf("offline verify after redaction: %+v", r)
		}
	}
	events, err := audit.ReadEvents(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, evs := range events {
		for _, e := range evs {
			if !e.Redacted && (bytes.Contains(e.Body, []byte("123")) || bytes.Contains(e.Body, []byte("secret"))) {
				t.Fatalf("export carries an erased body: %s %s", e.Position, e.Body)
			}
		}
	}
	// The erased bodies also leave the archive's files.
	p1 := d.host.ShardOf("people", "p1")
	if masked, err := d.store.Masked(p1, 1, 1<<40); err != nil || len(masked) == 0 {
		t.Fatalf("no archived event was redacted (masked %v, %v): the test does not reach the archive", masked, err)
	}
	if err := d.scrubArchive(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range d.shardIDs() {
		recs, err := d.archive.Events(ctx, s, 1, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			e, err := d.codec.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			if !e.Redacted && bytes.Contains(e.Body, []byte("123")) {
				t.Fatalf("archive segment still holds an erased body at %s", e.Position)
			}
		}
	}
	live, _ := d.StateDigest()
	got, err := Replay(filepath.Join(t.TempDir(), "r"), d.Shards(), events)
	if err != nil || got.Digest != live.Digest {
		t.Fatalf("replay after redaction: %+v\nlive %+v\n%v", got, live, err)
	}
}
