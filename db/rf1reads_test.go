package db

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/log"
)

// TestReplicationFactorOneUnderReads lowers a four-node cluster's replication factor to 1
// while every node reads linearizably without pause, and checks that every node's
// replica of every shard is admitted, with one voter per shard. A ReadIndex pending at a
// shard's leader when its last other voter goes is never confirmed, and until the next
// term dragonboat's leader sends no heartbeat to non-voting replicas, so a replica that
// rejoins under a new id after that would stay pending; the leader, now the only voter,
// restarts its replica for a new term (log.Host.watchSoleVoters). Without that restart
// this test failed 11 of 25 runs on 2 cores.
func TestReplicationFactorOneUnderReads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four raft nodes")
	}
	const shards = 4
	c := newServedCluster(t, 4, 0, shards)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.open(ctx, 1, 2, 3, 4)
	dbs := c.dbs // written only while no other goroutine of the test reads it
	all := []uint64{1, 2, 3, 4}
	// Four static members, replication factor 3: the controller first takes a vote in
	// every shard away.
	until(t, ctx, 100*time.Millisecond, "three voters per shard, every replica admitted", func() bool {
		return heldWithVoters(dbs[1].Cluster(ctx), all, 3*shards)
	}, func() string { return fmt.Sprintf("%+v", dbs[1].Cluster(ctx).Shards) })
	for i := range 40 {
		body := fmt.Appendf(nil, `{"n":%d}`, i)
		if _, err := dbs[uint64(i%4+1)].Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: fmt.Sprintf("k%d", i), Body: body}); err != nil {
			t.Fatalf("write k%d: %v", i, err)
		}
	}
	stop := c.load(ctx, all, 2, func(d *DB, _ uint64, g, i int) error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := d.Get(rctx, "c", fmt.Sprintf("k%d", (i*7+g)%40), Linearizable)
		return err
	})
	defer stop()
	if err := dbs[3].SetReplicationFactor(ctx, 1); err != nil {
		t.Fatalf("replication factor 1: %v", err)
	}
	var last ClusterView
	until(t, ctx, 200*time.Millisecond, "one voter per shard, every replica admitted", func() bool {
		last = dbs[2].Cluster(ctx)
		return heldWithVoters(last, all, shards)
	}, func() string { return fmt.Sprintf("last view %+v", last.Shards) })
}
