package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/query"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

// EventsRequest pages through the event log.
type EventsRequest struct {
	Collection string
	ID         string    // requires Collection
	FromTime   time.Time // zero: from the beginning
	ToTime     time.Time // zero: no bound
	Shard      uint64    // 0: every shard
	FromIndex  uint64    // with Shard: first index (inclusive)
	ToIndex    uint64    // with Shard: last index (inclusive); 0: no bound
	Filter     string    // CEL over the after image (before for deletes), as in change streams
	Cursor     string    // the next_cursor of the previous page
	Limit      int       // 0: 100; at most 10000
}

// EventRecord is one stored event as the audit view shows it.
type EventRecord = audit.Record

// RecordOf renders an event for the audit view.
func RecordOf(e *log.Event) EventRecord { return audit.RecordOf(e) }

// EventsPage is one page of the event log.
type EventsPage struct {
	Events     []EventRecord
	NextCursor string // empty when the log was read to its end
}

// MaxEventsLimit bounds one page of events.
const MaxEventsLimit = 10000

// Events returns events matching r, per shard in log order, from the cursor (or the
// start bounds) on. Reading is local; it ends at the heads when the page is not full.
func (d *DB) Events(ctx context.Context, r EventsRequest) (*EventsPage, error) {
	if r.Limit == 0 {
		r.Limit = 100
	}
	if r.Limit < 0 || r.Limit > MaxEventsLimit {
		return nil, fmt.Errorf("%w: limit must be in 1..%d", ErrInvalidArgument, MaxEventsLimit)
	}
	if r.ID != "" && r.Collection == "" {
		return nil, fmt.Errorf("%w: id needs collection", ErrInvalidArgument)
	}
	if (r.FromIndex != 0 || r.ToIndex != 0) && r.Shard == 0 {
		return nil, fmt.Errorf("%w: an index range needs shard", ErrInvalidArgument)
	}
	if r.Shard > uint64(d.Shards()) {
		return nil, fmt.Errorf("%w: no shard %d", ErrInvalidArgument, r.Shard)
	}
	sub := SubscribeRequest{Filter: r.Filter, From: "beginning"}
	if r.Collection != "" {
		sub.Collections = []string{r.Collection}
	}
	switch {
	case r.Cursor != "":
		sub.From, sub.Token = "token", r.Cursor
	case r.Shard != 0:
		// Start this shard at FromIndex and every other shard at its head: they are not read.
		tok := feed.Token{}
		for _, s := range d.shardIDs() {
			tok[s] = d.hub.Head(s)
		}
		tok[r.Shard] = min(max(r.FromIndex, 1)-1, d.hub.Head(r.Shard))
		sub.From, sub.Token = "token", tok.Encode()
	case !r.FromTime.IsZero():
		sub.From, sub.Time = "time", r.FromTime
	}
	s, err := d.Subscribe(sub)
	if err != nil {
		return nil, err
	}
	// Bounds: a shard is done once it passes ToIndex / ToTime or reaches its head.
	page := &EventsPage{}
	toTS := log.Timestamp(0)
	if !r.ToTime.IsZero() {
		toTS = log.TimestampOf(r.ToTime) // inclusive, compared with event times as printed
	}
	for len(page.Events) < r.Limit {
		m, err := s.Next(ctx)
		if err != nil {
			return nil, err
		}
		if m.Kind == feed.KindCaughtUp {
			return page, nil // the log's end: no further page
		}
		if m.Kind != feed.KindEvent {
			continue
		}
		e := m.Raw
		if r.Shard != 0 && e.Position.Shard != r.Shard {
			continue
		}
		if r.ToIndex != 0 && e.Position.Index > r.ToIndex || toTS != 0 && e.TS > toTS {
			continue
		}
		if r.ID != "" && e.ID != r.ID {
			continue
		}
		page.Events = append(page.Events, RecordOf(e))
		page.NextCursor = m.Token
	}
	return page, nil
}

// AsOf selects a past state: by time, or by a change-stream token (the state after the
// events the token has passed).
type AsOf struct {
	Time  time.Time
	Token feed.Token
}

