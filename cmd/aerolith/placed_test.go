package main

// TestClusterPlacedFaults is TestClusterNodeFaults on a cluster in placed hosting: four
// nodes of the real binary on loopback (127.0.0.11-14) start as a static cluster, then
// PUT /v1/cluster/hosting {"hosting":"placed"} makes each data shard live on only three
// of them (its voters), every node holding three of the four shards. The test waits until
// GET /v1/cluster shows that, then runs the same fault cycles (runFaults: SIGKILL and
// restart of a node, leaders included; a SIGSTOP/SIGCONT pause; a rolling restart).
//
// The writers send each write to a random node that is up, so about a quarter of them
// reach a node that holds no replica of the write's shard: that node forwards it to one
// that does (the peer protocol), and the test counts how many acknowledgments came that
// way. After every cycle the nodes holding a shard must agree on its digest and index
// (digestsAgree), and the crash test's model reads the histories through a random node,
// which may hold none of the shards it reads.
//
// Run longer: go test ./cmd/aerolith -run TestClusterPlacedFaults -v -timeout 60m -cluster.placedcycles=100

import (
	"flag"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

var placedCycles = flag.Int("cluster.placedcycles", 6, "fault cycles of TestClusterPlacedFaults (6 take about 2 minutes on 2 cores)")

const (
	placedNodes = 4
	// placedReplicas is how many nodes hold each data shard in placed hosting: the default
	// replication factor, 3, on four nodes.
	placedReplicas = 3
)

func TestClusterPlacedFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("placed-hosting fault test: builds the binary and runs four nodes; skipped with -short")
	}
	cycles, seed := *placedCycles, *clusterSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("placed-hosting test: %d cycles, seed %d (rerun with -cluster.seed=%d)", cycles, seed, seed)
	began := time.Now()
	h := newClusterHarness(t, seed, 0xb7, placedNodes)
	for _, n := range h.nodes {
		h.start(n, "first start")
	}
	for _, n := range h.nodes {
		h.waitReady(n)
	}

	h.enterPlaced()
	h.checkStatus(false)

	r := h.runFaults(cycles, seed, began, "-cluster.placedcycles")
	h.checkStatus(true)
	// No node was down long enough (--dead-after) for its shards to move.
	if st, err := h.status(h.nodes[0]); err == nil {
		for _, s := range st.Shards {
			if !s.Meta && !slices.Equal(s.Hosts, h.hosts[s.Shard]) {
				t.Errorf("shard %d: hosts %v at the end, %v when the faults began", s.Shard, s.Hosts, h.hosts[s.Shard])
			}
		}
	}

	t.Logf("placed-hosting test passed: %d cycles (%d kills, %d of a shard leader; %d pauses) and a rolling restart in %s, seed %d; "+
		"%d writes: %d acknowledged (%d of them by a node holding no replica of the shard), %d refused, %d indeterminate (%d found applied, %d not); "+
		"%d keys verified, %d writes re-sent",
		cycles, r.kills, r.leaderKills, r.pauses, time.Since(began).Round(time.Second), seed,
		len(h.writes), h.acked, h.forwarded.Load(), h.refused, h.indeterminate, h.applied, h.absent, h.keysVerified, h.resent)
	r.logGaps(t)
}

// enterPlaced switches the started cluster to placed hosting (PUT /v1/cluster/hosting on
// a random node), waits until it is in force (awaitPlaced) and records each data shard's
// hosts in h.hosts.
func (h *clusterHarness) enterPlaced() {
	at := time.Now()
	if a, err := callAt(h.hc, h.nodes[h.rng.IntN(len(h.nodes))].base, http.MethodPut, "/v1/cluster/hosting", nil,
		[]byte(`{"hosting":"placed"}`)); err != nil || a.status != http.StatusOK {
		h.t.Fatalf("PUT /v1/cluster/hosting placed: %v HTTP %d %s", err, a.status, a.body)
	}
	st := h.awaitPlaced(90 * time.Second)
	h.placed = true
	h.hosts = map[uint64][]uint64{}
	for _, s := range st.Shards {
		if !s.Meta {
			h.hosts[s.Shard] = s.Hosts
		}
	}
	h.t.Logf("placed hosting in force %s after the PUT: hosts %v", time.Since(at).Round(time.Millisecond), h.hosts)
}

// awaitPlaced polls GET /v1/cluster on a random node until it shows placed hosting in
// force (placedProblem finds nothing), for at most d, and returns that status.
func (h *clusterHarness) awaitPlaced(d time.Duration) clusterStatus {
	deadline := time.Now().Add(d)
	for {
		n := h.nodes[h.rng.IntN(len(h.nodes))]
		st, err := h.status(n)
		problem := fmt.Sprint(err)
		if err == nil {
			if problem = placedProblem(st, h.size); problem == "" {
				return st
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("placed hosting not in force %s after the PUT: node %d: %s; status %+v", d, n.id, problem, st)
		}
		h.waitFor(200 * time.Millisecond)
	}
}

// placedProblem returns what keeps st from showing placed hosting in force on a cluster
// of size nodes ("" when nothing does): every data shard with placedReplicas voters, no
// non-voting replica and its voters as its hosts, every node a host of as many shards
// as the others.
func placedProblem(st clusterStatus, size int) string {
	if st.Hosting != "placed" {
		return fmt.Sprintf("hosting %q", st.Hosting)
	}
	held := map[uint64]int{}
	data := 0
	for _, s := range st.Shards {
		if s.Meta {
			continue
		}
		data++
		var voters []uint64
		for _, r := range s.Replicas {
			voters = append(voters, r.ID)
		}
		slices.Sort(voters)
		hosts := slices.Sorted(slices.Values(s.Hosts))
		if len(voters) != placedReplicas || len(s.NonVoting) != 0 || !slices.Equal(voters, hosts) {
			return fmt.Sprintf("shard %d: voters %v, %d non-voting replicas, hosts %v; want %d voters, none non-voting, the voters as hosts",
				s.Shard, voters, len(s.NonVoting), s.Hosts, placedReplicas)
		}
		for _, id := range s.Hosts {
			held[id]++
		}
	}
	if data != crashShards || len(held) != size {
		return fmt.Sprintf("%d data shards held by %d nodes (%v); want %d shards on %d nodes", data, len(held), held, crashShards, size)
	}
	for id, n := range held {
		if n != crashShards*placedReplicas/size {
			return fmt.Sprintf("node %d holds %d shards, want %d (%v)", id, n, crashShards*placedReplicas/size, held)
		}
	}
	return ""
}
