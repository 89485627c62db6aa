package memory_test

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/aerolithsdb/aerolith/tiers/memory"
)

func newCache(t *testing.T, maxBytes int64) *memory.Cache {
	t.Helper()
	c, err := memory.New(memory.Config{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func key(shard uint64, id string) tiers.Key { return tiers.Key{Shard: shard, Collection: "c", ID: id} }

func TestConfigValidate(t *testing.T) {
	if err := (memory.Config{MaxBytes: -1}).Validate(); err == nil {
		t.Fatal("negative MaxBytes accepted")
	}
	if _, err := memory.New(memory.Config{MaxBytes: -1}); err == nil {
		t.Fatal("New accepted negative MaxBytes")
	}
	if err := (memory.Config{}).Validate(); err != nil {
		t.Fatalf("zero Config rejected: %v", err)
	}
}

func TestFillNeverOverwritesNewer(t *testing.T) {
	tests := []struct {
		name      string
		cached    *tiers.Doc // nil: nothing cached
		fill      tiers.Doc
		wantAfter uint64
	}{
		{"empty cache takes the fill", nil, tiers.Doc{Version: 3}, 3},
		{"older cached record is replaced", &tiers.Doc{Version: 2}, tiers.Doc{Version: 3}, 3},
		{"same version is kept", &tiers.Doc{Version: 3, Body: []byte(`{"cached":true}`)}, tiers.Doc{Version: 3}, 3},
		{"newer cached record is kept", &tiers.Doc{Version: 5}, tiers.Doc{Version: 3}, 5},
		{"newer tombstone is kept", &tiers.Doc{Version: 5, Deleted: true}, tiers.Doc{Version: 4, Body: []byte(`{}`)}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, 1<<20)
			k := key(1, "a")
			if tt.cached != nil {
				c.Set(k, *tt.cached)
			}
			c.Fill(k, tt.fill)
			got, err := c.Get(k)
			if err != nil || got.Version != tt.wantAfter {
				t.Fatalf("after Fill: %+v, %v; want version %d", got, err, tt.wantAfter)
			}
			if tt.cached != nil && tt.cached.Version >= tt.fill.Version && string(got.Body) != string(tt.cached.Body) {
				t.Fatalf("Fill replaced the cached record's body: %s", got.Body)
			}
		})
	}
}

func TestSetReplacesWhateverVersion(t *testing.T) {
	// Set is the materializer's post-commit update: it is authoritative, even backwards
	// (after a snapshot recovery the shard is invalidated first, but Set must not refuse).
	c := newCache(t, 1<<20)
	k := key(1, "a")
	c.Set(k, tiers.Doc{Version: 5})
	c.Set(k, tiers.Doc{Version: 2})
	if got, _ := c.Get(k); got.Version != 2 {
		t.Fatalf("Set did not replace: version %d", got.Version)
	}
}

func TestInvalidateDropsOnlyThatShard(t *testing.T) {
	c := newCache(t, 1<<20)
	for shard := uint64(1); shard <= 3; shard++ {
		for i := range 20 {
			c.Set(key(shard, fmt.Sprint(i)), tiers.Doc{Version: 1, Body: []byte(`{}`)})
		}
	}
	c.Invalidate(2)
	for shard := uint64(1); shard <= 3; shard++ {
		for i := range 20 {
			_, err := c.Get(key(shard, fmt.Sprint(i)))
			if shard == 2 && !errors.Is(err, tiers.ErrNotFound) {
				t.Fatalf("shard 2 key %d survived Invalidate(2): %v", i, err)
			}
			if shard != 2 && err != nil {
				t.Fatalf("shard %d key %d dropped by Invalidate(2): %v", shard, i, err)
			}
		}
	}
	c.Invalidate(99) // a shard with nothing cached
}

func TestStatsHitsMisses(t *testing.T) {
	c := newCache(t, 1<<20)
	c.Set(key(1, "a"), tiers.Doc{Version: 1})
	for range 3 {
		if _, err := c.Get(key(1, "a")); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := c.Get(key(1, "b")); !errors.Is(err, tiers.ErrNotFound) {
			t.Fatal(err)
		}
	}
	s := c.Stats()
	if s.Tier != "memory" || s.Hits != 3 || s.Misses != 2 {
		t.Fatalf("Stats = %+v; want 3 hits, 2 misses", s)
	}
}

// waitFor polls cond until it holds or the deadline passes. The cache evicts in the
// background, so the byte count settles shortly after the writes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func TestByteBound(t *testing.T) {
	const maxBytes = 1 << 20
	c := newCache(t, maxBytes)
	body := []byte(`{"pad":"` + string(make([]byte, 1000)) + `"}`)
	written := 0
	for i := 0; written < 32*maxBytes; i++ {
		d := tiers.Doc{Version: 1, Body: body}
		k := key(uint64(i%4+1), fmt.Sprintf("doc-%08d", i))
		c.Set(k, d)
		written += d.Size()
	}
	// Eviction runs in the background, but writers help when it falls behind: the bound
	// holds roughly at all times and exactly once the cache settles.
	if b := c.Stats().Bytes; b > 2*maxBytes {
		t.Errorf("right after the writes the cache holds %d bytes, bound %d", b, maxBytes)
	}
	t.Logf("right after the writes: %+v", c.Stats())
	const limit = maxBytes + maxBytes/100
	waitFor(t, fmt.Sprintf("Stats().Bytes ≤ %d", limit), func() bool { return c.Stats().Bytes <= limit })
	s := c.Stats()
	if s.Bytes <= 0 || s.Items <= 0 {
		t.Fatalf("Stats = %+v after inserting %d bytes", s, written)
	}
	if per := s.Bytes / max(s.Items, 1); per < 1000 || per > 1200 {
		t.Errorf("Stats = %+v: %d bytes per item, want about %d", s, per, len(body)+64)
	}
	t.Logf("inserted %d bytes; cache holds %d items, %d bytes (bound %d)", written, s.Items, s.Bytes, maxBytes)
}

func TestByteCountFollowsReplacementAndInvalidation(t *testing.T) {
	c := newCache(t, 1<<20)
	k := key(1, "a")
	for v := range uint64(100) {
		c.Set(k, tiers.Doc{Version: v, Body: make([]byte, 100)})
	}
	one := int64(tiers.Doc{Body: make([]byte, 100)}.Size() + len(k.Collection) + len(k.ID))
	waitFor(t, "one record's bytes", func() bool { return c.Stats().Bytes == one })
	c.Invalidate(1)
	waitFor(t, "zero bytes after Invalidate", func() bool { return c.Stats().Bytes == 0 })
}

func TestRecordLargerThanBound(t *testing.T) {
	c := newCache(t, 4<<10)
	c.Set(key(1, "huge"), tiers.Doc{Version: 1, Body: make([]byte, 64<<10)})
	waitFor(t, "the oversized record to be dropped", func() bool {
		_, err := c.Get(key(1, "huge"))
		return errors.Is(err, tiers.ErrNotFound) && c.Stats().Bytes <= 4<<10
	})
}
