package db

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

// BenchmarkWrite measures acknowledged single-document puts (256-byte bodies) from many
// concurrent writers on one node, fsync on (the raft log), with and without group commit.
func BenchmarkWrite(b *testing.B) {
	for _, gc := range []bool{true, false} {
		name := "group_commit"
		if !gc {
			name = "one_proposal_per_write"
		}
		b.Run(name, func(b *testing.B) {
			l := loopback.FreeAddr(b)
			d, err := Open(context.Background(), Config{DataDir: b.TempDir(), NodeID: 1, RaftAddr: l, Shards: 4, DisableGroupCommit: !gc})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			body := []byte(fmt.Sprintf(`{"v":"%0240d"}`, 0))
			var n atomic.Int64
			b.SetParallelism(32) // 32 × GOMAXPROCS writers
			b.ReportAllocs()
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if _, err := d.Write(context.Background(), "bench", Write{Op: log.OpPut, Collection: "b", ID: fmt.Sprint(i % 100000), Body: body}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "writes/s")
		})
	}
}

// BenchmarkL3 compares, on one node of a three-node cluster (replication factor 1, so one
// voter per shard wherever the controller left it; fsync on; 256-byte documents; 16
// concurrent callers on 2 cores), linearizable reads and writes of documents in shards the
// node holds with those in shards it does not hold, which go through another node (the
// peer protocol over loopback gRPC).
func BenchmarkL3(b *testing.B) {
	ctx := context.Background()
	c := newServedCluster(b, 3, 0, 4)
	c.open(ctx, ids(3)...)
	d1, d3 := c.db(1), c.db(3)
	if err := d1.SetReplicationFactor(ctx, 1); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for _, s := range []uint64{1, 2} {
		// Refused until the other nodes are registered: only active nodes count as holders.
		for err := d1.PlaceShard(ctx, s, 3, true); err != nil; err = d1.PlaceShard(ctx, s, 3, true) {
			if time.Now().After(deadline) {
				b.Fatal(err)
			}
			<-tick.C
		}
	}
	settled := func() bool {
		if d3.local(1) || d3.local(2) {
			return false
		}
		for _, sh := range d1.Cluster(ctx).Shards {
			if sh.Shard != log.MetaShard && (len(sh.Replicas) != 1 || sh.Leader == 0 || sh.Membership != "quorum") {
				return false
			}
		}
		return true
	}
	for !settled() {
		if time.Now().After(deadline) {
			b.Fatal("the cluster did not settle: one voter per shard, node 3 without shards 1 and 2")
		}
		<-tick.C
	}
	ids := map[bool][]string{} // local to node 3 or not → document ids
	for i := 0; len(ids[true]) < 100 || len(ids[false]) < 100; i++ {
		id := fmt.Sprintf("k%d", i)
		ids[d3.local(log.ShardOf("b", id, 4))] = append(ids[d3.local(log.ShardOf("b", id, 4))], id)
	}
	body := []byte(fmt.Sprintf(`{"v":"%0240d"}`, 0))
	for _, local := range []bool{true, false} {
		for _, id := range ids[local] {
			if _, err := d3.Write(ctx, "bench", Write{Op: log.OpPut, Collection: "b", ID: id, Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	}
	where := map[bool]string{true: "held", false: "remote"}
	for _, local := range []bool{true, false} {
		list := ids[local]
		b.Run("get_"+where[local], func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := d3.Get(ctx, "b", list[n.Add(1)%int64(len(list))], Linearizable); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run("put_"+where[local], func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := d3.Write(ctx, "bench", Write{Op: log.OpPut, Collection: "b", ID: list[n.Add(1)%int64(len(list))], Body: body}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkNonVotingRead measures, on a four-node cluster (replication factor 3, so each
// shard has one non-voting replica; fsync on), a write through the shard leader's node
// followed by a linearizable read of the written document on the node that holds the
// shard's non-voting replica, or a voting follower's for comparison. The read needs that
// replica to have applied the write: it learns of the commit from the leader's next
// message. With readers_8, eight more callers per node read the same shard linearizably
// without pause, so the leader has ReadIndex requests queued at every heartbeat
// (dragonboat then heartbeats voters only).
func BenchmarkNonVotingRead(b *testing.B) {
	ctx := context.Background()
	const shards = 4
	c := newServedCluster(b, 4, 0, shards)
	c.open(ctx, ids(4)...)
	all := ids(4)
	var view ClusterView
	until(b, ctx, 100*time.Millisecond, "three voters per shard, every replica admitted", func() bool {
		view = c.db(1).Cluster(ctx)
		return heldWithVoters(view, all, 3*shards)
	}, func() string { return fmt.Sprintf("%+v", view.Shards) })
	// Shard 1: the leader's node writes; the reads go to the non-voting replica's node, or
	// to a voting follower's for comparison.
	var leader, follower, nonVoting uint64
	for _, sh := range view.Shards {
		if sh.Shard != 1 || len(sh.NonVoting) != 1 {
			continue
		}
		nonVoting = sh.NonVoting[0].Node
		for _, m := range sh.Replicas {
			if m.ID == sh.Leader {
				leader = m.Node
			} else {
				follower = m.Node
			}
		}
	}
	if leader == 0 || follower == 0 || nonVoting == 0 {
		b.Fatalf("shard 1 has no leader, voting follower and single non-voting replica: %+v", view.Shards)
	}
	var keys []string // documents of shard 1
	for i := 0; len(keys) < 64; i++ {
		if id := fmt.Sprintf("k%d", i); log.ShardOf("b", id, shards) == 1 {
			keys = append(keys, id)
		}
	}
	w := c.db(leader)
	for _, tc := range []struct {
		on      string
		node    uint64
		readers int
	}{{"non_voting", nonVoting, 0}, {"non_voting", nonVoting, 8}, {"voting", follower, 0}, {"voting", follower, 8}} {
		readers, r := tc.readers, c.db(tc.node)
		b.Run(fmt.Sprintf("%s/readers_%d", tc.on, readers), func(b *testing.B) {
			stop := c.load(ctx, all, readers, func(d *DB, _ uint64, g, i int) error {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				_, err := d.Get(rctx, "b", keys[1+(i+g)%(len(keys)-1)], Linearizable)
				if errors.Is(err, ErrNotFound) {
					return nil
				}
				return err
			})
			defer stop()
			var read time.Duration
			b.ResetTimer()
			for i := range b.N {
				body := fmt.Appendf(nil, `{"n":%d}`, i)
				res, err := w.Write(ctx, "bench", Write{Op: log.OpPut, Collection: "b", ID: keys[0], Body: body})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				doc, err := r.Get(ctx, "b", keys[0], Linearizable)
				read += time.Since(start)
				if err != nil || doc.Version < res.Version {
					b.Fatalf("read on node %d: version %d (%v), want %d", tc.node, doc.Version, err, res.Version)
				}
			}
			b.ReportMetric(float64(read.Nanoseconds())/float64(b.N), "read-ns/op")
		})
	}
}
