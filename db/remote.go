package db

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/tiers"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
	"github.com/aerolithsdb/aerolith/vclock"
)

// RemoteEvent is a committed event of another datacenter, as shipped.
type RemoteEvent struct {
	Origin string // datacenter that accepted the write
	Shard  uint64 // its shard in the origin datacenter
	Index  uint64 // its index in that shard
	// Stream is the ordered stream it arrived on (the Kafka partition): within (Origin,
	// Shard, Stream) Index increases.
	Stream     uint32
	TS         log.Timestamp // its HLC timestamp at the origin
	Op         log.Op        // log.OpPut or log.OpDelete: a remote patch is shipped as the whole resulting document
	Collection string
	ID         string
	Body       []byte       // the document after the event; empty for a delete
	Clock      vclock.Clock // the document's vector clock after the event, at the origin
	Principal  string
	RequestID  string
}

// Policy is a collection's replication policy. The zero value (no policy set) means:
// replicate to every datacenter, async, lww.
type Policy = materializer.Policy

// ShipWaiter is what sync mode waits on: it returns once the event at pos (a local event)
// is acknowledged by Kafka, or ctx ends.
type ShipWaiter interface {
	WaitShipped(ctx context.Context, pos log.Position) error
}

// xdc is the DB's cross-datacenter state.
type xdc struct {
	waiter atomic.Pointer[shipWaiterBox]
}

type shipWaiterBox struct{ w ShipWaiter }

// SetShipWaiter sets what sync-mode writes wait on (nil: none; sync writes are refused).
// The node calls it before serving.
func (d *DB) SetShipWaiter(w ShipWaiter) {
	if w == nil {
		d.xdc.waiter.Store(nil)
		return
	}
	d.xdc.waiter.Store(&shipWaiterBox{w: w})
}

// DC returns this node's datacenter name.
func (d *DB) DC() string { return d.cfg.DC }

// maxRemotePerCommand bounds the remote events of one proposed command.
const maxRemotePerCommand = 256

func (e *RemoteEvent) validate(local string) error {
	switch {
	case !ValidCollection(e.Origin):
		return fmt.Errorf("%w: origin datacenter %q", ErrInvalidArgument, e.Origin)
	case e.Origin == local:
		return fmt.Errorf("%w: event of this datacenter (%q) offered as remote", ErrInvalidArgument, e.Origin)
	case !ValidCollection(e.Collection):
		return fmt.Errorf("%w: %q", ErrInvalidCollection, e.Collection)
	case !ValidID(e.ID):
		return fmt.Errorf("%w: %q", ErrInvalidID, e.ID)
	case e.Index == 0:
		return fmt.Errorf("%w: remote event without an index", ErrInvalidArgument)
	case e.Clock.IsZero():
		return fmt.Errorf("%w: remote event %s/%d/%d without a vector clock", ErrInvalidArgument, e.Origin, e.Shard, e.Index)
	case e.Op == log.OpDelete:
		return nil
	case e.Op != log.OpPut:
		return fmt.Errorf("%w: remote op must be put or delete, got %s", ErrInvalidArgument, e.Op)
	}
	w := Write{Op: log.OpPut, Collection: e.Collection, ID: e.ID, Body: e.Body}
	return w.validate()
}

