package pebble_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

// DropShard leaves no key of the shard (its snapshot stream is an empty shard's), leaves
// the other shards and the node's checkpoints alone, survives a reopen, and is a no-op on
// a shard with nothing left.
func TestDropShardDeletesOnlyItsShard(t *testing.T) {
	dir := t.TempDir()
	db, err := l2.Open(l2.Config{Dir: dir, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	for shard := uint64(1); shard <= 3; shard++ {
		fill(t, db, shard, 40, 50, 100+shard)
		b := db.NewBatch()
		k := tiers.Key{Shard: shard, Collection: "c", ID: "0"}
		if err := b.PutEvent(log.Position{Shard: shard, Index: 1}, []byte("event")); err != nil {
			t.Fatal(err)
		}
		if err := b.PutVersion(k, l2.Version{Version: 1, Position: log.Position{Shard: shard, Index: 1}, Op: log.OpPut, Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	if err := db.PutCheckpoint(2, 1, []byte("signed")); err != nil {
		t.Fatal(err)
	}
	const unused = 77 // a shard never written to
	empty, emptySnap := digest(t, db, unused), snapshotOf(t, db, unused)
	snap1, snap3 := snapshotOf(t, db, 1), snapshotOf(t, db, 3)
	if bytes.Equal(snapshotOf(t, db, 2), emptySnap) {
		t.Fatal("shard 2 reads as empty before the drop")
	}

	if err := db.DropShard(2); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if !bytes.Equal(snapshotOf(t, db, 2), emptySnap) {
			t.Fatalf("%s: keys of shard 2 remain", when)
		}
		if d := digest(t, db, 2); d != empty {
			t.Fatalf("%s: digest of shard 2 is not the empty digest", when)
		}
		if applied, err := db.Applied(2); err != nil || applied != 0 {
			t.Fatalf("%s: Applied(2) = %d, %v; want 0", when, applied, err)
		}
		if m, err := db.Meta(2); err != nil || m != (l2.Meta{}) {
			t.Fatalf("%s: Meta(2) = %+v, %v; want zero", when, m, err)
		}
		if _, err := db.Get(tiers.Key{Shard: 2, Collection: "c", ID: "0"}); !errors.Is(err, tiers.ErrNotFound) {
			t.Fatalf("%s: a document of shard 2: %v, want ErrNotFound", when, err)
		}
		if !bytes.Equal(snapshotOf(t, db, 1), snap1) || !bytes.Equal(snapshotOf(t, db, 3), snap3) {
			t.Fatalf("%s: dropping shard 2 changed a neighbouring shard", when)
		}
		if cps, err := db.Checkpoints(2, 0, 10); err != nil || len(cps) != 1 {
			t.Fatalf("%s: checkpoints of shard 2: %d, %v; want the one this node signed", when, len(cps), err)
		}
	}
	check("after the drop")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = l2.Open(l2.Config{Dir: dir, CacheBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	check("after a reopen")
	for _, shard := range []uint64{2, unused} {
		if err := db.DropShard(shard); err != nil {
			t.Fatalf("DropShard(%d) with nothing left: %v", shard, err)
		}
	}
	check("after dropping again")
	// The shard fills again from empty.
	fill(t, db, 2, 5, 10, 3)
	if applied, _ := db.Applied(2); applied != 3 {
		t.Fatalf("Applied after refilling = %d, want 3", applied)
	}
	if counts, err := db.Counts(2); err != nil || counts["c"] != 5 {
		t.Fatalf("Counts after refilling = %v, %v; want c: 5 (the old count is gone)", counts, err)
	}
}

// DeleteCheckpoints removes one shard's checkpoints, every index of them, and no other.
func TestDeleteCheckpoints(t *testing.T) {
	db, err := l2.Open(l2.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for shard := uint64(1); shard <= 3; shard++ {
		for _, idx := range []uint64{0, 1, 1 << 40, math.MaxUint64} {
			if err := db.PutCheckpoint(shard, idx, []byte("signed")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.DeleteCheckpoints(2); err != nil {
		t.Fatal(err)
	}
	for shard, want := range map[uint64]int{1: 4, 2: 0, 3: 4} {
		if cps, err := db.Checkpoints(shard, 0, math.MaxUint64); err != nil || len(cps) != want {
			t.Fatalf("shard %d: %d checkpoints, %v; want %d", shard, len(cps), err, want)
		}
	}
}
