package main

// TestClusterNodeFaults runs a three-node cluster of the real binary on loopback (one
// 127.0.0.x address per node) and checks, from outside, that it keeps every acknowledged
// write through node faults. Writers spread their requests over every node that is up,
// each write with a unique Idempotency-Key, while the test:
//
//   - kills a node with SIGKILL (half of the time one that leads a shard), keeps writing
//     to the two others, restarts it and waits until it is ready again (cycles);
//   - every fifth cycle pauses a node with SIGSTOP for up to 2.5s instead, then SIGCONT;
//   - at the end restarts every node in turn with SIGTERM (a rolling restart, under load:
//     each node hands its leaderships over before it stops).
//
// After every cycle the writers stop, the nodes' state digests (GET /v1/admin/digest) must
// become equal, and one node's histories are checked with the crash test's model
// (crashHarness.verify): nothing acknowledged lost, nothing applied twice, no refused
// write applied, documents as the requests say, re-sent Idempotency-Keys answered from
// the first result.
//
// It also measures the write unavailability window of each kill: per shard, the longest
// gap between acknowledged writes from the kill until writes flow again, the worst shard
// counting. With four shards on three nodes a victim usually leads one or two shards.
//
// The cycles (runFaults) and the checks after them (settle, checkStatus) also serve
// TestClusterPlacedFaults (placed_test.go), on four nodes in placed hosting.
//
// Run longer: go test ./cmd/aerolith -run TestClusterNodeFaults -v -timeout 60m -cluster.cycles=200

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
)

var (
	clusterCycles = flag.Int("cluster.cycles", 20, "fault cycles of TestClusterNodeFaults (20 take about 3-4 minutes on 2 cores)")
	clusterSeed   = flag.Uint64("cluster.seed", 0, "seed of TestClusterNodeFaults (default from the clock)")
)

const (
	clusterNodes   = 3 // nodes of TestClusterNodeFaults, and of a harness whose size is 0
	clusterWriters = 16
	// After a fault the writers go on against the survivors until every shard has taken a
	// write again (at most clusterRecoverBound), then clusterAfterKill longer.
	clusterAfterKill    = 300 * time.Millisecond
	clusterRecoverBound = 15 * time.Second
)

type clusterNode struct {
	id       int
	host     string
	base     string // http://host:port
	raftAddr string
	args     []string
	logPath  string
	proc     *serverProc
	up       atomic.Bool // writers may send to it
	starts   int
}

type ackRec struct {
	shard uint64
	at    time.Time
}

type clusterHarness struct {
	*crashHarness
	size  int // nodes layout lays out; 0: clusterNodes
	nodes []*clusterNode
	hc    *http.Client
	rng   *rand.Rand

	// placed: the cluster runs placed hosting (each data shard on placedReplicas nodes);
	// hosts, set before the writers start and not changed while they run, holds each data
	// shard's hosts, to count the acknowledgments of nodes that hold no replica of the
	// write's shard (forwarded).
	placed    bool
	hosts     map[uint64][]uint64
	forwarded atomic.Int64

	ackMu sync.Mutex
	acks  []ackRec // acknowledged writes of the current phase
}

func TestClusterNodeFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster fault test: builds the binary and runs three nodes; skipped with -short")
	}
	cycles, seed := *clusterCycles, *clusterSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("cluster test: %d cycles, seed %d (rerun with -cluster.seed=%d)", cycles, seed, seed)
	began := time.Now()
	h := newClusterHarness(t, seed, 0xc1, clusterNodes)
	for _, n := range h.nodes {
		h.start(n, "first start")
	}
	for _, n := range h.nodes {
		h.waitReady(n)
	}
	h.checkStatus(false)

	r := h.runFaults(cycles, seed, began, "-cluster.cycles")
	h.checkStatus(true)

	t.Logf("cluster test passed: %d cycles (%d kills, %d of a shard leader; %d pauses) and a rolling restart in %s, seed %d; "+
		"%d writes: %d acknowledged, %d refused, %d indeterminate (%d found applied, %d not); %d keys verified, %d writes re-sent",
		cycles, r.kills, r.leaderKills, r.pauses, time.Since(began).Round(time.Second), seed,
		len(h.writes), h.acked, h.refused, h.indeterminate, h.applied, h.absent, h.keysVerified, h.resent)
	r.logGaps(t)
}

