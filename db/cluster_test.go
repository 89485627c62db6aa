package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

// openCluster opens n nodes of a static cluster in-process on loopback. They are opened
// concurrently: each waits for a quorum of the others.
func openCluster(t *testing.T, n int) []*DB {
	t.Helper()
	members := map[uint64]string{}
	for id := 1; id <= n; id++ {
		members[uint64(id)] = loopback.FreeAddr(t)
	}
	dbs := make([]*DB, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		id := uint64(i + 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = Open(ctx, Config{DataDir: t.TempDir(), NodeID: id, RaftAddr: members[id], Shards: 2, InitialMembers: members})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() {
		for _, d := range dbs {
			d.Close()
		}
	})
	return dbs
}

func TestClusterAnyNodeServesAndDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three raft nodes")
	}
	dbs := openCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Every node accepts writes (followers forward them to the leader) and every node
	// reads, linearizably, what any other wrote.
	for i, d := range dbs {
		id := fmt.Sprintf("d%d", i)
		if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: id, Body: []byte(`{"n":1}`)}); err != nil {
			t.Fatalf("write on node %d: %v", i+1, err)
		}
		reader := dbs[(i+1)%len(dbs)]
		doc, err := reader.Get(ctx, "c", id, Linearizable)
		if err != nil || doc.Version != 1 {
			t.Fatalf("node %d reading node %d's write: %+v %v", (i+1)%len(dbs)+1, i+1, doc, err)
		}
	}

	// Nodes register in the meta shard in the background: wait for all three.
	st := dbs[1].Cluster(ctx)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(st.Members) < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("meta members: %+v", st.Members)
		case <-tick.C:
		}
		st = dbs[1].Cluster(ctx)
	}
	// Two data shards and the meta shard, whose members every node registered.
	if st.NodeID != 2 || len(st.Nodes) != 3 || len(st.Shards) != 3 || st.Shards[2].Shard != log.MetaShard {
		t.Fatalf("status: %+v", st)
	}
	if len(st.Members) != 3 || st.ReplicationFactor != 3 {
		t.Fatalf("meta members: %+v, replication factor %d", st.Members, st.ReplicationFactor)
	}
	for _, m := range st.Members {
		if m.State != "active" {
			t.Errorf("member %+v: want active", m)
		}
	}
	for _, s := range st.Shards {
		if len(s.Replicas) != 3 || s.Membership != "quorum" || s.Leader == 0 || s.Term == 0 || s.Applied == 0 {
			t.Errorf("shard %+v: want 3 replicas confirmed by quorum, a leader, a term and an applied index", s)
		}
	}

	// The leader of shard 1 drains: leadership moves, and the others keep taking writes.
	leader := st.Shards[0].Leader
	moved, err := dbs[leader-1].host.Drain(ctx)
	if err != nil || moved == 0 {
		t.Fatalf("drain node %d: moved %d shards, %v", leader, moved, err)
	}
	for _, s := range dbs[leader-1].Cluster(ctx).Shards {
		if s.Leader == leader {
			t.Errorf("after draining node %d it still leads shard %d", leader, s.Shard)
		}
	}
	if err := dbs[leader-1].Close(); err != nil {
		t.Fatal(err)
	}
	for i, d := range dbs {
		if uint64(i+1) == leader {
			continue
		}
		if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: fmt.Sprintf("after%d", i), Body: []byte(`{}`)}); err != nil {
			t.Errorf("write on node %d after node %d stopped: %v", i+1, leader, err)
		}
	}
}

// TestClusterMinorityRefuses: a node left without a quorum refuses writes and linearizable
// reads as unavailable because its shards have had no leader for a while (nothing proposed,
// safe to retry), before the requests' own deadlines, instead of answering every request
// with a timeout; local reads still answer.
func TestClusterMinorityRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three raft nodes")
	}
	dbs := openCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := dbs[0].Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: "before", Body: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[0].Get(ctx, "c", "before", Linearizable); err != nil {
		t.Fatal(err)
	}
	dbs[1].Close()
	dbs[2].Close()
	deadline := time.Now().Add(45 * time.Second)
	var werr, rerr error
	for {
		// Refused, not timed out: the answer comes before the request's own deadline.
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		_, werr = dbs[0].Write(wctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: "cut-off", Body: []byte(`{}`)})
		_, rerr = dbs[0].Get(wctx, "c", "before", Linearizable)
		expired := wctx.Err() != nil
		wcancel()
		refused := func(err error) bool {
			return errors.Is(err, ErrUnavailable) && strings.Contains(err.Error(), "no leader")
		}
		if refused(werr) && refused(rerr) && !expired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cut-off node still answers: write %v, linearizable read %v; want both unavailable", werr, rerr)
		}
	}
	if doc, err := dbs[0].Get(ctx, "c", "before", Local); err != nil || doc.Version != 1 {
		t.Fatalf("local read on the cut-off node: %+v %v", doc, err)
	}
}

func TestValidateMembers(t *testing.T) {
	tests := []struct {
		name    string
		members map[uint64]string
		ok      bool
	}{
		{"three", map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.2:1", 3: "127.0.0.3:1"}, true},
		{"alone", map[uint64]string{1: "127.0.0.1:1"}, true},
		{"zero id", map[uint64]string{0: "127.0.0.9:1", 1: "127.0.0.1:1"}, false},
		{"missing self", map[uint64]string{2: "127.0.0.2:1"}, false},
		{"self elsewhere", map[uint64]string{1: "127.0.0.5:1", 2: "127.0.0.2:1"}, false},
		{"bad address", map[uint64]string{1: "127.0.0.1:1", 2: "nowhere"}, false},
		{"shared address", map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:1"}, false},
	}
	for _, tt := range tests {
		err := Config{DataDir: "x", NodeID: 1, RaftAddr: "127.0.0.1:1", InitialMembers: tt.members}.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
