package replication

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

// openCluster opens a three-node datacenter dc in-process (a static cluster on loopback).
func openCluster(t *testing.T, dc string) []*db.DB {
	t.Helper()
	members := map[uint64]string{1: loopback.FreeAddr(t), 2: loopback.FreeAddr(t), 3: loopback.FreeAddr(t)}
	dbs := make([]*db.DB, 3)
	errs := make([]error, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range dbs {
		id := uint64(i + 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = db.Open(ctx, db.Config{DataDir: t.TempDir(), NodeID: id, RaftAddr: members[id], Shards: 2, DC: dc,
				InitialMembers: members, RetainEvents: -1, ArchiveInterval: -1})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s node %d: %v", dc, i+1, err)
		}
	}
	t.Cleanup(func() {
		for _, d := range dbs {
			d.Close()
		}
	})
	return dbs
}

// TestElectedShipperMoves: in a datacenter of three nodes shipping with Elect, exactly the
// node leading the meta shard ships; sync-mode waits work on every node; when the shipping
// node stops, another takes over from the progress kept in the meta shard, and the other
// datacenter receives every write.
func TestElectedShipperMoves(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node datacenter and a broker")
	}
	k, err := StartDevKafka("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	east := openCluster(t, "east")
	west := openDC(t, "west")
	reps := make([]*Replicator, len(east))
	for i, d := range east {
		cfg := testConfig("east", k.Addr(), t.TempDir())
		cfg.Elect, cfg.NoApply = true, true
		reps[i] = startRep(t, cfg, d)
		defer reps[i].Close()
	}
	wcfg := testConfig("west", k.Addr(), t.TempDir())
	wcfg.NoShip = true
	wr := startRep(t, wcfg, west)
	defer wr.Close()

	shipping := func() (int, string) {
		n, who := 0, -1
		var states []string
		for i, r := range reps {
			if r == nil {
				continue
			}
			st := link(r.Status(), "ship")
			states = append(states, fmt.Sprintf("node %d %s", i+1, st.State))
			if st.State != "standby" {
				n++
				who = i
			}
		}
		if n != 1 {
			return -1, fmt.Sprint(states)
		}
		return who, fmt.Sprint(states)
	}
	var shipper int
	eventually(t, 30*time.Second, "one east node ships", func() (bool, string) {
		s, why := shipping()
		shipper = s
		return s >= 0, why
	})

	ctx := context.Background()
	written := 0
	write := func(n int) {
		t.Helper()
		for range n {
			i := written % len(east)
			for reps[i] == nil {
				i = (i + 1) % len(east)
			}
			id := fmt.Sprintf("d%d", written)
			r, err := east[i].Write(ctx, "test", db.Write{Op: log.OpPut, Collection: "docs", ID: id, Body: fmt.Appendf(nil, `{"n":%d}`, written)})
			if err != nil {
				t.Fatalf("write %s on east node %d: %v", id, i+1, err)
			}
			written++
			// Every node can tell when a write of its own reached Kafka, shipping or not.
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = reps[i].WaitShipped(wctx, r.Position)
			cancel()
			if err != nil {
				t.Fatalf("write %s on east node %d: not shipped: %v", id, i+1, err)
			}
		}
	}
	write(30)

	// The shipping node stops; another one leads the meta shard and ships from there.
	reps[shipper].Close()
	if err := east[shipper].Close(); err != nil {
		t.Fatal(err)
	}
	reps[shipper] = nil
	stopped := shipper
	eventually(t, 30*time.Second, "another east node ships", func() (bool, string) {
		s, why := shipping()
		shipper = s
		return s >= 0 && s != stopped, why
	})
	write(30)

	eventually(t, 60*time.Second, "west has every east write", func() (bool, string) {
		for i := range written {
			doc, err := west.Get(ctx, "docs", fmt.Sprintf("d%d", i), db.Local)
			if err != nil || string(doc.Body) != fmt.Sprintf(`{"n":%d}`, i) {
				return false, fmt.Sprintf("d%d: %s %v", i, doc.Body, err)
			}
		}
		return true, ""
	})
	// The new shipper resumed from the progress kept in the meta shard: it shipped the
	// writes made after the handover, not everything from the start again.
	if n := link(reps[shipper].Status(), "ship").Events; n == 0 || n >= uint64(written)*3/4 {
		t.Errorf("the second shipper shipped %d records of %d writes; want about the %d written after it took over", n, written, written/2)
	}
}
