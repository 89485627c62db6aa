package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/internal/peercall"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/meta"
	"github.com/aerolithsdb/aerolith/query"
	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/prometheus/client_golang/prometheus"
)

// The L3 tier: a shard this node holds no replica of is served by a node that holds one.
// Every per-shard operation that would touch the local replica (a proposal, a read
// barrier and the read after it, one shard's part of a query, events and bodies for
// change streams and history, counts, index definitions) becomes one call of the peer
// protocol to such a node, which serves it from its replica as it would its own request.
//
// A call is an operation name and its arguments, JSON-encoded; the answer is the result,
// JSON-encoded, or a *PeerError whose kind (peerKinds) gives the caller back the same
// typed error the serving node's db returned. A PeerTransport carries calls between
// nodes (the node's is gRPC, gateway/peer) with the caller's deadline, so the serving
// node gives up when the caller has. A serving node never forwards again: a call it
// cannot serve from its own replica fails with kind not_hosted and the caller tries the
// next node.

// MaxPeerBody bounds a peer call's arguments and result.
const MaxPeerBody = 64 << 20

// peerHeadWait is the longest a head call waits for a shard's head to move.
const peerHeadWait = 5 * time.Second

// peerCallTimeout bounds a peer call whose caller set no deadline (change-stream reads).
const peerCallTimeout = 10 * time.Second

// peerAttemptTimeout bounds the call of one node (but head's long poll): a node that
// accepts the connection and never answers (paused, or overloaded) costs this much before
// the next node is asked. A serving node answers a proposal attempt within four election
// timeouts and a read barrier attempt within two.
const peerAttemptTimeout = 4 * time.Second

// PeerTransport carries peer calls to other nodes.
type PeerTransport interface {
	// PeerCall sends op with its arguments to the node whose HTTP address is addr and
	// returns its result, within ctx's deadline. The error wraps ErrPeerUnreachable when
	// no connection carried the call, and is a *PeerError when the node answered with
	// one; any other error leaves open whether the node served the call.
	PeerCall(ctx context.Context, addr, op string, args []byte) ([]byte, error)
}

// ErrPeerUnreachable marks a peer call that never reached the node: no connection
// carried it. A proposal so refused may go to the next node.
var ErrPeerUnreachable = peercall.ErrUnreachable

// ErrNotHosted is returned for an operation on a shard that neither this node nor any
// node it could reach serves from a replica.
var ErrNotHosted = errors.New("db: no reachable node holds a replica of the shard")

// PeerError is an error a serving node answered a peer call with: its kind, which
// names the typed error (peerKinds), and its message.
type PeerError = peercall.Error

// peerKinds maps the errors that cross the peer protocol to their kind and back. The
// first match wins when encoding; decoding returns the error of the kind.
var peerKinds = []struct {
	err  error
	kind string
}{
	{log.ErrNotHosted, "not_hosted"},
	{ErrNotHosted, "not_hosted"},
	{ErrNotFound, "not_found"},
	{ErrInvalidArgument, "invalid_argument"},
	{ErrInvalidCollection, "invalid_collection"},
	{ErrInvalidID, "invalid_id"},
	{ErrIndeterminate, "indeterminate"},
	{log.ErrIndeterminate, "indeterminate"},
	{ErrUnavailable, "unavailable"},
	{log.ErrUnavailable, "unavailable"},
	{log.ErrClosed, "unavailable"},
	{query.ErrTooExpensive, "too_expensive"},
	{query.ErrCompile, "invalid_filter"},
	{query.ErrInvalid, "invalid_query"},
}

func encodePeerError(err error) *PeerError {
	for _, k := range peerKinds {
		if errors.Is(err, k.err) {
			return &PeerError{Kind: k.kind, Msg: err.Error()}
		}
	}
	return &PeerError{Kind: "internal", Msg: err.Error()}
}

