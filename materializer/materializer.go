package materializer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/aerolithsdb/aerolith/tiers/memory"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
	"github.com/prometheus/client_golang/prometheus"
)

// expirePerCommand bounds how many expired idempotency records one command deletes.
const expirePerCommand = 16

// retrySweep bounds how many expired retry records one sweep deletes; sweeps run at most
// ten times a second of command time, so a shard keeps up with 20,000 writes a second.
const retrySweep = 2048

// Config configures a Materializer.
type Config struct {
	Store *l2.DB        // required: the node's L2 store
	Cache *memory.Cache // required: the node's L1 cache
	Codec *log.Codec    // required
	// OnCommit, when set, is told after each committed batch (and when a shard opens or
	// recovers) the index of the shard's last event. The change feed hangs on it.
	OnCommit   func(shard, lastEvent uint64)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("materializer: store is required"))
	}
	if c.Cache == nil {
		errs = append(errs, errors.New("materializer: cache is required"))
	}
	if c.Codec == nil {
		errs = append(errs, errors.New("materializer: codec is required"))
	}
	return errors.Join(errs...)
}

// Materializer owns the state machines of this node's shards and the read path through the
// tiers (L1, then L2).
type Materializer struct {
	cfg     Config
	metrics *metrics
	mu      sync.Mutex
	shards  map[uint64]*Shard
}

// New returns a Materializer.
func New(cfg Config) (*Materializer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Materializer{cfg: cfg, metrics: newMetrics(cfg.Registerer), shards: map[uint64]*Shard{}}, nil
}

// StateMachine returns the state machine of shard, for the log to drive.
func (m *Materializer) StateMachine(shard uint64) log.StateMachine {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.shards[shard]
	if !ok {
		s = &Shard{m: m, shard: shard}
		m.shards[shard] = s
	}
	return s
}

// Drop forgets shard on this node, whose replica the log stopped and removed
// (log.Host.Drop, which returns after the replica's state machine was closed): it
// forgets the in-memory Shard (expiry floors, index definitions, policies), purges the
// shard's records from L1 and deletes its state from L2 (synced). A later StateMachine of
// the shard opens empty, at applied index 0. Drop refuses with ErrShardOpen while a
// replica still drives the shard's state machine (opened and not closed). Dropping a
// shard with nothing left is a no-op, so a node may drop every shard it does not host at
// start, which finishes a drop a crash interrupted. It must not run concurrently with
// the log starting a replica of the same shard.
func (m *Materializer) Drop(shard uint64) error {
	m.mu.Lock()
	s, ok := m.shards[shard]
	if ok && s.open.Load() {
		m.mu.Unlock()
		return fmt.Errorf("%w: %d", ErrShardOpen, shard)
	}
	delete(m.shards, shard)
	m.mu.Unlock()
	if ok {
		// A reader that found the Shard before it was forgotten fills L1 under fillMu
		// shared: it either filled before this (and the purge below removes it) or reads
		// L2 after the state is gone (and fills nothing).
		s.fillMu.Lock()
		defer s.fillMu.Unlock()
	}
	if err := m.cfg.Store.DropShard(shard); err != nil {
		return fmt.Errorf("materializer: shard %d: drop: %w", shard, err)
	}
	m.cfg.Cache.Invalidate(shard)
	m.cfg.Logger.Info("shard dropped", "shard", shard)
	return nil
}

func (m *Materializer) shard(n uint64) (*Shard, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.shards[n]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownShard, n)
	}
	return s, nil
}

// Get returns a document's current record (a tombstone when deleted) or
// tiers.ErrNotFound. It reads L1, then L2, filling L1 on a miss.
func (m *Materializer) Get(k tiers.Key) (tiers.Doc, error) {
	start := time.Now()
	if d, err := m.cfg.Cache.Get(k); err == nil {
		m.metrics.observeRead("memory", "hit", start)
		return d, nil
	}
	s, err := m.shard(k.Shard)
	if err != nil {
		return tiers.Doc{}, err
	}
	// Hold off apply between reading L2 and filling L1, so a record read before a commit
	// cannot be cached after it.
	s.fillMu.RLock()
	defer s.fillMu.RUnlock()
	d, err := m.cfg.Store.Get(k)
	if errors.Is(err, tiers.ErrNotFound) {
		m.metrics.observeRead("pebble", "miss", start)
		return d, err
	}
	if err != nil {
		return d, err
	}
	m.metrics.observeRead("pebble", "hit", start)
	m.cfg.Cache.Fill(k, d)
	return d, nil
}

// History returns every version of a document, oldest first.
func (m *Materializer) History(k tiers.Key) ([]l2.Version, error) {
	return m.cfg.Store.History(k)
}

