package db

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/gateway/peer"
	"github.com/aerolithsdb/aerolith/internal/connmux"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/meta"
)

// probeServer serves, for the node whose DB is stored in d, on one loopback port as the
// node does: over HTTP/1 the controller's probes (GET /v1/cluster/local) and leader
// transfer requests, and over gRPC the peer service (gateway/peer).
func probeServer(t testing.TB, d *atomic.Pointer[DB]) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := connmux.New(ln, 10*time.Second)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := d.Load()
		var shard uint64
		if db != nil && r.Method == http.MethodPost {
			if _, err := fmt.Sscanf(r.URL.Path, meta.LeaderPath, &shard); err == nil {
				var req struct{ To uint64 }
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
				} else if err := db.TransferLeader(r.Context(), shard, req.To); err != nil {
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
				}
				return
			}
		}
		if r.URL.Path != meta.LocalPath || db == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		p := db.LocalApplied()
		applied := map[string]uint64{}
		for s, a := range p.Applied {
			applied[strconv.FormatUint(s, 10)] = a
		}
		json.NewEncoder(w).Encode(map[string]any{"node": p.Node, "applied": applied})
	})}
	ps, err := peer.NewServer(peer.ServerConfig{MaxMessage: MaxPeerBody, Ops: PeerOps})
	if err != nil {
		t.Fatal(err)
	}
	ps.SetStore(storedDB{d})
	go srv.Serve(mux.HTTP1())
	go ps.Serve(mux.HTTP2())
	t.Cleanup(func() {
		ps.Shutdown(context.Background())
		srv.Close()
		mux.Close()
	})
	return ln.Addr().String()
}

// storedDB serves peer calls from the DB stored now.
type storedDB struct{ d *atomic.Pointer[DB] }

func (o storedDB) ServePeer(ctx context.Context, op string, args []byte) ([]byte, error) {
	d := o.d.Load()
	if d == nil {
		return nil, &PeerError{Kind: "unavailable", Msg: "the node is not open"}
	}
	return d.ServePeer(ctx, op, args)
}

