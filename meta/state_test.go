package meta

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
)

func apply(t *testing.T, m *Machine, c Command) Result {
	t.Helper()
	b, _ := json.Marshal(c)
	var r Result
	if err := json.Unmarshal(m.Apply(1, b), &r); err != nil {
		t.Fatalf("result of %+v: %v", c, err)
	}
	return r
}

func TestMachineMembership(t *testing.T) {
	m := NewMachine(nil)
	if r := apply(t, m, Command{Op: "register", Node: Node{ID: 2, RaftAddr: "h2:1"}}); r.Error != "" || r.Node.State != Active {
		t.Fatalf("register 2: %+v", r)
	}
	apply(t, m, Command{Op: "register", Node: Node{ID: 1, RaftAddr: "h1:1"}})
	// Registering again fills in the HTTP address and keeps the state.
	if r := apply(t, m, Command{Op: "register", Node: Node{ID: 1, RaftAddr: "h1:1", HTTPAddr: "h1:80"}}); r.Error != "" || r.Node.HTTPAddr != "h1:80" {
		t.Fatalf("re-register 1: %+v", r)
	}
	refusals := []Command{
		{Op: "register", Node: Node{ID: 1, RaftAddr: "other:1"}}, // another address
		{Op: "register", Node: Node{ID: 3, RaftAddr: "h2:1"}},    // node 2's address
		{Op: "register", Node: Node{ID: 0, RaftAddr: "h0:1"}},    // no id
		{Op: "state", ID: 9, State: Leaving},                     // not a member
		{Op: "state", ID: 1, State: "sleeping"},                  // unknown state
		{Op: "rf", RF: 0},                                        // out of range
		{Op: "bogus"},                                            // unknown op
	}
	for _, c := range refusals {
		if r := apply(t, m, c); r.Error == "" {
			t.Errorf("%+v: accepted, want a refusal", c)
		}
	}
	st := m.State()
	if len(st.Nodes) != 2 || st.Nodes[0].ID != 1 || st.Nodes[1].ID != 2 || st.RF() != DefaultReplicationFactor {
		t.Fatalf("state: %+v", st)
	}

	apply(t, m, Command{Op: "place", Shard: 1, Nodes: []uint64{2, 1}})
	apply(t, m, Command{Op: "state", ID: 2, State: Removed})
	// A removed node never comes back, and leaves the placement.
	if r := apply(t, m, Command{Op: "register", Node: Node{ID: 2, RaftAddr: "h2:1"}}); !strings.Contains(r.Error, "removed") {
		t.Errorf("re-register removed node: %+v", r)
	}
	if r := apply(t, m, Command{Op: "state", ID: 2, State: Active}); r.Error == "" {
		t.Errorf("reactivating a removed node was accepted")
	}
	if p := m.State().Placement[1]; len(p) != 1 || p[0] != 1 {
		t.Errorf("placement after removal: %v", p)
	}

	// A node's replica of a shard moves to later generations only.
	if got := m.State().ReplicaOf(3, 1); got != 1 {
		t.Errorf("replica of node 1 in shard 3 before any move: %d, want 1", got)
	}
	gen1, gen2 := log.ReplicaID(1, 1), log.ReplicaID(1, 2)
	for _, c := range []Command{
		{Op: "replica", Shard: 3, ID: 1, Replica: log.ReplicaID(2, 1)}, // another node's id
		{Op: "replica", Shard: 3, ID: 7, Replica: log.ReplicaID(7, 1)}, // not a member
		{Op: "replica", Shard: 0, ID: 1, Replica: gen1},                // no shard
	} {
		if r := apply(t, m, c); r.Error == "" {
			t.Errorf("%+v: accepted, want a refusal", c)
		}
	}
	if r := apply(t, m, Command{Op: "replica", Shard: 3, ID: 1, Replica: gen2}); r.Error != "" {
		t.Fatalf("replica gen 2: %+v", r)
	}
	if r := apply(t, m, Command{Op: "replica", Shard: 3, ID: 1, Replica: gen1}); r.Error == "" {
		t.Errorf("going back to generation 1 was accepted")
	}
	if got := m.State().ReplicaOf(3, 1); got != gen2 {
		t.Errorf("replica of node 1 in shard 3: %d, want %d", got, gen2)
	}

	// Save and Recover give the same state.
	apply(t, m, Command{Op: "rf", RF: 5})
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	m2 := NewMachine(nil)
	if err := m2.Recover(&buf); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(m.State())
	b, _ := json.Marshal(m2.State())
	if !bytes.Equal(a, b) || m2.State().RF() != 5 {
		t.Errorf("recovered state differs:\n%s\n%s", a, b)
	}
	if err := m2.Recover(strings.NewReader("{not json")); err == nil {
		t.Error("recovering garbage succeeded")
	}
}

func TestWantVoters(t *testing.T) {
	for _, c := range []struct{ rf, active, want int }{
		{3, 1, 1}, {3, 2, 1}, {3, 3, 3}, {3, 5, 3}, {5, 4, 3}, {5, 5, 5}, {1, 5, 1}, {4, 9, 3}, {3, 0, 1},
	} {
		if got := wantVoters(c.rf, c.active); got != c.want {
			t.Errorf("wantVoters(rf %d, active %d) = %d, want %d", c.rf, c.active, got, c.want)
		}
	}
}
