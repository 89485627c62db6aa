package materializer_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/aerolithsdb/aerolith/tiers/memory"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

const testShard = 1

// node is one replica's materializer over a real pebble store and L1 cache.
type node struct {
	dir   string
	store *l2.DB
	m     *materializer.Materializer
	sm    log.StateMachine
}

// openNode opens (or reopens) the store in dir and the state machine of testShard. It does
// not call Open on the state machine.
func openNode(tb testing.TB, dir string) *node {
	tb.Helper()
	store, err := l2.Open(l2.Config{Dir: dir, CacheBytes: 8 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	cache, err := memory.New(memory.Config{MaxBytes: 8 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	codec := log.NewCodec(0)
	m, err := materializer.New(materializer.Config{Store: store, Cache: cache, Codec: codec})
	if err != nil {
		tb.Fatal(err)
	}
	n := &node{dir: dir, store: store, m: m, sm: m.StateMachine(testShard)}
	tb.Cleanup(func() {
		codec.Close()
		if n.store != nil {
			n.store.Close()
		}
	})
	return n
}

func newNode(tb testing.TB) *node {
	tb.Helper()
	n := openNode(tb, tb.TempDir())
	if applied, err := n.sm.Open(); err != nil || applied != 0 {
		tb.Fatalf("Open of a fresh store = %d, %v; want 0", applied, err)
	}
	return n
}

// close closes the node's store (the state machine's Close releases nothing of its own).
func (n *node) close(tb testing.TB) {
	tb.Helper()
	if err := n.sm.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := n.store.Close(); err != nil {
		tb.Fatal(err)
	}
	n.store = nil
}

func (n *node) digest(tb testing.TB) log.Hash {
	tb.Helper()
	h, err := n.m.Digest(testShard)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// apply applies entries in chunks of the given sizes (cycled), as dragonboat hands a
// replica whatever batch it has.
func (n *node) apply(tb testing.TB, entries []log.Entry, chunks ...int) {
	tb.Helper()
	if len(chunks) == 0 {
		chunks = []int{len(entries)}
	}
	for i, c := 0, 0; i < len(entries); c++ {
		j := min(i+chunks[c%len(chunks)], len(entries))
		if err := n.sm.Apply(entries[i:j]); err != nil {
			tb.Fatalf("Apply entries %d..%d: %v", entries[i].Index, entries[j-1].Index, err)
		}
		i = j
	}
}

// workload generates a deterministic mix of commands over a small key space: puts,
// patches, deletes, conditional writes, multi-write commands, and exact repeats of
// earlier commands carrying request ids (client retries). Keys and request ids are
// returned so tests can read back every document.
type workload struct {
	r       *rand.Rand
	ts      log.Timestamp
	idemTTL uint64
	sent    [][]byte // encoded commands with request ids, for repeats
	keys    map[tiers.Key]bool
	nextReq int
}

func newWorkload(seed uint64) *workload {
	return &workload{
		r:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ts:      log.MakeTimestamp(1_700_000_000_000, 0),
		idemTTL: uint64(time.Hour / time.Millisecond),
		keys:    map[tiers.Key]bool{},
	}
}

func (w *workload) write() materializer.Write {
	coll := []string{"orders", "users", "items"}[w.r.IntN(3)]
	id := fmt.Sprintf("k%d", w.r.IntN(40))
	w.keys[tiers.Key{Shard: testShard, Collection: coll, ID: id}] = true
	wr := materializer.Write{Collection: coll, ID: id}
	switch p := w.r.IntN(100); {
	case p < 50:
		wr.Op = log.OpPut
		wr.Body = fmt.Appendf(nil, `{"n":%d,"tag":%q,"nested":{"a":%d}}`, w.r.IntN(1000), strings.Repeat("x", w.r.IntN(40)), w.r.IntN(5))
	case p < 80:
		wr.Op = log.OpPatch
		wr.Body = fmt.Appendf(nil, `{"n":%d,"tag":null,"nested":{"b":%d}}`, w.r.IntN(1000), w.r.IntN(5))
	case p < 95:
		wr.Op = log.OpDelete
	default:
		wr.Op = log.OpPut
		wr.Body = []byte(`[1,2]`) // not an object: StatusInvalid
	}
	switch w.r.IntN(10) {
	case 0:
		wr.HasIfMatch, wr.IfMatch = true, uint64(w.r.IntN(4))
	case 1:
		wr.IfNoneMatch = true
	}
	if w.r.IntN(3) == 0 {
		w.nextReq++
		wr.RequestID = fmt.Sprintf("req-%d", w.nextReq)
	}
	return wr
}

func (w *workload) command() []byte {
	if len(w.sent) > 0 && w.r.IntN(8) == 0 {
		return w.sent[w.r.IntN(len(w.sent))] // a client retry of an earlier command
	}
	w.ts += log.Timestamp(w.r.IntN(3) << 16) // 0–2 ms later; equal readings are allowed
	c := materializer.Command{TS: w.ts, Origin: "dc1", Principal: "tester", IdemTTL: w.idemTTL}
	for range 1 + w.r.IntN(3) {
		c.Writes = append(c.Writes, w.write())
	}
	b := materializer.EncodeCommand(&c)
	for _, wr := range c.Writes {
		if wr.RequestID != "" {
			w.sent = append(w.sent, b)
			break
		}
	}
	return b
}

// entries returns n raft entries starting at raft index first. Some are empty, as raft's
// own entries (elections, config changes) are.
func (w *workload) entries(first uint64, n int) []log.Entry {
	out := make([]log.Entry, n)
	for i := range out {
		out[i].Index = first + uint64(i)
		if w.r.IntN(20) == 0 {
			continue
		}
		for range 1 + w.r.IntN(4) {
			out[i].Cmds = append(out[i].Cmds, w.command())
		}
	}
	return out
}

func (w *workload) sortedKeys() []tiers.Key {
	out := make([]tiers.Key, 0, len(w.keys))
	for k := range w.keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Collection < out[j].Collection || out[i].Collection == out[j].Collection && out[i].ID < out[j].ID
	})
	return out
}

// results flattens the results Apply set on entries.
func results(entries []log.Entry) [][]byte {
	var out [][]byte
	for _, e := range entries {
		out = append(out, e.Results...)
	}
	return out
}

// sameDocs checks that two nodes read every key alike, through their read paths.
func sameDocs(t *testing.T, a, b *node, keys []tiers.Key) {
	t.Helper()
	for _, k := range keys {
		da, ea := a.m.Get(k)
		db, eb := b.m.Get(k)
		if (ea == nil) != (eb == nil) || (ea != nil && !errors.Is(ea, eb)) {
			t.Fatalf("%v: errors differ: %v vs %v", k, ea, eb)
		}
		if da.Version != db.Version || da.TS != db.TS || da.Deleted != db.Deleted || da.Position != db.Position || !bytes.Equal(da.Body, db.Body) {
			t.Fatalf("%v: documents differ:\n%+v %s\n%+v %s", k, da, da.Body, db, db.Body)
		}
		ha, err := a.m.History(k)
		if err != nil {
			t.Fatal(err)
		}
		hb, err := b.m.History(k)
		if err != nil {
			t.Fatal(err)
		}
		if len(ha) != len(hb) {
			t.Fatalf("%v: history of %d vs %d versions", k, len(ha), len(hb))
		}
	}
}

// TestApplyOutcomes checks a short scripted sequence, including a retried command
// answered from its idempotency record.
func TestApplyOutcomes(t *testing.T) {
	n := newNode(t)
	ts := log.MakeTimestamp(1_700_000_000_000, 0)
	cmd := func(ws ...materializer.Write) []byte {
		ts += 1 << 16
		return materializer.EncodeCommand(&materializer.Command{TS: ts, Origin: "dc1", Principal: "p", IdemTTL: 60_000, Writes: ws})
	}
	put := cmd(materializer.Write{Op: log.OpPut, Collection: "c", ID: "1", Body: []byte(`{"a":1}`), RequestID: "r1"})
	entries := []log.Entry{
		{Index: 10, Cmds: [][]byte{put}},
		{Index: 11, Cmds: [][]byte{
			cmd(materializer.Write{Op: log.OpPatch, Collection: "c", ID: "1", Body: []byte(`{"b":2}`), HasIfMatch: true, IfMatch: 1}),
			put, // the client retries r1: answered, not applied
			cmd(materializer.Write{Op: log.OpDelete, Collection: "c", ID: "missing"}),
			cmd(
				materializer.Write{Op: log.OpPut, Collection: "c", ID: "2", Body: []byte(`{}`)},
				materializer.Write{Op: log.OpPut, Collection: "c", ID: "3", Body: []byte(`{}`), IfNoneMatch: true},
				materializer.Write{Op: log.OpPatch, Collection: "c", ID: "1", Body: []byte(`{}`), HasIfMatch: true, IfMatch: 1}, // stale
			),
		}},
		{Index: 12}, // raft's own empty entry
	}
	n.apply(t, entries)

	want := []struct {
		entry, cmd int
		statuses   []materializer.Status
	}{
		{0, 0, []materializer.Status{materializer.StatusCreated}},
		{1, 0, []materializer.Status{materializer.StatusOK}},
		{1, 1, []materializer.Status{materializer.StatusCreated}},
		{1, 2, []materializer.Status{materializer.StatusNotFound}},
		{1, 3, []materializer.Status{materializer.StatusAborted, materializer.StatusAborted, materializer.StatusPrecondition}},
	}
	for _, w := range want {
		rs, err := materializer.DecodeResults(entries[w.entry].Results[w.cmd])
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != len(w.statuses) {
			t.Fatalf("entry %d cmd %d: %d results", w.entry, w.cmd, len(rs))
		}
		for i, s := range w.statuses {
			if rs[i].Status != s {
				t.Errorf("entry %d cmd %d write %d: status %d, want %d (%+v)", w.entry, w.cmd, i, rs[i].Status, s, rs[i])
			}
		}
	}
	replay, _ := materializer.DecodeResults(entries[1].Results[1])
	first, _ := materializer.DecodeResults(entries[0].Results[0])
	if !replay[0].Replayed || replay[0].Version != first[0].Version || replay[0].Position != first[0].Position {
		t.Fatalf("retry not answered from the idempotency record: %+v vs %+v", replay[0], first[0])
	}
	stale, _ := materializer.DecodeResults(entries[1].Results[3])
	if stale[2].Current != 2 {
		t.Errorf("precondition result reports current version %d, want 2", stale[2].Current)
	}

	d, err := n.m.Get(tiers.Key{Shard: testShard, Collection: "c", ID: "1"})
	if err != nil || d.Version != 2 || string(d.Body) != `{"a":1,"b":2}` || d.Position.Index != 2 {
		t.Fatalf("c/1 = %+v %s, %v", d, d.Body, err)
	}
	for _, id := range []string{"2", "3", "missing"} {
		if _, err := n.m.Get(tiers.Key{Shard: testShard, Collection: "c", ID: id}); !errors.Is(err, tiers.ErrNotFound) {
			t.Errorf("c/%s: %v, want ErrNotFound (aborted or missing)", id, err)
		}
	}
	if applied, err := n.sm.Open(); err != nil || applied != 12 {
		t.Fatalf("Open = %d, %v; want 12", applied, err)
	}
	// The event store holds exactly two events, chained.
	raw, err := n.store.Event(testShard, 2)
	if err != nil {
		t.Fatal(err)
	}
	codec := log.NewCodec(0)
	defer codec.Close()
	ev2, err := codec.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	raw1, _ := n.store.Event(testShard, 1)
	ev1, _ := codec.Decode(raw1)
	if ev2.PrevHash != ev1.Hash() || ev2.Op != log.OpPatch || ev2.PrevVersion != 1 || ev2.TS <= ev1.TS {
		t.Fatalf("event 2 does not chain to event 1: %+v", ev2)
	}
	if _, err := n.store.Event(testShard, 3); !errors.Is(err, tiers.ErrNotFound) {
		t.Fatalf("event 3: %v, want ErrNotFound", err)
	}
}

func TestApplyDeterministic(t *testing.T) {
	const seed, count = 7, 300
	a, b := newNode(t), newNode(t)
	ea := newWorkload(seed).entries(5, count)
	eb := newWorkload(seed).entries(5, count)
	a.apply(t, ea)
	b.apply(t, eb)
	if a.digest(t) != b.digest(t) {
		t.Fatal("same entries, same batches: digests differ")
	}
	ra, rb := results(ea), results(eb)
	for i := range ra {
		if !bytes.Equal(ra[i], rb[i]) {
			t.Fatalf("result %d differs: %x vs %x", i, ra[i], rb[i])
		}
	}
	var zero log.Hash
	if a.digest(t) == zero {
		t.Fatal("zero digest")
	}
}

// TestApplyBatchingDoesNotMatter: replicas get the same entries in different Apply
// batches (dragonboat batches per replica), and must still agree.
func TestApplyBatchingDoesNotMatter(t *testing.T) {
	const seed, count = 11, 300
	w := newWorkload(seed)
	a, b := newNode(t), newNode(t)
	ea := w.entries(1, count)
	eb := newWorkload(seed).entries(1, count)
	a.apply(t, ea)
	b.apply(t, eb, 1, 3, 7, 2, 64)
	if a.digest(t) != b.digest(t) {
		t.Fatal("same entries in different batches: digests differ")
	}
	ra, rb := results(ea), results(eb)
	for i := range ra {
		if !bytes.Equal(ra[i], rb[i]) {
			t.Fatalf("result %d differs: %x vs %x", i, ra[i], rb[i])
		}
	}
	sameDocs(t, a, b, w.sortedKeys())
}

// TestOpenReturnsAppliedIndex: after a restart the state machine reports the last raft
// index it applied, so the log re-applies nothing at or below it.
func TestOpenReturnsAppliedIndex(t *testing.T) {
	w := newWorkload(3)
	n := newNode(t)
	entries := w.entries(100, 250)
	n.apply(t, entries, 10)
	last := entries[len(entries)-1].Index
	if applied, err := n.sm.Open(); err != nil || applied != last {
		t.Fatalf("Open before restart = %d, %v; want %d", applied, err, last)
	}
	if err := n.sm.Sync(); err != nil {
		t.Fatal(err)
	}
	before := n.digest(t)
	dir := n.dir
	n.close(t)

	r := openNode(t, dir)
	applied, err := r.sm.Open()
	if err != nil || applied != last {
		t.Fatalf("Open after restart = %d, %v; want %d", applied, err, last)
	}
	if r.digest(t) != before {
		t.Fatal("digest changed across restart")
	}
	// Carrying on after the restart matches a replica that never stopped.
	more := w.entries(last+1, 50)
	ref := newNode(t)
	ref.apply(t, entries)
	ref.apply(t, more)
	r.apply(t, more)
	if r.digest(t) != ref.digest(t) {
		t.Fatal("restarted replica diverged from one that never stopped")
	}
	if applied, _ := r.sm.Open(); applied != last+50 {
		t.Fatalf("Open = %d, want %d", applied, last+50)
	}
}

func snapshot(t *testing.T, n *node) []byte {
	t.Helper()
	ctx, err := n.sm.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := n.sm.SaveSnapshot(ctx, &buf, make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotRecover(t *testing.T) {
	w := newWorkload(42)
	src := newNode(t)
	entries := w.entries(1, 400)
	src.apply(t, entries, 16)
	last := entries[len(entries)-1].Index
	snap := snapshot(t, src)

	dst := newNode(t)
	// Give the destination some state of its own first: recovery replaces it.
	dst.apply(t, newWorkload(99).entries(1, 30))
	if err := dst.sm.RecoverFromSnapshot(bytes.NewReader(snap), make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	if src.digest(t) != dst.digest(t) {
		t.Fatal("digest of the recovered replica differs from the source")
	}
	if applied, err := dst.sm.Open(); err != nil || applied != last {
		t.Fatalf("Open after recovery = %d, %v; want %d", applied, err, last)
	}
	sameDocs(t, src, dst, w.sortedKeys())
	// Keys only the destination had before recovery are gone, from L1 too.
	for k := range newWorkload(99).keysOf(30) {
		if w.keys[k] {
			continue
		}
		if _, err := dst.m.Get(k); !errors.Is(err, tiers.ErrNotFound) {
			t.Fatalf("%v survived recovery: %v", k, err)
		}
	}

	// Both carry on identically.
	more := w.entries(last+1, 100)
	src.apply(t, more)
	dst.apply(t, more)
	if src.digest(t) != dst.digest(t) {
		t.Fatal("replicas diverged after recovery")
	}
	sameDocs(t, src, dst, w.sortedKeys())
}

// keysOf returns the keys the first n entries of this workload touch.
func (w *workload) keysOf(n int) map[tiers.Key]bool {
	w.entries(1, n)
	return w.keys
}

func TestSnapshotCorruptRejected(t *testing.T) {
	src := newNode(t)
	src.apply(t, newWorkload(5).entries(1, 120))
	snap := snapshot(t, src)

	dst := newNode(t)
	w := newWorkload(6)
	entries := w.entries(1, 40)
	dst.apply(t, entries)
	before := dst.digest(t)
	applied, _ := dst.sm.Open()

	positions := []int{0, 1, len(snap) / 3, len(snap) / 2, len(snap) - 40, len(snap) - 33, len(snap) - 1}
	r := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		positions = append(positions, r.IntN(len(snap)))
	}
	for _, pos := range positions {
		bad := append([]byte(nil), snap...)
		bad[pos] ^= 0x01
		err := dst.sm.RecoverFromSnapshot(bytes.NewReader(bad), make(chan struct{}))
		if !errors.Is(err, l2.ErrCorruptSnapshot) {
			t.Fatalf("byte %d of %d flipped: RecoverFromSnapshot = %v, want ErrCorruptSnapshot", pos, len(snap), err)
		}
	}
	for _, n := range []int{0, 1, len(snap) / 2, len(snap) - 1} {
		if err := dst.sm.RecoverFromSnapshot(bytes.NewReader(snap[:n]), make(chan struct{})); !errors.Is(err, l2.ErrCorruptSnapshot) {
			t.Fatalf("snapshot cut at %d of %d bytes: %v, want ErrCorruptSnapshot", n, len(snap), err)
		}
	}
	// A rejected snapshot leaves the replica's state as it was.
	if dst.digest(t) != before {
		t.Fatal("a rejected snapshot changed the replica's state")
	}
	if got, _ := dst.sm.Open(); got != applied {
		t.Fatalf("applied index %d after rejected snapshots, want %d", got, applied)
	}
	// And the good one still applies.
	if err := dst.sm.RecoverFromSnapshot(bytes.NewReader(snap), make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	if dst.digest(t) != src.digest(t) {
		t.Fatal("digest differs after recovering the intact snapshot")
	}
}

func TestSnapshotStopped(t *testing.T) {
	src := newNode(t)
	src.apply(t, newWorkload(8).entries(1, 50))
	ctx, err := src.sm.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	close(done)
	var buf bytes.Buffer
	if err := src.sm.SaveSnapshot(ctx, &buf, done); err == nil {
		t.Fatal("SaveSnapshot with done closed succeeded")
	}
}

// BenchmarkApply applies one raft entry per iteration holding 64 commands, each one put
// of a 256-byte document to a distinct key, the commands 1 ms apart. Apply commits without
// fsync by design (the raft log is the durable record), so this measures the materializer
// and pebble's memtable path, not the disk. retry_token gives each command a retry token
// remembered for 60 s, as db does for writes without idempotency keys.
func BenchmarkApply(b *testing.B) {
	for _, retry := range []bool{false, true} {
		name := "plain"
		if retry {
			name = "retry_token"
		}
		b.Run(name, func(b *testing.B) { benchmarkApply(b, retry) })
	}
}

func benchmarkApply(b *testing.B, retry bool) {
	const perEntry, bodySize = 64, 256
	n := openNode(b, b.TempDir())
	if _, err := n.sm.Open(); err != nil {
		b.Fatal(err)
	}
	pad := strings.Repeat("x", bodySize-len(`{"i":0000000000,"pad":""}`))
	var id uint64
	next := func(index uint64) log.Entry {
		e := log.Entry{Index: index, Cmds: make([][]byte, perEntry)}
		for i := range e.Cmds {
			id++
			body := fmt.Appendf(nil, `{"i":%10d,"pad":%q}`, id, pad)
			cmd := &materializer.Command{
				TS: log.MakeTimestamp(1_700_000_000_000+int64(id), 0), Origin: "dc1", Principal: "bench",
				Writes: []materializer.Write{{Op: log.OpPut, Collection: "bench", ID: fmt.Sprintf("doc-%d", id), Body: body}},
			}
			if retry {
				cmd.Retry, cmd.RetryTTL = fmt.Sprintf("%026d", id), 60_000
			}
			e.Cmds[i] = materializer.EncodeCommand(cmd)
		}
		return e
	}
	if len(next(0).Cmds[0]) < bodySize {
		b.Fatal("body shorter than intended")
	}
	// Commands are encoded outside the timer, a chunk at a time (stopping the timer on
	// every iteration would cost more than it hides).
	b.ReportAllocs()
	b.SetBytes(perEntry * bodySize)
	var index uint64
	var pending []log.Entry
	var last log.Entry
	for b.Loop() {
		if len(pending) == 0 {
			b.StopTimer()
			for range 256 {
				index++
				pending = append(pending, next(index))
			}
			b.StartTimer()
		}
		if err := n.sm.Apply(pending[:1]); err != nil {
			b.Fatal(err)
		}
		last = pending[0]
		pending = pending[1:]
	}
	for _, r := range last.Results {
		if rs, err := materializer.DecodeResults(r); err != nil || !rs[0].Status.Applied() {
			b.Fatalf("a write of the last entry was not applied: %+v %v", rs, err)
		}
	}
	applied := index - uint64(len(pending))
	b.ReportMetric(float64(applied*perEntry)/b.Elapsed().Seconds(), "events/s")
}
