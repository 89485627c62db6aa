package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
)

// smState is what a test state machine of one shard has applied: it survives a Host's
// restart, as a state machine's disk does.
type smState struct {
	applied uint64
	count   uint64 // commands applied
	sum     uint64 // fnv64a over the commands, in order
}

// smDisk is one node's state machines (their "disk") and what the log did to them.
type smDisk struct {
	mu         sync.Mutex
	states     map[uint64]*smState
	opens      map[uint64]int
	closes     map[uint64]int
	recoveries map[uint64]int
}

func newDisk() *smDisk {
	return &smDisk{states: map[uint64]*smState{}, opens: map[uint64]int{}, closes: map[uint64]int{}, recoveries: map[uint64]int{}}
}

// drop forgets shard's state, as the materializer's Drop does.
func (d *smDisk) drop(shard uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.states, shard)
}

func (d *smDisk) state(shard uint64) smState {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.states[shard]; s != nil {
		return *s
	}
	return smState{}
}

func (d *smDisk) counts(shard uint64) (opens, closes, recoveries int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opens[shard], d.closes[shard], d.recoveries[shard]
}

// diskSM is a StateMachine over an smDisk: it applies by counting and hashing commands,
// answers each command with itself, and snapshots its whole state.
type diskSM struct {
	d     *smDisk
	shard uint64
}

func (s *diskSM) st() *smState {
	st := s.d.states[s.shard]
	if st == nil {
		st = &smState{}
		s.d.states[s.shard] = st
	}
	return st
}

func (s *diskSM) Open() (uint64, error) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.opens[s.shard]++
	return s.st().applied, nil
}

func (s *diskSM) Apply(es []Entry) error {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	st := s.st()
	for i := range es {
		es[i].Results = make([][]byte, len(es[i].Cmds))
		for j, c := range es[i].Cmds {
			h := fnv.New64a()
			h.Write(binary.BigEndian.AppendUint64(nil, st.sum))
			h.Write(c)
			st.sum = h.Sum64()
			st.count++
			es[i].Results[j] = c
		}
		st.applied = es[i].Index
	}
	return nil
}

func (s *diskSM) Sync() error { return nil }

func (s *diskSM) PrepareSnapshot() (any, error) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	return *s.st(), nil
}

func (s *diskSM) SaveSnapshot(c any, w io.Writer, _ <-chan struct{}) error {
	st := c.(smState)
	b := binary.BigEndian.AppendUint64(nil, st.applied)
	b = binary.BigEndian.AppendUint64(b, st.count)
	b = binary.BigEndian.AppendUint64(b, st.sum)
	_, err := w.Write(b)
	return err
}

func (s *diskSM) RecoverFromSnapshot(r io.Reader, _ <-chan struct{}) error {
	b := make([]byte, 24)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.recoveries[s.shard]++
	*s.st() = smState{applied: binary.BigEndian.Uint64(b), count: binary.BigEndian.Uint64(b[8:]), sum: binary.BigEndian.Uint64(b[16:])}
	return nil
}

func (s *diskSM) Close() error {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.closes[s.shard]++
	return nil
}

// testNode is one node of a test cluster: its Host, its directory and its state machines.
type testNode struct {
	id   uint64
	addr string
	dir  string
	disk *smDisk
	cfg  Config
	h    *Host
}

const testShards = 2

var cmdSeq atomic.Uint64 // makes every test command distinct

// startCluster starts three voting nodes of testShards shards, and a fourth that joins
// every shard as a non-voting replica and catches up. snapshotEvery is SnapshotEntries.
func startCluster(t *testing.T, snapshotEvery uint64) []*testNode {
	t.Helper()
	members := map[uint64]string{}
	nodes := make([]*testNode, 4)
	for i := range nodes {
		id := uint64(i + 1)
		n := &testNode{id: id, addr: loopback.FreeAddr(t), dir: t.TempDir(), disk: newDisk()}
		n.cfg = Config{
			NodeID: id, RaftAddr: n.addr, Dir: n.dir, Shards: testShards,
			RTT: 10 * time.Millisecond, ElectionRTT: 20, HeartbeatRTT: 2,
			SnapshotEntries: snapshotEvery, DrainTimeout: -1,
			NewStateMachine: func(shard uint64) StateMachine { return &diskSM{d: n.disk, shard: shard} },
		}
		if id <= 3 {
			members[id] = n.addr
		}
		nodes[i] = n
	}
	for _, n := range nodes[:3] {
		n.cfg.InitialMembers = members
		n.open(t)
	}
	for _, n := range nodes[:3] {
		waitReady(t, n.h)
	}
	for shard := uint64(1); shard <= testShards; shard++ {
		propose(t, nodes[0].h, shard, 10)
		retry(t, fmt.Sprintf("add node 4 to shard %d", shard), func(ctx context.Context) error {
			return nodes[0].h.AddNonVoting(ctx, shard, 4, nodes[3].addr)
		})
	}
	nodes[3].cfg.Join = true
	nodes[3].open(t)
	waitReady(t, nodes[3].h)
	for shard := uint64(1); shard <= testShards; shard++ {
		waitCaughtUp(t, nodes[0], nodes[3], shard)
	}
	return nodes
}