// ApplyRemote proposes remote events into the local log (grouped per local shard, in
// order) and returns once every one of them has taken effect or been dropped as already
// seen. Calling it again with the same events changes nothing: the state machine drops an
// event whose (Origin, Shard, Stream) high-water index in its shard has reached it, or
// whose clock the document's clock dominates. Errors are retryable unless they wrap a
// validation error (ErrInvalidArgument, ErrInvalidCollection, ErrInvalidID,
// ErrInvalidDocument); on a validation error nothing was proposed.
func (d *DB) ApplyRemote(ctx context.Context, evs []RemoteEvent) error {
	groups := map[uint64][]materializer.RemoteWrite{}
	var latest log.Timestamp
	for i := range evs {
		e := &evs[i]
		if err := e.validate(d.cfg.DC); err != nil {
			return err
		}
		latest = max(latest, e.TS)
		s := d.host.ShardOf(e.Collection, e.ID)
		w := materializer.RemoteWrite{
			Origin: e.Origin, Shard: e.Shard, Index: e.Index, Stream: e.Stream, TS: e.TS, Op: e.Op,
			Collection: e.Collection, ID: e.ID, Clock: e.Clock, Principal: e.Principal, RequestID: e.RequestID,
		}
		if e.Op == log.OpPut {
			w.Body = e.Body
		}
		groups[s] = append(groups[s], w)
	}
	// Later local writes order after what arrived (HLC receive), so a write that has seen
	// a remote version always carries a later time than it.
	d.clock.Observe(latest)
	var wg sync.WaitGroup
	errs := make([]error, 0, len(groups))
	var mu sync.Mutex
	for shard, ws := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(ws) > 0 {
				n := min(len(ws), maxRemotePerCommand)
				if err := d.proposeRemote(ctx, shard, ws[:n]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				ws = ws[n:]
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// proposeRemote proposes one command of remote writes. The state machine deduplicates
// them, so an outcome that is unknown is resubmitted until the write timeout.
func (d *DB) proposeRemote(ctx context.Context, shard uint64, ws []materializer.RemoteWrite) error {
	cmd := &materializer.Command{TS: d.clock.Now(), Origin: d.cfg.DC, Principal: "replication", Remote: ws}
	rs, err := d.proposeOp(ctx, shard, cmd, len(ws), true)
	if err != nil {
		return err
	}
	for i, r := range rs {
		switch r.Status {
		case materializer.StatusOK, materializer.StatusCreated, materializer.StatusSeen:
		default:
			return fmt.Errorf("%w: remote event %s/%d/%d refused by the state machine (status %d)",
				ErrInvalidArgument, ws[i].Origin, ws[i].Shard, ws[i].Index, r.Status)
		}
	}
	return nil
}

// proposeOp submits a command that is not a batch of local writes and expects want
// results. With dedupe, an unknown outcome is resubmitted within the write timeout.
func (d *DB) proposeOp(ctx context.Context, shard uint64, cmd *materializer.Command, want int, dedupe bool) ([]materializer.WriteResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	payload := materializer.EncodeCommand(cmd)
	for {
		out, err := d.proposeOnce(ctx, shard, payload)
		if err == nil {
			rs, err := materializer.DecodeResults(out)
			if err != nil || len(rs) != want {
				return nil, fmt.Errorf("db: shard %d: %d results for %d operations: %v", shard, len(rs), want, err)
			}
			return rs, nil
		}
		switch {
		case errors.Is(err, log.ErrIndeterminate) && dedupe && ctx.Err() == nil:
			continue
		case errors.Is(err, log.ErrUnavailable) && dedupe && ctx.Err() == nil:
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		case errors.Is(err, log.ErrIndeterminate):
			return nil, fmt.Errorf("%w: %v", ErrIndeterminate, err)
		case errors.Is(err, log.ErrUnavailable), errors.Is(err, log.ErrClosed):
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return nil, err
	}
}

// ValidatePolicy reports every problem with p.
func ValidatePolicy(p Policy) error {
	var errs []error
	for _, dc := range append(slices.Clone(p.Replicate), p.Priority...) {
		if !ValidCollection(dc) {
			errs = append(errs, fmt.Errorf("datacenter name %q must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", dc))
		}
	}
	switch p.Mode {
	case "", materializer.ModeAsync, materializer.ModeSync:
	default:
		errs = append(errs, fmt.Errorf("mode must be async or sync, got %q", p.Mode))
	}
	switch p.Conflict {
	case "", materializer.ConflictLWW, materializer.ConflictKeepBoth:
		if len(p.Priority) > 0 {
			errs = append(errs, errors.New("priority applies to the dc-priority rule only"))
		}
	case materializer.ConflictPriority:
		if len(p.Priority) == 0 {
			errs = append(errs, errors.New("dc-priority needs a priority list"))
		}
	default:
		errs = append(errs, fmt.Errorf("conflict must be lww, dc-priority or keep-both, got %q", p.Conflict))
	}
	if len(p.Replicate) > 64 || len(p.Priority) > 64 {
		errs = append(errs, errors.New("at most 64 datacenters per list"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: policy: %v", ErrInvalidArgument, err)
	}
	return nil
}

// SetPolicy sets a collection's replication policy through the log of every shard. Set
// the same policy in every datacenter: each applies the conflict rule to the events it
// receives, so datacenters converge only when their rules agree.
func (d *DB) SetPolicy(ctx context.Context, collection string, p Policy) error {
	if !ValidCollection(collection) {
		return fmt.Errorf("%w: %q", ErrInvalidCollection, collection)
	}
	if err := ValidatePolicy(p); err != nil {
		return err
	}
	p = p.WithDefaults()
	for _, s := range d.shardIDs() {
		cmd := &materializer.Command{TS: d.clock.Now(), Origin: d.cfg.DC, Policy: &materializer.PolicyOp{Collection: collection, Policy: p}}
		// Setting a policy is idempotent: resubmitting it is safe.
		if _, err := d.proposeOp(ctx, s, cmd, 1, true); err != nil {
			return err
		}
	}
	return nil
}

// Policy returns a collection's replication policy (the defaults when none is set), as of
// every write acknowledged before the call.
func (d *DB) Policy(ctx context.Context, collection string) (Policy, error) {
	if !ValidCollection(collection) {
		return Policy{}, fmt.Errorf("%w: %q", ErrInvalidCollection, collection)
	}
	ids := d.shardIDs()
	last := ids[len(ids)-1]
	if !d.local(last) {
		var p Policy
		err := d.peerCall(ctx, last, "policy", peerRead{Shard: last, Collection: collection}, &p)
		return p, err
	}
	if err := d.barrier(ctx, last, Linearizable); err != nil {
		return Policy{}, err
	}
	// SetPolicy writes the shards in order, so the last one has the newest complete policy.
	return d.mat.Policy(last, collection)
}

// localPolicy returns the policy the shard of (collection, id) applies, without a barrier.
// For a shard this node holds no replica of, that is the policy of a shard it holds
// (SetPolicy sets every shard's), or the one a node holding the shard has.
func (d *DB) localPolicy(shard uint64, collection string) Policy {
	if !d.local(shard) {
		if held := d.localShards(); len(held) > 0 {
			shard = held[len(held)-1]
		} else {
			var p Policy
			if err := d.peerCall(context.Background(), shard, "policy", peerRead{Shard: shard, Collection: collection}, &p); err == nil {
				return p
			}
			return Policy{}.WithDefaults()
		}
	}
	p, err := d.mat.Policy(shard, collection)
	if err != nil {
		return Policy{}.WithDefaults()
	}
	return p
}

// Sibling is one of a document's concurrent versions kept by a keep-both conflict.
type Sibling struct {
	ID      string        `json:"id"` // what a resolving write names: "dc:counter"
	Origin  string        `json:"origin"`
	TS      log.Timestamp `json:"-"`
	Clock   vclock.Clock  `json:"clock"`
	Deleted bool          `json:"deleted,omitempty"`
	Body    []byte        `json:"-"`
	Visible bool          `json:"visible"` // the version reads return
}

// Conflict is a document with siblings.
type Conflict struct {
	Collection string
	ID         string
	Clock      vclock.Clock
	Siblings   []Sibling
}

func siblingsOf(x l2.XDC) []Sibling {
	out := make([]Sibling, len(x.Siblings))
	for i, s := range x.Siblings {
		out[i] = Sibling{
			ID: materializer.SiblingID(s), Origin: s.Origin, TS: s.TS, Clock: s.Clock, Deleted: s.Deleted, Body: s.Body,
			Visible: s.Origin == x.Origin && s.TS == x.TS,
		}
	}
	return out
}

// DocClock returns a document's vector clock and its siblings (none unless the
// collection's rule is keep-both and a conflict is open). Deleted documents keep their
// clock.
func (d *DB) DocClock(ctx context.Context, collection, id string, c Consistency) (vclock.Clock, []Sibling, error) {
	if err := validName(collection, id); err != nil {
		return nil, nil, err
	}
	k := tiers.Key{Shard: d.host.ShardOf(collection, id), Collection: collection, ID: id}
	if !d.local(k.Shard) {
		var r peerConflict
		if err := d.readRemote(ctx, "clock", k, c, &r); err != nil {
			return nil, nil, err
		}
		return r.Clock, r.siblings(), nil
	}
	if err := d.barrier(ctx, k.Shard, c); err != nil {
		return nil, nil, err
	}
	x, _, err := d.store.XDC(k)
	if err != nil {
		return nil, nil, fmt.Errorf("db: clock: %w", err)
	}
	if d.localPolicy(k.Shard, collection).Conflict != materializer.ConflictKeepBoth {
		return x.Clock, nil, nil
	}
	return x.Clock, siblingsOf(x), nil
}

// Conflicts lists the documents of collection with open keep-both conflicts, in id order
// per shard, at most limit (all when limit <= 0). Only collections whose rule is keep-both
// have any.
func (d *DB) Conflicts(ctx context.Context, collection string, limit int, c Consistency) ([]Conflict, error) {
	if !ValidCollection(collection) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidCollection, collection)
	}
	var out []Conflict
	for _, s := range d.shardIDs() {
		rest := 0
		if limit > 0 {
			rest = limit - len(out)
		}
		var cs []Conflict
		var err error
		if d.local(s) {
			cs, err = d.shardConflicts(ctx, s, collection, rest, c)
		} else {
			var wire []peerConflict
			err = d.peerCall(ctx, s, "conflicts", peerConflicts{Shard: s, Collection: collection, Limit: rest, Consistency: c}, &wire)
			for _, w := range wire {
				cs = append(cs, Conflict{Collection: collection, ID: w.ID, Clock: w.Clock, Siblings: w.siblings()})
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// shardConflicts lists the open conflicts of collection in shard, at most limit (all when
// limit <= 0), from this node's replica.
func (d *DB) shardConflicts(ctx context.Context, s uint64, collection string, limit int, c Consistency) ([]Conflict, error) {
	if err := d.barrier(ctx, s, c); err != nil {
		return nil, err
	}
	if d.localPolicy(s, collection).Conflict != materializer.ConflictKeepBoth {
		return nil, nil
	}
	var out []Conflict
	err := d.store.ScanSiblings(ctx, s, collection, func(id string, x l2.XDC) bool {
		out = append(out, Conflict{Collection: collection, ID: id, Clock: x.Clock, Siblings: siblingsOf(x)})
		return limit <= 0 || len(out) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("db: conflicts: %w", err)
	}
	return out, nil
}

// peerConflict is a document's clock and siblings as they cross the peer protocol, every
// field included.
type peerConflict struct {
	ID       string        `json:"id,omitempty"`
	Clock    vclock.Clock  `json:"clock"`
	Siblings []peerSibling `json:"siblings,omitempty"`
}

type peerSibling struct {
	ID      string        `json:"id"`
	Origin  string        `json:"origin"`
	TS      log.Timestamp `json:"ts"`
	Clock   vclock.Clock  `json:"clock"`
	Deleted bool          `json:"deleted,omitempty"`
	Body    []byte        `json:"body,omitempty"`
	Visible bool          `json:"visible,omitempty"`
}

type peerConflicts struct {
	Shard       uint64      `json:"shard"`
	Collection  string      `json:"collection"`
	Limit       int         `json:"limit"`
	Consistency Consistency `json:"consistency"`
}

func toPeerConflict(id string, clock vclock.Clock, ss []Sibling) peerConflict {
	out := peerConflict{ID: id, Clock: clock}
	for _, s := range ss {
		out.Siblings = append(out.Siblings, peerSibling(s))
	}
	return out
}

func (p peerConflict) siblings() []Sibling {
	var out []Sibling
	for _, s := range p.Siblings {
		out = append(out, Sibling(s))
	}
	return out
}

// ContentDigest returns a digest of what every datacenter must agree on once replication
// has converged: for every document that is live or has siblings, its collection, id,
// body, vector clock and siblings (their clocks, deletion and bodies). Local versions,
// positions, times and tombstones without siblings are left out, since they differ
// between datacenters. It is order-free: the XOR of one SHA-256 per document, hashed
// with the count, so datacenters with different shard counts compare too.
func (d *DB) ContentDigest() (log.Hash, error) {
	var acc log.Hash
	var n uint64
	var buf []byte
	for _, s := range d.shardIDs() {
		err := d.store.ScanContent(context.Background(), s, func(coll, id string, doc tiers.Doc, x l2.XDC, _ bool) error {
			if doc.Deleted && len(x.Siblings) == 0 {
				return nil
			}
			buf = wire.AppendString(buf[:0], coll)
			buf = wire.AppendString(buf, id)
			if doc.Deleted {
				buf = append(buf, 0)
			} else {
				buf = append(buf, 1)
				buf = wire.AppendBytes(buf, doc.Body)
			}
			buf = x.Clock.Append(buf)
			buf = wire.AppendUvarint(buf, uint64(len(x.Siblings)))
			for _, sb := range x.Siblings {
				buf = sb.Clock.Append(buf)
				buf = wire.AppendString(buf, sb.Origin)
				if sb.Deleted {
					buf = append(buf, 0)
				} else {
					buf = append(buf, 1)
					buf = wire.AppendBytes(buf, sb.Body)
				}
			}
			h := sha256.Sum256(buf)
			for i := range acc {
				acc[i] ^= h[i]
			}
			n++
			return nil
		})
		if err != nil {
			return log.Hash{}, fmt.Errorf("db: content digest: %w", err)
		}
	}
	buf = append(wire.AppendUvarint(buf[:0], n), acc[:]...)
	return sha256.Sum256(append([]byte("aerolith-content-v1"), buf...)), nil
}

// syncPolicy reports whether writes to collection in shard wait for the replication log.
func (d *DB) syncPolicy(shard uint64, collection string) bool {
	p := d.localPolicy(shard, collection)
	return p.Mode == materializer.ModeSync && (p.Replicate == nil || len(p.Replicate) > 0)
}

// checkSync refuses, before anything is written, a sync-mode write on a node that ships
// to no replication log.
func (d *DB) checkSync(shard uint64, collection string) error {
	if d.syncPolicy(shard, collection) && d.xdc.waiter.Load() == nil {
		return fmt.Errorf("%w (collection %q)", ErrReplicationUnavailable, collection)
	}
	return nil
}

// waitShipped waits, for a sync-mode collection, until the replication log acknowledged
// the committed write res, within the write timeout.
func (d *DB) waitShipped(ctx context.Context, shard uint64, collection string, res Result) error {
	if !d.syncPolicy(shard, collection) {
		return nil
	}
	box := d.xdc.waiter.Load()
	if box == nil {
		return &NotShippedError{Result: res, Err: ErrReplicationUnavailable}
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	if err := box.w.WaitShipped(ctx, res.Position); err != nil {
		return &NotShippedError{Result: res, Err: err}
	}
	return nil
}
