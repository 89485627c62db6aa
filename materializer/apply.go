package materializer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

type cacheUpdate struct {
	key tiers.Key
	doc tiers.Doc
}

// Apply applies committed entries in one pebble batch together with the last entry's raft
// index, then brings L1 up to date. It reads only the entries and the shard's state.
func (s *Shard) Apply(entries []log.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	start := time.Now()
	s.remoteCounts = [len(remoteOutcomes)]int{}
	b := s.m.cfg.Store.NewBatch()
	defer b.Close()
	meta, floors := s.meta, s.floors
	var ups []cacheUpdate
	for i := range entries {
		e := &entries[i]
		e.Results = make([][]byte, len(e.Cmds))
		for j, raw := range e.Cmds {
			cmd, err := DecodeCommand(raw)
			if err != nil {
				return fmt.Errorf("materializer: shard %d entry %d: %w", s.shard, e.Index, err)
			}
			var rs []WriteResult
			switch {
			case cmd.Index != nil:
				var r WriteResult
				r, err = s.applyIndexOp(b, cmd.Index)
				rs = []WriteResult{r}
			case cmd.Policy != nil:
				var r WriteResult
				r, err = s.applyPolicy(b, cmd.Policy)
				rs = []WriteResult{r}
			case len(cmd.Remote) > 0:
				rs, err = s.applyRemote(b, &meta, &cmd, &ups)
			default:
				rs, err = s.applyCommand(b, &meta, &floors, &cmd, &ups)
			}
			if err != nil {
				return fmt.Errorf("materializer: shard %d entry %d: %w", s.shard, e.Index, err)
			}
			e.Results[j] = EncodeResults(rs)
		}
	}
	if meta != s.meta {
		if err := b.SetMeta(s.shard, meta); err != nil {
			return err
		}
	}
	last := entries[len(entries)-1].Index
	if err := b.SetApplied(s.shard, last); err != nil {
		return err
	}
	s.fillMu.Lock()
	err := b.Commit()
	if err == nil {
		for _, u := range ups {
			s.m.cfg.Cache.Set(u.key, u.doc)
		}
	}
	s.fillMu.Unlock()
	if err != nil {
		return fmt.Errorf("materializer: shard %d: commit: %w", s.shard, err)
	}
	s.m.metrics.events.Add(float64(meta.LastIndex - s.meta.LastIndex))
	s.flushRemoteCounts()
	s.m.metrics.applySeconds.Observe(time.Since(start).Seconds())
	advanced := meta.LastIndex != s.meta.LastIndex
	s.meta, s.applied, s.floors = meta, last, floors
	if advanced {
		s.notify()
	}
	return nil
}

type plan struct {
	i       int
	key     tiers.Key
	prev    tiers.Doc
	existed bool // a record (live or tombstone) existed
	live    bool // the document existed and was not deleted
	next    tiers.Doc
	// eventBody, for a redaction, is the body its event records.
	eventBody []byte
	// prevX and nextX are the document's cross-datacenter state before and after.
	prevX, nextX l2.XDC
}

