package feed

import (
	"context"
	"fmt"
	"slices"
	"time"

	"encoding/json"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/query"
)

// Store is what a subscription reads: the event store and document versions of the
// node's shards.
type Store interface {
	// Shards returns the shard ids.
	Shards() []uint64
	// Events returns up to max events of shard starting at index from, in order.
	Events(shard, from uint64, max int) ([]log.Event, error)
	// Body returns the document as of one version (nil when redacted); ok is false when
	// the version is unknown or is a delete.
	Body(shard uint64, collection, id string, version uint64) (body []byte, ok bool, err error)
	// Earliest returns the smallest event index shard still serves (1 when it serves all).
	Earliest(shard uint64) (uint64, error)
}

// StartKind says where a subscription starts.
type StartKind int

const (
	StartNow       StartKind = iota // after the events committed before Subscribe
	StartBeginning                  // from each shard's first event
	StartTime                       // from the first event at or after Start.Time
	StartToken                      // after the positions in Start.Token
)

// Start is where a subscription starts.
type Start struct {
	Kind  StartKind
	Time  time.Time
	Token Token
}

// Spec describes a subscription.
type Spec struct {
	Collections   []string       // empty: every collection
	Filter        *query.Program // nil: every event; evaluated on the after image (before for deletes)
	IncludeBefore bool
	IncludeAfter  bool
	Start         Start
	Cluster, DC   string // stamped on envelopes
	// CheckpointEvery is the longest an advancing, non-matching stream goes without a
	// Checkpoint (default 1s).
	CheckpointEvery time.Duration
	// ReadAhead is how many events are read per shard at once (default 64).
	ReadAhead int
}

// Kind tells what a Message carries.
type Kind int

const (
	KindEvent      Kind = iota + 1 // Event is set
	KindCheckpoint                 // the token moved past events that did not match
	KindCaughtUp                   // every shard's head has been reached once
)

// Message is what Next returns.
type Message struct {
	Kind  Kind
	Event *Envelope
	Raw   *log.Event // the stored event behind Event
	Token string
}

// Lag is how far behind the heads a subscription is.
type Lag struct {
	Events  uint64        // events not yet passed, over all shards
	Seconds time.Duration // age of the oldest event not yet passed (0 when caught up)
}

// Subscription reads the feed for one subscriber. Not safe for concurrent use.
type Subscription struct {
	spec     Spec
	store    Store
	hub      *Hub
	shards   []uint64
	pos      Token
	buf      map[uint64][]log.Event
	rr       int
	caughtUp bool
	dirty    bool // positions moved since the last token handed out
	lastTok  time.Time
	colls    map[string]bool
}

// Subscribe starts a subscription. It validates the spec and the start position.
func Subscribe(store Store, hub *Hub, spec Spec) (*Subscription, error) {
	if spec.CheckpointEvery <= 0 {
		spec.CheckpointEvery = time.Second
	}
	if spec.ReadAhead <= 0 {
		spec.ReadAhead = 64
	}
	s := &Subscription{spec: spec, store: store, hub: hub, shards: store.Shards(), pos: Token{},
		buf: map[uint64][]log.Event{}, lastTok: time.Now()}
	if len(spec.Collections) > 0 {
		s.colls = map[string]bool{}
		for _, c := range spec.Collections {
			s.colls[c] = true
		}
	}
	for _, sh := range s.shards {
		var p uint64
		switch spec.Start.Kind {
		case StartNow:
			p = hub.Head(sh)
		case StartBeginning:
		case StartTime:
			var err error
			if p, err = s.firstAtOrAfter(sh, log.TimestampOf(spec.Start.Time)); err != nil {
				return nil, err
			}
		case StartToken:
			p = spec.Start.Token[sh]
			if head := hub.Head(sh); p > head {
				return nil, fmt.Errorf("%w: shard %d position %d is ahead of this node's log (at %d)", ErrInvalidToken, sh, p, head)
			}
		default:
			return nil, fmt.Errorf("%w: unknown start", ErrInvalidSpec)
		}
		earliest, err := store.Earliest(sh)
		if err != nil {
			return nil, err
		}
		if p+1 < earliest {
			if spec.Start.Kind == StartBeginning || spec.Start.Kind == StartTime {
				p = earliest - 1
			} else {
				return nil, &TooOldError{Shard: sh, Earliest: earliest}
			}
		}
		s.pos[sh] = p
	}
	if spec.Start.Kind == StartToken {
		for sh := range spec.Start.Token {
			if !slices.Contains(s.shards, sh) {
				return nil, fmt.Errorf("%w: no shard %d here", ErrInvalidToken, sh)
			}
		}
	}
	return s, nil
}

