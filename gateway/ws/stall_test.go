package ws_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/aerolithsdb/aerolith/gateway/ws"
	"github.com/aerolithsdb/aerolith/log"
)

// Shape of the stalled-subscriber measurement (docs/benchmarks.md reports its figures).
const (
	stallClients  = 32              // in-process writers calling db.Write
	stallPayload  = 256             // bytes of document
	stallPhase    = 2 * time.Second // per phase
	stallQueueLen = 32
)

// TestStalledSubscriberStaysBounded runs writers three times on one node — without a
// subscriber, with a WebSocket subscriber that stops reading its socket, and without
// again — sampling the Go heap and the connections' send queues. The queue must fill
// (the client really stalls) and never exceed its bound; afterwards the stalled client
// reads again and must receive every event written while it stalled. The throughput and
// heap figures are logged for docs/benchmarks.md; they are measurements, not assertions.
func TestStalledSubscriberStaysBounded(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a measurement: not in -short runs nor under the race detector")
	}
	lim := ws.Limits{QueueLength: stallQueueLen, WriteTimeout: time.Minute, PingInterval: time.Minute}
	n := startNode(t, nodeConfig(t, lim))
	defer n.Close()
	pad := strings.Repeat("x", stallPayload-len(`{"n":"0000000000","pad":""}`))

	type phase struct {
		writes             int64
		took               time.Duration
		heapBase, heapMax  uint64
		queuedMax, samples int
	}
	// run writes for stallPhase; with fill, only until the send queue is full.
	run := func(name string, fill bool) phase {
		var p phase
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		p.heapBase = ms.HeapInuse
		limit := stallPhase
		if fill {
			limit = 30 * time.Second
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		var wg sync.WaitGroup
		var writes atomic.Int64
		for w := range stallClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 3))
				for ctx.Err() == nil {
					body := fmt.Sprintf(`{"n":"%010d","pad":"%s"}`, rng.IntN(1e9), pad)
					_, err := n.DB().Write(context.Background(), gateway.Anonymous, db.Write{Op: log.OpPut, Collection: "bench",
						ID: fmt.Sprint("k", rng.IntN(10000)), Body: []byte(body)})
					if err != nil {
						t.Errorf("write: %v", err)
						return
					}
					writes.Add(1)
				}
			}()
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				p.heapMax = max(p.heapMax, ms.HeapInuse)
				q := int(metric(t, n, "aerolith_changes_queued_messages"))
				p.queuedMax = max(p.queuedMax, q)
				p.samples++
				if fill && q == stallQueueLen {
					cancel()
				}
			}
		}
		wg.Wait()
		took := time.Since(start)
		p.writes, p.took = writes.Load(), took
		t.Logf("%-8s %6d writes in %4.1fs = %6.0f writes/s; heap in use %5.1f MiB before, at most %5.1f MiB during (+%.1f); send queue at most %d",
			name, p.writes, took.Seconds(), float64(p.writes)/took.Seconds(), mib(p.heapBase), mib(p.heapMax),
			mib(p.heapMax)-mib(p.heapBase), p.queuedMax)
		return p
	}

	t.Logf("fsync of 4 KiB in the data directory's file system: median %s", fsyncMedian(t, t.TempDir()))
	run("warmup", false)
	before := run("none", false)

	// A client subscribes with both images, reads up to caught_up, then stops reading.
	// (Its socket buffers are the kernel's defaults: shrinking them below the loopback MSS
	// makes TCP crawl on its persist timer instead of stalling cleanly.)
	conn, _, err := dial(n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, ws: conn}
	c.send(`{"type":"subscribe","id":"s","include":["before","after"]}`)
	c.until(5*time.Second, typ("caught_up"))
	// Until the socket buffers and the queue are full the subscriber is not stalled yet,
	// just reading: fill them first, then measure.
	fill := run("fill", true)
	stalled := run("stalled", false)
	if fill.queuedMax != stallQueueLen || stalled.queuedMax != stallQueueLen {
		t.Fatalf("send queue at most %d then %d, want it full at %d (did the client stall?)", fill.queuedMax, stalled.queuedMax, stallQueueLen)
	}
	// Reading again, the client gets every event written while it stalled, in order.
	last := map[uint64]uint64{}
	deadline := time.Now().Add(60 * time.Second)
	for got := int64(0); got < fill.writes+stalled.writes; {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled client caught up on only %d of %d events", got, fill.writes+stalled.writes)
		}
		m := c.next(30 * time.Second)
		if m.Type != "event" {
			continue
		}
		p := m.Event.Position
		if last[p.Shard] != 0 && p.Index != last[p.Shard]+1 {
			t.Fatalf("shard %d: event %d after %d", p.Shard, p.Index, last[p.Shard])
		}
		last[p.Shard] = p.Index
		got++
	}
	conn.Close()

	after := run("none", false)
	without := float64(before.writes+after.writes) / (before.took + after.took).Seconds()
	t.Logf("shape: %d cores, %d in-process writers, %d-byte documents, fsync on, 1 node, %d shards; stalled subscriber: 1 WebSocket, before+after images, queue %d",
		runtime.NumCPU(), stallClients, stallPayload, n.DB().Shards(), stallQueueLen)
	with := float64(stalled.writes) / stalled.took.Seconds()
	t.Logf("write throughput with a stalled subscriber: %.0f/s vs %.0f/s without (%.0f%%)", with, without, 100*with/without)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// fsyncMedian is the median latency of writing and fsyncing a 4 KiB block in dir.
func fsyncMedian(t *testing.T, dir string) time.Duration {
	f, err := os.CreateTemp(dir, "fsync")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	var took []time.Duration
	for i := 0; i < 200; i++ {
		start := time.Now()
		if _, err := f.WriteAt(block, int64(i%16)*4096); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	return took[len(took)/2]
}
