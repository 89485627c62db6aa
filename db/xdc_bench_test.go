package db

import (
	"context"
	"fmt"
	"testing"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/vclock"
)

// BenchmarkApplyRemote measures how fast one node takes replicated events (256-byte
// bodies, fsync on) in ApplyRemote calls of 256, as an applier hands them over: new
// documents, and the same documents written concurrently here first (every event a
// conflict, lww and keep-both).
func BenchmarkApplyRemote(b *testing.B) {
	for _, mode := range []string{"new", "conflict_lww", "conflict_keep_both"} {
		b.Run(mode, func(b *testing.B) {
			d, err := Open(context.Background(), Config{DataDir: b.TempDir(), NodeID: 1, RaftAddr: loopback.FreeAddr(b), Shards: 4, DC: "dcA", ArchiveInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ctx := context.Background()
			body := []byte(fmt.Sprintf(`{"v":"%0240d"}`, 0))
			if mode == "conflict_keep_both" {
				if err := d.SetPolicy(ctx, "b", Policy{Conflict: "keep-both"}); err != nil {
					b.Fatal(err)
				}
			}
			const batch = 256
			evs := make([]RemoteEvent, batch)
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for i := 0; i < b.N; i += batch {
				b.StopTimer()
				for j := range evs {
					idx := uint64(i + j + 1)
					id := fmt.Sprint(idx)
					if mode != "new" {
						if _, err := d.Write(ctx, "bench", Write{Op: log.OpPut, Collection: "b", ID: id, Body: body}); err != nil {
							b.Fatal(err)
						}
					}
					evs[j] = RemoteEvent{Origin: "dcB", Shard: 1, Index: idx, TS: log.Timestamp(idx), Op: log.OpPut,
						Collection: "b", ID: id, Body: body, Clock: vclock.Clock{"dcB": 1}}
				}
				b.StartTimer()
				if err := d.ApplyRemote(ctx, evs); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
