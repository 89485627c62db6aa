package bench

import (
	"sync"
	"sync/atomic"
)

// Tracker remembers, per key number, the highest document version whose write was
// acknowledged, so a read can be checked against the writes that finished before it began
// (a linearizable read must see at least that version). It also knows the highest key
// number written, for the post-run verification sample. Safe for concurrent use; memory is
// 8 bytes per key number, allocated in chunks as keys appear.
type Tracker struct {
	mu     sync.RWMutex
	chunks []*[trackerChunk]atomic.Int64
	maxKey atomic.Int64 // one past the highest key number observed
}

const trackerChunk = 1 << 16

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{} }

func (t *Tracker) slot(n int64, grow bool) *atomic.Int64 {
	c, i := int(n/trackerChunk), n%trackerChunk
	t.mu.RLock()
	if c < len(t.chunks) {
		s := &t.chunks[c][i]
		t.mu.RUnlock()
		return s
	}
	t.mu.RUnlock()
	if !grow {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.chunks) <= c {
		t.chunks = append(t.chunks, new([trackerChunk]atomic.Int64))
	}
	return &t.chunks[c][i]
}

// Acked records that a write of key n was acknowledged with version v.
func (t *Tracker) Acked(n, v int64) {
	s := t.slot(n, true)
	for {
		cur := s.Load()
		if v <= cur || s.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		m := t.maxKey.Load()
		if n < m || t.maxKey.CompareAndSwap(m, n+1) {
			return
		}
	}
}

// Version is the highest acknowledged version of key n (0 when none).
func (t *Tracker) Version(n int64) int64 {
	if s := t.slot(n, false); s != nil {
		return s.Load()
	}
	return 0
}

// KeyLimit is one past the highest key number written.
func (t *Tracker) KeyLimit() int64 { return t.maxKey.Load() }