func (n *testNode) open(t *testing.T) {
	t.Helper()
	h, err := Open(n.cfg)
	if err != nil {
		t.Fatalf("open node %d: %v", n.id, err)
	}
	n.h = h
	t.Cleanup(func() { h.Close() })
}

func (n *testNode) restart(t *testing.T) {
	t.Helper()
	if err := n.h.Close(); err != nil {
		t.Fatal(err)
	}
	n.open(t)
}

func waitReady(t *testing.T, h *Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatalf("node %d not ready: %v", h.cfg.NodeID, err)
	}
}

// retry runs op until it succeeds or returns something other than ErrUnavailable, for
// at most 30 s.
func retry(t *testing.T, what string, op func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := op(ctx)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrIndeterminate) {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-tick.C:
		}
	}
}

// propose commits n commands to shard through h, each distinct from every other.
func propose(t *testing.T, h *Host, shard uint64, n int) {
	t.Helper()
	for range n {
		cmd := fmt.Appendf(nil, "cmd-%d", cmdSeq.Add(1))
		retry(t, "propose", func(ctx context.Context) error {
			res, err := h.Propose(ctx, shard, cmd)
			if err == nil && string(res) != string(cmd) {
				t.Fatalf("propose %q: result %q", cmd, res)
			}
			return err
		})
	}
}

// poll waits until cond holds, checking every 10 ms for at most 30 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// waitCaughtUp waits until follower's replica of shard has applied as far as leader's
// was at the call, reports it (Applied), and holds the same state as leader's.
func waitCaughtUp(t *testing.T, leader, follower *testNode, shard uint64) {
	t.Helper()
	want := leader.h.Applied()[shard]
	var ls, fs smState
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ls, fs = leader.disk.state(shard), follower.disk.state(shard)
		if fs.applied >= want && fs == ls && follower.h.Applied()[shard] == fs.applied {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shard %d: node %d at index %d (%d commands, sum %x, reports %d), node %d at %d (%d commands, sum %x); want index %d",
				shard, follower.id, fs.applied, fs.count, fs.sum, follower.h.Applied()[shard], leader.id, ls.applied, ls.count, ls.sum, want)
		}
		<-tick.C
	}
}

// checkNotHosted checks that h refuses shard at once in every per-shard call and leaves
// it out of what it reports.
func checkNotHosted(t *testing.T, h *Host, shard uint64) {
	t.Helper()
	if h.Hosts(shard) || h.Runs(shard) || h.ReplicaOf(shard) != 0 {
		t.Fatalf("after drop: Hosts %v, Runs %v, ReplicaOf %d", h.Hosts(shard), h.Runs(shard), h.ReplicaOf(shard))
	}
	if slices.Contains(h.Hosted(), shard) {
		t.Fatalf("Hosted() = %v includes dropped shard %d", h.Hosted(), shard)
	}
	if _, ok := h.Applied()[shard]; ok {
		t.Fatalf("Applied() reports dropped shard %d", shard)
	}
	if _, ok := h.Leader(shard); ok {
		t.Fatalf("Leader of dropped shard %d known", shard)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	calls := map[string]func() error{
		"Propose":     func() error { _, err := h.Propose(ctx, shard, []byte("x")); return err },
		"ReadBarrier": func() error { return h.ReadBarrier(ctx, shard) },
		"Membership":  func() error { _, err := h.Membership(ctx, shard); return err },
		"AddNonVoting": func() error {
			return h.AddNonVoting(ctx, shard, ReplicaID(9, 0), "127.0.0.1:1")
		},
		"RemoveReplica":  func() error { return h.RemoveReplica(ctx, shard, 1) },
		"TransferLeader": func() error { return h.TransferLeader(ctx, shard, 1) },
		"Rejoin":         func() error { return h.Rejoin(ctx, shard, ReplicaID(h.cfg.NodeID, 9)) },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, ErrNotHosted) {
			t.Errorf("%s on a dropped shard: %v, want ErrNotHosted", name, err)
		}
		// At once: the timeouts it would otherwise wait out are seconds.
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s on a dropped shard took %s", name, d)
		}
	}
	for _, st := range h.Status(ctx).Shards {
		if st.Shard == shard {
			t.Errorf("Status reports dropped shard %d", shard)
		}
	}
	if !h.Ready() {
		t.Error("Ready false with the dropped shard the only one without a leader here")
	}
	if err := h.WaitReady(ctx); err != nil {
		t.Errorf("WaitReady: %v", err)
	}
}

