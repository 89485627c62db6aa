package log

import "testing"

func TestReplicaIDs(t *testing.T) {
	if got := ReplicaID(7, 0); got != 7 {
		t.Errorf("generation 0 of node 7: %d, want the node id", got)
	}
	r := ReplicaID(MaxNodeID, 3)
	if NodeOf(r) != MaxNodeID || GenOf(r) != 3 {
		t.Errorf("ReplicaID(%d, 3) = %d: node %d gen %d", uint64(MaxNodeID), r, NodeOf(r), GenOf(r))
	}
	m := Membership{
		Voters:    map[uint64]string{1: "a", ReplicaID(2, 1): "b"},
		NonVoting: map[uint64]string{3: "c"},
		Removed:   []uint64{2, 4, ReplicaID(4, 2)},
	}
	for node, want := range map[uint64]uint64{1: 1, 2: ReplicaID(2, 1), 3: 3} {
		if got, ok := m.ReplicaOf(node); !ok || got != want {
			t.Errorf("ReplicaOf(%d) = %d, %v; want %d", node, got, ok, want)
		}
	}
	if _, ok := m.VoterOf(3); ok {
		t.Error("node 3's non-voting replica counted as a voter")
	}
	if _, ok := m.ReplicaOf(4); ok {
		t.Error("node 4 has no replica")
	}
	for node, want := range map[uint64]uint64{1: 1, 4: ReplicaID(4, 3), 5: 5, 2: ReplicaID(2, 1)} {
		if got := m.NextReplica(node); got != want {
			t.Errorf("NextReplica(%d) = %d, want %d", node, got, want)
		}
	}
}

func TestValidateRefusesNodeIDsBeyond32Bits(t *testing.T) {
	c := Config{NodeID: MaxNodeID + 1, RaftAddr: "127.0.0.1:1", Dir: t.TempDir(), NewStateMachine: func(uint64) StateMachine { return nil }}
	if err := c.Validate(); err == nil {
		t.Errorf("node id %d accepted", c.NodeID)
	}
}
