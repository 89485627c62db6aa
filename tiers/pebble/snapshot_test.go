package pebble_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

func open(t *testing.T) *l2.DB {
	t.Helper()
	db, err := l2.Open(l2.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fill writes n documents of bodySize bytes into shard, with the applied index.
func fill(t *testing.T, db *l2.DB, shard uint64, n, bodySize int, applied uint64) {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	pad := bytes.Repeat([]byte("x"), bodySize)
	for i := range n {
		k := tiers.Key{Shard: shard, Collection: "c", ID: fmt.Sprint(i)}
		body := append(fmt.Appendf(nil, `{"i":%d,"p":"`, i), pad...)
		body = append(body, `"}`...)
		if err := b.PutDoc(k, tiers.Doc{Version: 1, TS: log.Timestamp(i + 1), Position: log.Position{Shard: shard, Index: uint64(i + 1)}, Body: body}); err != nil {
			t.Fatal(err)
		}
		if err := b.AddCount(shard, "c", 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetMeta(shard, l2.Meta{LastIndex: uint64(n), LastTS: log.Timestamp(n)}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetApplied(shard, applied); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func snapshotOf(t *testing.T, db *l2.DB, shard uint64) []byte {
	t.Helper()
	s := db.Snapshot(shard)
	defer s.Close()
	var buf bytes.Buffer
	if err := s.WriteTo(&buf, make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func digest(t *testing.T, db *l2.DB, shard uint64) log.Hash {
	t.Helper()
	h, err := db.Digest(shard)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRestoreTouchesOnlyItsShard(t *testing.T) {
	src, dst := open(t), open(t)
	fill(t, src, 2, 50, 100, 77)
	fill(t, dst, 1, 10, 10, 5)
	fill(t, dst, 2, 30, 10, 9)
	fill(t, dst, 3, 10, 10, 6)
	d1, d3 := digest(t, dst, 1), digest(t, dst, 3)

	if err := dst.Restore(2, bytes.NewReader(snapshotOf(t, src, 2)), make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	if digest(t, dst, 2) != digest(t, src, 2) {
		t.Fatal("restored shard's digest differs from the source")
	}
	if applied, err := dst.Applied(2); err != nil || applied != 77 {
		t.Fatalf("Applied after restore = %d, %v; want 77", applied, err)
	}
	if digest(t, dst, 1) != d1 || digest(t, dst, 3) != d3 {
		t.Fatal("restoring shard 2 changed a neighbouring shard")
	}
	if counts, err := dst.Counts(2); err != nil || counts["c"] != 50 {
		t.Fatalf("Counts after restore = %v, %v; want c: 50", counts, err)
	}
	// Documents beyond the source's 50 that dst had in shard 2 (it had 30) are all
	// replaced; every source document reads back.
	for i := range 50 {
		if _, err := dst.Get(tiers.Key{Shard: 2, Collection: "c", ID: fmt.Sprint(i)}); err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
	}
}

func TestDigestIgnoresAppliedIndex(t *testing.T) {
	a, b := open(t), open(t)
	fill(t, a, 1, 20, 10, 100)
	fill(t, b, 1, 20, 10, 999)
	if digest(t, a, 1) != digest(t, b, 1) {
		t.Fatal("digests differ only by the applied index")
	}
	fill(t, b, 1, 21, 10, 999)
	if digest(t, a, 1) == digest(t, b, 1) {
		t.Fatal("digests equal for different states")
	}
}

// TestRestoreRejectsCorruptLargeSnapshot: a snapshot that fails its checksum must leave
// the shard as it was, whatever its size. Restore commits in 16 MiB pieces, so a stream
// larger than that is a separate case from the small ones the materializer tests cover.
func TestRestoreRejectsCorruptLargeSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~40 MiB")
	}
	src, dst := open(t), open(t)
	fill(t, src, 1, 20, 1<<20, 50) // ~20 MiB
	snap := snapshotOf(t, src, 1)
	fill(t, dst, 1, 10, 100, 7)
	before := digest(t, dst, 1)

	bad := append([]byte(nil), snap...)
	bad[len(bad)-1] ^= 1 // the checksum
	err := dst.Restore(1, bytes.NewReader(bad), make(chan struct{}))
	if !errors.Is(err, l2.ErrCorruptSnapshot) {
		t.Fatalf("Restore of a corrupt snapshot: %v, want ErrCorruptSnapshot", err)
	}
	if digest(t, dst, 1) != before {
		t.Fatal("a rejected snapshot changed the shard's state")
	}
	if applied, _ := dst.Applied(1); applied != 7 {
		t.Fatalf("applied index %d after a rejected snapshot, want 7", applied)
	}
}
