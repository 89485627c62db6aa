package meta

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/aerolithsdb/aerolith/log"
)

// NodeState is where a node is in its life in the cluster.
type NodeState string

// The node states.
const (
	Active  NodeState = "active"  // serves and holds replicas
	Leaving NodeState = "leaving" // decommission asked: its replicas are moved away
	Removed NodeState = "removed" // holds no replica; its id can never come back
)

// Node is one member of the cluster.
type Node struct {
	ID       uint64    `json:"id"`
	RaftAddr string    `json:"raft_addr"`
	HTTPAddr string    `json:"http_addr"` // host:port of its HTTP API; empty until it registers
	State    NodeState `json:"state"`
}

// State is the meta shard's whole state.
type State struct {
	Nodes []Node `json:"nodes"` // by id
	// ReplicationFactor is how many voters each shard should have (capped by the number
	// of active nodes). 0 means DefaultReplicationFactor.
	ReplicationFactor int `json:"replication_factor"`
	// Placement is the controller's target: shard → the nodes that should vote in it.
	Placement map[uint64][]uint64 `json:"placement"`
	// Replicas holds, per shard, the replica id of each node whose replica there is not
	// of generation 0 (see log.ReplicaID): a node whose vote in a shard was taken away
	// keeps the shard as a non-voting replica under the next generation, and restarts its
	// replica under the id recorded here.
	Replicas map[uint64]map[uint64]uint64 `json:"replicas,omitempty"`
	// Hosting says which nodes hold a replica of a data shard: HostingAll (every active
	// node, the default) or HostingPlaced (the nodes in Hosts only).
	Hosting string `json:"hosting,omitempty"`
	// Absent holds, per shard, the nodes placed outside it while Hosting is all: they
	// hold no replica of the shard and serve it through the nodes that do (the L3 tier).
	Absent map[uint64][]uint64 `json:"absent,omitempty"`
	// Hosts holds, per shard, the nodes that hold a replica of it while Hosting is placed:
	// its voters, and while a replica moves, the node it moves to. The controller keeps
	// it, spreading replicas evenly over the active nodes.
	Hosts map[uint64][]uint64 `json:"hosts,omitempty"`
	// Shipped is the replication shipper's progress (a change-feed resume token up to
	// which Kafka acknowledged every local event), kept here so that whichever node ships
	// next resumes from it.
	Shipped string `json:"shipped,omitempty"`
}

// DefaultReplicationFactor is the replication factor of a cluster that never set one.
const DefaultReplicationFactor = 3

// Node returns the node with id and whether there is one.
func (s State) Node(id uint64) (Node, bool) {
	i, ok := slices.BinarySearchFunc(s.Nodes, id, func(n Node, id uint64) int { return cmpU64(n.ID, id) })
	if !ok {
		return Node{}, false
	}
	return s.Nodes[i], true
}

// ReplicaOf returns the replica id node runs, or should run, in shard.
func (s State) ReplicaOf(shard, node uint64) uint64 {
	if id, ok := s.Replicas[shard][node]; ok {
		return id
	}
	return log.ReplicaID(node, 0)
}

// The hosting modes (State.Hosting).
const (
	HostingAll    = "all"    // every active node holds a replica of every shard, less Absent
	HostingPlaced = "placed" // a shard's replicas are on the nodes in Hosts only
)

// Placed reports whether the cluster places each shard on some nodes only.
func (s State) Placed() bool { return s.Hosting == HostingPlaced }

// Holds reports whether node should hold a replica of shard. Every node holds the meta
// shard.
func (s State) Holds(shard, node uint64) bool {
	if shard == log.MetaShard {
		return true
	}
	if s.Placed() {
		return slices.Contains(s.Hosts[shard], node)
	}
	return !slices.Contains(s.Absent[shard], node)
}

