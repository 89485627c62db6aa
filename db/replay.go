package db

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/tiers/memory"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

// StateDigest is the digest of the state the events up to a position determine.
type StateDigest struct {
	Digest string             `json:"digest"` // SHA-256 over the shard digests in shard order
	Token  string             `json:"token"`  // the position: each shard's last event
	Shards []ShardStateDigest `json:"shards"`
}

// ShardStateDigest is one shard's part.
type ShardStateDigest struct {
	Shard  uint64 `json:"shard"`
	Index  uint64 `json:"index"`
	Digest string `json:"digest"`
}

func combine(shards []ShardStateDigest) StateDigest {
	sort.Slice(shards, func(i, j int) bool { return shards[i].Shard < shards[j].Shard })
	h := sha256.New()
	tok := feed.Token{}
	for _, s := range shards {
		fmt.Fprintf(h, "%d/%d/%s\n", s.Shard, s.Index, s.Digest)
		tok[s.Shard] = s.Index
	}
	return StateDigest{Digest: hex.EncodeToString(h.Sum(nil)), Token: tok.Encode(), Shards: shards}
}

func stateDigest(store *l2.DB, shards []uint64) (StateDigest, error) {
	var out []ShardStateDigest
	for _, s := range shards {
		h, idx, err := store.StateDigest(s)
		if err != nil {
			return StateDigest{}, err
		}
		out = append(out, ShardStateDigest{Shard: s, Index: idx, Digest: hex.EncodeToString(h[:])})
	}
	return combine(out), nil
}

// StateDigest returns the live store's state digest and the position it reflects (each
// shard's digest and index come from one snapshot of that shard), over the shards this
// node holds a replica of.
func (d *DB) StateDigest() (StateDigest, error) { return stateDigest(d.store, d.localShards()) }

// Replay rebuilds the materialized state of shards from their events into a fresh store
// in dir (which must not exist or be empty) and returns its state digest. events holds,
// per shard, consecutive events from the shard's first; each re-appended event must equal
// the given one, hash included.
func Replay(dir string, shards int, events map[uint64][]log.Event) (StateDigest, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return StateDigest{}, fmt.Errorf("db: replay: %s is not empty", dir)
	}
	store, err := l2.Open(l2.Config{Dir: filepath.Join(dir, "store"), CacheBytes: 64 << 20})
	if err != nil {
		return StateDigest{}, err
	}
	defer store.Close()
	cache, err := memory.New(memory.Config{MaxBytes: 1 << 20})
	if err != nil {
		return StateDigest{}, err
	}
	codec := log.NewCodec(0)
	defer codec.Close()
	mat, err := materializer.New(materializer.Config{Store: store, Cache: cache, Codec: codec})
	if err != nil {
		return StateDigest{}, err
	}
	ids := make([]uint64, shards)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	for s := range events {
		if s == 0 || s > uint64(shards) {
			return StateDigest{}, fmt.Errorf("db: replay: event of shard %d, but %d shards", s, shards)
		}
	}
	for _, s := range ids {
		sm := mat.StateMachine(s).(*materializer.Shard)
		if _, err := sm.Open(); err != nil {
			return StateDigest{}, err
		}
		if err := sm.Replay(events[s]); err != nil {
			return StateDigest{}, fmt.Errorf("db: replay shard %d: %w", s, err)
		}
	}
	if err := store.Sync(); err != nil {
		return StateDigest{}, err
	}
	return stateDigest(store, ids)
}

// Cut keeps, per shard, the events a position includes: up to a token's index, or up to a
// time (inclusive at millisecond resolution).
func Cut(events map[uint64][]log.Event, at *AsOf) map[uint64][]log.Event {
	out := map[uint64][]log.Event{}
	for s, evs := range events {
		n := 0
		for n < len(evs) && at.includes(s, tiersVersion{index: evs[n].Position.Index, ts: evs[n].TS}) {
			n++
		}
		out[s] = evs[:n]
	}
	return out
}