// decodePeerError returns the typed error of e: the sentinel of its kind wrapped with the
// serving node's message.
func decodePeerError(e *PeerError, node uint64) error {
	for _, k := range peerKinds {
		if k.kind == e.Kind {
			if k.kind == "not_hosted" {
				return fmt.Errorf("%w: node %d: %s", ErrNotHosted, node, e.Msg)
			}
			return fmt.Errorf("%w: node %d: %s", k.err, node, e.Msg)
		}
	}
	return fmt.Errorf("db: node %d: %s", node, e.Msg)
}

// forwardedKey marks the context of a call served for another node: it must not be
// forwarded again.
type forwardedKey struct{}

func forwarded(ctx context.Context) bool { return ctx.Value(forwardedKey{}) != nil }

// local reports whether this node serves shard from its own replica.
func (d *DB) local(shard uint64) bool { return d.host.ReplicaOf(shard) != 0 && d.caughtUp(shard) }

// peers is the peer protocol's client side: which nodes to ask for a shard, in order, and
// the transport that carries the calls.
type peers struct {
	self      uint64
	transport PeerTransport // nil: no other node is ever asked
	calls     *prometheus.CounterVec
	took      *prometheus.HistogramVec
	mu        sync.Mutex
	last      map[uint64]uint64    // shard → the node that last served it
	failed    map[uint64]time.Time // node → when a call of it last failed unanswered
}

// peerSuspectFor is how long a node that left a call unanswered is asked after the others.
const peerSuspectFor = 10 * time.Second

func newPeers(self uint64, transport PeerTransport, reg prometheus.Registerer) *peers {
	p := &peers{self: self, transport: transport, last: map[uint64]uint64{}, failed: map[uint64]time.Time{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerolith_peer_calls_total",
			Help: "Calls of other nodes for shards this node holds no replica of (the L3 tier), by operation and result (ok, error).",
		}, []string{"op", "result"}),
		took: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aerolith_peer_call_duration_seconds",
			Help:    "Time of one call of another node for a shard this node holds no replica of, by operation (head calls are long polls).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"op"})}
	if reg != nil {
		reg.MustRegister(p.calls, p.took)
	}
	return p
}

// order returns the nodes to ask for shard: the one that served it last, then the
// shard's hosts (placed hosting) and placed voters, then every other active node (one may
// hold a non-voting replica), never this node; a node that recently left a call
// unanswered or refused it comes after all of those.
func (p *peers) order(st meta.State, shard uint64) []meta.Node {
	var out, suspect []meta.Node
	p.mu.Lock()
	last := p.last[shard]
	failed := maps.Clone(p.failed)
	p.mu.Unlock()
	add := func(id uint64) {
		if id == p.self || slices.ContainsFunc(out, func(n meta.Node) bool { return n.ID == id }) ||
			slices.ContainsFunc(suspect, func(n meta.Node) bool { return n.ID == id }) {
			return
		}
		n, ok := st.Node(id)
		if !ok || n.State == meta.Removed || n.HTTPAddr == "" {
			return
		}
		if t, bad := failed[id]; bad && time.Since(t) < peerSuspectFor {
			suspect = append(suspect, n)
		} else {
			out = append(out, n)
		}
	}

	if last != 0 {
		add(last)
	}
	for _, id := range st.Hosts[shard] {
		add(id)
	}
	for _, id := range st.Placement[shard] {
		add(id)
	}
	for _, n := range st.Nodes {
		add(n.ID)
	}
	return append(out, suspect...)
}

