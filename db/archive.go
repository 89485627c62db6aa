package db

import (
	"context"
	"fmt"
	"time"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
)

// Archive defaults.
const (
	DefaultRetainEvents  = 100_000
	DefaultSegmentEvents = 4096
)

// events returns up to max encoded events of shard from index from on, reading the
// archive (L4) for what has left L2. Events are archived before L2 drops them, so a
// miss in L2 below the archive's end means "read the archive again".
func (d *DB) events(ctx context.Context, shard, from uint64, max int) ([][]byte, error) {
	if !d.local(shard) {
		return d.remoteEvents(ctx, shard, from, max)
	}
	var out [][]byte
	for len(out) < max {
		next := from + uint64(len(out))
		if next <= d.archive.Archived(shard) {
			recs, err := d.archive.Events(ctx, shard, next, max-len(out))
			if err != nil {
				return nil, err
			}
			if len(recs) == 0 {
				return nil, fmt.Errorf("db: shard %d: event %d is neither archived nor in the store", shard, next)
			}
			if recs, err = d.mask(shard, next, recs); err != nil {
				return nil, err
			}
			out = append(out, recs...)
			continue
		}
		first, err := d.store.FirstEvent(shard)
		if err != nil {
			return nil, err
		}
		if first > next {
			if next <= d.archive.Archived(shard) {
				continue // archived and dropped meanwhile
			}
			// Neither in L2 nor in this node's archive: the replica caught up by a
			// snapshot taken after the shard's other holders archived these events, and
			// they serve them.
			recs, err := d.remoteEvents(ctx, shard, next, min(max-len(out), int(first-next)))
			if err != nil || len(recs) == 0 {
				return nil, fmt.Errorf("db: shard %d: event %d missing here (L2 starts at %d, archive ends at %d) and not had from another node: %v",
					shard, next, first, d.archive.Archived(shard), err)
			}
			out = append(out, recs...)
			continue
		}
		recs, err := d.store.Events(shard, next, max-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		break
	}
	return out, nil
}

// archiveLoop moves old events to the archive every ArchiveInterval.
func (d *DB) archiveLoop(ctx context.Context) {
	tick := time.NewTicker(d.cfg.ArchiveInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		d.localMu.Lock()
		if _, err := d.archiveOnce(ctx); err != nil && ctx.Err() == nil {
			d.cfg.Logger.Warn("archiving failed", "err", err)
		}
		if err := d.scrubArchive(ctx); err != nil && ctx.Err() == nil {
			d.cfg.Logger.Warn("erasing redacted bodies from the archive failed", "err", err)
		}
		d.localMu.Unlock()
	}
}

// archiveOnce writes every full segment of events past the retention window to the
// archive and then drops them from L2. It returns how many events it moved.
func (d *DB) archiveOnce(ctx context.Context) (int, error) {
	moved := 0
	seg := uint64(d.cfg.SegmentEvents)
	for _, s := range d.localShards() {
		upto, err := d.archivable(s)
		if err != nil {
			return moved, err
		}
		for {
			done := d.archive.Archived(s)
			if upto < done+seg {
				break
			}
			// From L2, or, for a replica that caught up by snapshot after the other holders
			// archived these events, from those nodes (events).
			recs, err := d.events(ctx, s, done+1, int(seg))
			if err != nil {
				return moved, err
			}
			if uint64(len(recs)) != seg {
				return moved, fmt.Errorf("db: shard %d: %d events from %d, want %d", s, len(recs), done+1, seg)
			}
			if err := d.archive.Put(ctx, s, done+1, recs); err != nil {
				return moved, err
			}
			if err := d.store.DeleteEvents(s, done+1, done+seg); err != nil {
				return moved, err
			}
			moved += len(recs)
			d.cfg.Logger.Debug("archived events", "shard", s, "from", done+1, "to", done+seg)
		}
	}
	return moved, nil
}

// archivable returns the last index of shard the retention rules let go: older than
// RetainEvents from the head, or older than RetainAge.
func (d *DB) archivable(shard uint64) (uint64, error) {
	head := d.hub.Head(shard)
	var upto uint64
	if n := uint64(d.cfg.RetainEvents); d.cfg.RetainEvents > 0 && head > n {
		upto = head - n
	}
	if d.cfg.RetainAge > 0 {
		cutoff := log.TimestampOf(time.Now().Add(-d.cfg.RetainAge))
		lo, hi := d.archive.Archived(shard)+1, head+1 // first event at or after cutoff lies in [lo, hi]
		for lo < hi {
			mid := lo + (hi-lo)/2
			raw, err := d.events(context.Background(), shard, mid, 1)
			if err != nil {
				return 0, err
			}
			e, err := d.codec.Decode(raw[0])
			if err != nil {
				return 0, err
			}
			if e.TS >= cutoff {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		upto = max(upto, lo-1)
	}
	return upto, nil
}

// TierStats is what GET /v1/tiers reports.
type TierStats struct {
	Tiers            []tiers.Stats `json:"tiers"`
	ArchiveRatio     float64       `json:"archive_compression_ratio"`
	ArchiveReadMeanS float64       `json:"archive_read_mean_seconds"`
}

// Tiers reports each tier's items, bytes, hits and misses, and the archive's compression.
func (d *DB) Tiers() TierStats {
	return TierStats{
		Tiers:            []tiers.Stats{d.cache.Stats(), d.store.Stats(), d.archive.Stats()},
		ArchiveRatio:     d.archive.CompressionRatio(),
		ArchiveReadMeanS: d.archive.MeanRead().Seconds(),
	}
}

// mask erases the bodies of archived events redacted after they were archived.
func (d *DB) mask(shard, from uint64, recs [][]byte) ([][]byte, error) {
	masked, err := d.store.Masked(shard, from, from+uint64(len(recs))-1)
	if err != nil || len(masked) == 0 {
		return recs, err
	}
	for i := range recs {
		if !masked[from+uint64(i)] {
			continue
		}
		e, err := d.codec.Decode(recs[i])
		if err != nil {
			return nil, err
		}
		e.Redact()
		recs[i] = d.codec.Encode(&e)
	}
	return recs, nil
}

// scrubArchive rewrites archive segments that hold events redacted after they were
// archived, so the erased bodies leave the disk too (readers never saw them: mask hides
// them). Segments already scrubbed since start are remembered; after a restart each is
// checked once more.
func (d *DB) scrubArchive(ctx context.Context) error {
	for _, s := range d.localShards() {
		archived := d.archive.Archived(s)
		if archived == 0 {
			continue
		}
		masked, err := d.store.Masked(s, 1, archived)
		if err != nil {
			return err
		}
		for idx := range masked {
			if d.scrubbed[log.Position{Shard: s, Index: idx}] {
				continue
			}
			from, to, err := d.archive.Rewrite(ctx, s, idx, func(i uint64, rec []byte) ([]byte, error) {
				if !masked[i] {
					return rec, nil
				}
				e, err := d.codec.Decode(rec)
				if err != nil {
					return nil, err
				}
				if e.Redacted {
					return rec, nil
				}
				e.Redact()
				return d.codec.Encode(&e), nil
			})
			if err != nil {
				return err
			}
			for i := range masked {
				if i >= from && i <= to {
					d.scrubbed[log.Position{Shard: s, Index: i}] = true
				}
			}
		}
	}
	return nil
}