// ParseAsOf parses an RFC 3339 time or a resume token.
func ParseAsOf(s string) (*AsOf, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return &AsOf{Time: t}, nil
	}
	tok, err := feed.DecodeToken(s)
	if err != nil {
		return nil, fmt.Errorf("%w: as_of must be an RFC 3339 time or a token", ErrInvalidArgument)
	}
	return &AsOf{Token: tok}, nil
}

// includes reports whether version v of a document in shard existed at a.
func (a *AsOf) includes(shard uint64, v tiersVersion) bool {
	if a.Token != nil {
		return v.index <= a.Token[shard]
	}
	return v.ts <= log.TimestampOf(a.Time)
}

type tiersVersion struct {
	index uint64
	ts    log.Timestamp
}

// GetAsOf reads a document as it was at a. Absent or deleted then: ErrNotFound.
func (d *DB) GetAsOf(ctx context.Context, collection, id string, a *AsOf, c Consistency) (Doc, error) {
	vs, err := d.History(ctx, collection, id, c)
	if errors.Is(err, ErrNotFound) {
		return Doc{}, ErrNotFound
	}
	if err != nil {
		return Doc{}, err
	}
	shard := d.host.ShardOf(collection, id)
	var found *Version
	for i := range vs {
		if a.includes(shard, tiersVersion{index: vs[i].Position.Index, ts: vs[i].TS}) {
			found = &vs[i]
		}
	}
	if found == nil || found.Op == log.OpDelete {
		return Doc{}, ErrNotFound
	}
	return Doc{Collection: collection, ID: id, Version: found.Version, TS: found.TS, Position: found.Position, Body: found.Body}, nil
}

// asOfSource serves a query from the documents as they were at a point in the past. It
// reads version histories; indexes describe the present, so it offers none.
type asOfSource struct {
	d  *DB
	at *AsOf
}

func (s asOfSource) Indexes(uint64, string) ([]query.IndexDef, error) { return nil, nil }

func (s asOfSource) ScanDocs(ctx context.Context, shard uint64, coll string, lo, hi []byte, fn func(query.RawDoc) bool) error {
	var cur string
	var best *l2.Version
	stopped := false
	flush := func() bool {
		if best == nil || best.Op == log.OpDelete {
			return true
		}
		if lo != nil && cur < string(lo) || hi != nil && cur >= string(hi) {
			return true
		}
		return fn(query.RawDoc{ID: cur, Version: best.Version, TS: best.TS.Time(), Stamp: uint64(best.TS), Body: best.Body})
	}
	err := s.d.store.ScanVersions(ctx, shard, coll, func(id string, v l2.Version) bool {
		if id != cur {
			if !flush() {
				stopped = true
				return false
			}
			cur, best = id, nil
		}
		if s.at.includes(shard, tiersVersion{index: v.Position.Index, ts: v.TS}) {
			vv := v
			best = &vv
		}
		return true
	})
	if err != nil || stopped {
		return err
	}
	flush()
	return nil
}

func (s asOfSource) ScanIndex(context.Context, uint64, string, string, []byte, []byte, func(string) bool) error {
	return errors.New("db: no indexes in the past")
}

func (s asOfSource) Get(ctx context.Context, shard uint64, coll, id string) (query.RawDoc, bool, error) {
	doc, err := s.d.GetAsOf(ctx, coll, id, s.at, Local)
	if errors.Is(err, ErrNotFound) {
		return query.RawDoc{}, false, nil
	}
	if err != nil {
		return query.RawDoc{}, false, err
	}
	return query.RawDoc{ID: id, Version: doc.Version, TS: doc.TS.Time(), Stamp: uint64(doc.TS), Body: doc.Body}, true, nil
}

// Redact erases the bodies of a document's past versions (all of them when it is
// deleted) and records who did it and why as an event. The hash chain still verifies.
func (d *DB) Redact(ctx context.Context, principal, collection, id, reason string) (Result, error) {
	if reason == "" {
		return Result{}, fmt.Errorf("%w: a redaction needs a reason", ErrInvalidArgument)
	}
	body, err := json.Marshal(map[string]string{"reason": reason})
	if err != nil {
		return Result{}, err
	}
	return d.Write(ctx, principal, Write{Op: log.OpRedact, Collection: collection, ID: id, Body: body})
}