// peerCall runs op for shard on the first node that serves it: nodes that answer
// not_hosted or unavailable, or cannot be reached before anything was sent, are skipped.
// res receives the result. A proposal whose request went out and got no answer is not
// tried elsewhere: its outcome is unknown, which the caller handles (ErrIndeterminate);
// every other operation only reads, and moves on to the next node.
func (d *DB) peerCall(ctx context.Context, shard uint64, op string, args, res any) error {
	if forwarded(ctx) {
		return fmt.Errorf("%w: shard %d is not served here", log.ErrNotHosted, shard)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, peerCallTimeout)
		defer cancel()
	}
	reads := op != "propose"
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range d.peers.order(d.meta.State(), shard) {
		start := time.Now()
		actx, cancel := ctx, context.CancelFunc(func() {})
		if op != "head" {
			actx, cancel = context.WithTimeout(ctx, peerAttemptTimeout)
		}
		err := d.peers.do(actx, n, op, body, res)
		cancel()
		d.peers.took.WithLabelValues(op).Observe(time.Since(start).Seconds())
		if err == nil {
			d.peers.mu.Lock()
			d.peers.last[shard] = n.ID
			delete(d.peers.failed, n.ID)
			d.peers.mu.Unlock()
			d.peers.calls.WithLabelValues(op, "ok").Inc()
			return nil
		}
		d.peers.calls.WithLabelValues(op, "error").Inc()
		if (errors.Is(err, errPeerLost) || errors.Is(err, ErrPeerUnreachable)) && ctx.Err() == nil {
			d.peers.mu.Lock()
			d.peers.failed[n.ID] = time.Now()
			d.peers.mu.Unlock()
		}
		skip := errors.Is(err, ErrNotHosted) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrPeerUnreachable) ||
			reads && errors.Is(err, errPeerLost)
		if !skip {
			return err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return fmt.Errorf("%w: shard %d: no other node is known", ErrUnavailable, shard)
	}
	return fmt.Errorf("%w: shard %d: %w", ErrUnavailable, shard, errors.Join(errs...))
}

// errPeerLost marks a call whose answer did not come back: the node may have served it.
var errPeerLost = fmt.Errorf("%w: no answer from the node", ErrIndeterminate)

func (p *peers) do(ctx context.Context, n meta.Node, op string, args []byte, res any) error {
	if p.transport == nil {
		return fmt.Errorf("%w: node %d: this node has no peer transport", ErrPeerUnreachable, n.ID)
	}
	out, err := p.transport.PeerCall(ctx, n.HTTPAddr, op, args)
	var pe *PeerError
	switch {
	case errors.As(err, &pe):
		return decodePeerError(pe, n.ID)
	case errors.Is(err, ErrPeerUnreachable):
		return fmt.Errorf("%w: node %d: %v", ErrPeerUnreachable, n.ID, err)
	case err != nil:
		return fmt.Errorf("%w: node %d: %v", errPeerLost, n.ID, err)
	case res == nil:
		return nil
	}
	if err := json.Unmarshal(out, res); err != nil {
		return fmt.Errorf("%w: node %d: malformed answer to %s: %v", errPeerLost, n.ID, op, err)
	}
	return nil
}

// The peer operations' arguments and results.
type (
	peerPropose struct {
		Shard uint64 `json:"shard"`
		Cmd   []byte `json:"cmd"`
	}
	peerRead struct {
		Shard       uint64      `json:"shard"`
		Collection  string      `json:"collection"`
		ID          string      `json:"id"`
		Consistency Consistency `json:"consistency"`
	}
	peerQuery struct {
		Shard       uint64            `json:"shard"`
		Collection  string            `json:"collection"`
		Filter      string            `json:"filter"`
		Sort        []query.SortField `json:"sort,omitempty"`
		Limit       int               `json:"limit"`
		After       string            `json:"after,omitempty"`
		Fields      []string          `json:"fields,omitempty"`
		Count       bool              `json:"count,omitempty"`
		Explain     bool              `json:"explain,omitempty"`
		Consistency Consistency       `json:"consistency"`
		AsOf        *AsOf             `json:"as_of,omitempty"`
	}
	peerShard struct {
		Shard       uint64      `json:"shard"`
		Consistency Consistency `json:"consistency"`
	}
	peerIndexes struct {
		Shard       uint64      `json:"shard"`
		Collection  string      `json:"collection"`
		Consistency Consistency `json:"consistency"`
	}
	peerEvents struct {
		Shard uint64 `json:"shard"`
		From  uint64 `json:"from"`
		Max   int    `json:"max"`
	}
	peerBody struct {
		Shard      uint64 `json:"shard"`
		Collection string `json:"collection"`
		ID         string `json:"id"`
		Version    uint64 `json:"version"`
	}
	peerBodyResult struct {
		Body []byte `json:"body"`
		OK   bool   `json:"ok"`
	}
	peerHead struct {
		Shard uint64 `json:"shard"`
		After uint64 `json:"after"`
		Now   bool   `json:"now,omitempty"` // answer at once, after a read barrier, without waiting for a move
	}
)

