package feed

import "sync"

// Hub knows each shard's head (the index of its last committed event) and wakes waiting
// subscriptions when a head moves.
type Hub struct {
	mu      sync.Mutex
	heads   map[uint64]uint64
	changed chan struct{}
}

// NewHub returns a Hub with every head at 0.
func NewHub() *Hub { return &Hub{heads: map[uint64]uint64{}, changed: make(chan struct{})} }

// Advance records that shard's events up to index are committed and readable.
func (h *Hub) Advance(shard, index uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if index <= h.heads[shard] {
		return
	}
	h.heads[shard] = index
	close(h.changed)
	h.changed = make(chan struct{})
}

// Head returns the index of shard's last committed event.
func (h *Hub) Head(shard uint64) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.heads[shard]
}

// Changed returns a channel closed at the next Advance that moves a head. Take it before
// reading heads, so an advance in between is not missed.
func (h *Hub) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}
