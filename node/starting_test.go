package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/meta"
	"github.com/aerolithsdb/aerolith/node"
)

func get(url string) (int, []byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestStartingNodeAnswersProbes: a node that cannot get ready (its cluster has no quorum
// yet) already answers the controller's probes on its HTTP address, as itself, with its
// replicas' applied indexes once they run, and refuses everything else as unavailable;
// once the cluster has a quorum the node starts and the REST gateway serves on the same
// address.
func TestStartingNodeAnswersProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three raft nodes")
	}
	members := map[uint64]string{}
	https := map[uint64]string{}
	for id := uint64(1); id <= 3; id++ {
		members[id], https[id] = loopback.FreeAddr(t), loopback.FreeAddr(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	type started struct {
		n   *node.Node
		err error
	}
	done := make(chan started, 3)
	start := func(id uint64) {
		go func() {
			n, err := node.Start(ctx, node.Config{DataDir: t.TempDir(), NodeID: id, HTTPAddr: https[id], RaftAddr: members[id],
				GRPCAddr: node.GRPCOff, Shards: 2, InitialMembers: members})
			done <- started{n, err}
		}()
	}
	start(1)

	// Node 1 alone: no shard has a leader, so it is not ready, yet it answers probes.
	base := "http://" + https[1]
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var probe meta.Probe
	for {
		status, body, err := get(base + meta.LocalPath)
		if err == nil && status == http.StatusOK {
			// Answered as node 1 from the start, with the replicas' applied indexes
			// once they run: two shards and the meta shard.
			if err := json.Unmarshal(body, &probe); err != nil || probe.Node != 1 {
				t.Fatalf("probe answer %s: %v", body, err)
			}
			if len(probe.Applied) == 3 {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("a starting node never answered a probe: last %d %s %v", status, body, err)
		case r := <-done:
			t.Fatalf("node 1 started alone: %v", r.err)
		case <-tick.C:
		}
	}
	p, err := meta.NewProber(9, 2*time.Second).Probe(ctx, https[1])
	if err != nil || p.Node != 1 {
		t.Errorf("the controller's prober on the starting node: %+v, %v", p, err)
	}
	status, body, err := get(base + "/v1/collections")
	var refusal struct {
		Error struct{ Code string } `json:"error"`
	}
	if err != nil || status != http.StatusServiceUnavailable || json.Unmarshal(body, &refusal) != nil || refusal.Error.Code != "unavailable" {
		t.Errorf("a request to the starting node: %d %s %v; want 503 unavailable", status, body, err)
	}

	start(2)
	start(3)
	for range 3 {
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { r.n.Close() })
	}
	if status, body, err := get(base + "/v1/collections"); err != nil || status != http.StatusOK {
		t.Errorf("node 1 once started: %d %s %v; want the REST gateway to answer", status, body, err)
	}
	if status, body, err := get(base + meta.LocalPath); err != nil || status != http.StatusOK {
		t.Errorf("probe once started: %d %s %v", status, body, err)
	}
}