// newClusterHarness builds the binary and lays out a cluster of size nodes (not started);
// stream tells the tests' random streams apart under one seed.
func newClusterHarness(t *testing.T, seed, stream uint64, size int) *clusterHarness {
	dir := t.TempDir()
	h := &clusterHarness{
		crashHarness: &crashHarness{
			t: t, bin: buildBinary(t, dir), byID: map[string]*crashWrite{}, byKey: map[string][]*crashWrite{},
			known: map[string]uint64{}, verified: map[string][]historyEntry{}, pendingDeletes: map[string]int{},
		},
		size: size,
		rng:  rand.New(rand.NewPCG(seed, stream)),
		// Longer than the server's 10s write timeout: a live node answers 504 before the
		// client gives up, so no write is still running when a cycle is verified.
		hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clusterWriters, DisableCompression: true}},
	}
	h.crashHarness.hc = h.hc
	h.layout(dir, seed)
	return h
}

// faultRun is what runFaults did and measured.
type faultRun struct {
	kills, leaderKills, pauses    int
	killGaps, pauseGaps, rollGaps []time.Duration
}

func (r faultRun) logGaps(t *testing.T) {
	t.Logf("write unavailability after killing a shard leader (worst shard, n=%d): %s", len(r.killGaps), gapSummary(r.killGaps))
	t.Logf("write unavailability around a pause (n=%d): %s", len(r.pauseGaps), gapSummary(r.pauseGaps))
	t.Logf("write unavailability per rolling-restart step (n=%d): %s", len(r.rollGaps), gapSummary(r.rollGaps))
}

// runFaults runs the fault cycles of a started cluster under write load, settling and
// verifying after each: a SIGKILL and restart of a node (half of the time a shard
// leader), every fifth cycle a SIGSTOP/SIGCONT pause instead; then a rolling restart
// (SIGTERM each node in turn), settled and verified as cycle cycles+1. cyclesFlag names
// the flag that sets cycles, for the message when the test's -timeout runs out first.
func (h *clusterHarness) runFaults(cycles int, seed uint64, began time.Time, cyclesFlag string) faultRun {
	t := h.t
	budgetEnd := time.Time{}
	if d, ok := t.Deadline(); ok {
		budgetEnd = d.Add(-60 * time.Second)
	}
	var r faultRun
	for c := 1; c <= cycles; c++ {
		if !budgetEnd.IsZero() && time.Now().After(budgetEnd) {
			t.Fatalf("ran out of time after %d of %d cycles (%s); rerun with a longer -timeout or fewer %s",
				c-1, cycles, time.Since(began).Round(time.Second), cyclesFlag)
		}
		stop := h.startWriters(c, seed)
		h.waitFor(time.Duration(200+h.rng.IntN(800)) * time.Millisecond)
		var what string
		if c%5 == 0 {
			n := h.nodes[h.rng.IntN(len(h.nodes))]
			d := time.Duration(500+h.rng.IntN(2000)) * time.Millisecond
			at := time.Now()
			n.proc.cmd.Process.Signal(syscall.SIGSTOP)
			h.waitFor(d)
			n.proc.cmd.Process.Signal(syscall.SIGCONT)
			h.waitRecovered(at)
			gap := h.unavailability(at, time.Now())
			r.pauseGaps = append(r.pauseGaps, gap)
			r.pauses++
			what = fmt.Sprintf("paused node %d for %s; longest write gap %s", n.id, d.Round(time.Millisecond), gap.Round(time.Millisecond))
		} else {
			n, led := h.pickVictim()
			at := time.Now()
			n.up.Store(false)
			n.proc.kill(t)
			h.hc.CloseIdleConnections()
			h.waitRecovered(at)
			gap := h.unavailability(at, time.Now())
			r.kills++
			if led > 0 {
				r.leaderKills++
				r.killGaps = append(r.killGaps, gap)
			}
			h.start(n, fmt.Sprintf("cycle %d, restart", c))
			readyIn := h.waitReady(n)
			what = fmt.Sprintf("killed node %d (leader of %d shards); longest write gap %s; ready again in %s", n.id, led, gap.Round(time.Millisecond), readyIn.Round(time.Millisecond))
		}
		writes := stop()
		h.settle(c)
		t.Logf("cycle %d: %d writes; %s", c, writes, what)
		if t.Failed() {
			t.FailNow()
		}
	}

	// Rolling restart under load: every node in turn stops gracefully and comes back.
	c := cycles + 1
	stop := h.startWriters(c, seed)
	for _, n := range h.nodes {
		h.waitFor(500 * time.Millisecond)
		at := time.Now()
		n.up.Store(false)
		n.proc.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.proc.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("node %d did not stop within 30s of SIGTERM", n.id)
		}
		if n.proc.waitErr != nil {
			t.Errorf("node %d exited with %v after SIGTERM", n.id, n.proc.waitErr)
		}
		stoppedIn := time.Since(at)
		h.hc.CloseIdleConnections()
		h.start(n, "rolling restart")
		readyIn := h.waitReady(n)
		h.waitFor(500 * time.Millisecond)
		gap, began := h.longestGap(at, time.Now())
		r.rollGaps = append(r.rollGaps, gap)
		t.Logf("rolling restart: node %d stopped in %s, ready in %s; longest write gap %s, from %s after the SIGTERM",
			n.id, stoppedIn.Round(time.Millisecond), readyIn.Round(time.Millisecond), gap.Round(time.Millisecond), began.Round(time.Millisecond))
	}
	writes := stop()
	h.settle(c)
	t.Logf("rolling restart: %d writes", writes)
	return r
}

