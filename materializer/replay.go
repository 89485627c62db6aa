package materializer

import (
	"errors"
	"fmt"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

// CommandOf returns the command that, applied to the state before e, appends e again:
// same operation, body, time, origin, principal, request id and vector clock. Its
// idempotency record expires at once, so a request id seen twice in a history is applied
// twice, as it was. A replicated event (a put or delete of the whole document) is
// re-appended as such a write with its recorded clock; siblings of a keep-both conflict
// are not in events, so a replayed document has its visible version and clock only.
func CommandOf(e *log.Event) Command {
	return Command{
		TS: e.TS, Origin: e.Origin, Principal: e.Principal, IdemTTL: 0,
		Writes: []Write{{Op: e.Op, Collection: e.Collection, ID: e.ID, Body: e.Body, RequestID: e.RequestID, Clock: e.Clock.Clone()}},
	}
}

// Replay applies events (one shard's, consecutive from its first) to the shard's state
// machine, which must be empty, and checks that each re-appended event is the event
// given: same position, version and hash.
func (s *Shard) Replay(events []log.Event) error {
	for i := range events {
		e := &events[i]
		if e.Redacted {
			if err := s.appendRedacted(e); err != nil {
				return err
			}
			continue
		}
		cmd := CommandOf(e)
		entry := []log.Entry{{Index: s.applied + 1, Cmds: [][]byte{EncodeCommand(&cmd)}}}
		if err := s.Apply(entry); err != nil {
			return err
		}
		rs, err := DecodeResults(entry[0].Results[0])
		if err != nil {
			return err
		}
		if !rs[0].Status.Applied() || rs[0].Position != e.Position || rs[0].Version != e.Version {
			return fmt.Errorf("materializer: replay of %s gave %+v", e.Position, rs[0])
		}
		if s.meta.Head != e.Hash() {
			return fmt.Errorf("materializer: replay of %s produced another event (hash differs)", e.Position)
		}
	}
	return nil
}

// appendRedacted re-appends an event whose body was erased: the event as stored, a version
// without a body, and the document's record. Its body cannot be re-applied, so the
// document's body stays a placeholder until a later event (a put, a delete, or the
// redaction itself, which records the current document) sets it.
func (s *Shard) appendRedacted(e *log.Event) error {
	if e.Position.Index != s.meta.LastIndex+1 || e.PrevHash != s.meta.Head {
		return fmt.Errorf("materializer: replay of %s does not continue the chain", e.Position)
	}
	b := s.m.cfg.Store.NewBatch()
	defer b.Close()
	k := tiers.Key{Shard: s.shard, Collection: e.Collection, ID: e.ID}
	prev, err := b.Doc(k)
	live := err == nil && !prev.Deleted
	if err != nil && !errors.Is(err, tiers.ErrNotFound) {
		return err
	}
	if err := b.PutEvent(e.Position, s.m.cfg.Codec.Encode(e)); err != nil {
		return err
	}
	next := tiers.Doc{Version: e.Version, TS: e.TS, Position: e.Position, Body: []byte("{}")}
	if err := b.PutDoc(k, next); err != nil {
		return err
	}
	if len(e.Clock) > 0 {
		if err := b.PutXDC(k, l2.XDC{Clock: e.Clock, TS: e.TS, Origin: e.Origin}); err != nil {
			return err
		}
	}
	if err := b.PutVersion(k, l2.Version{Version: e.Version, Op: e.Op, TS: e.TS, Principal: e.Principal, Position: e.Position, Redacted: true}); err != nil {
		return err
	}
	if !live {
		if err := b.AddCount(s.shard, e.Collection, 1); err != nil {
			return err
		}
	}
	meta := s.meta
	meta.LastIndex, meta.LastTS, meta.Head = e.Position.Index, e.TS, e.Hash()
	if err := b.SetMeta(s.shard, meta); err != nil {
		return err
	}
	s.applied++
	if err := b.SetApplied(s.shard, s.applied); err != nil {
		return err
	}
	if err := b.Commit(); err != nil {
		return err
	}
	s.meta = meta
	return nil
}
