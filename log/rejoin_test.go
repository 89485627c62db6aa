package log

import (
	"context"
	"testing"
)

// TestRejoinSurvivesACrashBeforeItsFirstEntry restarts a node right after it started its
// replica of a shard under a new replica id, before the leader reached that replica (it
// was not even added yet): raft has the new replica's bootstrap record and no entry, while
// the state machine holds what the old replica applied. The restart must pass over that
// state as the first start did (not report it to raft, which would take the replica for a
// new one at a non-zero index), and the replica must catch up once added.
func TestRejoinSurvivesACrashBeforeItsFirstEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four raft nodes")
	}
	nodes := startCluster(t, 0)
	const shard = 1
	n4 := nodes[3]
	old := n4.h.ReplicaOf(shard)
	retry(t, "remove node 4's replica", func(ctx context.Context) error { return nodes[0].h.RemoveReplica(ctx, shard, old) })
	rid := ReplicaID(4, GenOf(old)+1)
	if err := n4.h.Rejoin(context.Background(), shard, rid); err != nil {
		t.Fatal(err)
	}
	n4.restart(t)
	if got := n4.h.ReplicaOf(shard); got != rid {
		t.Fatalf("restarted node 4 runs replica %d of shard %d, want %d", got, shard, rid)
	}
	propose(t, nodes[0].h, shard, 5)
	retry(t, "add node 4's new replica", func(ctx context.Context) error {
		return nodes[0].h.AddNonVoting(ctx, shard, rid, n4.addr)
	})
	waitCaughtUp(t, nodes[0], n4, shard)
	n4.restart(t)
	propose(t, nodes[0].h, shard, 5)
	waitCaughtUp(t, nodes[0], n4, shard)
}
