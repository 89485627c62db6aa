package materializer

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
	"github.com/aerolithsdb/aerolith/vclock"
)

// Replication modes and conflict rules of a Policy.
const (
	ModeAsync = "async" // acknowledged after the local commit
	ModeSync  = "sync"  // acknowledged once the replication log has the events

	ConflictLWW      = "lww"         // latest origin time wins, datacenter id breaks ties
	ConflictPriority = "dc-priority" // the origin earliest in Priority wins, then lww
	ConflictKeepBoth = "keep-both"   // concurrent versions stay as siblings until a write names them
)

// Policy is a collection's cross-datacenter policy. The zero value means: replicate to
// every datacenter, async, lww.
type Policy struct {
	Replicate []string `json:"replicate"`          // nil: every datacenter; empty: none
	Mode      string   `json:"mode"`               // ModeAsync (default) or ModeSync
	Conflict  string   `json:"conflict"`           // ConflictLWW (default), ConflictPriority or ConflictKeepBoth
	Priority  []string `json:"priority,omitempty"` // for dc-priority: first wins
}

// WithDefaults returns p with empty mode and conflict rule set to their defaults.
func (p Policy) WithDefaults() Policy {
	if p.Mode == "" {
		p.Mode = ModeAsync
	}
	if p.Conflict == "" {
		p.Conflict = ConflictLWW
	}
	return p
}

// PolicyOp sets a collection's policy in the command's shard.
type PolicyOp struct {
	Collection string
	Policy     Policy
}

// RemoteWrite is one committed event of another datacenter, proposed into the local log.
// Each is decided on its own: dropped as seen when its stream's high-water index in this
// shard has passed it or the document's clock dominates it; applied when its clock
// dominates the document's; otherwise merged by the collection's conflict rule.
type RemoteWrite struct {
	Origin     string // datacenter that accepted the write
	Shard      uint64 // its shard in the origin datacenter
	Index      uint64 // its index in that shard
	Stream     uint32 // the ordered stream it arrived on; Index increases within (Origin, Shard, Stream)
	TS         log.Timestamp
	Op         log.Op // log.OpPut or log.OpDelete
	Collection string
	ID         string
	Body       []byte // the document after the event; empty for a delete
	Clock      vclock.Clock
	Principal  string
	RequestID  string
}

// SiblingID names one of a document's concurrent versions: its origin datacenter and that
// datacenter's counter in its clock, unique among the document's writes.
func SiblingID(s l2.Sibling) string {
	return s.Origin + ":" + strconv.FormatUint(s.Clock[s.Origin], 10)
}

// ParseSiblingID checks the form "dc:counter".
func ParseSiblingID(id string) (dc string, n uint64, ok bool) {
	i := strings.LastIndexByte(id, ':')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(id[i+1:], 10, 64)
	return id[:i], n, err == nil && n > 0
}

// appendV2 appends the fields command version 2 adds after the version 1 layout:
//
//	per write: resolves count, each string; clock
//	remote count, each: origin, shard, index, stream, ts, op, collection, id, body, clock, principal, request id
//	policy: 0, or 1 then collection and the policy as JSON
func appendV2(b []byte, c *Command) []byte {
	for _, w := range c.Writes {
		b = wire.AppendUvarint(b, uint64(len(w.Resolves)))
		for _, r := range w.Resolves {
			b = wire.AppendString(b, r)
		}
		b = w.Clock.Append(b)
	}
	b = wire.AppendUvarint(b, uint64(len(c.Remote)))
	for _, r := range c.Remote {
		b = wire.AppendString(b, r.Origin)
		b = wire.AppendUvarint(b, r.Shard)
		b = wire.AppendUvarint(b, r.Index)
		b = wire.AppendUvarint(b, uint64(r.Stream))
		b = wire.AppendUvarint(b, uint64(r.TS))
		b = append(b, byte(r.Op))
		b = wire.AppendString(b, r.Collection)
		b = wire.AppendString(b, r.ID)
		b = wire.AppendBytes(b, r.Body)
		b = r.Clock.Append(b)
		b = wire.AppendString(b, r.Principal)
		b = wire.AppendString(b, r.RequestID)
	}
	if c.Policy == nil {
		return append(b, 0)
	}
	p, err := json.Marshal(c.Policy.Policy)
	if err != nil {
		panic(fmt.Sprintf("materializer: encode policy: %v", err)) // plain strings: cannot fail
	}
	b = append(b, 1)
	b = wire.AppendString(b, c.Policy.Collection)
	return wire.AppendBytes(b, p)
}

