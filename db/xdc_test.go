package db

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/prometheus/client_golang/prometheus"
)

// openDC opens a one-node database playing datacenter dc.
func openDC(t *testing.T, dc string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Open(ctx, Config{DataDir: t.TempDir(), NodeID: 1, RaftAddr: loopback.FreeAddr(t), Shards: 2, DC: dc, ArchiveInterval: -1,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// link carries one datacenter's local events to another the way the shipper and the
// applier do: a change subscription resumed from its token, local-origin events only,
// each as the whole document after it.
type link struct {
	from, to *DB
	token    string
	sent     []RemoteEvent // everything pulled so far, for redelivery
}

// pull reads up to max local-origin events not yet pulled (all when max < 0).
func (l *link) pull(t *testing.T, max int) []RemoteEvent {
	t.Helper()
	req := SubscribeRequest{From: "beginning", IncludeAfter: true}
	if l.token != "" {
		req = SubscribeRequest{From: "token", Token: l.token, IncludeAfter: true}
	}
	sub, err := l.from.Subscribe(req)
	if err != nil {
		t.Fatal(err)
	}
	var out []RemoteEvent
	for (max < 0 || len(out) < max) && sub.Lag().Events > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := sub.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("pull from %s: %v", l.from.DC(), err)
		}
		l.token = m.Token
		if m.Kind != feed.KindEvent || m.Event.Origin != l.from.DC() {
			continue
		}
		out = append(out, remoteOf(t, m))
	}
	l.sent = append(l.sent, out...)
	return out
}

func remoteOf(t *testing.T, m feed.Message) RemoteEvent {
	e := m.Event
	r := RemoteEvent{
		Origin: e.Origin, Shard: e.Position.Shard, Index: e.Position.Index, TS: m.Raw.TS, Op: log.OpPut,
		Collection: e.Collection, ID: e.ID, Body: e.After, Clock: e.Clock, Principal: e.Principal,
	}
	switch e.Op {
	case feed.OpDelete:
		r.Op, r.Body = log.OpDelete, nil
	case feed.OpRedact:
		t.Fatalf("redaction in the test history: %+v", e)
	}
	if len(r.Clock) == 0 {
		t.Fatalf("local event without a clock: %+v", e)
	}
	return r
}

func (l *link) deliver(t *testing.T, evs []RemoteEvent) {
	t.Helper()
	if len(evs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.to.ApplyRemote(ctx, evs); err != nil {
		t.Fatalf("apply %d events of %s in %s: %v", len(evs), l.from.DC(), l.to.DC(), err)
	}
}

// replicatedCounts reads aerolith_replicated_events_total from d's registry.
func replicatedCounts(t *testing.T, d *DB) string {
	t.Helper()
	mfs, err := d.cfg.Registerer.(*prometheus.Registry).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "aerolith_replicated_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return fmt.Sprintf("applied=%g conflict=%g seen=%g", out["applied"], out["conflict"], out["seen"])
}

func digest(t *testing.T, d *DB) log.Hash {
	t.Helper()
	h, err := d.ContentDigest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func put(t *testing.T, d *DB, coll, id, body string) {
	t.Helper()
	if _, err := d.Write(context.Background(), "anonymous", Write{Op: log.OpPut, Collection: coll, ID: id, Body: []byte(body)}); err != nil {
		t.Fatalf("put %s/%s in %s: %v", coll, id, d.DC(), err)
	}
}

func getBody(t *testing.T, d *DB, coll, id string) string {
	t.Helper()
	doc, err := d.Get(context.Background(), coll, id, Linearizable)
	if errors.Is(err, ErrNotFound) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(doc.Body)
}

func setPolicy(t *testing.T, p Policy, coll string, ds ...*DB) {
	t.Helper()
	for _, d := range ds {
		if err := d.SetPolicy(context.Background(), coll, p); err != nil {
			t.Fatalf("policy in %s: %v", d.DC(), err)
		}
	}
}

// TestRemoteConflictRules writes the same documents concurrently in two datacenters and
// moves the events both ways, in both orders and twice: each rule picks the same version
// on both sides, redelivery changes nothing, and the content digests are equal.
func TestRemoteConflictRules(t *testing.T) {
	a, b := openDC(t, "dcA"), openDC(t, "dcB")
	setPolicy(t, Policy{Conflict: "lww"}, "lww", a, b)
	setPolicy(t, Policy{Conflict: "dc-priority", Priority: []string{"dcB", "dcA"}}, "prio", a, b)
	setPolicy(t, Policy{Conflict: "keep-both"}, "kb", a, b)
	ab, ba := &link{from: a, to: b}, &link{from: b, to: a}

	for _, coll := range []string{"lww", "prio", "kb"} {
		put(t, a, coll, "x", `{"from":"a"}`)
		put(t, b, coll, "x", `{"from":"b"}`) // written later: the lww winner
	}
	// dcB receives first, dcA second: both orders of arrival for the two sides.
	fromA, fromB := ab.pull(t, -1), ba.pull(t, -1)
	ab.deliver(t, fromA)
	ba.deliver(t, fromB)
	heads := committedEvents(a) + committedEvents(b)
	ab.deliver(t, fromA) // redelivery
	ba.deliver(t, fromB)
	if n := committedEvents(a) + committedEvents(b); n != heads {
		t.Fatalf("redelivery appended %d events", n-heads)
	}
	if got := replicatedCounts(t, b); got != "applied=0 conflict=3 seen=3" {
		t.Fatalf("dcB's aerolith_replicated_events_total: %s", got)
	}
	// dcB's change stream shows dcA's events as replicated: origin dcA, source and id dcB's,
	// the whole document after, the merged clock.
	sub, err := b.Subscribe(SubscribeRequest{From: "beginning", IncludeAfter: true, Collections: []string{"lww"}})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for sub.Lag().Events > 0 {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := sub.Next(sctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if e := m.Event; m.Kind == feed.KindEvent {
			seen = append(seen, fmt.Sprintf("%s/%s/%s/%s/%v", e.Origin, e.Source.DC, e.EventID[:4], e.After, e.Clock))
		}
	}
	if want := []string{`dcB/dcB/dcB-/{"from":"b"}/dcB:1`, `dcA/dcB/dcB-/{"from":"b"}/dcA:1,dcB:1`}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("dcB's stream of lww: %v, want %v", seen, want)
	}
	for coll, want := range map[string]string{"lww": `{"from":"b"}`, "prio": `{"from":"b"}`, "kb": `{"from":"b"}`} {
		if ga, gb := getBody(t, a, coll, "x"), getBody(t, b, coll, "x"); ga != want || gb != want {
			t.Errorf("%s: dcA reads %s, dcB reads %s, want %s", coll, ga, gb, want)
		}
	}
	if ha, hb := digest(t, a), digest(t, b); ha != hb {
		t.Fatalf("content digests differ: %x vs %x", ha, hb)
	}

	// dc-priority picks dcA when it ranks first, whatever the times.
	setPolicy(t, Policy{Conflict: "dc-priority", Priority: []string{"dcA"}}, "prio2", a, b)
	put(t, a, "prio2", "y", `{"from":"a"}`)
	put(t, b, "prio2", "y", `{"from":"b"}`)
	ab.deliver(t, ab.pull(t, -1))
	ba.deliver(t, ba.pull(t, -1))
	if ga, gb := getBody(t, a, "prio2", "y"), getBody(t, b, "prio2", "y"); ga != `{"from":"a"}` || gb != ga {
		t.Fatalf("dc-priority: dcA reads %s, dcB reads %s", ga, gb)
	}

	// keep-both: both versions are siblings on both sides, the visible one the lww winner.
	for _, d := range []*DB{a, b} {
		cs, err := d.Conflicts(context.Background(), "kb", 0, Linearizable)
		if err != nil || len(cs) != 1 || len(cs[0].Siblings) != 2 {
			t.Fatalf("%s conflicts: %+v %v", d.DC(), cs, err)
		}
		if cs, _ := d.Conflicts(context.Background(), "lww", 0, Linearizable); len(cs) != 0 {
			t.Fatalf("%s lists lww documents as conflicts: %+v", d.DC(), cs)
		}
	}
	// A write that does not name the siblings is refused; one that names them resolves.
	if _, err := a.Write(context.Background(), "anonymous", Write{Op: log.OpPut, Collection: "kb", ID: "x", Body: []byte(`{"merged":false}`)}); !errors.Is(err, ErrSiblingsUnresolved) {
		t.Fatalf("write over siblings without naming them: %v", err)
	}
	_, sibs, err := a.DocClock(context.Background(), "kb", "x", Linearizable)
	if err != nil || len(sibs) != 2 {
		t.Fatalf("siblings: %+v %v", sibs, err)
	}
	r, err := a.Write(context.Background(), "anonymous", Write{Op: log.OpPut, Collection: "kb", ID: "x", Body: []byte(`{"merged":true}`), Resolves: []string{sibs[0].ID, sibs[1].ID}})
	if err != nil {
		t.Fatalf("resolving write: %v", err)
	}
	clock, sibs, err := a.DocClock(context.Background(), "kb", "x", Linearizable)
	if err != nil || len(sibs) != 0 || clock["dcA"] != 2 || clock["dcB"] != 1 {
		t.Fatalf("after resolution: clock %v siblings %+v %v (result %+v)", clock, sibs, err, r)
	}
	ab.deliver(t, ab.pull(t, -1))
	ba.deliver(t, ba.pull(t, -1))
	if gb := getBody(t, b, "kb", "x"); gb != `{"merged":true}` {
		t.Fatalf("dcB after the resolution arrived: %s", gb)
	}
	if cs, _ := b.Conflicts(context.Background(), "kb", 0, Linearizable); len(cs) != 0 {
		t.Fatalf("dcB still lists conflicts: %+v", cs)
	}
	if ha, hb := digest(t, a), digest(t, b); ha != hb {
		t.Fatalf("content digests differ after resolution: %x vs %x", ha, hb)
	}
	checkHistory(t, a)
	checkHistory(t, b)
}

// checkHistory checks that a datacenter's history, replicated events included, verifies
// (online and exported) and replays to its state digest.
func checkHistory(t *testing.T, d *DB) {
	t.Helper()
	ctx := context.Background()
	for _, s := range d.shardIDs() {
		rep, err := d.Verify(ctx, s, 0, 0)
		if err != nil || !rep.OK {
			t.Fatalf("%s: verify shard %d: %+v %v", d.DC(), s, rep, err)
		}
	}
	var buf bytes.Buffer
	if err := d.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	reps, err := audit.VerifyExport(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if !r.OK {
			t.Fatalf("%s: offline verify: %+v", d.DC(), r)
		}
	}
	events, err := audit.ReadEvents(&buf)
	if err != nil {
		t.Fatal(err)
	}
	live, err := d.StateDigest()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Replay(filepath.Join(t.TempDir(), "replay"), d.Shards(), events)
	if err != nil || got.Digest != live.Digest {
		t.Fatalf("%s: replay %+v %v\nlive %+v", d.DC(), got, err, live)
	}
}

// TestRemoteConvergence is the convergence property: datacenters take random concurrent
// writes (puts, patches, deletes, keep-both resolutions) to a few documents under each
// conflict rule, while their events move across in random slices, sometimes twice; once
// everything has been delivered everywhere, all hold the same content. Three datacenters,
// because some orders only arise with a third (a version that has seen one side's write
// meets a third side's concurrent one).
func TestRemoteConvergence(t *testing.T) {
	seeds := 2
	if testing.Short() {
		seeds = 1
	}
	if *xdcSeeds > 0 {
		seeds = *xdcSeeds
	}
	for range seeds {
		seed := rand.Uint64()
		if *xdcSeed != 0 {
			seed = *xdcSeed
		}
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { convergence(t, seed) })
	}
}

var (
	xdcSeeds = flag.Int("xdc-seeds", 0, "TestRemoteConvergence: how many random seeds (default 2, 1 with -short)")
	xdcSeed  = flag.Uint64("xdc-seed", 0, "TestRemoteConvergence: run this seed (to reproduce a failure)")
)

func convergence(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	dcs := []*DB{openDC(t, "dcA"), openDC(t, "dcB"), openDC(t, "dcC")}
	colls := map[string]Policy{
		"lww":  {Conflict: "lww"},
		"prio": {Conflict: "dc-priority", Priority: []string{"dcB", "dcA", "dcC"}},
		"kb":   {Conflict: "keep-both"},
	}
	names := []string{"lww", "prio", "kb"}
	for c, p := range colls {
		setPolicy(t, p, c, dcs...)
	}
	var links []*link
	for _, from := range dcs {
		for _, to := range dcs {
			if from != to {
				links = append(links, &link{from: from, to: to})
			}
		}
	}
	ctx := context.Background()
	const rounds, docs = 90, 3
	for i := range rounds {
		if i%6 == 5 {
			// A quiet moment: everything delivered everywhere, the contents must agree.
			// (Checked often, since a later write that has seen everything hides an
			// earlier divergence.)
			for _, l := range links {
				l.deliver(t, l.pull(t, -1))
			}
			converged(t, seed, dcs, names, docs)
		}
		for _, d := range dcs {
			for range rng.IntN(3) {
				coll, id := names[rng.IntN(len(names))], fmt.Sprintf("d%d", rng.IntN(docs))
				w := Write{Collection: coll, ID: id}
				switch k := rng.IntN(10); {
				case k < 5:
					w.Op, w.Body = log.OpPut, []byte(fmt.Sprintf(`{"dc":%q,"round":%d,"k":%d}`, d.DC(), i, k))
				case k < 8:
					w.Op, w.Body = log.OpPatch, []byte(fmt.Sprintf(`{"p%d":%q}`, k, d.DC()))
				default:
					w.Op = log.OpDelete
				}
				_, err := d.Write(ctx, "anonymous", w)
				if errors.Is(err, ErrSiblingsUnresolved) {
					_, sibs, cerr := d.DocClock(ctx, coll, id, Linearizable)
					if cerr != nil {
						t.Fatal(cerr)
					}
					for _, s := range sibs {
						w.Resolves = append(w.Resolves, s.ID)
					}
					_, err = d.Write(ctx, "anonymous", w)
				}
				if err != nil && !errors.Is(err, ErrNotFound) {
					t.Fatalf("seed %d: write %+v in %s: %v", seed, w, d.DC(), err)
				}
			}
		}
		for _, l := range links {
			switch rng.IntN(4) {
			case 0: // nothing arrives this round
			case 1: // a slice, then part of it again
				evs := l.pull(t, rng.IntN(6))
				l.deliver(t, evs)
				if len(evs) > 0 {
					l.deliver(t, evs[rng.IntN(len(evs)):])
				}
			case 2: // everything pending
				l.deliver(t, l.pull(t, -1))
			case 3: // an old stretch again (an applier restarting from an older offset), then new ones
				if n := len(l.sent); n > 0 {
					from := rng.IntN(n)
					l.deliver(t, l.sent[from:min(n, from+1+rng.IntN(8))])
				}
				l.deliver(t, l.pull(t, rng.IntN(4)))
			}
		}
	}
	for _, l := range links {
		l.deliver(t, l.pull(t, -1))
	}
	converged(t, seed, dcs, names, docs)
	for _, d := range dcs {
		checkHistory(t, d)
	}
}

// converged fails the test, showing every document, unless all datacenters have equal
// content digests.
func converged(t *testing.T, seed uint64, dcs []*DB, names []string, docs int) {
	t.Helper()
	want := digest(t, dcs[0])
	same := true
	for _, d := range dcs[1:] {
		same = same && digest(t, d) == want
	}
	if same {
		return
	}
	ctx := context.Background()
	for _, c := range names {
		for i := range docs {
			id := fmt.Sprintf("d%d", i)
			line := ""
			for _, d := range dcs {
				clock, sibs, _ := d.DocClock(ctx, c, id, Linearizable)
				line += fmt.Sprintf("  %s: %s %v %d siblings", d.DC(), getBody(t, d, c, id), clock, len(sibs))
			}
			t.Logf("%s/%s:%s", c, id, line)
		}
	}
	t.Fatalf("seed %d: content digests differ", seed)
}

// shipLog is a ShipWaiter standing in for the replication log: it records what sync
// writes waited for and answers with err.
type shipLog struct {
	mu     sync.Mutex
	waited []log.Position
	err    error
}

func (s *shipLog) WaitShipped(ctx context.Context, pos log.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waited = append(s.waited, pos)
	return s.err
}

func TestPolicyAndSyncMode(t *testing.T) {
	d := openDC(t, "dcA")
	ctx := context.Background()
	if p, err := d.Policy(ctx, "orders"); err != nil || p.Mode != "async" || p.Conflict != "lww" || p.Replicate != nil {
		t.Fatalf("default policy: %+v %v", p, err)
	}
	for _, bad := range []Policy{{Mode: "eventually"}, {Conflict: "random"}, {Conflict: "dc-priority"}, {Replicate: []string{"no spaces"}}, {Conflict: "lww", Priority: []string{"dcA"}}} {
		if err := d.SetPolicy(ctx, "orders", bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("SetPolicy(%+v) = %v", bad, err)
		}
	}
	want := Policy{Replicate: []string{"dcB"}, Mode: "sync", Conflict: "dc-priority", Priority: []string{"dcB", "dcA"}}
	setPolicy(t, want, "orders", d)
	if p, err := d.Policy(ctx, "orders"); err != nil || !reflect.DeepEqual(p, want) {
		t.Fatalf("policy = %+v %v", p, err)
	}

	// No replication log: a sync write is refused before anything is written.
	w := Write{Op: log.OpPut, Collection: "orders", ID: "o1", Body: []byte(`{"n":1}`)}
	if _, err := d.Write(ctx, "anonymous", w); !errors.Is(err, ErrReplicationUnavailable) {
		t.Fatalf("sync write without a replication log: %v", err)
	}
	if items, err := d.Batch(ctx, "anonymous", []Write{w}, ""); err != nil || !errors.Is(items[0].Err, ErrReplicationUnavailable) {
		t.Fatalf("sync batch without a replication log: %+v %v", items, err)
	}
	if got := getBody(t, d, "orders", "o1"); got != "<absent>" {
		t.Fatalf("refused write is readable: %s", got)
	}

	// Acknowledged: the write waited for its own position.
	sl := &shipLog{}
	d.SetShipWaiter(sl)
	r, err := d.Write(ctx, "anonymous", w)
	if err != nil || len(sl.waited) != 1 || sl.waited[0] != r.Position {
		t.Fatalf("sync write: %+v %v, waited for %v", r, err, sl.waited)
	}
	// Not acknowledged in time: the error says the write is committed, and it is.
	sl.err = context.DeadlineExceeded
	w.Body = []byte(`{"n":2}`)
	r, err = d.Write(ctx, "anonymous", w)
	var ns *NotShippedError
	if !errors.As(err, &ns) || !errors.Is(err, ErrNotShipped) || ns.Result.Version != 2 || r.Version != 2 {
		t.Fatalf("unshipped sync write: %+v %v", r, err)
	}
	if got := getBody(t, d, "orders", "o1"); got != `{"n":2}` {
		t.Fatalf("unshipped write not committed locally: %s", got)
	}
	// Async collections never wait.
	put(t, d, "other", "x", `{}`)
	if len(sl.waited) != 2 {
		t.Fatalf("async write waited: %v", sl.waited)
	}
	// Replicate to none: nothing to wait for.
	setPolicy(t, Policy{Replicate: []string{}, Mode: "sync"}, "local", d)
	d.SetShipWaiter(nil)
	put(t, d, "local", "x", `{}`)
}