// peerClient is a peer transport for a test node, closed when the test ends.
func peerClient(t testing.TB) *peer.Client {
	t.Helper()
	c, err := peer.NewClient(peer.ClientConfig{MaxMessage: MaxPeerBody})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// votes counts, from a node's view of the cluster, each node's votes in the data shards
// and whether every node in nodes holds a replica of every shard. It reports false when
// a shard's membership was not confirmed by its quorum.
func votes(v ClusterView, nodes []uint64) (map[uint64]int, bool) {
	out := map[uint64]int{}
	for _, sh := range v.Shards {
		if sh.Membership != "quorum" {
			return nil, false
		}
		has := map[uint64]bool{}
		for _, m := range sh.Replicas {
			has[m.Node] = true
			if sh.Shard != log.MetaShard {
				out[m.Node]++
			}
		}
		for _, m := range sh.NonVoting {
			has[m.Node] = true
		}
		for _, n := range nodes {
			if !has[n] {
				return nil, false
			}
		}
	}
	return out, true
}

// heldWithVoters reports whether, from a node's view v, every node in nodes holds a
// replica of every shard and the data shards have n votes in all.
func heldWithVoters(v ClusterView, nodes []uint64, n int) bool {
	per, held := votes(v, nodes)
	total := 0
	for _, k := range per {
		total += k
	}
	return held && total == n
}

// TestClusterVotesMoveToJoiningNode joins a fourth node to a three-node cluster whose
// shards already have their three voters, and checks that votes move to it (promote it,
// remove a voter elsewhere, which rejoins as non-voting under a new replica id) until
// every node holds a replica of every shard and votes are spread evenly; that every node
// still serves linearizable reads and writes; that the replicas agree; that a node
// restarted after rejoining comes back under its new replica id; that lowering the
// replication factor to 1 and raising it back moves the votes away and back; and that a
// rolling restart of all four brings every replica back as it was.
func TestClusterVotesMoveToJoiningNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four raft nodes")
	}
	const shards = 4
	c := newServedCluster(t, 3, 1, shards)
	c.logLevel = slog.LevelDebug
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c.open(ctx, 1, 2, 3)
	dbs := c.dbs // written only while no other goroutine of the test reads it
	write := func(on uint64, id string, n int) {
		t.Helper()
		body := fmt.Appendf(nil, `{"n":%d}`, n)
		if _, err := dbs[on].Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: id, Body: body}); err != nil {
			t.Fatalf("write %s on node %d: %v", id, on, err)
		}
	}
	for i := range 60 {
		write(uint64(i%3+1), fmt.Sprintf("k%d", i), i)
	}

	c.join(ctx, 1, 4)
	joined := time.Now()

	// Writes go on while the votes move.
	stopWriters := c.writeLoad(ctx, ids(4))

	// 4 data shards × 3 voters over 4 nodes: 3 votes each once balanced.
	all := []uint64{1, 2, 3, 4}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	// awaitVotes polls node 2's view of the cluster until every node holds a replica of
	// every shard and ok holds for the data-shard votes per node.
	awaitVotes := func(what string, ok func(per map[uint64]int) bool) {
		t.Helper()
		for {
			v := dbs[2].Cluster(ctx)
			if per, held := votes(v, all); held && ok(per) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not reached; last view %+v", what, v.Shards)
			case <-tick.C:
			}
		}
	}
	spread := func(per map[uint64]int) bool {
		for _, n := range all {
			if per[n] != 3 {
				return false
			}
		}
		return true
	}
	awaitVotes("votes spread", spread)
	took := time.Since(joined)
	written, _ := stopWriters()
	t.Logf("votes spread over 4 nodes %s after the join; %d writes during the moves", took.Round(time.Millisecond), written)
	st := dbs[1].meta.State()
	if len(st.Replicas) == 0 {
		t.Fatalf("no node rejoined a shard under a new replica id: %+v", st)
	}
	var moved, movedShard uint64
	for shard, byNode := range st.Replicas {
		for node, rid := range byNode {
			if log.GenOf(rid) == 0 || log.NodeOf(rid) != node {
				t.Fatalf("meta replicas: shard %d node %d replica %d", shard, node, rid)
			}
			if got := dbs[node].host.ReplicaOf(shard); got != rid {
				t.Errorf("node %d runs replica %d of shard %d, meta says %d", node, got, shard, rid)
			}
			moved, movedShard = node, shard
		}
	}

	// Every node serves linearizable reads of what any node wrote, and writes.
	for on := uint64(1); on <= 4; on++ {
		write(on, fmt.Sprintf("after%d", on), int(on))
	}
	for on := uint64(1); on <= 4; on++ {
		for i := range 60 {
			doc, err := dbs[on].Get(ctx, "c", fmt.Sprintf("k%d", i), Linearizable)
			if err != nil || string(doc.Body) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Fatalf("node %d reads k%d: %s %v", on, i, doc.Body, err)
			}
		}
		for w := uint64(1); w <= 4; w++ {
			if _, err := dbs[on].Get(ctx, "c", fmt.Sprintf("after%d", w), Linearizable); err != nil {
				t.Fatalf("node %d reads after%d: %v", on, w, err)
			}
		}
	}
	checkDigests := func(what string) {
		t.Helper()
		var want StateDigest
		for _, id := range all {
			for _, s := range dbs[id].host.ShardIDs() {
				if s != log.MetaShard {
					if err := dbs[id].host.ReadBarrier(ctx, s); err != nil {
						t.Fatalf("%s: node %d barrier: %v", what, id, err)
					}
				}
			}
			got, err := dbs[id].StateDigest()
			if err != nil {
				t.Fatalf("%s: node %d digest: %v", what, id, err)
			}
			if id == 1 {
				want = got
			} else if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: node %d digest %v, node 1 %v", what, id, got, want)
			}
		}
	}
	checkDigests("after the moves")

	// A node that rejoined restarts under its new replica id and serves.
	// reopen closes node id and opens it again on the same data.
	reopen := func(id uint64) *DB {
		t.Helper()
		c.close(id)
		c.open(ctx, id)
		return c.db(id)
	}
	d := reopen(moved)
	if got, want := d.host.ReplicaOf(movedShard), st.Replicas[movedShard][moved]; got != want {
		t.Fatalf("reopened node %d runs replica %d of shard %d, want %d", moved, got, movedShard, want)
	}
	write(moved, "after-restart", 1)
	for _, id := range all {
		if _, err := dbs[id].Get(ctx, "c", "after-restart", Linearizable); err != nil {
			t.Fatalf("node %d reads after-restart: %v", id, err)
		}
	}
	checkDigests("after the restart")

	// Lowering the replication factor takes votes away (the nodes keep their replicas as
	// non-voting ones); raising it again promotes them back and spreads the votes.
	if err := dbs[3].SetReplicationFactor(ctx, 1); err != nil {
		t.Fatalf("replication factor 1: %v", err)
	}
	awaitVotes("one voter per shard", func(per map[uint64]int) bool {
		total := 0
		for _, n := range per {
			total += n
		}
		return total == shards
	})
	write(2, "rf1", 1)
	if err := dbs[4].SetReplicationFactor(ctx, 3); err != nil {
		t.Fatalf("replication factor 3: %v", err)
	}
	awaitVotes("three voters per shard, spread", spread)
	for _, id := range all {
		if _, err := dbs[id].Get(ctx, "c", "rf1", Linearizable); err != nil {
			t.Fatalf("node %d reads rf1: %v", id, err)
		}
	}
	checkDigests("after the replication factor went to 1 and back to 3")

	// A rolling restart: every node, node 4 (joined, then promoted) and the nodes whose
	// rejoined replicas were promoted back included, restarts its replicas as they were —
	// a replica that joined restarts as non-voting and raft replays its promotion.
	for _, id := range all {
		reopen(id)
		write(id, fmt.Sprintf("rolled%d", id), int(id))
	}
	awaitVotes("votes spread after the rolling restart", spread)
	for _, id := range all {
		for w := uint64(1); w <= 4; w++ {
			if _, err := dbs[id].Get(ctx, "c", fmt.Sprintf("rolled%d", w), Linearizable); err != nil {
				t.Fatalf("node %d reads rolled%d: %v", id, w, err)
			}
		}
	}
	checkDigests("after a rolling restart")
}
