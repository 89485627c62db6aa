package replication

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

// openDC opens a one-node datacenter.
func openDC(t *testing.T, dc string) *db.DB {
	t.Helper()
	return openDCAt(t, dc, t.TempDir(), loopback.FreeAddr(t))
}

// openDCAt opens (or reopens) a one-node datacenter in dir.
func openDCAt(t *testing.T, dc, dir, raft string) *db.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := db.Open(ctx, db.Config{DataDir: dir, NodeID: 1, RaftAddr: raft, Shards: 2, DC: dc,
		RetainEvents: -1, ArchiveInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func testConfig(dc, broker, dir string) Config {
	return Config{Brokers: []string{broker}, DC: dc, DataDir: dir, Partitions: 3,
		DiscoverInterval: 300 * time.Millisecond, FlushInterval: 50 * time.Millisecond, PolicyTTL: 100 * time.Millisecond,
		MaxBackoff: 500 * time.Millisecond}
}

func startRep(t *testing.T, cfg Config, d *db.DB) *Replicator {
	t.Helper()
	r, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	return r
}

// eventually polls cond every 50ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.After(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		select {
		case <-deadline:
			t.Fatalf("%s: not reached within %v; last: %s", what, within, last)
		case <-tick.C:
		}
	}
}

func link(st Status, dir string) LinkStatus {
	for _, l := range st.Links {
		if l.Direction == dir {
			return l
		}
	}
	return LinkStatus{}
}

// caughtUp reports whether r shipped everything and applied all it has seen.
func caughtUp(r *Replicator) (bool, string) {
	st := r.Status()
	for _, l := range st.Links {
		if l.LagEvents != 0 || (l.Direction == "ship" && l.State != "shipping") || (l.Direction == "apply" && l.Topic == "") {
			return false, fmt.Sprintf("%s link %s: state %s lag %d err %q", st.DC, l.Direction, l.State, l.LagEvents, l.LastError)
		}
	}
	return true, ""
}

// ack is one acknowledged write of the test.
type ack struct {
	dc     string
	body   string // "" for a delete
	ts     log.Timestamp
	failed bool // the write returned an error: it may or may not have happened
}

type history struct {
	mu   sync.Mutex
	docs map[string][]ack // collection/id → writes
}

func (h *history) add(key string, a ack) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.docs[key] = append(h.docs[key], a)
}

// writer writes to the documents of colls until stop closes.
func writer(ctx context.Context, d *db.DB, dc string, w int, colls []string, h *history, stop <-chan struct{}, n *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(len(dc))))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		coll, id := colls[rng.IntN(len(colls))], fmt.Sprintf("d%d", rng.IntN(6))
		wr := db.Write{Op: log.OpPut, Collection: coll, ID: id, Body: fmt.Appendf(nil, `{"dc":%q,"w":%d,"n":%d}`, dc, w, i)}
		switch rng.IntN(10) {
		case 0:
			wr.Op, wr.Body = log.OpDelete, nil
		case 1:
			// A document written once: it must reach the other datacenter as it is.
			wr.Collection, wr.ID = "uniq", fmt.Sprintf("%s-%d-%d", dc, w, i)
		}
		r, err := d.Write(ctx, "test", wr)
		if errors.Is(err, db.ErrSiblingsUnresolved) {
			// keep-both: a write to a document with siblings names them all.
			_, sibs, cerr := d.DocClock(ctx, wr.Collection, wr.ID, db.Linearizable)
			if cerr != nil {
				return cerr
			}
			for _, sb := range sibs {
				wr.Resolves = append(wr.Resolves, sb.ID)
			}
			r, err = d.Write(ctx, "test", wr)
			if errors.Is(err, db.ErrSiblingsUnresolved) {
				continue // a new sibling arrived in between: this write did not happen
			}
		}
		if errors.Is(err, db.ErrNotFound) {
			continue // deleting a deleted document
		}
		h.add(wr.Collection+"/"+wr.ID, ack{dc: dc, body: string(wr.Body), ts: r.TS, failed: err != nil})
		if err != nil {
			return fmt.Errorf("%s writer %d: %w", dc, w, err)
		}
		n.Add(1)
	}
}

