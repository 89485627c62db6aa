package db

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/gateway/peer"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

// servedCluster is a cluster of in-process nodes on loopback, each with the HTTP server
// other nodes reach it on (probeServer): static members 1..static, and joiners after them.
type servedCluster struct {
	tb        testing.TB
	shards    int
	static    uint64
	members   map[uint64]string // raft addresses of the static members
	raft      map[uint64]string // every node's raft address
	https     map[uint64]string
	peers     map[uint64]*peer.Client
	dirs      map[uint64]string
	ptrs      map[uint64]*atomic.Pointer[DB]
	deadAfter time.Duration
	logLevel  slog.Level
	// retain, when set, keeps that many events per shard in L2 (RetainEvents, segments of
	// retain/2); the tests archive by calling archiveOnce (the loop is off).
	retain int
	// snapshotEntries, when set, is the shards' SnapshotEntries (a small one compacts the
	// raft log early, so a replica behind catches up by snapshot).
	snapshotEntries uint64

	mu  sync.Mutex
	dbs map[uint64]*DB
}

// newServedCluster lays out static members and joiners more nodes; none is open yet. It
// closes every node open when the test ends.
func newServedCluster(tb testing.TB, static, joiners, shards int) *servedCluster {
	c := &servedCluster{tb: tb, shards: shards, static: uint64(static), members: map[uint64]string{}, raft: map[uint64]string{},
		https: map[uint64]string{}, peers: map[uint64]*peer.Client{}, dirs: map[uint64]string{}, ptrs: map[uint64]*atomic.Pointer[DB]{}, dbs: map[uint64]*DB{},
		logLevel: slog.LevelInfo}
	for id := uint64(1); id <= uint64(static+joiners); id++ {
		c.ptrs[id] = new(atomic.Pointer[DB])
		c.https[id] = probeServer(tb, c.ptrs[id])
		c.peers[id] = peerClient(tb)
		c.dirs[id] = tb.TempDir()
		c.raft[id] = loopback.FreeAddr(tb)
		if id <= c.static {
			c.members[id] = c.raft[id]
		}
	}
	tb.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, d := range c.dbs {
			d.Close()
		}
	})
	return c
}

// config is node id's configuration: a static member, or a joiner.
func (c *servedCluster) config(id uint64) Config {
	cfg := Config{DataDir: c.dirs[id], NodeID: id, RaftAddr: c.raft[id], Shards: c.shards,
		InitialMembers: c.members, AdvertiseHTTP: c.https[id], Peers: c.peers[id], DeadAfter: c.deadAfter}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.logLevel})).With("node", id)
	}
	if id > c.static {
		cfg.InitialMembers, cfg.Join = nil, true
	}
	if c.retain > 0 {
		cfg.RetainEvents, cfg.SegmentEvents, cfg.ArchiveInterval = c.retain, c.retain/2, -1
	}
	cfg.SnapshotEntries = c.snapshotEntries
	return cfg
}

// open opens the nodes ids in parallel (on the data they have) and fails the test if one
// does not open.
func (c *servedCluster) open(ctx context.Context, ids ...uint64) {
	c.tb.Helper()
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := Open(ctx, c.config(id))
			if err != nil {
				c.tb.Errorf("node %d: %v", id, err)
				failed.Store(true)
				return
			}
			c.mu.Lock()
			c.dbs[id] = d
			c.mu.Unlock()
			c.ptrs[id].Store(d)
		}()
	}
	wg.Wait()
	if failed.Load() {
		c.tb.FailNow()
	}
}

// join asks node via to admit joiner id, then opens it.
func (c *servedCluster) join(ctx context.Context, via, id uint64) {
	c.tb.Helper()
	if _, err := c.db(via).Join(ctx, JoinRequest{ID: id, RaftAddr: c.raft[id], HTTPAddr: c.https[id]}); err != nil {
		c.tb.Fatalf("join node %d: %v", id, err)
	}
	c.open(ctx, id)
}

// close closes node id; its HTTP server then answers 503, as a node that is down.
func (c *servedCluster) close(id uint64) {
	c.tb.Helper()
	c.ptrs[id].Store(nil)
	c.mu.Lock()
	d := c.dbs[id]
	delete(c.dbs, id)
	c.mu.Unlock()
	if err := d.Close(); err != nil {
		c.tb.Fatalf("close node %d: %v", id, err)
	}
}

// db returns node id's open DB.
func (c *servedCluster) db(id uint64) *DB {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dbs[id]
}

// writeLoad starts one writer per node in nodes, each putting new documents of collection
// "w" back to back through its node; stop ends them and returns how many writes were
// acknowledged and how many failed.
func (c *servedCluster) writeLoad(ctx context.Context, nodes []uint64) (stop func() (written, failed int64)) {
	return c.load(ctx, nodes, 1, func(d *DB, on uint64, _, i int) error {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := d.Write(wctx, "anonymous", Write{Op: log.OpPut, Collection: "w", ID: fmt.Sprintf("n%d-%d", on, i), Body: []byte(`{}`)})
		return err
	})
}

// load starts perNode goroutines on each node in nodes, the g-th calling op back to back
// with i = 0, 1, ...; stop ends them and returns how many calls succeeded and failed.
func (c *servedCluster) load(ctx context.Context, nodes []uint64, perNode int, op func(d *DB, on uint64, g, i int) error) (stop func() (ok, failed int64)) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var good, bad atomic.Int64
	for _, on := range nodes {
		d := c.db(on)
		for g := range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					case <-ctx.Done():
						return
					default:
					}
					if op(d, on, g, i) == nil {
						good.Add(1)
					} else {
						bad.Add(1)
					}
				}
			}()
		}
	}
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return good.Load(), bad.Load()
	}
}

// ids returns 1..n.
func ids(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// until polls ok every interval until it holds. When ctx ends first it fails the test,
// naming what it waited for and, when state is not nil, what state describes.
func until(t testing.TB, ctx context.Context, every time.Duration, what string, ok func() bool, state func() string) {
	t.Helper()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !ok() {
		select {
		case <-ctx.Done():
			if state != nil {
				t.Fatalf("%s: not reached; %s", what, state())
			}
			t.Fatalf("%s: not reached", what)
		case <-tick.C:
		}
	}
}
