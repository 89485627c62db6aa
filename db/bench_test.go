package db

import (
	"context"
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
// peer protocol over loopback HTTP).
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
