package replication

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

// TestSyncModeWaitsForKafka: a write to a sync-mode collection is acknowledged only once
// Kafka has it: with the broker down it is not acknowledged (while an async write is),
// and once the broker is back sync writes are acknowledged again.
func TestSyncModeWaitsForKafka(t *testing.T) {
	kaddr, kdir := loopback.FreeAddr(t), t.TempDir()
	k, err := StartDevKafka(kaddr, kdir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { k.Close() }()
	east := openDC(t, "east")
	ctx := context.Background()
	if err := east.SetPolicy(ctx, "pay", db.Policy{Mode: "sync"}); err != nil {
		t.Fatal(err)
	}
	put := func(ctx context.Context, coll, id string) (db.Result, error) {
		return east.Write(ctx, "test", db.Write{Op: log.OpPut, Collection: coll, ID: id, Body: []byte(`{"v":1}`)})
	}
	if _, err := put(ctx, "pay", "p0"); !errors.Is(err, db.ErrReplicationUnavailable) {
		t.Fatalf("sync write without a shipper: %v, want ErrReplicationUnavailable", err)
	}
	cfg := testConfig("east", kaddr, t.TempDir())
	cfg.NoApply = true
	r := startRep(t, cfg, east)
	defer r.Close()
	east.SetShipWaiter(r)

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	res, err := put(wctx, "pay", "p1")
	cancel()
	if err != nil {
		t.Fatalf("sync write with the broker up: %v", err)
	}
	if sh := link(r.Status(), "ship").Shipped; sh[strconv.FormatUint(res.Position.Shard, 10)] < res.Position.Index {
		t.Fatalf("sync write acknowledged at %s before it was shipped (%v)", res.Position, sh)
	}

	k.Close()
	wctx, cancel = context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err = put(wctx, "pay", "p2")
	cancel()
	var nse *db.NotShippedError
	if !errors.As(err, &nse) {
		t.Fatalf("sync write with the broker down: %v, want a NotShippedError", err)
	}
	if _, err := put(ctx, "plain", "a1"); err != nil {
		t.Fatalf("async write with the broker down: %v", err)
	}

	if k, err = StartDevKafka(kaddr, kdir); err != nil {
		t.Fatal(err)
	}
	wctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := put(wctx, "pay", "p3"); err != nil {
		t.Fatalf("sync write after the broker came back: %v", err)
	}
	// The write that was not acknowledged was committed locally and is shipped too.
	if err := r.WaitShipped(wctx, nse.Result.Position); err != nil {
		t.Fatal(err)
	}
}