// firstAtOrAfter returns the position just before shard's first event at or after ts
// (timestamps increase with the index within a shard, so a binary search finds it).
func (s *Subscription) firstAtOrAfter(shard uint64, ts log.Timestamp) (uint64, error) {
	lo, err := s.store.Earliest(shard)
	if err != nil {
		return 0, err
	}
	hi := s.hub.Head(shard) + 1 // the answer index lies in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		evs, err := s.store.Events(shard, mid, 1)
		if err != nil {
			return 0, err
		}
		if len(evs) == 0 || evs[0].TS >= ts {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo - 1, nil
}

// Token returns the subscription's current token.
func (s *Subscription) Token() string { return s.pos.Encode() }

// Lag reports how far behind the heads the subscription is.
func (s *Subscription) Lag() Lag {
	var l Lag
	var oldest log.Timestamp
	for _, sh := range s.shards {
		head := s.hub.Head(sh)
		if head > s.pos[sh] {
			l.Events += head - s.pos[sh]
			if evs, err := s.store.Events(sh, s.pos[sh]+1, 1); err == nil && len(evs) == 1 && (oldest == 0 || evs[0].TS < oldest) {
				oldest = evs[0].TS
			}
		}
	}
	if oldest != 0 {
		l.Seconds = max(0, time.Since(oldest.Time()))
	}
	return l
}

// Next returns the next message: an event that matches, a checkpoint, or caught_up. It
// blocks while there is nothing to say, until ctx ends.
func (s *Subscription) Next(ctx context.Context) (Message, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Message{}, err
		}
		changed := s.hub.Changed()
		for range s.shards {
			sh := s.shards[s.rr]
			s.rr = (s.rr + 1) % len(s.shards)
			env, raw, err := s.step(sh)
			if err != nil {
				return Message{}, err
			}
			if env != nil {
				s.dirty, s.lastTok = false, time.Now()
				return Message{Kind: KindEvent, Event: env, Raw: raw, Token: env.Token}, nil
			}
		}
		if s.pending() {
			continue
		}
		if !s.caughtUp {
			s.caughtUp, s.dirty, s.lastTok = true, false, time.Now()
			return Message{Kind: KindCaughtUp, Token: s.Token()}, nil
		}
		wait := s.spec.CheckpointEvery - time.Since(s.lastTok)
		if s.dirty && wait <= 0 {
			s.dirty, s.lastTok = false, time.Now()
			return Message{Kind: KindCheckpoint, Token: s.Token()}, nil
		}
		if !s.dirty {
			wait = s.spec.CheckpointEvery
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Message{}, ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// pending reports whether some shard has events not yet passed.
func (s *Subscription) pending() bool {
	for _, sh := range s.shards {
		if len(s.buf[sh]) > 0 || s.hub.Head(sh) > s.pos[sh] {
			return true
		}
	}
	return false
}

// step passes shard's events until one matches (returned) or the shard's buffer and head
// are exhausted (nil).
func (s *Subscription) step(shard uint64) (*Envelope, *log.Event, error) {
	for {
		if len(s.buf[shard]) == 0 {
			if s.hub.Head(shard) <= s.pos[shard] {
				return nil, nil, nil
			}
			evs, err := s.store.Events(shard, s.pos[shard]+1, s.spec.ReadAhead)
			if err != nil {
				return nil, nil, err
			}
			if len(evs) == 0 || evs[0].Position.Index != s.pos[shard]+1 {
				return nil, nil, fmt.Errorf("feed: shard %d: event %d missing from the event store", shard, s.pos[shard]+1)
			}
			s.buf[shard] = evs
		}
		e := s.buf[shard][0]
		s.buf[shard] = s.buf[shard][1:]
		s.pos[shard] = e.Position.Index
		s.dirty = true
		env, err := s.envelope(&e)
		if err != nil {
			return nil, nil, err
		}
		if env != nil {
			return env, &e, nil
		}
	}
}

// envelope builds the envelope of e, or returns nil when the subscription does not want it.
func (s *Subscription) envelope(e *log.Event) (*Envelope, error) {
	if s.colls != nil && !s.colls[e.Collection] {
		return nil, nil
	}
	sh := e.Position.Shard
	if e.Op == log.OpRedact {
		// Delivered to every subscriber of the collection whatever its filter: they hold
		// copies of the erased bodies.
		env := &Envelope{
			EventID: EventID(s.spec.DC, e.Position), Source: Source{Cluster: s.spec.Cluster, DC: s.spec.DC, Shard: sh},
			Origin: e.Origin, Clock: e.Clock,
			Time: e.TS.String(), Op: OpRedact, Type: "aerolith.document.redacted", Collection: e.Collection, ID: e.ID,
			Version: e.Version, Principal: e.Principal, Position: e.Position, Token: s.Token(),
		}
		return env, nil
	}
	op := OpUpdate
	var before, after []byte
	prevLive := false
	if e.PrevVersion > 0 && (s.spec.IncludeBefore || e.Op != log.OpDelete) {
		b, ok, err := s.store.Body(sh, e.Collection, e.ID, e.PrevVersion)
		if err != nil {
			return nil, err
		}
		before, prevLive = b, ok
	}
	switch {
	case e.Op == log.OpDelete:
		op = OpDelete
	case !prevLive:
		op = OpCreate
	}
	switch e.Op {
	case log.OpPut:
		after = e.Body
	case log.OpPatch:
		b, _, err := s.store.Body(sh, e.Collection, e.ID, e.Version)
		if err != nil {
			return nil, err
		}
		after = b
	}
	if s.spec.Filter != nil {
		image := after
		if e.Op == log.OpDelete {
			image = before
			if image == nil {
				b, _, err := s.store.Body(sh, e.Collection, e.ID, e.PrevVersion)
				if err != nil {
					return nil, err
				}
				image = b
			}
		}
		var body map[string]any
		if image != nil {
			if err := json.Unmarshal(image, &body); err != nil {
				return nil, fmt.Errorf("feed: event %s: %w", e.Position, err)
			}
		}
		ok, err := s.spec.Filter.Matches(&query.Doc{ID: e.ID, Version: e.Version, TS: e.TS.Time(), Body: body})
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil
		}
	}
	env := &Envelope{
		EventID: EventID(s.spec.DC, e.Position), Source: Source{Cluster: s.spec.Cluster, DC: s.spec.DC, Shard: sh},
		Origin: e.Origin, Clock: e.Clock,
		Time: e.TS.String(), Op: op, Collection: e.Collection, ID: e.ID, Version: e.Version,
		Principal: e.Principal, Position: e.Position, Token: s.Token(),
	}
	env.Type = eventType(op)
	if s.spec.IncludeBefore && before != nil {
		env.Before = before
	}
	if s.spec.IncludeAfter && after != nil {
		env.After = after
	}
	return env, nil
}
