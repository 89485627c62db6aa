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