func readV2(r *wire.Reader, c *Command, size int) error {
	var err error
	for i := range c.Writes {
		n := r.Uvarint()
		if n > uint64(size) {
			return fmt.Errorf("%w: %d resolves", ErrCorruptCommand, n)
		}
		for j := uint64(0); j < n && r.Err() == nil; j++ {
			c.Writes[i].Resolves = append(c.Writes[i].Resolves, r.String())
		}
		if c.Writes[i].Clock, err = vclock.Read(r); err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptCommand, err)
		}
	}
	n := r.Uvarint()
	if n > uint64(size) {
		return fmt.Errorf("%w: %d remote writes", ErrCorruptCommand, n)
	}
	for i := uint64(0); i < n && r.Err() == nil; i++ {
		w := RemoteWrite{Origin: r.String(), Shard: r.Uvarint(), Index: r.Uvarint()}
		stream := r.Uvarint()
		if stream > 1<<32-1 {
			return fmt.Errorf("%w: stream %d", ErrCorruptCommand, stream)
		}
		w.Stream = uint32(stream)
		w.TS = log.Timestamp(r.Uvarint())
		w.Op = log.Op(r.Byte())
		w.Collection, w.ID = r.String(), r.String()
		if body := r.Bytes(); len(body) > 0 {
			w.Body = append([]byte(nil), body...)
		}
		if w.Clock, err = vclock.Read(r); err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptCommand, err)
		}
		w.Principal, w.RequestID = r.String(), r.String()
		c.Remote = append(c.Remote, w)
	}
	if r.Byte() == 1 {
		op := &PolicyOp{Collection: r.String()}
		raw := r.Bytes()
		if r.Err() == nil {
			if err := json.Unmarshal(raw, &op.Policy); err != nil {
				return fmt.Errorf("%w: policy: %v", ErrCorruptCommand, err)
			}
		}
		c.Policy = op
	}
	return nil
}

// policy returns the policy of coll in this shard, with defaults.
func (s *Shard) policy(coll string) Policy {
	if m := s.policies.Load(); m != nil {
		if p, ok := (*m)[coll]; ok {
			return p.WithDefaults()
		}
	}
	return Policy{}.WithDefaults()
}

// Policy returns the policy of coll as shard last applied it (defaults when none is set).
func (m *Materializer) Policy(shard uint64, coll string) (Policy, error) {
	s, err := m.shard(shard)
	if err != nil {
		return Policy{}, err
	}
	return s.policy(coll), nil
}

func (s *Shard) loadPolicies() error {
	raw, err := s.m.cfg.Store.Policies(s.shard)
	if err != nil {
		return err
	}
	ps := make(map[string]Policy, len(raw))
	for coll, b := range raw {
		var p Policy
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("policy of %q: %w", coll, err)
		}
		ps[coll] = p
	}
	s.policies.Store(&ps)
	return nil
}

// applyPolicy stores a collection's policy; later commands of the same batch see it.
func (s *Shard) applyPolicy(b *l2.Batch, op *PolicyOp) (WriteResult, error) {
	raw, err := json.Marshal(op.Policy)
	if err != nil {
		return WriteResult{}, err
	}
	if err := b.PutPolicy(s.shard, op.Collection, raw); err != nil {
		return WriteResult{}, err
	}
	next := map[string]Policy{}
	if m := s.policies.Load(); m != nil {
		for k, v := range *m {
			next[k] = v
		}
	}
	next[op.Collection] = op.Policy
	s.policies.Store(&next)
	return WriteResult{Status: StatusOK}, nil
}