// layout places the cluster's nodes under dir: one 127.0.0.x address each, loopback ports,
// data directories, logs and --initial-members. It registers a cleanup that kills every
// node still running and, when the test failed, shows the tail of each node's log.
func (h *clusterHarness) layout(dir string, seed uint64) {
	if h.size == 0 {
		h.size = clusterNodes
	}
	var members []string
	for i := range h.size {
		n := h.newNode(dir, i+1)
		members = append(members, fmt.Sprintf("%d=%s", n.id, n.raftAddr))
	}
	for _, n := range h.nodes {
		n.args = append(n.args, "--initial-members", strings.Join(members, ","))
	}
	h.t.Cleanup(func() {
		for _, n := range h.nodes {
			if n.proc != nil {
				n.proc.cmd.Process.Signal(syscall.SIGCONT)
				select {
				case <-n.proc.exited:
				default:
					n.proc.kill(h.t)
				}
			}
		}
		if h.t.Failed() {
			for _, n := range h.nodes {
				h.t.Logf("seed %d; node %d log %s, last lines:\n%s", seed, n.id, n.logPath, logTail(n.logPath, 60))
			}
		}
	})
}

// newNode adds node id to the harness: address 127.0.0.(10+id), loopback ports, its data
// directory and log under dir, and the server arguments every node shares.
func (h *clusterHarness) newNode(dir string, id int) *clusterNode {
	n := &clusterNode{id: id, host: fmt.Sprintf("127.0.0.%d", 10+id), logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", id))}
	httpPort := loopback.PortOn(h.t, n.host)
	raftPort := loopback.PortOn(h.t, n.host)
	for raftPort == httpPort {
		raftPort = loopback.PortOn(h.t, n.host)
	}
	n.base = fmt.Sprintf("http://%s:%d", n.host, httpPort)
	n.raftAddr = fmt.Sprintf("%s:%d", n.host, raftPort)
	n.args = []string{"server",
		"--data-dir", filepath.Join(dir, fmt.Sprintf("data%d", id)),
		"--http-addr", fmt.Sprintf("%s:%d", n.host, httpPort),
		"--raft-addr", n.raftAddr,
		"--grpc-addr", "off",
		"--node-id", strconv.Itoa(id),
		"--shards", strconv.Itoa(crashShards),
	}
	h.nodes = append(h.nodes, n)
	return n
}

func gapSummary(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return fmt.Sprintf("p50 %s, p90 %s, max %s", s[len(s)/2].Round(time.Millisecond), s[len(s)*9/10].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

func (h *clusterHarness) start(n *clusterNode, what string) {
	n.starts++
	n.proc = startServer(h.t, h.bin, n.logPath, fmt.Sprintf("node %d start %d (%s)", n.id, n.starts, what), n.args...)
}

func (h *clusterHarness) waitReady(n *clusterNode) time.Duration {
	d := n.proc.waitReady(h.t, h.hc, n.base, 90*time.Second)
	n.up.Store(true)
	return d
}

// waitFor lets the writers run for d, failing the test if a node exits by itself.
func (h *clusterHarness) waitFor(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		exited := make(chan int, len(h.nodes))
		for _, n := range h.nodes {
			if n.up.Load() {
				select {
				case <-n.proc.exited:
					exited <- n.id
				default:
				}
			}
		}
		select {
		case id := <-exited:
			h.t.Fatalf("node %d exited by itself: %v", id, h.nodes[id-1].proc.waitErr)
		default:
		}
		select {
		case <-timer.C:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitRecovered lets the writers run until every shard has acknowledged a write after
// from (or clusterRecoverBound passes), then clusterAfterKill more.
func (h *clusterHarness) waitRecovered(from time.Time) {
	deadline := time.Now().Add(clusterRecoverBound)
	for time.Now().Before(deadline) {
		h.ackMu.Lock()
		seen := map[uint64]bool{}
		for _, a := range h.acks {
			if a.at.After(from) {
				seen[a.shard] = true
			}
		}
		h.ackMu.Unlock()
		if len(seen) == crashShards {
			break
		}
		h.waitFor(20 * time.Millisecond)
	}
	h.waitFor(clusterAfterKill)
}

// pickVictim chooses the node to kill: half of the time one that leads a shard. It
// returns how many shards the victim leads.
func (h *clusterHarness) pickVictim() (*clusterNode, int) {
	led := map[int]int{}
	if st, err := h.status(h.nodes[h.rng.IntN(len(h.nodes))]); err == nil {
		for _, s := range st.Shards {
			led[int(s.Leader)]++
		}
	}
	if h.rng.IntN(2) == 0 {
		var leaders []int
		for id := range led {
			if id > 0 {
				leaders = append(leaders, id)
			}
		}
		slices.Sort(leaders)
		if len(leaders) > 0 {
			id := leaders[h.rng.IntN(len(leaders))]
			return h.nodes[id-1], led[id]
		}
	}
	n := h.nodes[h.rng.IntN(len(h.nodes))]
	return n, led[n.id]
}

// startWriters starts the writers of a cycle; the returned func stops them and returns how
// many writes they issued.
func (h *clusterHarness) startWriters(cycle int, seed uint64) func() int {
	before := len(h.writes)
	h.ackMu.Lock()
	h.acks = h.acks[:0]
	h.ackMu.Unlock()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range clusterWriters {
		wrng := rand.New(rand.NewPCG(seed, uint64(cycle)<<16|uint64(g)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-done:
					return
				default:
				}
				w := h.newWrite(cycle, g, seq, wrng)
				h.issueVia(w, func(w *crashWrite) (apiAnswer, error) { return h.sendAny(w, wrng) }, done, func() bool { return true })
			}
		}()
	}
	return func() int {
		close(done)
		wg.Wait()
		return len(h.writes) - before
	}
}

// sendAny sends w to a node that is up and records the time of an acknowledgment.
func (h *clusterHarness) sendAny(w *crashWrite, rng *rand.Rand) (apiAnswer, error) {
	var up []*clusterNode
	for _, n := range h.nodes {
		if n.up.Load() {
			up = append(up, n)
		}
	}
	n := up[rng.IntN(len(up))]
	a, err := sendAt(h.hc, n.base, w)
	if err == nil && a.status/100 == 2 {
		var r writeResult
		if json.Unmarshal(a.body, &r) == nil {
			h.ackMu.Lock()
			h.acks = append(h.acks, ackRec{shard: r.Position.Shard, at: time.Now()})
			h.ackMu.Unlock()
			if hosts, ok := h.hosts[r.Position.Shard]; ok && !slices.Contains(hosts, uint64(n.id)) {
				h.forwarded.Add(1)
			}
		}
	}
	return a, err
}

// unavailability returns, over the shards, the longest time between from (or an
// acknowledged write on the shard) and the next acknowledged write on the shard, up to
// to: how long the worst shard took no writes after the fault at from.
func (h *clusterHarness) unavailability(from, to time.Time) time.Duration {
	gap, _ := h.longestGap(from, to)
	return gap
}

// longestGap is unavailability, with how long after from the longest gap began.
func (h *clusterHarness) longestGap(from, to time.Time) (gap, began time.Duration) {
	h.ackMu.Lock()
	defer h.ackMu.Unlock()
	last := map[uint64]time.Time{}
	for s := uint64(1); s <= crashShards; s++ {
		last[s] = from
	}
	note := func(start, end time.Time) {
		if d := end.Sub(start); d > gap {
			gap, began = d, start.Sub(from)
		}
	}
	for _, a := range h.acks { // appended in time order, near enough
		if a.at.Before(from) || a.at.After(to) {
			continue
		}
		note(last[a.shard], a.at)
		last[a.shard] = a.at
	}
	for _, t := range last {
		note(t, to) // a shard that never recovered counts whole
	}
	return gap, began
}

// settle waits until the nodes that hold a shard agree on it (digestsAgree), then
// verifies the histories through a random node with the crash test's model.
func (h *clusterHarness) settle(cycle int) {
	t := h.t
	deadline := time.Now().Add(60 * time.Second)
	for {
		differ := h.digestsAgree()
		if differ == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cycle %d: state digests still differ after 60s: %s", cycle, differ)
		}
		h.waitFor(50 * time.Millisecond)
	}
	var up []*clusterNode
	for _, n := range h.nodes {
		if n.up.Load() {
			up = append(up, n)
		}
	}
	h.base = up[h.rng.IntN(len(up))].base
	h.verify(cycle, h.rng)
}

// digestsAgree reads GET /v1/admin/digest on every node that is up and returns "" when
// they agree, else what differs with every node's answer. Each node's digest covers the
// shards it holds a replica of. Every data shard must be reported with the same index and
// digest by every node that reports it, and by enough nodes: every node that is up in
// hosting all (where the nodes' whole digests must be equal too), placedReplicas in
// placed hosting (2 while a node is down).
func (h *clusterHarness) digestsAgree() string {
	type digest struct {
		Digest string `json:"digest"`
		Token  string `json:"token"`
		Shards []struct {
			Shard  uint64 `json:"shard"`
			Index  uint64 `json:"index"`
			Digest string `json:"digest"`
		} `json:"shards"`
	}
	var (
		lines   []string
		differ  []string
		up      int
		whole   = map[string]bool{} // digest at token, hosting all
		byShard = map[uint64]map[string][]int{}
	)
	for _, n := range h.nodes {
		if !n.up.Load() {
			continue // stopped or removed for good
		}
		up++
		a, err := callAt(h.hc, n.base, http.MethodGet, "/v1/admin/digest", nil, nil)
		var d digest
		if err != nil || a.status != http.StatusOK || json.Unmarshal(a.body, &d) != nil {
			lines = append(lines, fmt.Sprintf("node %d: %v HTTP %d", n.id, err, a.status))
			differ = append(differ, fmt.Sprintf("node %d did not answer", n.id))
			continue
		}
		line := fmt.Sprintf("node %d: %s at %s", n.id, d.Digest, d.Token)
		whole[line[strings.Index(line, ":"):]] = true
		for _, sd := range d.Shards {
			v := fmt.Sprintf("%d/%s", sd.Index, sd.Digest)
			if byShard[sd.Shard] == nil {
				byShard[sd.Shard] = map[string][]int{}
			}
			byShard[sd.Shard][v] = append(byShard[sd.Shard][v], n.id)
			line += fmt.Sprintf(" [shard %d at %s]", sd.Shard, v)
		}
		lines = append(lines, line)
	}
	want := up
	if h.placed {
		want = placedReplicas
		if up < len(h.nodes) {
			want = 2
		}
	} else if len(whole) > 1 {
		differ = append(differ, "the nodes' digests differ")
	}
	for s := uint64(1); s <= crashShards; s++ {
		reported := 0
		for _, ids := range byShard[s] {
			reported += len(ids)
		}
		switch {
		case len(byShard[s]) > 1:
			differ = append(differ, fmt.Sprintf("shard %d: the nodes holding it differ: %v", s, byShard[s]))
		case reported < want:
			differ = append(differ, fmt.Sprintf("shard %d: %d nodes report it, want at least %d", s, reported, want))
		}
	}
	if len(differ) == 0 {
		return ""
	}
	return strings.Join(differ, "; ") + "; answers: " + strings.Join(lines, "; ")
}

type clusterStatus struct {
	Node    uint64                `json:"node"`
	Hosting string                `json:"hosting"`
	Nodes   []struct{ ID uint64 } `json:"nodes"`
	Shards  []struct {
		Shard      uint64
		Meta       bool
		Replicas   []struct{ ID uint64 }
		NonVoting  []struct{ ID uint64 } `json:"non_voting"`
		Hosts      []uint64
		Remote     bool
		Membership string
		Leader     uint64
		Applied    uint64
	} `json:"shards"`
}

func (h *clusterHarness) status(n *clusterNode) (clusterStatus, error) {
	var st clusterStatus
	a, err := callAt(h.hc, n.base, http.MethodGet, "/v1/cluster", nil, nil)
	if err != nil {
		return st, err
	}
	if a.status != http.StatusOK {
		return st, fmt.Errorf("GET /v1/cluster: HTTP %d: %s", a.status, a.body)
	}
	return st, json.Unmarshal(a.body, &st)
}

// checkStatus checks GET /v1/cluster on every node: the harness's nodes, every shard
// replicated on all of them (in placed hosting, every data shard on placedReplicas of
// them, see placedProblem) with a leader, confirmed by a quorum. A node's answer is a
// snapshot (a leadership may be moving), so each node has 15s to give one that passes.
func (h *clusterHarness) checkStatus(written bool) {
	for _, n := range h.nodes {
		deadline := time.Now().Add(15 * time.Second)
		for !h.statusOK(n, written, time.Now().After(deadline)) {
			h.waitFor(200 * time.Millisecond)
		}
	}
}

// statusOK checks node n's GET /v1/cluster; report makes a failing answer fail the test
// (and count as done).
func (h *clusterHarness) statusOK(n *clusterNode, written, report bool) bool {
	errorf := func(format string, args ...any) {
		if report {
			h.t.Errorf(format, args...)
		}
	}
	st, err := h.status(n)
	if err != nil {
		errorf("node %d: %v", n.id, err)
		return report
	}
	ok := true
	if st.Node != uint64(n.id) || len(st.Nodes) != h.size || len(st.Shards) != crashShards+1 || !st.Shards[crashShards].Meta {
		errorf("node %d: /v1/cluster: %+v; want %d nodes, %d data shards and the meta shard", n.id, st, h.size, crashShards)
		ok = false
	}
	if h.placed {
		if p := placedProblem(st, h.size); p != "" {
			errorf("node %d: %s", n.id, p)
			ok = false
		}
	}
	for _, s := range st.Shards {
		replicas := len(s.Replicas) == h.size
		want := fmt.Sprint(h.size)
		if h.placed && s.Meta {
			// Every node holds the meta shard, which keeps the voters it started with.
			replicas = len(s.Replicas) >= placedReplicas && len(s.Replicas)+len(s.NonVoting) == h.size
			want = fmt.Sprintf("%d or more voting of %d", placedReplicas, h.size)
		} else if h.placed {
			replicas = len(s.Replicas) == placedReplicas
			want = fmt.Sprint(placedReplicas)
		}
		// A node holding no replica of a shard reports it with applied 0 ("remote").
		if !replicas || s.Leader == 0 || s.Membership != "quorum" || (written && s.Applied == 0 && !s.Remote) {
			errorf("node %d: shard %+v: want %s replicas by quorum, a leader and an applied index", n.id, s, want)
			ok = false
		}
	}
	return ok || report
}
