package memory

import (
	"fmt"
	"sync/atomic"

	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/maypok86/otter/v2"
)

// DefaultMaxBytes is the cache bound when Config.MaxBytes is zero.
const DefaultMaxBytes = 64 << 20

// Config configures a Cache.
type Config struct {
	MaxBytes int64 // bound on the records' approximate size (default 64 MiB)
}

// Validate reports problems with c.
func (c Config) Validate() error {
	if c.MaxBytes < 0 {
		return fmt.Errorf("memory: max bytes must not be negative, got %d", c.MaxBytes)
	}
	return nil
}

// Cache is the L1 tier.
type Cache struct {
	c            *otter.Cache[tiers.Key, tiers.Doc]
	hits, misses atomic.Uint64
	bytes        atomic.Int64
}

var _ tiers.Store = (*Cache)(nil)

// New returns an empty Cache.
func New(cfg Config) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	m := &Cache{}
	c, err := otter.New(&otter.Options[tiers.Key, tiers.Doc]{
		MaximumWeight: uint64(cfg.MaxBytes),
		Weigher: func(k tiers.Key, d tiers.Doc) uint32 {
			return uint32(d.Size() + len(k.Collection) + len(k.ID))
		},
		OnAtomicDeletion: func(e otter.DeletionEvent[tiers.Key, tiers.Doc]) {
			m.bytes.Add(-int64(e.Value.Size() + len(e.Key.Collection) + len(e.Key.ID)))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	m.c = c
	return m, nil
}

// Get returns the cached record of k, or tiers.ErrNotFound on a miss.
func (m *Cache) Get(k tiers.Key) (tiers.Doc, error) {
	d, ok := m.c.GetIfPresent(k)
	if !ok {
		m.misses.Add(1)
		return tiers.Doc{}, tiers.ErrNotFound
	}
	m.hits.Add(1)
	return d, nil
}

// Set stores the record of k, replacing any other.
func (m *Cache) Set(k tiers.Key, d tiers.Doc) {
	// The deletion hook subtracts a replaced record's size.
	m.bytes.Add(int64(d.Size() + len(k.Collection) + len(k.ID)))
	m.c.Set(k, d)
}

// Fill stores a record loaded from a lower tier unless the cache already holds one at the
// same or a newer version.
func (m *Cache) Fill(k tiers.Key, d tiers.Doc) {
	if cur, ok := m.c.GetIfPresent(k); ok && cur.Version >= d.Version {
		return
	}
	m.Set(k, d)
}

// Invalidate drops every record of shard: after its state was replaced by a snapshot, or
// when the node drops its replica of the shard. otter has no removal by predicate, so it
// walks the keys; records of shard that others add meanwhile may survive, so callers hold
// off the shard's writers and fills (the materializer's fillMu) while it runs.
func (m *Cache) Invalidate(shard uint64) {
	for k := range m.c.Keys() {
		if k.Shard == shard {
			m.c.Invalidate(k)
		}
	}
}

// Stats reports hits, misses, items and approximate bytes.
func (m *Cache) Stats() tiers.Stats {
	return tiers.Stats{
		Tier:   "memory",
		Items:  int64(m.c.EstimatedSize()),
		Bytes:  m.bytes.Load(),
		Hits:   m.hits.Load(),
		Misses: m.misses.Load(),
	}
}
