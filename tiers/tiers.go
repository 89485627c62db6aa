package tiers

import (
	"errors"

	"github.com/aerolithsdb/aerolith/log"
)

// ErrNotFound is returned by Get when a tier holds no record for the key.
var ErrNotFound = errors.New("tiers: not found")

// ErrClosed is returned after a tier was closed.
var ErrClosed = errors.New("tiers: closed")

// Key names a document: its shard, collection and id.
type Key struct {
	Shard      uint64
	Collection string
	ID         string
}

// Doc is a document's current record. A deleted document keeps a record (a tombstone)
// with Deleted set and no body, so versions continue after re-creation.
type Doc struct {
	Version  uint64
	TS       log.Timestamp
	Deleted  bool
	Position log.Position // the event that produced this version
	Body     []byte       // JSON object; nil when Deleted
}

// Size approximates the memory a record holds, for byte-bounded caches.
func (d Doc) Size() int { return 64 + len(d.Body) }

// Store is the read contract every tier fulfils. Implementations are safe for concurrent
// use.
type Store interface {
	// Get returns the record of k, or ErrNotFound.
	Get(k Key) (Doc, error)
}

// Stats is what a tier reports about itself.
type Stats struct {
	Tier   string `json:"tier"`
	Items  int64  `json:"items"`
	Bytes  int64  `json:"bytes"`
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
}
