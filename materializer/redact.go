package materializer

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

// redactionBody returns the body a redaction event records and, when replaying, the
// current document it carries. A proposed redaction holds only {"reason": …}; its event
// records {"current": <the document's current body or null>, "reason": …}, so that replaying
// the history can restore the current document even when the versions it was built from
// are erased. A command that already carries "current" is a replayed event: its body is
// kept byte for byte.
func redactionBody(cmdBody []byte, cur tiers.Doc) (body, current []byte, err error) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(cmdBody, &in); err != nil || in == nil {
		return nil, nil, fmt.Errorf("redaction body: %v", err)
	}
	if c, ok := in["current"]; ok {
		if bytes.Equal(c, []byte("null")) {
			return cmdBody, nil, nil
		}
		return cmdBody, c, nil
	}
	out := map[string]json.RawMessage{"reason": in["reason"], "current": json.RawMessage("null")}
	if in["reason"] == nil {
		out["reason"] = json.RawMessage(`""`)
	}
	if !cur.Deleted && cur.Body != nil {
		out["current"] = cur.Body
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil, nil
}

// applyRedaction appends the redaction event and erases the bodies of every past version
// of the document (every version when it is deleted): in their version records, and in
// their events — rewritten in place with the body replaced by its hash when still in L2,
// masked when already archived. The chain still verifies: event hashes cover bodies only
// through their hashes.
func (s *Shard) applyRedaction(b *l2.Batch, meta *l2.Meta, c *Command, w *Write, p *plan, ups *[]cacheUpdate) (WriteResult, error) {
	meta.LastIndex++
	ts := max(c.TS, meta.LastTS+1)
	meta.LastTS = ts
	pos := log.Position{Shard: s.shard, Index: meta.LastIndex}
	ev := log.Event{
		Position: pos, TS: ts, Origin: c.Origin, Op: log.OpRedact, Collection: w.Collection, ID: w.ID,
		Version: p.prev.Version, PrevVersion: p.prev.Version, Body: p.eventBody,
		Principal: c.Principal, RequestID: w.RequestID, PrevHash: meta.Head, Clock: p.prevX.Clock,
	}
	meta.Head = ev.Hash()
	if err := b.PutEvent(pos, s.m.cfg.Codec.Encode(&ev)); err != nil {
		return WriteResult{}, err
	}
	last := p.prev.Version
	if !p.prev.Deleted {
		last-- // the current version stays
	}
	for v := uint64(1); v <= last; v++ {
		rec, ok, err := b.Version(p.key, v)
		if err != nil {
			return WriteResult{}, err
		}
		if !ok || rec.Redacted || rec.Op == log.OpDelete || rec.Op == log.OpRedact {
			continue // nothing to erase
		}
		rec.Body, rec.Redacted = nil, true
		if err := b.PutVersion(p.key, rec); err != nil {
			return WriteResult{}, err
		}
		raw, inL2, err := b.Event(rec.Position)
		if err != nil {
			return WriteResult{}, err
		}
		if !inL2 {
			if err := b.MaskEvent(rec.Position); err != nil {
				return WriteResult{}, err
			}
			continue
		}
		e, err := s.m.cfg.Codec.Decode(raw)
		if err != nil {
			return WriteResult{}, fmt.Errorf("redact %s: %w", rec.Position, err)
		}
		e.Redact()
		if err := b.PutEvent(rec.Position, s.m.cfg.Codec.Encode(&e)); err != nil {
			return WriteResult{}, err
		}
	}
	if !bytes.Equal(p.next.Body, p.prev.Body) {
		// Replay restores the current document the redaction recorded.
		if err := b.PutDoc(p.key, p.next); err != nil {
			return WriteResult{}, err
		}
		cur, ok, err := b.Version(p.key, p.next.Version)
		if err != nil {
			return WriteResult{}, err
		}
		if ok {
			cur.Body = p.next.Body
			if err := b.PutVersion(p.key, cur); err != nil {
				return WriteResult{}, err
			}
		}
		*ups = append(*ups, cacheUpdate{key: p.key, doc: p.next})
	}
	res := WriteResult{Status: StatusOK, Version: p.prev.Version, TS: ts, Position: pos}
	if w.RequestID != "" {
		rec := l2.Idem{Collection: w.Collection, ID: w.ID, Expiry: ts + log.Timestamp(c.IdemTTL<<16), Result: EncodeResults([]WriteResult{res})}
		if err := b.PutIdem(s.shard, w.RequestID, rec); err != nil {
			return WriteResult{}, err
		}
	}
	return res, nil
}