// better reports whether version a wins over b under rule: a total order, the same in
// every datacenter. lww: the later origin time, then the greater datacenter id.
// dc-priority: the origin earlier in priority (unlisted last), then lww.
func better(rule Policy, a, b l2.Sibling) bool {
	if rule.Conflict == ConflictPriority {
		ra, rb := rank(rule.Priority, a.Origin), rank(rule.Priority, b.Origin)
		if ra != rb {
			return ra < rb
		}
	}
	if a.TS != b.TS {
		return a.TS > b.TS
	}
	if a.Origin != b.Origin {
		return a.Origin > b.Origin
	}
	return vclock.Compare(a.Clock, b.Clock) == vclock.After
}

func rank(priority []string, dc string) int {
	if i := slices.Index(priority, dc); i >= 0 {
		return i
	}
	return len(priority)
}

// versionsOf returns the document's maximal versions: its siblings, or its one version.
func versionsOf(x l2.XDC, cur tiers.Doc, live bool) []l2.Sibling {
	if len(x.Siblings) > 0 {
		return x.Siblings
	}
	v := l2.Sibling{Clock: x.Clock, TS: x.TS, Origin: x.Origin, Deleted: !live}
	if live {
		v.Body = cur.Body
	}
	return []l2.Sibling{v}
}

// mergeRemote decides a remote version in that is concurrent with the document's clock.
// The document keeps the set of its maximal versions (none dominated by another, at most
// one per datacenter): in joins it, versions it dominates leave. The visible version is
// the set's best under the rule, so the outcome does not depend on the order versions
// arrive in. The set is stored as siblings while it holds more than one version; only
// keep-both exposes them and asks writes to name them.
func mergeRemote(rule Policy, x l2.XDC, cur tiers.Doc, live bool, in l2.Sibling) (l2.XDC, l2.Sibling) {
	var set []l2.Sibling
	for _, v := range versionsOf(x, cur, live) {
		if vclock.Compare(v.Clock, in.Clock) != vclock.Before {
			set = append(set, v)
		}
	}
	set = append(set, in)
	slices.SortFunc(set, func(a, b l2.Sibling) int {
		if c := strings.Compare(a.Origin, b.Origin); c != 0 {
			return c
		}
		return cmp.Compare(a.Clock[a.Origin], b.Clock[b.Origin])
	})
	best := set[0]
	clock := x.Clock.Merge(in.Clock)
	for _, v := range set[1:] {
		if better(rule, v, best) {
			best = v
		}
	}
	next := l2.XDC{Clock: clock, TS: best.TS, Origin: best.Origin}
	if len(set) > 1 {
		next.Siblings = set
	}
	return next, best
}

// The outcomes of a remote write, as counted in aerolith_replicated_events_total.
const (
	outcomeApplied = iota
	outcomeConflict
	outcomeSeen
)

var remoteOutcomes = [...]string{outcomeApplied: "applied", outcomeConflict: "conflict", outcomeSeen: "seen"}

// flushRemoteCounts adds the outcomes of the batch just committed to the metrics.
func (s *Shard) flushRemoteCounts() {
	for o, n := range s.remoteCounts {
		if n > 0 {
			s.m.metrics.replicated.WithLabelValues(remoteOutcomes[o]).Add(float64(n))
		}
	}
	s.remoteCounts = [len(remoteOutcomes)]int{}
}