// A node drops its replica of a shard after the shard removed it: every per-shard call
// refuses at once, the other shard is served as before, a restart leaves the shard
// dropped, and Adopt starts an empty replica under the next id that catches up from the
// leader through the log.
func TestDropAndAdopt(t *testing.T) {
	nodes := startCluster(t, 0)
	n1, n4 := nodes[0], nodes[3]
	const shard = 1

	retry(t, "remove node 4's replica", func(ctx context.Context) error {
		return n1.h.RemoveReplica(ctx, shard, 4)
	})
	// Dragonboat unloads a removed replica once it applies its own removal, which it
	// may not: Drop works either way.
	t.Logf("node 4's replica loaded after its removal: %v", n4.h.Hosts(shard))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n4.h.Drop(ctx, shard); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	if opens, closes, _ := n4.disk.counts(shard); closes != opens {
		t.Errorf("the dropped replica's state machine was not closed: opened %d times, closed %d", opens, closes)
	}
	if got := n4.h.DroppedReplica(shard); got != 4 {
		t.Errorf("DroppedReplica = %d, want 4", got)
	}
	checkNotHosted(t, n4.h, shard)
	if err := n4.h.Drop(ctx, shard); err != nil {
		t.Errorf("Drop again: %v", err)
	}
	n4.disk.drop(shard) // what the materializer's Drop does
	// The other shard is untouched.
	propose(t, n4.h, 2, 5)
	if err := n4.h.ReadBarrier(ctx, 2); err != nil {
		t.Fatalf("ReadBarrier on the kept shard: %v", err)
	}
	propose(t, n1.h, shard, 10) // the shard goes on without node 4

	opensBefore, _, _ := n4.disk.counts(shard)
	n4.restart(t)
	waitReady(t, n4.h)
	if n4.h.nh.HasNodeInfo(shard, 4) {
		t.Error("raft data of the dropped replica is back after the restart")
	}
	if opens, _, _ := n4.disk.counts(shard); opens != opensBefore {
		t.Errorf("the dropped shard's state machine was opened after the restart")
	}
	checkNotHosted(t, n4.h, shard)

	m, err := n1.h.Membership(ctx, shard)
	if err != nil {
		t.Fatal(err)
	}
	rid := m.NextReplica(4)
	if rid != ReplicaID(4, 1) {
		t.Fatalf("next replica of node 4: %d, want %d", rid, ReplicaID(4, 1))
	}
	if err := n4.h.Adopt(ctx, shard, 4); err == nil {
		t.Fatal("Adopt under the dropped replica's own id accepted")
	}
	retry(t, "add node 4's next replica", func(ctx context.Context) error {
		return n1.h.AddNonVoting(ctx, shard, rid, n4.addr)
	})
	if err := n4.h.Adopt(ctx, shard, rid); err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if err := n4.h.Adopt(ctx, shard, rid); err != nil {
		t.Errorf("Adopt again: %v", err)
	}
	if n4.h.ReplicaOf(shard) != rid || !n4.h.Runs(shard) || n4.h.DroppedReplica(shard) != 0 {
		t.Fatalf("after Adopt: ReplicaOf %d, Runs %v, DroppedReplica %d", n4.h.ReplicaOf(shard), n4.h.Runs(shard), n4.h.DroppedReplica(shard))
	}
	poll(t, "the adopted replica to be admitted", func() bool { return n4.h.Hosts(shard) })
	propose(t, n1.h, shard, 5)
	waitCaughtUp(t, n1, n4, shard)
	if err := n4.h.ReadBarrier(ctx, shard); err != nil {
		t.Fatalf("ReadBarrier on the adopted replica: %v", err)
	}
	propose(t, n4.h, shard, 3) // forwarded to the leader by the non-voting replica
	if _, _, rec := n4.disk.counts(shard); rec != 0 {
		t.Logf("caught up through %d snapshots", rec)
	}

	// A restart resumes the adopted replica as a joined, non-voting one.
	n4.restart(t)
	waitReady(t, n4.h)
	if n4.h.ReplicaOf(shard) != rid {
		t.Fatalf("after restart: ReplicaOf %d, want %d", n4.h.ReplicaOf(shard), rid)
	}
	m, err = n1.h.Membership(ctx, shard)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.NonVoting[rid]; !ok {
		t.Fatalf("replica %d not a non-voting member: %+v", rid, m)
	}
	propose(t, n1.h, shard, 3)
	waitCaughtUp(t, n1, n4, shard)
}