// remoteEventCounts counts, in d's log, the events of other datacenters by their
// identity at the origin: collection, id, origin and the origin's counter in the clock.
func remoteEventCounts(t *testing.T, d *db.DB, local string) (map[string]int, int) {
	t.Helper()
	sub, err := d.Subscribe(db.SubscribeRequest{From: "beginning"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	counts, total := map[string]int{}, 0
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == feed.KindCaughtUp {
			return counts, total
		}
		if m.Kind != feed.KindEvent || m.Raw.Origin == local {
			continue
		}
		total++
		counts[fmt.Sprintf("%s/%s@%s:%d", m.Raw.Collection, m.Raw.ID, m.Raw.Origin, m.Raw.Clock[m.Raw.Origin])]++
	}
}

// TestTwoDatacentersConverge: two one-node datacenters write the same documents
// concurrently (lww, dc-priority and keep-both collections, puts and deletes, plus
// documents written once) while the broker is
// stopped and restarted on the same port, east's replicator is restarted, and west's
// applier fails once between applying a batch and committing its offsets. Then both
// must hold the same content, every acknowledged write must be present or superseded
// as the rule says, and no remote event may appear twice in a log.
func TestTwoDatacentersConverge(t *testing.T) {
	phase := 1500 * time.Millisecond
	if testing.Short() {
		phase = 800 * time.Millisecond
	}
	kaddr, kdir := loopback.FreeAddr(t), t.TempDir()
	k, err := StartDevKafka(kaddr, kdir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { k.Close() }()
	east, west := openDC(t, "east"), openDC(t, "west")
	ctx := context.Background()
	for _, d := range []*db.DB{east, west} {
		if err := d.SetPolicy(ctx, "prio", db.Policy{Conflict: "dc-priority", Priority: []string{"east", "west"}}); err != nil {
			t.Fatal(err)
		}
		if err := d.SetPolicy(ctx, "both", db.Policy{Conflict: "keep-both"}); err != nil {
			t.Fatal(err)
		}
	}
	eastDir, westDir := t.TempDir(), t.TempDir()
	ecfg := testConfig("east", kaddr, eastDir)
	ecfg.Remotes = []string{"west"} // east names its remote; west discovers topics
	er := startRep(t, ecfg, east)
	defer func() { er.Close() }()
	wr, err := New(testConfig("west", kaddr, westDir), west)
	if err != nil {
		t.Fatal(err)
	}
	var crashed atomic.Bool
	wr.apply.testHookAfterApply = func(n int) error {
		if n > 0 && crashed.CompareAndSwap(false, true) {
			return errors.New("test: applier stops after applying, before committing")
		}
		return nil
	}
	wr.Start()
	defer wr.Close()

	h := &history{docs: map[string][]ack{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	errs := make(chan error, 4)
	for w := range 2 {
		for _, d := range []*db.DB{east, west} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dc := "east"
				if d == west {
					dc = "west"
				}
				if err := writer(ctx, d, dc, w, []string{"lww", "prio", "both"}, h, stop, &writes); err != nil {
					errs <- err
				}
			}()
		}
	}
	pause := func(d time.Duration) {
		t.Helper()
		select {
		case err := <-errs:
			close(stop)
			wg.Wait()
			t.Fatal(err)
		case <-time.After(d): // the writers run for this long
		}
	}
	pause(phase)
	// The broker goes away; both datacenters keep accepting writes.
	k.Close()
	before := writes.Load()
	eventually(t, 20*time.Second, "east's shipper notices the broker is gone", func() (bool, string) {
		l := link(er.Status(), "ship")
		return l.State != "shipping" && l.State != "starting", l.State
	})
	pause(phase / 2)
	if writes.Load() == before {
		t.Fatal("no write was accepted while the broker was down")
	}
	if l := link(er.Status(), "ship"); l.LagEvents == 0 || l.LagSeconds <= 0 || l.LastError == "" {
		t.Fatalf("east's ship link with the broker down: %+v, want lag and an error", l)
	}
	if k, err = StartDevKafka(kaddr, kdir); err != nil {
		t.Fatalf("restart broker on %s: %v", kaddr, err)
	}
	pause(phase / 2)
	// East's replicator restarts: it resumes from its progress file.
	er.Close()
	er = startRep(t, ecfg, east)
	pause(phase)
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("%d acknowledged writes", writes.Load())

	eventually(t, 60*time.Second, "both datacenters converge", func() (bool, string) {
		for _, r := range []*Replicator{er, wr} {
			if ok, why := caughtUp(r); !ok {
				return false, why
			}
		}
		de, err1 := east.ContentDigest()
		dw, err2 := west.ContentDigest()
		if err1 != nil || err2 != nil {
			return false, fmt.Sprint(err1, err2)
		}
		return de == dw, fmt.Sprintf("digests %x vs %x", de[:6], dw[:6])
	})
	if !crashed.Load() {
		t.Fatal("west's applier never stopped mid-batch")
	}

	// Every acknowledged write is present or superseded as the rule says.
	for key, acks := range h.docs {
		coll, id, _ := strings.Cut(key, "/")
		var final []string
		for _, d := range []*db.DB{east, west} {
			doc, err := d.Get(ctx, coll, id, db.Linearizable)
			switch {
			case errors.Is(err, db.ErrNotFound):
				final = append(final, "")
			case err != nil:
				t.Fatal(err)
			default:
				final = append(final, string(doc.Body))
			}
		}
		if final[0] != final[1] {
			t.Fatalf("%s: east has %q, west %q", key, final[0], final[1])
		}
		found, anyFailed := false, false
		var latest ack
		for _, a := range acks {
			found = found || a.body == final[0]
			anyFailed = anyFailed || a.failed
			if !a.failed && (a.ts > latest.ts || a.ts == latest.ts && a.dc > latest.dc) {
				latest = a
			}
		}
		if !found {
			t.Fatalf("%s: final state %q is none of the %d writes", key, final[0], len(acks))
		}
		if coll == "lww" && !anyFailed && latest.body != final[0] {
			t.Fatalf("%s (lww): final %q, but the latest acknowledged write is %q from %s at %s", key, final[0], latest.body, latest.dc, latest.ts)
		}
	}

	if cs, err := east.Conflicts(ctx, "both", 0, db.Linearizable); err == nil {
		t.Logf("keep-both: %d documents with open conflicts at the end", len(cs))
	}

	// Nothing applied twice.
	for _, x := range []struct {
		d  *db.DB
		dc string
	}{{east, "east"}, {west, "west"}} {
		counts, total := remoteEventCounts(t, x.d, x.dc)
		if total == 0 {
			t.Fatalf("%s applied no remote event", x.dc)
		}
		for id, n := range counts {
			if n != 1 {
				t.Fatalf("%s: remote event %s appears %d times", x.dc, id, n)
			}
		}
		t.Logf("%s: %d remote events in the log, each once", x.dc, total)
	}
	st := wr.Status()
	if l := link(st, "apply"); l.Events == 0 || l.Errors == 0 {
		t.Fatalf("west's apply link: %+v", l)
	}
}