// applyRemote decides and applies each remote write of c in order. Every write that is
// not dropped appends one event: Origin the remote datacenter, op put (or delete when the
// visible version is a deletion), body the visible document, clock the document's clock.
func (s *Shard) applyRemote(b *l2.Batch, meta *l2.Meta, c *Command, ups *[]cacheUpdate) ([]WriteResult, error) {
	rs := make([]WriteResult, len(c.Remote))
	for i := range c.Remote {
		r := &c.Remote[i]
		if r.Origin == c.Origin || len(r.Clock) == 0 || (r.Op != log.OpPut && r.Op != log.OpDelete) ||
			(r.Op == log.OpPut && !isObject(r.Body)) {
			rs[i] = WriteResult{Status: StatusInvalid}
			continue
		}
		hw, err := b.HighWater(s.shard, r.Origin, r.Shard, r.Stream)
		if err != nil {
			return nil, err
		}
		if r.Index <= hw {
			rs[i] = WriteResult{Status: StatusSeen}
			s.remoteCounts[outcomeSeen]++
			continue
		}
		if err := b.SetHighWater(s.shard, r.Origin, r.Shard, r.Stream, r.Index); err != nil {
			return nil, err
		}
		p := plan{key: tiers.Key{Shard: s.shard, Collection: r.Collection, ID: r.ID}}
		cur, err := b.Doc(p.key)
		switch {
		case err == nil:
			p.prev, p.existed, p.live = cur, true, !cur.Deleted
		case !errors.Is(err, tiers.ErrNotFound):
			return nil, err
		}
		x, _, err := b.XDC(p.key)
		if err != nil {
			return nil, err
		}
		in := l2.Sibling{Clock: r.Clock, TS: r.TS, Origin: r.Origin, Deleted: r.Op == log.OpDelete}
		if !in.Deleted {
			in.Body = r.Body
		}
		var next l2.XDC
		var vis l2.Sibling
		switch vclock.Compare(r.Clock, x.Clock) {
		case vclock.Equal, vclock.Before:
			rs[i] = WriteResult{Status: StatusSeen}
			s.remoteCounts[outcomeSeen]++
			continue
		case vclock.After:
			next, vis = l2.XDC{Clock: r.Clock.Clone(), TS: r.TS, Origin: r.Origin}, in
			s.remoteCounts[outcomeApplied]++
		default:
			next, vis = mergeRemote(s.policy(r.Collection), x, p.prev, p.live, in)
			s.remoteCounts[outcomeConflict]++
		}
		op := log.OpPut
		if vis.Deleted {
			op = log.OpDelete
		}
		p.next = tiers.Doc{Version: p.prev.Version + 1, Deleted: vis.Deleted, Body: vis.Body}
		meta.LastIndex++
		ts := max(c.TS, meta.LastTS+1, r.TS)
		meta.LastTS = ts
		pos := log.Position{Shard: s.shard, Index: meta.LastIndex}
		ev := log.Event{
			Position: pos, TS: ts, Origin: r.Origin, Op: op, Collection: r.Collection, ID: r.ID,
			Version: p.next.Version, PrevVersion: p.prev.Version, Body: vis.Body,
			Principal: r.Principal, RequestID: r.RequestID, PrevHash: meta.Head, Clock: next.Clock,
		}
		meta.Head = ev.Hash()
		p.next.TS, p.next.Position = ts, pos
		if err := b.PutEvent(pos, s.m.cfg.Codec.Encode(&ev)); err != nil {
			return nil, err
		}
		if err := b.PutDoc(p.key, p.next); err != nil {
			return nil, err
		}
		if err := b.PutXDC(p.key, next); err != nil {
			return nil, err
		}
		if err := s.maintainIndexes(b, &p); err != nil {
			return nil, err
		}
		if err := b.PutVersion(p.key, l2.Version{
			Version: p.next.Version, Op: op, TS: ts, Principal: r.Principal, Position: pos, Body: p.next.Body,
		}); err != nil {
			return nil, err
		}
		var delta int64
		status := StatusOK
		switch {
		case p.live && vis.Deleted:
			delta = -1
		case !p.live && !vis.Deleted:
			delta, status = 1, StatusCreated
		}
		if delta != 0 {
			if err := b.AddCount(s.shard, r.Collection, delta); err != nil {
				return nil, err
			}
		}
		rs[i] = WriteResult{Status: status, Version: p.next.Version, TS: ts, Position: pos}
		*ups = append(*ups, cacheUpdate{key: p.key, doc: p.next})
	}
	return rs, nil
}

// resolvesAll reports whether names covers every sibling.
func resolvesAll(names []string, siblings []l2.Sibling) bool {
	for _, s := range siblings {
		if !slices.Contains(names, SiblingID(s)) {
			return false
		}
	}
	return true
}