func (a *peerPropose) shardOf() uint64   { return a.Shard }
func (a *peerRead) shardOf() uint64      { return a.Shard }
func (a *peerQuery) shardOf() uint64     { return a.Shard }
func (a *peerShard) shardOf() uint64     { return a.Shard }
func (a *peerIndexes) shardOf() uint64   { return a.Shard }
func (a *peerEvents) shardOf() uint64    { return a.Shard }
func (a *peerBody) shardOf() uint64      { return a.Shard }
func (a *peerHead) shardOf() uint64      { return a.Shard }
func (a *peerChange) shardOf() uint64    { return a.Shard }
func (a *peerConflicts) shardOf() uint64 { return a.Shard }

// PeerOps names every operation of the peer protocol (ServePeer serves these and refuses
// others).
var PeerOps = []string{"propose", "get", "history", "clock", "policy", "conflicts", "query", "counts",
	"indexes", "events", "body", "membership", "leader", "status", "change", "head"}

// ServePeer serves one peer-protocol call from this node's replicas: op with its
// JSON-encoded arguments. It returns the result, JSON-encoded, or a *PeerError. The
// call's deadline is ctx's, which the transport sets to the caller's.
func (d *DB) ServePeer(ctx context.Context, op string, args []byte) ([]byte, error) {
	res, err := d.servePeer(context.WithValue(ctx, forwardedKey{}, true), op, args)
	var out []byte
	if err == nil {
		out, err = json.Marshal(res)
	}
	if err != nil {
		pe := encodePeerError(err)
		if pe.Kind == "internal" && ctx.Err() != nil {
			// The call ended with its context (the caller gave up, or this node stops)
			// before it was served.
			pe.Kind = "unavailable"
		}
		return nil, pe
	}
	return out, nil
}