// applyCommand decides every write of c against the current state, then, if all succeed,
// appends their events and writes their effects into b. On any failure it writes no event
// and no document, only the refusal under each write's request id.
//
// A command with a retry token is decided once: its results are remembered under the
// token, refusals included, and a later copy of it (a resubmission after an unknown
// outcome, or the original arriving after its resubmission) is answered with them.
func (s *Shard) applyCommand(b *l2.Batch, meta *l2.Meta, fl *expiryFloors, c *Command, ups *[]cacheUpdate) ([]WriteResult, error) {
	// Idempotency records expire by the command's time, a bounded number per command, so
	// the outcome depends only on the sequence of commands, never on how raft batches them.
	now := max(c.TS, meta.LastTS)
	last, err := b.ExpireIdem(s.shard, fl.idem, now, expirePerCommand)
	if err != nil {
		return nil, fmt.Errorf("expire: %w", err)
	}
	fl.idem = min(last, meta.LastTS)
	if c.Retry == "" {
		return s.applyWrites(b, meta, c, ups)
	}
	// Every write without an idempotency key adds a retry record, so expiring them runs
	// in sweeps: when the command's time enters a new tenth of a second (a deterministic
	// choice: it depends on the command and the shard's last event time only). A record
	// past its expiry but not yet deleted is ignored all the same.
	if now>>16/100 > meta.LastTS>>16/100 {
		if last, err = b.ExpireRetries(s.shard, fl.retry, now, retrySweep); err != nil {
			return nil, fmt.Errorf("expire: %w", err)
		}
		fl.retry = min(last, meta.LastTS)
	}
	expiry := c.TS + log.Timestamp(c.RetryTTL<<16)
	if expiry > now {
		stored, ok, err := b.Retry(s.shard, expiry, c.Retry)
		if err != nil {
			return nil, err
		}
		if ok {
			rs, err := DecodeResults(stored)
			if err != nil || len(rs) != len(c.Writes) {
				return nil, fmt.Errorf("retry record: %d results for %d writes: %v", len(rs), len(c.Writes), err)
			}
			return rs, nil
		}
	}
	rs, err := s.applyWrites(b, meta, c, ups)
	if err != nil {
		return nil, err
	}
	if expiry > now {
		if err := b.PutRetry(s.shard, expiry, c.Retry, EncodeResults(rs)); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// expiryFloors say from which expiry on the shard's idempotency and retry records may be
// left to expire: every record that expires earlier is deleted, and none can be added
// (a new record expires after the shard's last event time, which never goes back). They
// only spare expiry a walk over the tombstones of deleted records, so they live in memory
// and start at 0.
type expiryFloors struct{ idem, retry log.Timestamp }

// applyWrites decides and applies the writes of c (see applyCommand).
func (s *Shard) applyWrites(b *l2.Batch, meta *l2.Meta, c *Command, ups *[]cacheUpdate) ([]WriteResult, error) {
	now := max(c.TS, meta.LastTS)
	rs := make([]WriteResult, len(c.Writes))
	failed := false
	var toApply []int
	for i, w := range c.Writes {
		if w.RequestID == "" {
			toApply = append(toApply, i)
			continue
		}
		rec, ok, err := b.Idem(s.shard, w.RequestID)
		if err != nil {
			return nil, err
		}
		if !ok || rec.Expiry <= now {
			toApply = append(toApply, i)
			continue
		}
		if rec.Collection != w.Collection || rec.ID != w.ID {
			rs[i] = WriteResult{Status: StatusIdemReused}
			failed = true
			continue
		}
		stored, err := DecodeResults(rec.Result)
		if err != nil || len(stored) != 1 {
			return nil, fmt.Errorf("idempotency record %q: %v", w.RequestID, err)
		}
		rs[i] = stored[0]
		rs[i].Replayed = true
	}

	overlay := map[tiers.Key]tiers.Doc{}
	xOverlay := map[tiers.Key]l2.XDC{}
	plans := make([]plan, 0, len(toApply))
	for _, i := range toApply {
		w := &c.Writes[i]
		p := plan{i: i, key: tiers.Key{Shard: s.shard, Collection: w.Collection, ID: w.ID}}
		cur, ok := overlay[p.key]
		if !ok {
			d, err := b.Doc(p.key)
			switch {
			case err == nil:
				cur, ok = d, true
			case !errors.Is(err, tiers.ErrNotFound):
				return nil, err
			}
		}
		p.prev, p.existed, p.live = cur, ok, ok && !cur.Deleted
		x, xok := xOverlay[p.key]
		if !xok {
			var err error
			if x, _, err = b.XDC(p.key); err != nil {
				return nil, err
			}
		}
		p.prevX = x
		liveVersion := uint64(0)
		if p.live {
			liveVersion = cur.Version
		}
		switch {
		case w.HasIfMatch && w.IfMatch != liveVersion, w.IfNoneMatch && p.live:
			rs[i] = WriteResult{Status: StatusPrecondition, Current: liveVersion}
		case w.Op == log.OpRedact && !p.existed:
			rs[i] = WriteResult{Status: StatusNotFound}
		case w.Op != log.OpPut && w.Op != log.OpRedact && !p.live && !(w.Op == log.OpDelete && w.Clock != nil):
			// (A delete with a recorded clock is a replayed replicated deletion, which may
			// follow another one.)
			rs[i] = WriteResult{Status: StatusNotFound}
		case w.Op != log.OpRedact && w.Clock == nil && len(x.Siblings) > 0 &&
			s.policy(w.Collection).Conflict == ConflictKeepBoth && !resolvesAll(w.Resolves, x.Siblings):
			rs[i] = WriteResult{Status: StatusSiblings, Current: liveVersion}
		}
		if rs[i].Status != 0 {
			failed = true
			continue
		}
		if w.Op == log.OpRedact {
			body, current, err := redactionBody(w.Body, cur)
			if err != nil {
				rs[i] = WriteResult{Status: StatusInvalid}
				failed = true
				continue
			}
			p.next, p.eventBody = cur, body
			if current != nil {
				p.next.Body = current // replaying: the redaction carries the current document
			}
			plans = append(plans, p)
			continue
		}
		p.next = tiers.Doc{Version: cur.Version + 1}
		switch w.Op {
		case log.OpPut:
			if !isObject(w.Body) {
				rs[i] = WriteResult{Status: StatusInvalid}
				failed = true
				continue
			}
			p.next.Body = w.Body
		case log.OpPatch:
			body, err := MergePatch(cur.Body, w.Body)
			if err != nil {
				rs[i] = WriteResult{Status: StatusInvalid}
				failed = true
				continue
			}
			p.next.Body = body
		case log.OpDelete:
			p.next.Deleted = true
		default:
			rs[i] = WriteResult{Status: StatusInvalid}
			failed = true
			continue
		}
		// A write's clock ticks the document's (the merge of every version it has seen) at
		// this datacenter, so it dominates whatever it replaces, siblings included.
		p.nextX = l2.XDC{Clock: x.Clock.Tick(c.Origin), Origin: c.Origin}
		if w.Clock != nil {
			p.nextX.Clock = w.Clock
		}
		overlay[p.key] = p.next
		xOverlay[p.key] = p.nextX
		plans = append(plans, p)
	}
	if failed {
		for _, p := range plans {
			rs[p.i] = WriteResult{Status: StatusAborted}
		}
		// A refusal is an outcome too: remembering it under the request id means a copy of
		// the same request still in the log (a resubmission after an unknown outcome can
		// commit before the original) is answered with the same refusal, never applied.
		ts := max(c.TS, meta.LastTS)
		for i, w := range c.Writes {
			if w.RequestID == "" || rs[i].Replayed || rs[i].Status == StatusIdemReused {
				continue
			}
			rec := l2.Idem{Collection: w.Collection, ID: w.ID, Expiry: ts + log.Timestamp(c.IdemTTL<<16),
				Result: EncodeResults(rs[i : i+1])}
			if err := b.PutIdem(s.shard, w.RequestID, rec); err != nil {
				return nil, err
			}
		}
		return rs, nil
	}

	for _, p := range plans {
		w := &c.Writes[p.i]
		if w.Op == log.OpRedact {
			r, err := s.applyRedaction(b, meta, c, w, &p, ups)
			if err != nil {
				return nil, err
			}
			rs[p.i] = r
			continue
		}
		meta.LastIndex++
		ts := max(c.TS, meta.LastTS+1)
		meta.LastTS = ts
		pos := log.Position{Shard: s.shard, Index: meta.LastIndex}
		ev := log.Event{
			Position: pos, TS: ts, Origin: c.Origin, Op: w.Op,
			Collection: w.Collection, ID: w.ID,
			Version: p.next.Version, PrevVersion: p.prev.Version,
			Body: w.Body, Principal: c.Principal, RequestID: w.RequestID, PrevHash: meta.Head,
			Clock: p.nextX.Clock,
		}
		if w.Op == log.OpDelete {
			ev.Body = nil
		}
		p.nextX.TS = ts
		meta.Head = ev.Hash()
		p.next.TS, p.next.Position = ts, pos
		if err := b.PutEvent(pos, s.m.cfg.Codec.Encode(&ev)); err != nil {
			return nil, err
		}
		if err := b.PutDoc(p.key, p.next); err != nil {
			return nil, err
		}
		if err := b.PutXDC(p.key, p.nextX); err != nil {
			return nil, err
		}
		if err := s.maintainIndexes(b, &p); err != nil {
			return nil, err
		}
		if err := b.PutVersion(p.key, l2.Version{
			Version: p.next.Version, Op: w.Op, TS: ts, Principal: c.Principal, Position: pos, Body: p.next.Body,
		}); err != nil {
			return nil, err
		}
		var delta int64
		status := StatusOK
		switch {
		case w.Op == log.OpDelete:
			if p.live {
				delta = -1
			}
		case !p.live:
			delta, status = 1, StatusCreated
		}
		if delta != 0 {
			if err := b.AddCount(s.shard, w.Collection, delta); err != nil {
				return nil, err
			}
		}
		rs[p.i] = WriteResult{Status: status, Version: p.next.Version, TS: ts, Position: pos}
		if w.RequestID != "" {
			rec := l2.Idem{
				Collection: w.Collection, ID: w.ID,
				Expiry: ts + log.Timestamp(c.IdemTTL<<16),
				Result: EncodeResults(rs[p.i : p.i+1]),
			}
			if err := b.PutIdem(s.shard, w.RequestID, rec); err != nil {
				return nil, err
			}
		}
		*ups = append(*ups, cacheUpdate{key: p.key, doc: p.next})
	}
	return rs, nil
}

func isObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}
