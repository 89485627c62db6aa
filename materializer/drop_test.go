package materializer_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/aerolithsdb/aerolith/tiers/memory"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

// cloneEntries copies entries so that each shard's Apply sets its own Results.
func cloneEntries(es []log.Entry) []log.Entry {
	out := make([]log.Entry, len(es))
	for i, e := range es {
		out[i] = log.Entry{Index: e.Index, Cmds: e.Cmds}
	}
	return out
}

// Drop, once the log closed the shard's state machine, leaves nothing of the shard in
// L2 or L1 while readers keep reading it, leaves the other shards alone, and a new state
// machine of the shard opens empty and rebuilds the same state from the same entries.
func TestDropForgetsTheShard(t *testing.T) {
	store, err := l2.Open(l2.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cache, err := memory.New(memory.Config{MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	codec := log.NewCodec(0)
	defer codec.Close()
	m, err := materializer.New(materializer.Config{Store: store, Cache: cache, Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkload(11)
	entries := w.entries(1, 150)
	const dropped, kept = 1, 2
	sms := map[uint64]log.StateMachine{}
	before := map[uint64]log.Hash{}
	for _, shard := range []uint64{dropped, kept} {
		sms[shard] = m.StateMachine(shard)
		if applied, err := sms[shard].Open(); err != nil || applied != 0 {
			t.Fatalf("Open shard %d = %d, %v", shard, applied, err)
		}
		if err := sms[shard].Apply(cloneEntries(entries)); err != nil {
			t.Fatal(err)
		}
		if before[shard], err = m.Digest(shard); err != nil {
			t.Fatal(err)
		}
	}
	keysOf := func(shard uint64) []tiers.Key {
		var out []tiers.Key
		for _, k := range w.sortedKeys() {
			k.Shard = shard
			out = append(out, k)
		}
		return out
	}
	// Every record in L1, for both shards (Apply set some, reads fill the rest).
	cachedKept := 0
	for _, shard := range []uint64{dropped, kept} {
		for _, k := range keysOf(shard) {
			if _, err := m.Get(k); err == nil && shard == kept {
				cachedKept++
			}
		}
	}
	if cachedKept == 0 {
		t.Fatal("the workload left no document to read")
	}
	emptyDigest, err := store.Digest(99)
	if err != nil {
		t.Fatal(err)
	}

	if err := m.Drop(dropped); !errors.Is(err, materializer.ErrShardOpen) {
		t.Fatalf("Drop while a replica drives the shard: %v, want ErrShardOpen", err)
	}
	if err := sms[dropped].Close(); err != nil { // the log stopped the replica
		t.Fatal(err)
	}
	// Readers keep reading the shard while it is dropped: none may put a record back
	// into L1 after Drop returns.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				for _, k := range keysOf(dropped) {
					select {
					case <-stop:
						return
					default:
					}
					m.Get(k)
				}
			}
		}()
	}
	err = m.Drop(dropped)
	for _, k := range keysOf(dropped) {
		if _, cerr := cache.Get(k); cerr == nil {
			t.Errorf("%v still in L1 after Drop", k)
		}
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Drop: %v", err)
	}

	if applied, err := store.Applied(dropped); err != nil || applied != 0 {
		t.Fatalf("Applied after Drop = %d, %v; want 0", applied, err)
	}
	if d, err := m.Digest(dropped); err != nil || d != emptyDigest {
		t.Fatalf("digest after Drop is not the empty shard's (%v)", err)
	}
	if evs, err := store.Events(dropped, 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("events after Drop: %d, %v", len(evs), err)
	}
	for _, k := range keysOf(dropped) {
		if _, err := m.Get(k); !errors.Is(err, materializer.ErrUnknownShard) {
			t.Fatalf("Get %v after Drop: %v, want ErrUnknownShard", k, err)
		}
		if _, err := store.Get(k); !errors.Is(err, tiers.ErrNotFound) {
			t.Fatalf("%v still in L2 after Drop: %v", k, err)
		}
	}
	cols, err := m.Collections()
	if err != nil {
		t.Fatal(err)
	}
	counts, err := store.Counts(kept)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if c.Count != counts[c.Name] {
			t.Fatalf("collection %s counts %d after Drop, want the kept shard's %d", c.Name, c.Count, counts[c.Name])
		}
	}
	// The kept shard is untouched, its L1 records included.
	if d, err := m.Digest(kept); err != nil || d != before[kept] {
		t.Fatalf("the kept shard's digest changed (%v)", err)
	}
	inL1 := 0
	for _, k := range keysOf(kept) {
		if _, err := cache.Get(k); err == nil {
			inL1++
		}
	}
	if inL1 < cachedKept {
		t.Fatalf("%d of the kept shard's %d records left L1", cachedKept-inL1, cachedKept)
	}
	if err := m.Drop(dropped); err != nil {
		t.Fatalf("Drop again: %v", err)
	}

	// Adopted again: a new state machine starts empty and rebuilds the same state.
	sm := m.StateMachine(dropped)
	if applied, err := sm.Open(); err != nil || applied != 0 {
		t.Fatalf("Open after Drop = %d, %v; want 0", applied, err)
	}
	if err := sm.Apply(cloneEntries(entries)); err != nil {
		t.Fatal(err)
	}
	if d, err := m.Digest(dropped); err != nil || d != before[dropped] {
		t.Fatalf("rebuilt shard's digest differs from the dropped one's (%v)", err)
	}
	for _, k := range keysOf(dropped) {
		want, werr := store.Get(k)
		got, gerr := m.Get(k)
		if !errors.Is(gerr, werr) || got.Version != want.Version {
			t.Fatalf("%v after rebuilding: %+v, %v; L2 has %+v, %v", k, got, gerr, want, werr)
		}
	}
}