func (d *DB) servePeer(ctx context.Context, op string, body []byte) (any, error) {
	// load decodes the call's arguments into a and checks that this node holds a
	// replica of their shard.
	load := func(a interface{ shardOf() uint64 }) error {
		if err := json.Unmarshal(body, a); err != nil {
			return fmt.Errorf("%w: peer call %s: %v", ErrInvalidArgument, op, err)
		}
		shard := a.shardOf()
		if shard < 1 || shard > uint64(d.host.Shards()) {
			return fmt.Errorf("%w: shard %d", ErrInvalidArgument, shard)
		}
		if !d.local(shard) {
			return fmt.Errorf("%w: shard %d", log.ErrNotHosted, shard)
		}
		return nil
	}
	switch op {
	case "propose":
		var a peerPropose
		if err := load(&a); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
		defer cancel()
		return d.host.Propose(ctx, a.Shard, a.Cmd)
	case "get", "history":
		var a peerRead
		if err := load(&a); err != nil {
			return nil, err
		}
		if op == "get" {
			return d.Get(ctx, a.Collection, a.ID, a.Consistency)
		}
		return d.History(ctx, a.Collection, a.ID, a.Consistency)
	case "clock":
		var a peerRead
		if err := load(&a); err != nil {
			return nil, err
		}
		clock, sibs, err := d.DocClock(ctx, a.Collection, a.ID, a.Consistency)
		return toPeerConflict("", clock, sibs), err
	case "policy":
		var a peerRead
		if err := load(&a); err != nil {
			return nil, err
		}
		if err := d.barrier(ctx, a.Shard, Linearizable); err != nil {
			return nil, err
		}
		return d.mat.Policy(a.Shard, a.Collection)
	case "conflicts":
		var a peerConflicts
		if err := load(&a); err != nil {
			return nil, err
		}
		cs, err := d.shardConflicts(ctx, a.Shard, a.Collection, a.Limit, a.Consistency)
		out := make([]peerConflict, len(cs))
		for i, c := range cs {
			out[i] = toPeerConflict(c.ID, c.Clock, c.Siblings)
		}
		return out, err
	case "query":
		var a peerQuery
		if err := load(&a); err != nil {
			return nil, err
		}
		return d.servePart(ctx, a)
	case "counts":
		var a peerShard
		if err := load(&a); err != nil {
			return nil, err
		}
		if err := d.barrier(ctx, a.Shard, a.Consistency); err != nil {
			return nil, err
		}
		return d.store.Counts(a.Shard)
	case "indexes":
		var a peerIndexes
		if err := load(&a); err != nil {
			return nil, err
		}
		if err := d.barrier(ctx, a.Shard, a.Consistency); err != nil {
			return nil, err
		}
		return d.shardIndexes(a.Shard, a.Collection)
	case "events":
		var a peerEvents
		if err := load(&a); err != nil {
			return nil, err
		}
		return d.events(ctx, a.Shard, a.From, min(a.Max, 1000))
	case "body":
		var a peerBody
		if err := load(&a); err != nil {
			return nil, err
		}
		b, ok, err := feedStore{d}.Body(a.Shard, a.Collection, a.ID, a.Version)
		return peerBodyResult{Body: b, OK: ok}, err
	case "membership", "leader":
		var a peerShard
		if err := load(&a); err != nil {
			return nil, err
		}
		if op == "leader" {
			l, ok := d.host.Leader(a.Shard)
			return peerLeader{Leader: l, OK: ok}, nil
		}
		ctx, cancel := context.WithTimeout(ctx, d.cfg.ReadTimeout)
		defer cancel()
		return d.host.Membership(ctx, a.Shard)
	case "status":
		var a peerShard
		if err := load(&a); err != nil {
			return nil, err
		}
		for _, sh := range d.host.Status(ctx).Shards {
			if sh.Shard == a.Shard {
				return sh, nil
			}
		}
		return nil, fmt.Errorf("%w: shard %d", log.ErrNotHosted, a.Shard)
	case "change":
		var a peerChange
		if err := load(&a); err != nil {
			return nil, err
		}
		return nil, d.serveChange(ctx, a)
	case "head":
		var a peerHead
		if err := load(&a); err != nil {
			return nil, err
		}
		if a.Now {
			// Everything committed before the call: a barrier first.
			if err := d.barrier(ctx, a.Shard, Linearizable); err != nil {
				return nil, err
			}
			return d.hub.Head(a.Shard), nil
		}
		return d.waitHead(ctx, a.Shard, a.After, peerHeadWait), nil
	}
	return nil, fmt.Errorf("%w: no peer operation %q", ErrInvalidArgument, op)
}

// waitHead returns shard's change-feed head once it is past after, or after wait.
func (d *DB) waitHead(ctx context.Context, shard, after uint64, wait time.Duration) uint64 {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		ch := d.hub.Changed()
		if h := d.hub.Head(shard); h > after {
			return h
		}
		select {
		case <-ch:
		case <-t.C:
			return d.hub.Head(shard)
		case <-ctx.Done():
			return d.hub.Head(shard)
		}
	}
}

// servePart runs one shard's part of a query for another node.
func (d *DB) servePart(ctx context.Context, a peerQuery) (*query.Part, error) {
	prog, err := d.compiler.Compile(a.Filter)
	if err != nil {
		return nil, err
	}
	q := &query.Query{Collection: a.Collection, Filter: prog, Sort: a.Sort, Limit: a.Limit,
		Fields: a.Fields, Count: a.Count, Explain: a.Explain}
	if a.After != "" {
		if q.After, err = query.DecodeCursor(a.After, len(a.Sort)); err != nil {
			return nil, err
		}
	}
	if err := d.barrier(ctx, a.Shard, a.Consistency); err != nil {
		return nil, err
	}
	var src query.Source = source{d}
	if a.AsOf != nil {
		src = asOfSource{d: d, at: a.AsOf}
	}
	return query.RunPart(ctx, q, src, a.Shard)
}

// remoteParts runs the parts of the shards this node holds no replica of on other nodes.
type remoteParts struct {
	d *DB
	r QueryRequest
}