// CollectionCount is a collection's live document count.
type CollectionCount struct {
	Name  string
	Count int64
}

// Collections sums live document counts over this node's shards, sorted by name.
func (m *Materializer) Collections() ([]CollectionCount, error) {
	m.mu.Lock()
	shards := make([]uint64, 0, len(m.shards))
	for n := range m.shards {
		shards = append(shards, n)
	}
	m.mu.Unlock()
	total := map[string]int64{}
	for _, n := range shards {
		c, err := m.cfg.Store.Counts(n)
		if err != nil {
			return nil, err
		}
		for k, v := range c {
			total[k] += v
		}
	}
	out := make([]CollectionCount, 0, len(total))
	for k, v := range total {
		out = append(out, CollectionCount{Name: k, Count: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Digest returns the state digest of one shard (see tiers/pebble.DB.Digest).
func (m *Materializer) Digest(shard uint64) (log.Hash, error) { return m.cfg.Store.Digest(shard) }

// Shard is one shard's state machine. The log calls its methods one at a time, except
// SaveSnapshot, which may run alongside Apply.
type Shard struct {
	m     *Materializer
	shard uint64
	// fillMu orders L1 updates: Apply holds it exclusively from commit to cache update,
	// readers filling L1 from L2 hold it shared.
	fillMu sync.RWMutex
	// open is set by Open and cleared by Close: a replica drives the shard, so Drop
	// refuses.
	open    atomic.Bool
	meta    l2.Meta
	applied uint64
	floors  expiryFloors
	// indexes are the shard's index definitions by collection, as of the last applied
	// command; only the log's goroutine touches them.
	indexes map[string][]l2.IndexDef
	// policies are the collections' policies as of the last applied command, replaced
	// whole (copy on write) by apply, read by anyone.
	policies atomic.Pointer[map[string]Policy]
	// remoteCounts are the outcomes of remote writes in the batch being applied, counted
	// in the metrics once it commits.
	remoteCounts [len(remoteOutcomes)]int
}

var _ log.StateMachine = (*Shard)(nil)

// Open loads the shard's meta and returns the raft index its state reflects.
func (s *Shard) Open() (uint64, error) {
	applied, err := s.m.cfg.Store.Applied(s.shard)
	if err != nil {
		return 0, fmt.Errorf("materializer: shard %d: applied index: %w", s.shard, err)
	}
	meta, err := s.m.cfg.Store.Meta(s.shard)
	if err != nil {
		return 0, fmt.Errorf("materializer: shard %d: meta: %w", s.shard, err)
	}
	s.applied, s.meta, s.floors = applied, meta, expiryFloors{}
	if err := s.loadIndexes(); err != nil {
		return 0, fmt.Errorf("materializer: shard %d: indexes: %w", s.shard, err)
	}
	if err := s.loadPolicies(); err != nil {
		return 0, fmt.Errorf("materializer: shard %d: policies: %w", s.shard, err)
	}
	s.open.Store(true)
	s.notify()
	s.m.cfg.Logger.Info("shard opened", "shard", s.shard, "applied", applied, "events", meta.LastIndex)
	return applied, nil
}

func (s *Shard) notify() {
	if s.m.cfg.OnCommit != nil {
		s.m.cfg.OnCommit(s.shard, s.meta.LastIndex)
	}
}

// Sync makes everything applied durable.
func (s *Shard) Sync() error { return s.m.cfg.Store.Sync() }

// Close releases the shard: no replica drives it any more (the log stopped it), so Drop
// may delete its state. The store belongs to the node and stays open.
func (s *Shard) Close() error {
	s.open.Store(false)
	return nil
}

// PrepareSnapshot captures the shard's state.
func (s *Shard) PrepareSnapshot() (any, error) { return s.m.cfg.Store.Snapshot(s.shard), nil }

// SaveSnapshot streams the captured state.
func (s *Shard) SaveSnapshot(c any, w io.Writer, done <-chan struct{}) error {
	snap := c.(*l2.Snapshot)
	defer snap.Close()
	return snap.WriteTo(w, done)
}

// RecoverFromSnapshot replaces the shard's state and drops its L1 records.
func (s *Shard) RecoverFromSnapshot(r io.Reader, done <-chan struct{}) error {
	s.fillMu.Lock()
	defer s.fillMu.Unlock()
	if err := s.m.cfg.Store.Restore(s.shard, r, done); err != nil {
		return fmt.Errorf("materializer: shard %d: restore: %w", s.shard, err)
	}
	s.m.cfg.Cache.Invalidate(s.shard)
	_, err := s.Open()
	return err
}