// RF returns the replication factor in force.
func (s State) RF() int {
	if s.ReplicationFactor <= 0 {
		return DefaultReplicationFactor
	}
	return s.ReplicationFactor
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Command is one change to the state, as proposed to the meta shard.
type Command struct {
	Op    string    `json:"op"` // "register", "state", "rf", "place", "replica", "absent", "hosting", "hosts", "shipped"
	Node  Node      `json:"node,omitempty"`
	ID    uint64    `json:"id,omitempty"`
	State NodeState `json:"state,omitempty"`
	RF    int       `json:"rf,omitempty"`
	Shard uint64    `json:"shard,omitempty"`
	Nodes []uint64  `json:"nodes,omitempty"`
	Token string    `json:"token,omitempty"`
	// Replica is the replica id ("replica": node ID's new replica of Shard).
	Replica uint64 `json:"replica,omitempty"`
	// Absent ("absent"): whether node ID is placed outside Shard (true) or back in it.
	Absent bool `json:"absent,omitempty"`
	// Hosting ("hosting") is the hosting mode to set.
	Hosting string `json:"hosting,omitempty"`
}

// Result is what applying a Command returned: empty Error means it took effect.
type Result struct {
	Error string `json:"error,omitempty"`
	Node  *Node  `json:"node,omitempty"`
}

// Machine is the meta shard's state machine. Read its state with State; it is safe for
// concurrent use.
type Machine struct {
	mu    sync.RWMutex
	st    State
	onSet func() // called after every applied command, outside the lock
}

// NewMachine returns an empty Machine. onChange, when set, is called after each applied
// command (it must not block).
func NewMachine(onChange func()) *Machine {
	return &Machine{st: State{Placement: map[uint64][]uint64{}}, onSet: onChange}
}

// State returns a copy of the current state.
func (m *Machine) State() State {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := State{Nodes: slices.Clone(m.st.Nodes), ReplicationFactor: m.st.ReplicationFactor,
		Placement: make(map[uint64][]uint64, len(m.st.Placement)), Shipped: m.st.Shipped, Hosting: m.st.Hosting}
	if len(m.st.Hosts) > 0 {
		out.Hosts = make(map[uint64][]uint64, len(m.st.Hosts))
		for k, v := range m.st.Hosts {
			out.Hosts[k] = slices.Clone(v)
		}
	}
	for k, v := range m.st.Placement {
		out.Placement[k] = slices.Clone(v)
	}
	if len(m.st.Absent) > 0 {
		out.Absent = make(map[uint64][]uint64, len(m.st.Absent))
		for k, v := range m.st.Absent {
			out.Absent[k] = slices.Clone(v)
		}
	}
	if len(m.st.Replicas) > 0 {
		out.Replicas = make(map[uint64]map[uint64]uint64, len(m.st.Replicas))
		for k, v := range m.st.Replicas {
			out.Replicas[k] = maps.Clone(v)
		}
	}
	return out
}

// Apply applies one command (log.MetaMachine).
func (m *Machine) Apply(_ uint64, cmd []byte) []byte {
	var c Command
	var res Result
	if err := json.Unmarshal(cmd, &c); err != nil {
		res.Error = fmt.Sprintf("undecodable command: %v", err)
	} else {
		m.mu.Lock()
		res = m.apply(c)
		m.mu.Unlock()
	}
	if m.onSet != nil {
		m.onSet()
	}
	b, _ := json.Marshal(res)
	return b
}

func (m *Machine) apply(c Command) Result {
	switch c.Op {
	case "register":
		n := c.Node
		if n.ID == 0 || n.RaftAddr == "" {
			return Result{Error: "a node needs an id and a raft address"}
		}
		i, ok := slices.BinarySearchFunc(m.st.Nodes, n.ID, func(x Node, id uint64) int { return cmpU64(x.ID, id) })
		if ok {
			old := &m.st.Nodes[i]
			if old.State == Removed {
				return Result{Error: fmt.Sprintf("node %d was removed from the cluster; a node id is never reused", n.ID)}
			}
			if old.RaftAddr != n.RaftAddr {
				return Result{Error: fmt.Sprintf("node %d is registered with raft address %s, not %s", n.ID, old.RaftAddr, n.RaftAddr)}
			}
			if n.HTTPAddr != "" {
				old.HTTPAddr = n.HTTPAddr
			}
			cp := *old
			return Result{Node: &cp}
		}
		for _, x := range m.st.Nodes {
			if x.RaftAddr == n.RaftAddr && x.State != Removed {
				return Result{Error: fmt.Sprintf("raft address %s belongs to node %d", n.RaftAddr, x.ID)}
			}
		}
		n.State = Active
		m.st.Nodes = slices.Insert(m.st.Nodes, i, n)
		return Result{Node: &n}
	case "state":
		i, ok := slices.BinarySearchFunc(m.st.Nodes, c.ID, func(x Node, id uint64) int { return cmpU64(x.ID, id) })
		if !ok {
			return Result{Error: fmt.Sprintf("node %d is not a member", c.ID)}
		}
		n := &m.st.Nodes[i]
		switch {
		case c.State != Active && c.State != Leaving && c.State != Removed:
			return Result{Error: fmt.Sprintf("unknown node state %q", c.State)}
		case n.State == Removed && c.State != Removed:
			return Result{Error: fmt.Sprintf("node %d was removed", c.ID)}
		}
		n.State = c.State
		if c.State == Removed {
			for s, ids := range m.st.Placement {
				m.st.Placement[s] = slices.DeleteFunc(ids, func(id uint64) bool { return id == c.ID })
			}
			for s, ids := range m.st.Hosts {
				m.st.Hosts[s] = slices.DeleteFunc(ids, func(id uint64) bool { return id == c.ID })
			}
		}
		cp := *n
		return Result{Node: &cp}
	case "rf":
		if c.RF < 1 || c.RF > 7 {
			return Result{Error: fmt.Sprintf("replication factor must be in 1..7, got %d", c.RF)}
		}
		m.st.ReplicationFactor = c.RF
		return Result{}
	case "place":
		m.st.Placement[c.Shard] = slices.Sorted(slices.Values(c.Nodes))
		return Result{}
	case "replica":
		if log.NodeOf(c.Replica) != c.ID || c.Shard == 0 {
			return Result{Error: fmt.Sprintf("replica %d does not belong to node %d", c.Replica, c.ID)}
		}
		if _, ok := m.st.Node(c.ID); !ok {
			return Result{Error: fmt.Sprintf("node %d is not a member", c.ID)}
		}
		cur := m.st.ReplicaOf(c.Shard, c.ID)
		if log.GenOf(c.Replica) < log.GenOf(cur) {
			return Result{Error: fmt.Sprintf("node %d already runs replica %d of shard %d, later than %d", c.ID, cur, c.Shard, c.Replica)}
		}
		if m.st.Replicas == nil {
			m.st.Replicas = map[uint64]map[uint64]uint64{}
		}
		if m.st.Replicas[c.Shard] == nil {
			m.st.Replicas[c.Shard] = map[uint64]uint64{}
		}
		m.st.Replicas[c.Shard][c.ID] = c.Replica
		return Result{}
	case "absent":
		if c.Shard == 0 || c.Shard == log.MetaShard {
			return Result{Error: fmt.Sprintf("shard %d cannot be placed by node", c.Shard)}
		}
		n, ok := m.st.Node(c.ID)
		if !ok || n.State == Removed {
			return Result{Error: fmt.Sprintf("node %d is not a member", c.ID)}
		}
		if m.st.Placed() {
			return m.placeHost(c)
		}
		ids := slices.DeleteFunc(slices.Clone(m.st.Absent[c.Shard]), func(id uint64) bool { return id == c.ID })
		if c.Absent {
			// The shard keeps its voters: enough active nodes must stay in it.
			in := 0
			for _, id := range m.st.activeIDs() {
				if id != c.ID && !slices.Contains(ids, id) {
					in++
				}
			}
			if want := wantVoters(m.st.RF(), len(m.st.activeIDs())); in < want {
				return Result{Error: fmt.Sprintf("shard %d needs %d voters; without node %d only %d active nodes would hold it", c.Shard, want, c.ID, in)}
			}
			ids = append(ids, c.ID)
			slices.Sort(ids)
		}
		if m.st.Absent == nil {
			m.st.Absent = map[uint64][]uint64{}
		}
		if len(ids) == 0 {
			delete(m.st.Absent, c.Shard)
		} else {
			m.st.Absent[c.Shard] = ids
		}
		return Result{}
	case "hosting":
		switch c.Hosting {
		case HostingAll:
			// Every node gets every shard back; the placed hosts are forgotten.
			m.st.Hosting, m.st.Hosts = "", nil
		case HostingPlaced:
			if !m.st.Placed() {
				// A shard starts on the nodes that vote in it.
				m.st.Hosting, m.st.Hosts = HostingPlaced, map[uint64][]uint64{}
				for s, ids := range m.st.Placement {
					if s != log.MetaShard && len(ids) > 0 {
						m.st.Hosts[s] = slices.Clone(ids)
					}
				}
				m.st.Absent = nil
			}
		default:
			return Result{Error: fmt.Sprintf("hosting must be %q or %q, got %q", HostingAll, HostingPlaced, c.Hosting)}
		}
		return Result{}
	case "hosts":
		if !m.st.Placed() || c.Shard == 0 || c.Shard == log.MetaShard {
			return Result{Error: "hosts are set per data shard, in placed hosting"}
		}
		m.st.Hosts[c.Shard] = slices.Sorted(slices.Values(c.Nodes))
		return Result{}
	case "shipped":
		m.st.Shipped = c.Token
		return Result{}
	}
	return Result{Error: fmt.Sprintf("unknown meta command %q", c.Op)}
}

// placeHost adds node c.ID to shard c.Shard's hosts, or takes it out (c.Absent) when
// enough other active nodes remain for the controller to place the replica on.
func (m *Machine) placeHost(c Command) Result {
	ids := slices.DeleteFunc(slices.Clone(m.st.Hosts[c.Shard]), func(id uint64) bool { return id == c.ID })
	if c.Absent {
		active := m.st.activeIDs()
		if want := wantVoters(m.st.RF(), len(active)); len(active)-1 < want {
			return Result{Error: fmt.Sprintf("shard %d needs %d voters; without node %d only %d active nodes could hold it", c.Shard, want, c.ID, len(active)-1)}
		}
	} else {
		ids = append(ids, c.ID)
		slices.Sort(ids)
	}
	m.st.Hosts[c.Shard] = ids
	return Result{}
}

// Save writes the state as JSON (log.MetaMachine).
func (m *Machine) Save(w io.Writer) error {
	st := m.State()
	return json.NewEncoder(w).Encode(st)
}

// Recover replaces the state with one written by Save (log.MetaMachine).
func (m *Machine) Recover(r io.Reader) error {
	var st State
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return fmt.Errorf("meta: recover: %w", err)
	}
	if st.Placement == nil {
		st.Placement = map[uint64][]uint64{}
	}
	slices.SortFunc(st.Nodes, func(a, b Node) int { return cmpU64(a.ID, b.ID) })
	m.mu.Lock()
	m.st = st
	m.mu.Unlock()
	if m.onSet != nil {
		m.onSet()
	}
	return nil
}

// activeIDs returns the ids of the nodes in state Active, sorted.
func (s State) activeIDs() []uint64 {
	var out []uint64
	for _, n := range s.Nodes {
		if n.State == Active {
			out = append(out, n.ID)
		}
	}
	return out
}
