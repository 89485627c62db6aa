package db

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/aerolithsdb/aerolith/audit"
)

// Checkpoint cadence defaults.
const (
	DefaultCheckpointEvents   = 1000
	DefaultCheckpointInterval = 10 * time.Second
)

// PublicKey is a node's published checkpoint-signing key.
type PublicKey struct {
	Node   uint64
	KeyID  string
	Public ed25519.PublicKey
}

// Keys returns the public keys that sign this node's checkpoints.
func (d *DB) Keys() []PublicKey {
	return []PublicKey{{Node: d.cfg.NodeID, KeyID: d.key.ID, Public: d.key.Public}}
}

func (d *DB) keyMap() map[string]ed25519.PublicKey {
	m := map[string]ed25519.PublicKey{}
	for _, k := range d.Keys() {
		m[k.KeyID] = k.Public
	}
	return m
}

// checkpointLoop signs each shard's head every CheckpointEvents events or
// CheckpointInterval, whichever comes first, while the shard advances.
func (d *DB) checkpointLoop(ctx context.Context) {
	last := map[uint64]uint64{}
	lastAt := map[uint64]time.Time{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		d.localMu.Lock()
		for _, s := range d.localShards() {
			head := d.hub.Head(s)
			if head <= last[s] || head-last[s] < uint64(d.cfg.CheckpointEvents) && time.Since(lastAt[s]) < d.cfg.CheckpointInterval {
				continue
			}
			idx, err := d.checkpoint(s)
			if err != nil {
				d.cfg.Logger.Warn("checkpoint failed", "shard", s, "err", err)
				continue
			}
			last[s], lastAt[s] = idx, time.Now()
		}
		d.localMu.Unlock()
	}
}

// checkpoint signs and stores shard's current head.
func (d *DB) checkpoint(shard uint64) (uint64, error) {
	meta, err := d.store.Meta(shard)
	if err != nil || meta.LastIndex == 0 {
		return 0, err
	}
	cp := audit.Checkpoint{Shard: shard, Index: meta.LastIndex, Head: audit.HashHex(meta.Head), HLC: uint64(d.clock.Now()), Node: d.cfg.NodeID}
	d.key.Sign(&cp)
	rec, err := json.Marshal(cp)
	if err != nil {
		return 0, err
	}
	if err := d.store.PutCheckpoint(shard, cp.Index, rec); err != nil {
		return 0, err
	}
	return cp.Index, nil
}

// Checkpoints returns the signed checkpoints of shard in [from, to].
func (d *DB) Checkpoints(shard, from, to uint64) ([]audit.Checkpoint, error) {
	recs, err := d.store.Checkpoints(shard, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]audit.Checkpoint, 0, len(recs))
	for _, r := range recs {
		var cp audit.Checkpoint
		if err := json.Unmarshal(r, &cp); err != nil {
			return nil, fmt.Errorf("db: checkpoint record: %w", err)
		}
		out = append(out, cp)
	}
	return out, nil
}

// Verify checks shard's hash chain over [from, to] (to 0: the head) against the stored
// head hash and this node's signed checkpoints.
func (d *DB) Verify(ctx context.Context, shard, from, to uint64) (audit.Report, error) {
	if shard == 0 || shard > uint64(d.Shards()) {
		return audit.Report{}, fmt.Errorf("%w: no shard %d", ErrInvalidArgument, shard)
	}
	if !d.local(shard) {
		// The checkpoints that prove the chain are this node's own signatures.
		return audit.Report{}, fmt.Errorf("%w: node %d holds no replica of shard %d; verify it on a node that does (GET /v1/cluster)", ErrNotHosted, d.cfg.NodeID, shard)
	}
	meta, err := d.store.Meta(shard)
	if err != nil {
		return audit.Report{}, err
	}
	from = max(from, 1)
	if to == 0 || to > meta.LastIndex {
		to = meta.LastIndex
	}
	r := audit.Range{Shard: shard, Keys: d.keyMap()}
	if to == meta.LastIndex {
		r.Head = &meta.Head
	}
	if from > 1 {
		raw, err := d.events(ctx, shard, from-1, 1)
		if err != nil {
			return audit.Report{}, err
		}
		if len(raw) == 1 {
			if prev, err := d.codec.Decode(raw[0]); err == nil {
				h := prev.Hash()
				r.Anchor = &h
			}
		}
	}
	if r.Checkpoints, err = d.Checkpoints(shard, from, to); err != nil {
		return audit.Report{}, err
	}
	var items []audit.Item
	for next := from; next <= to; {
		if err := ctx.Err(); err != nil {
			return audit.Report{}, err
		}
		raw, err := d.events(ctx, shard, next, int(min(to-next+1, 4096)))
		if err != nil {
			// An unreadable stretch (a corrupt archive segment) is a broken link there.
			items = append(items, audit.Item{Index: next, Err: err})
			break
		}
		if len(raw) == 0 {
			break
		}
		for _, b := range raw {
			e, err := d.codec.Decode(b)
			it := audit.Item{Index: next, Err: err}
			if err == nil {
				it.Event = &e
				it.Index = e.Position.Index
			}
			items = append(items, it)
			next++
		}
	}
	return audit.Verify(items, r), nil
}

// Export writes every shard's events, this node's checkpoints and its public keys as
// NDJSON, verifiable offline with audit.VerifyExport.
func (d *DB) Export(ctx context.Context, w io.Writer) error {
	aw := audit.NewWriter(w)
	for _, k := range d.Keys() {
		if err := aw.Key(k.Node, k.KeyID, k.Public); err != nil {
			return err
		}
	}
	for _, s := range d.shardIDs() {
		for next := uint64(1); ; {
			if err := ctx.Err(); err != nil {
				return err
			}
			raw, err := d.events(ctx, s, next, 1024)
			if err != nil {
				return err
			}
			if len(raw) == 0 {
				break
			}
			for _, b := range raw {
				e, err := d.codec.Decode(b)
				if err != nil {
					return fmt.Errorf("db: shard %d event %d: %w", s, next, err)
				}
				if err := aw.Event(&e); err != nil {
					return err
				}
				next++
			}
		}
		cps, err := d.Checkpoints(s, 0, math.MaxUint64)
		if err != nil {
			return err
		}
		for _, cp := range cps {
			if err := aw.Checkpoint(cp); err != nil {
				return err
			}
		}
	}
	return nil
}
