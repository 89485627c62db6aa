package db

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

func TestVerifyCheckpointsAndExport(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d, err := Open(ctx, Config{DataDir: dir, NodeID: 1, RaftAddr: loopback.FreeAddr(t), Shards: 2, CheckpointEvents: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := 0; i < 60; i++ {
		if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: fmt.Sprint(i % 7), Body: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for a checkpoint on every shard.
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range d.shardIDs() {
		for {
			cps, err := d.Checkpoints(s, 0, 1<<40)
			if err != nil {
				t.Fatal(err)
			}
			if len(cps) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("shard %d: no checkpoint", s)
			}
			<-time.After(20 * time.Millisecond)
		}
	}
	checked := 0
	for _, s := range d.shardIDs() {
		rep, err := d.Verify(ctx, s, 0, 0)
		if err != nil || !rep.OK || rep.Events != d.hub.Head(s) {
			t.Fatalf("shard %d: %+v %v", s, rep, err)
		}
		checked += rep.Checkpoints
		part, err := d.Verify(ctx, s, 3, 5)
		if err != nil || !part.OK || part.From != 3 || part.To != 5 {
			t.Fatalf("shard %d range: %+v %v", s, part, err)
		}
	}
	if checked == 0 {
		t.Fatal("no checkpoint was checked")
	}
	var buf bytes.Buffer
	if err := d.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	reps, err := audit.VerifyExport(&buf, nil)
	if err != nil || len(reps) != 2 {
		t.Fatalf("export: %+v %v", reps, err)
	}
	for _, r := range reps {
		if !r.OK || r.Checkpoints == 0 {
			t.Fatalf("offline: %+v", r)
		}
	}
}
