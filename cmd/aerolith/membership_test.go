package main

// TestClusterMembership changes a running cluster's membership under write load, with the
// real binary on loopback, and checks from outside that nothing acknowledged is lost:
//
//  1. three nodes start as a static cluster (--initial-members);
//  2. node 4 joins through node 1 (--join): it becomes a non-voting replica of every
//     shard, catches up, and serves linearizable reads and writes; then votes move to it
//     until every node votes in three of the four data shards (the nodes that gave a vote
//     up keep the shard as non-voting replicas under a new replica id); nodes 3 and 2
//     are killed (SIGKILL) and restarted while the votes move;
//  3. node 1 is decommissioned (DELETE /v1/cluster/nodes/1, as `aerolith cluster remove`
//     does): node 4 takes its votes, node 1 leaves every shard and ends up "removed";
//  4. node 5 joins and votes spread to it again, then node 2 is stopped (SIGSTOP) and
//     stays stopped: after --dead-after, node 5 takes its votes and node 2 is marked
//     removed;
//  5. node 2 resumes (SIGCONT) and exits, saying the cluster removed it; restarted on its
//     old data, it exits again, saying the same.
//
// Writers spread requests over every node that is up throughout. At the end the state
// digests of the nodes still up must be equal, and the crash test's model must find every
// acknowledged write, nothing applied twice.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

type membershipStatus struct {
	Nodes []struct {
		ID    uint64 `json:"id"`
		State string `json:"state"`
	} `json:"nodes"`
	Shards []struct {
		Shard     uint64 `json:"shard"`
		Meta      bool   `json:"meta"`
		Leader    uint64 `json:"leader"`
		Replicas  []membershipReplica
		NonVoting []membershipReplica `json:"non_voting"`
	} `json:"shards"`
}

type membershipReplica struct {
	ID        uint64 `json:"id"`
	ReplicaID uint64 `json:"replica_id"` // set once the node rejoined the shard under a new id
}

// rejoined counts the replicas running under a replica id other than their node's id.
func (s membershipStatus) rejoined() int {
	n := 0
	for _, sh := range s.Shards {
		for _, r := range append(slices.Clone(sh.Replicas), sh.NonVoting...) {
			if r.ReplicaID != 0 {
				n++
			}
		}
	}
	return n
}

func (s membershipStatus) state(id uint64) string {
	for _, n := range s.Nodes {
		if n.ID == id {
			return n.State
		}
	}
	return ""
}

// roles returns, per shard (meta shard included), the voters and non-voting replicas.
func (s membershipStatus) roles() (voters, nonVoting map[uint64][]uint64) {
	voters, nonVoting = map[uint64][]uint64{}, map[uint64][]uint64{}
	for _, sh := range s.Shards {
		for _, r := range sh.Replicas {
			voters[sh.Shard] = append(voters[sh.Shard], r.ID)
		}
		for _, r := range sh.NonVoting {
			nonVoting[sh.Shard] = append(nonVoting[sh.Shard], r.ID)
		}
		slices.Sort(voters[sh.Shard])
		slices.Sort(nonVoting[sh.Shard])
	}
	return voters, nonVoting
}

func TestClusterMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("membership test: builds the binary and runs five nodes; skipped with -short")
	}
	seed := *clusterSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("membership test: seed %d (rerun with -cluster.seed=%d)", seed, seed)
	began := time.Now()
	dir := t.TempDir()
	h := &clusterHarness{
		crashHarness: &crashHarness{
			t: t, bin: buildBinary(t, dir), byID: map[string]*crashWrite{}, byKey: map[string][]*crashWrite{},
			known: map[string]uint64{}, verified: map[string][]historyEntry{}, pendingDeletes: map[string]int{},
		},
		rng: rand.New(rand.NewPCG(seed, 0xd3)),
		hc:  &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clusterWriters, DisableCompression: true}},
	}
	h.crashHarness.hc = h.hc
	// Longer than a killed node takes to come back until its replicas run (when it answers
	// probes again, before it is ready): it must not count as dead meanwhile.
	const deadAfter = 5 * time.Second
	h.layout(dir, seed)
	for _, n := range h.nodes {
		n.args = append(n.args, "--dead-after", deadAfter.String())
	}
	newNode := func(id int) *clusterNode {
		n := h.newNode(dir, id)
		n.args = append(n.args, "--dead-after", deadAfter.String())
		return n
	}
	for _, n := range h.nodes {
		h.start(n, "first start")
	}
	for _, n := range h.nodes {
		h.waitReady(n)
	}

	// awaitStatus polls GET /v1/cluster on node from until ok holds, for at most d.
	awaitStatus := func(from *clusterNode, what string, d time.Duration, ok func(membershipStatus) bool) membershipStatus {
		t.Helper()
		deadline := time.Now().Add(d)
		var st membershipStatus
		var last string
		for {
			a, err := callAt(h.hc, from.base, http.MethodGet, "/v1/cluster", nil, nil)
			if err == nil && a.status == http.StatusOK && json.Unmarshal(a.body, &st) == nil {
				if ok(st) {
					return st
				}
				last = string(a.body)
			} else {
				last = fmt.Sprintf("%v HTTP %d", err, a.status)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached within %s; last status from node %d: %s", what, d, from.id, last)
			}
			h.waitFor(100 * time.Millisecond)
		}
	}
	holdsAll := func(st membershipStatus, id uint64, asVoter bool) bool {
		voters, nonVoting := st.roles()
		for _, sh := range st.Shards {
			in := voters[sh.Shard]
			if !asVoter {
				in = append(slices.Clone(in), nonVoting[sh.Shard]...)
			}
			if !slices.Contains(in, id) {
				return false
			}
		}
		return len(st.Shards) == crashShards+1
	}
	holdsNone := func(st membershipStatus, id uint64) bool {
		voters, nonVoting := st.roles()
		for _, sh := range st.Shards {
			if slices.Contains(voters[sh.Shard], id) || slices.Contains(nonVoting[sh.Shard], id) {
				return false
			}
		}
		return true
	}
	// spread reports whether every one of nodes holds a replica of every shard and votes
	// in exactly three of the four data shards.
	spread := func(st membershipStatus, nodes ...uint64) bool {
		per := map[uint64]int{}
		for _, sh := range st.Shards {
			if !sh.Meta {
				for _, r := range sh.Replicas {
					per[r.ID]++
				}
			}
		}
		for _, n := range nodes {
			if !holdsAll(st, n, false) || per[n] != 3 {
				return false
			}
		}
		return len(st.Shards) == crashShards+1
	}
	votersAre := func(st membershipStatus, want ...uint64) bool {
		voters, _ := st.roles()
		for _, sh := range st.Shards {
			if !slices.Equal(voters[sh.Shard], want) {
				return false
			}
		}
		return true
	}

	stop := h.startWriters(1, seed)

	// 2. Node 4 joins through node 1 and becomes a non-voting replica of every shard; then
	// votes move to it, one at a time, until they are spread evenly.
	n4 := newNode(4)
	n4.args = append(n4.args, "--join", h.nodes[0].base)
	at := time.Now()
	h.start(n4, "join")
	h.waitReady(n4)
	t.Logf("node 4 joined and was ready in %s", time.Since(at).Round(time.Millisecond))
	awaitStatus(n4, "node 4 a replica of every shard", 30*time.Second, func(st membershipStatus) bool {
		return holdsAll(st, 4, false) && st.state(4) == "active"
	})
	// While the votes move, node 3 and then node 2 are killed (SIGKILL) right after a node
	// rejoined a shard under a new replica id, and restarted at once.
	for i, victim := range []*clusterNode{h.nodes[2], h.nodes[1]} {
		awaitStatus(n4, fmt.Sprintf("%d replicas rejoined", i+1), 60*time.Second, func(st membershipStatus) bool {
			return st.rejoined() > i
		})
		victim.up.Store(false)
		victim.proc.kill(t)
		h.hc.CloseIdleConnections()
		h.start(victim, "killed during the vote moves")
		h.waitReady(victim)
		t.Logf("node %d killed and restarted while votes moved", victim.id)
	}
	awaitStatus(n4, "votes spread over nodes 1-4", 90*time.Second, func(st membershipStatus) bool {
		return spread(st, 1, 2, 3, 4)
	})
	t.Logf("votes spread over 4 nodes %s after node 4 started", time.Since(at).Round(time.Millisecond))
	h.waitFor(time.Second)

	// 3. Decommission node 1 through node 2: node 4 takes its votes.
	at = time.Now()
	a, err := callAt(h.hc, h.nodes[1].base, http.MethodDelete, "/v1/cluster/nodes/1", nil, nil)
	if err != nil || a.status != http.StatusAccepted {
		t.Fatalf("DELETE /v1/cluster/nodes/1: %v HTTP %d %s", err, a.status, a.body)
	}
	awaitStatus(h.nodes[1], "node 1 removed, node 4 voting", 60*time.Second, func(st membershipStatus) bool {
		return st.state(1) == "removed" && holdsNone(st, 1) && votersAre(st, 2, 3, 4)
	})
	t.Logf("node 1 decommissioned in %s", time.Since(at).Round(time.Millisecond))
	// A removed node's id never comes back.
	if a, err := callAt(h.hc, h.nodes[2].base, http.MethodPost, "/v1/cluster/nodes", nil,
		[]byte(fmt.Sprintf(`{"id":1,"raft_addr":%q}`, h.nodes[0].raftAddr))); err != nil || a.status != http.StatusConflict || a.errorCode() != "membership_refused" {
		t.Errorf("re-joining removed node 1: %v HTTP %d %s; want 409 membership_refused", err, a.status, a.body)
	}
	h.nodes[0].up.Store(false)
	h.nodes[0].proc.cmd.Process.Signal(syscall.SIGTERM)
	<-h.nodes[0].proc.exited
	h.hc.CloseIdleConnections()

	// 4. Node 5 joins; node 2 stops and stays stopped: after --dead-after node 5 takes its
	// votes.
	n5 := newNode(5)
	n5.args = append(n5.args, "--join", h.nodes[2].base)
	h.start(n5, "join")
	h.waitReady(n5)
	awaitStatus(n5, "node 5 a non-voting replica of every shard", 30*time.Second, func(st membershipStatus) bool {
		return holdsAll(st, 5, false)
	})
	awaitStatus(n5, "votes spread over nodes 2-5", 90*time.Second, func(st membershipStatus) bool {
		return spread(st, 2, 3, 4, 5)
	})
	h.waitFor(time.Second)
	at = time.Now()
	h.nodes[1].up.Store(false)
	h.nodes[1].proc.cmd.Process.Signal(syscall.SIGSTOP)
	h.hc.CloseIdleConnections()
	awaitStatus(h.nodes[2], "node 2 replaced by node 5 and removed", 60*time.Second, func(st membershipStatus) bool {
		return st.state(2) == "removed" && holdsNone(st, 2) && votersAre(st, 3, 4, 5)
	})
	t.Logf("stopped node 2 replaced %s after SIGSTOP (--dead-after %s)", time.Since(at).Round(time.Millisecond), deadAfter)

	// 5. Node 2 resumes, then comes back again with its old data: the cluster removed it,
	// so each time it must exit with that said, not serve on or wait out its start as if
	// the cluster were unavailable.
	logSize := func() int {
		fi, err := os.Stat(h.nodes[1].logPath)
		if err != nil {
			t.Fatal(err)
		}
		return int(fi.Size())
	}
	awaitRemovedExit := func(how string, from int) {
		t.Helper()
		at := time.Now()
		select {
		case <-h.nodes[1].proc.exited:
		case <-time.After(60 * time.Second):
			h.nodes[1].proc.kill(t)
			t.Fatalf("removed node 2 was still running 60 s after it %s", how)
		}
		logged, err := os.ReadFile(h.nodes[1].logPath)
		if err != nil {
			t.Fatal(err)
		}
		if h.nodes[1].proc.waitErr == nil || !strings.Contains(string(logged[from:]), "removed from the cluster") {
			t.Fatalf("removed node 2 exited with %v, its log not saying it was removed", h.nodes[1].proc.waitErr)
		}
		t.Logf("removed node 2 %s and exited %s later: %v", how, time.Since(at).Round(time.Millisecond), h.nodes[1].proc.waitErr)
	}
	from := logSize()
	h.nodes[1].proc.cmd.Process.Signal(syscall.SIGCONT)
	awaitRemovedExit("resumed (SIGCONT)", from)
	from = logSize()
	h.start(h.nodes[1], "removed")
	awaitRemovedExit("restarted on its old data", from)
	h.waitFor(time.Second)

	writes := stop()
	h.settle(1)
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("membership test passed in %s, seed %d: %d writes: %d acknowledged, %d refused, %d indeterminate (%d found applied, %d not); %d keys verified",
		time.Since(began).Round(time.Second), seed, writes, h.acked, h.refused, h.indeterminate, h.applied, h.absent, h.keysVerified)
}