// A crash between Drop's record and the removal of the raft data leaves the replica's
// data behind: the next Open starts no replica and removes it. An adopted replica of a
// shard whose log was compacted catches up by snapshot; Adopt refuses while the state
// machine still holds the old state.
func TestAdoptCatchesUpBySnapshot(t *testing.T) {
	nodes := startCluster(t, 10)
	n1, n4 := nodes[0], nodes[3]
	const shard = 1

	retry(t, "remove node 4's replica", func(ctx context.Context) error {
		return n1.h.RemoveReplica(ctx, shard, 4)
	})
	// Crash right after Drop wrote its record: the replica's raft data is still there.
	if err := n4.h.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := n4.h.loadReplicaRecords()
	if err != nil {
		t.Fatal(err)
	}
	recs[shard] = replicaRecord{ID: 4, Dropped: true}
	if err := n4.h.saveReplicaRecords(recs); err != nil {
		t.Fatal(err)
	}
	n4.open(t)
	waitReady(t, n4.h)
	if n4.h.nh.HasNodeInfo(shard, 4) {
		t.Fatal("Open left the raft data of the dropped replica")
	}
	checkNotHosted(t, n4.h, shard)

	// The log moves on and is compacted behind snapshots.
	propose(t, n1.h, shard, 60)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rid := ReplicaID(4, 1)
	retry(t, "add node 4's next replica", func(ctx context.Context) error {
		return n1.h.AddNonVoting(ctx, shard, rid, n4.addr)
	})
	if err := n4.h.Adopt(ctx, shard, rid); err == nil {
		t.Fatal("Adopt accepted a state machine that holds state")
	}
	if n4.h.Runs(shard) {
		t.Fatal("a refused Adopt left the shard running")
	}
	n4.disk.drop(shard)
	if err := n4.h.Adopt(ctx, shard, rid); err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	poll(t, "the adopted replica to be admitted", func() bool { return n4.h.Hosts(shard) })
	waitCaughtUp(t, n1, n4, shard)
	if _, _, rec := n4.disk.counts(shard); rec == 0 {
		t.Error("the adopted replica caught up without a snapshot")
	}
	if err := n4.h.ReadBarrier(ctx, shard); err != nil {
		t.Fatalf("ReadBarrier on the adopted replica: %v", err)
	}
	propose(t, n4.h, shard, 3)
	waitCaughtUp(t, n1, n4, shard)
}

// Commands queued on a shard's batcher when Drop runs are answered with ErrNotHosted:
// none of them was proposed.
func TestBatcherAnswersDroppedShard(t *testing.T) {
	cfg := Config{NodeID: 1, RaftAddr: "127.0.0.1:1", Dir: t.TempDir(), NewStateMachine: func(uint64) StateMachine { return nil }}
	cfg.setDefaults()
	rep := &replica{}
	rep.id.Store(1)
	rep.dropped.Store(true)
	h := &Host{cfg: cfg, shards: map[uint64]*replica{1: rep}, stop: make(chan struct{})}
	b := &batcher{host: h, shard: 1, reqs: make(chan *pending, 4), sem: make(chan struct{}, 1)}
	var ps []*pending
	for range 3 {
		ps = append(ps, &pending{ctx: context.Background(), cmd: []byte("x"), done: make(chan result, 1)})
	}
	b.flush(ps)
	for i, p := range ps {
		if r := <-p.done; !errors.Is(r.err, ErrNotHosted) {
			t.Errorf("command %d: %v, want ErrNotHosted", i, r.err)
		}
	}
}