func (p remoteParts) Part(ctx context.Context, q *query.Query, shard uint64) (*query.Part, bool, error) {
	if p.d.local(shard) {
		return nil, false, nil
	}
	a := peerQuery{Shard: shard, Collection: q.Collection, Filter: p.r.Filter, Sort: q.Sort, Limit: q.Limit,
		After: p.r.Cursor, Fields: q.Fields, Count: q.Count, Explain: q.Explain, Consistency: p.r.Consistency, AsOf: p.r.AsOf}
	var part query.Part
	if err := p.d.peerCall(ctx, shard, "query", a, &part); err != nil {
		return nil, true, err
	}
	return &part, true, nil
}

// proposeOnce is one proposal attempt: on this node's replica, or on a node that holds
// one.
func (d *DB) proposeOnce(ctx context.Context, shard uint64, payload []byte) ([]byte, error) {
	if d.local(shard) {
		out, err := d.host.Propose(ctx, shard, payload)
		if !errors.Is(err, log.ErrNotHosted) {
			return out, err
		}
	}
	var out []byte
	err := d.peerCall(ctx, shard, "propose", peerPropose{Shard: shard, Cmd: payload}, &out)
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, ErrIndeterminate):
		return nil, fmt.Errorf("%w: %v", log.ErrIndeterminate, err)
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrNotHosted):
		return nil, fmt.Errorf("%w: %v", log.ErrUnavailable, err)
	}
	return nil, err
}

// remoteEvents reads events of a shard this node holds no replica of.
func (d *DB) remoteEvents(ctx context.Context, shard, from uint64, max int) ([][]byte, error) {
	var out [][]byte
	err := d.peerCall(ctx, shard, "events", peerEvents{Shard: shard, From: from, Max: max}, &out)
	return out, err
}

// followHeads keeps the hub's head of every shard this node holds no replica of up to
// date from the nodes that hold one, so change streams wait and wake on those shards as
// on local ones. One long poll per such shard; it runs until ctx ends.
func (d *DB) followHeads(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	following := map[uint64]context.CancelFunc{}
	defer func() {
		for _, cancel := range following {
			cancel()
		}
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for s := uint64(1); s <= uint64(d.host.Shards()); s++ {
			cancel, on := following[s]
			switch local := d.local(s); {
			case !local && !on:
				fctx, cancel := context.WithCancel(ctx)
				following[s] = cancel
				wg.Add(1)
				go func() { defer wg.Done(); d.followHead(fctx, s) }()
			case local && on:
				cancel()
				delete(following, s)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *DB) followHead(ctx context.Context, shard uint64) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var head uint64
		cctx, cancel := context.WithTimeout(ctx, peerHeadWait+5*time.Second)
		err := d.peerCall(cctx, shard, "head", peerHead{Shard: shard, After: d.hub.Head(shard)}, &head)
		cancel()
		if err != nil {
			d.cfg.Logger.Debug("shard head not followed", "shard", shard, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		d.hub.Advance(shard, head)
	}
}

// refreshHeads brings the hub's heads of the shards this node holds no replica of up to
// what the nodes holding them have applied now, so a subscription that starts "now", or a
// page of events that ends at the heads, does not start or end behind them. A shard whose
// head cannot be had keeps the followed one.
func (d *DB) refreshHeads() {
	var wg sync.WaitGroup
	for s := uint64(1); s <= uint64(d.host.Shards()); s++ {
		if d.local(s) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ReadTimeout)
			defer cancel()
			var head uint64
			if err := d.peerCall(ctx, s, "head", peerHead{Shard: s, Now: true}, &head); err == nil {
				d.hub.Advance(s, head)
			}
		}()
	}
	wg.Wait()
}

// readRemote is the L3 read of one document's shard: get or history on a node that holds
// a replica.
func (d *DB) readRemote(ctx context.Context, op string, k tiers.Key, c Consistency, res any) error {
	return d.peerCall(ctx, k.Shard, op, peerRead{Shard: k.Shard, Collection: k.Collection, ID: k.ID, Consistency: c}, res)
}
