package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/prometheus/client_golang/prometheus"
)

// Host is what the controller needs of the log.
type Host interface {
	ShardIDs() []uint64
	LeadsMeta() bool
	Leader(shard uint64) (uint64, bool)
	Membership(ctx context.Context, shard uint64) (log.Membership, error)
	AddNonVoting(ctx context.Context, shard, id uint64, addr string) error
	Promote(ctx context.Context, shard, id uint64, addr string) error
	RemoveReplica(ctx context.Context, shard, id uint64) error
	TransferLeader(ctx context.Context, shard, to uint64) error
	// Hosts reports whether this node runs an admitted replica of shard.
	Hosts(shard uint64) bool
	ProposeMeta(ctx context.Context, cmd []byte) ([]byte, error)
	Applied() map[uint64]uint64
}

// ControllerConfig configures a Controller.
type ControllerConfig struct {
	Host    Host
	Machine *Machine
	Prober  *Prober
	// Interval between rounds (default 1s). A change of the meta state starts a round at
	// once.
	Interval time.Duration
	// DeadAfter is how long a node may stay unreachable before its replicas are re-created
	// on other nodes (default 5m). A node whose replicas were all re-created is marked
	// removed.
	DeadAfter time.Duration
	// CatchUpSlack is how many raft entries a non-voting replica may trail this node's
	// replica and still count as caught up for promotion (default 64).
	CatchUpSlack uint64
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Validate reports every problem with c.
func (c ControllerConfig) Validate() error {
	var errs []error
	if c.Host == nil || c.Machine == nil || c.Prober == nil {
		errs = append(errs, errors.New("meta: controller needs a host, a machine and a prober"))
	}
	if c.Interval < 0 || c.DeadAfter < 0 {
		errs = append(errs, errors.New("meta: controller intervals must not be negative"))
	}
	return errors.Join(errs...)
}

// Controller drives the cluster's membership toward the meta state. Start it with Run.
type Controller struct {
	cfg  ControllerConfig
	kick chan struct{}
	log  *slog.Logger

	mu       sync.Mutex
	leading  bool
	lastSeen map[uint64]time.Time
	since    time.Time // when this node last became the meta leader
	balanced time.Time // when a leadership was last moved to balance
	// handoff is set by a round that found a replica of this node's own to remove: the
	// meta leadership moves to another node if nothing else was to be done.
	handoff bool
	changes *prometheus.CounterVec
	dead    prometheus.Gauge
}

// NewController returns a Controller.
func NewController(cfg ControllerConfig) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.DeadAfter == 0 {
		cfg.DeadAfter = 5 * time.Minute
	}
	if cfg.CatchUpSlack == 0 {
		cfg.CatchUpSlack = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Controller{cfg: cfg, kick: make(chan struct{}, 1), log: cfg.Logger,
		lastSeen: map[uint64]time.Time{},
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerolith_cluster_membership_changes_total",
			Help: "Membership changes the controller made, by kind (add_non_voting, new_replica_id, promote, move_vote, remove, remove_vote, transfer_leader, mark_removed) and outcome.",
		}, []string{"kind", "outcome"}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aerolith_cluster_unreachable_nodes",
			Help: "Nodes the meta leader could not reach in its last round (0 on other nodes).",
		}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(c.changes, c.dead)
	}
	return c, nil
}

// Kick starts a round soon. It never blocks.
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run runs rounds until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c.round(rctx)
		cancel()
	}
}

// round is one pass: observe, then at most one membership change per shard.
func (c *Controller) round(ctx context.Context) {
	if !c.cfg.Host.LeadsMeta() {
		c.mu.Lock()
		c.leading = false
		c.mu.Unlock()
		c.dead.Set(0)
		return
	}
	st := c.cfg.Machine.State()
	now := time.Now()
	// This node's applied indexes are read before the probes, which may take up to their
	// timeout (a paused node accepts the connection and never answers): read after them,
	// every other replica would look that much behind under write load, and no replacement
	// for the paused node would ever count as caught up.
	own := c.cfg.Host.Applied()
	probes := c.cfg.Prober.ProbeAll(ctx, st.Nodes)
	probes[c.cfg.Prober.Self] = Probe{Node: c.cfg.Prober.Self, Applied: own}
	// self is what a replica must have applied to count as caught up: this node's replica
	// of the shard, or the furthest replica of a shard this node holds none of.
	self := maps.Clone(own)
	for _, p := range probes {
		for shard, a := range p.Applied {
			if _, ok := own[shard]; !ok && a > self[shard] {
				self[shard] = a
			}
		}
	}
	c.mu.Lock()
	if !c.leading {
		// A new meta leader gives every node a full DeadAfter from now.
		c.leading = true
		c.since = now
		c.lastSeen = map[uint64]time.Time{}
		for _, n := range st.Nodes {
			c.lastSeen[n.ID] = now
		}
	}
	unreachable := 0
	for _, n := range st.Nodes {
		if n.State == Removed {
			continue
		}
		if _, ok := probes[n.ID]; ok {
			c.lastSeen[n.ID] = now
		} else {
			unreachable++
			if _, seen := c.lastSeen[n.ID]; !seen {
				c.lastSeen[n.ID] = now
			}
		}
	}
	dead := map[uint64]bool{}
	for id, t := range c.lastSeen {
		if now.Sub(t) > c.cfg.DeadAfter {
			dead[id] = true
		}
	}
	c.mu.Unlock()
	c.dead.Set(float64(unreachable))

	held := map[uint64]bool{}      // nodes that still hold a replica somewhere
	voterSlots := map[uint64]int{} // data-shard votes per node
	members := map[uint64]log.Membership{}
	for _, shard := range c.cfg.Host.ShardIDs() {
		m, err := c.cfg.Host.Membership(ctx, shard)
		if err != nil {
			c.log.Debug("controller: membership unreadable", "shard", shard, "err", err)
			if !c.cfg.Host.Hosts(shard) {
				// This node's replica of the shard is gone or not admitted yet (its vote
				// moved away, and it rejoins): it can neither read nor change the shard's
				// membership. A node that can takes over.
				c.handOffMeta(ctx, st, dead)
				return
			}
			continue
		}
		members[shard] = m
		if shard == log.MetaShard {
			continue
		}
		for id := range m.Voters {
			voterSlots[log.NodeOf(id)]++
		}
	}
	acted := false
	c.handoff = false
	for _, shard := range c.cfg.Host.ShardIDs() {
		m, ok := members[shard]
		if !ok {
			continue
		}
		if !c.cfg.Host.LeadsMeta() {
			return // handed off, or lost: the next meta leader decides
		}
		if c.reconcile(ctx, st, shard, m, probes, self, dead, voterSlots) {
			acted = true
		}
		for id := range m.Voters {
			held[log.NodeOf(id)] = true
		}
		for id := range m.NonVoting {
			held[log.NodeOf(id)] = true
		}
	}
	// Only removing this node's own replicas is left: another node has to, since this one
	// sees each shard through its own replica.
	if !acted && c.handoff {
		c.handOffMeta(ctx, st, dead)
		return
	}
	// Spread the votes once every shard has what it should: one vote moves per round.
	if !acted && len(members) == len(c.cfg.Host.ShardIDs()) {
		c.balanceVotes(ctx, st, members, probes, self, dead)
	}
	// A node that is leaving, or dead with every replica re-created elsewhere, and holds
	// no replica any more is removed for good.
	if len(members) == len(c.cfg.Host.ShardIDs()) {
		for _, n := range st.Nodes {
			if n.State == Removed || held[n.ID] || (n.State == Active && !dead[n.ID]) {
				continue
			}
			c.change(ctx, "mark_removed", 0, n.ID, func() error {
				_, err := Propose(ctx, c.cfg.Host, Command{Op: "state", ID: n.ID, State: Removed})
				return err
			})
		}
	}
	// Moving a leadership stalls the shard's writes for a moment: leave the cluster time
	// to settle after a start or a change of meta leader, and move one at a time. Moves
	// follow each other quickly, though: a node that leads every shard when it dies costs
	// all of them an election at once, on the same survivors.
	if now.Sub(c.since) >= balanceSettle && now.Sub(c.balanced) >= balanceEvery &&
		c.balanceLeaders(ctx, st, members, probes, self, dead) {
		c.balanced = now
	}
}

// balanceSettle is how long the controller waits after becoming meta leader before it
// balances leaderships; balanceEvery is the least time between two moves.
const (
	balanceSettle = 3 * time.Second
	balanceEvery  = 2 * time.Second
)

// wantVoters is how many voters a shard should have: the replication factor, capped by
// the active nodes, and odd (an even number of voters tolerates no more failures than
// one fewer, and needs more of them to commit).
func wantVoters(rf, active int) int {
	n := min(rf, active)
	if n > 1 && n%2 == 0 {
		n--
	}
	return max(n, 1)
}

// reconcile makes at most one membership change in shard, and reports whether it tried
// one. Replica ids are per node and generation (log.ReplicaID); nodes are compared by id.
func (c *Controller) reconcile(ctx context.Context, st State, shard uint64, m log.Membership,
	probes map[uint64]Probe, self map[uint64]uint64, dead map[uint64]bool, voterSlots map[uint64]int) bool {
	// Every active node holds a replica of every shard: add the missing ones as
	// non-voting. They catch up from the leader and serve local reads. A node whose
	// replica was removed from the shard (its vote moved away) comes back under the next
	// generation of its id, recorded in the meta state first so that it restarts its
	// replica under that id.
	// A non-voting replica under an older id than the one the meta state records for its
	// node runs nowhere: the node dropped it (perhaps before it was added) and moved on to
	// the recorded id. It goes, so that the recorded one can be added.
	if shard != log.MetaShard {
		for id := range m.NonVoting {
			node := log.NodeOf(id)
			if log.GenOf(st.ReplicaOf(shard, node)) <= log.GenOf(id) {
				continue
			}
			if node == c.cfg.Prober.Self {
				c.handoff = true
				continue
			}
			c.change(ctx, "remove_stale", shard, node, func() error { return c.cfg.Host.RemoveReplica(ctx, shard, id) })
			return true
		}
	}
	for _, n := range st.Nodes {
		if n.State != Active || dead[n.ID] || !st.Holds(shard, n.ID) {
			continue
		}
		if _, ok := m.ReplicaOf(n.ID); ok {
			continue
		}
		rid := m.NextReplica(n.ID)
		if cur := st.ReplicaOf(shard, n.ID); log.GenOf(cur) > log.GenOf(rid) {
			// A node that dropped its replica of the shard recorded the next id it will
			// run there: the one it dropped may never have been admitted, so raft would
			// take it back, but the node does not run it again.
			rid = cur
		}
		if log.GenOf(rid) > 0 {
			if shard == log.MetaShard {
				continue // meta replicas keep the node id: they never lose a vote to a move
			}
			if st.ReplicaOf(shard, n.ID) != rid {
				c.change(ctx, "new_replica_id", shard, n.ID, func() error {
					_, err := Propose(ctx, c.cfg.Host, Command{Op: "replica", Shard: shard, ID: n.ID, Replica: rid})
					return err
				})
				return true
			}
		}
		c.change(ctx, "add_non_voting", shard, n.ID, func() error {
			return c.cfg.Host.AddNonVoting(ctx, shard, rid, n.RaftAddr)
		})
		return true
	}
	active := len(st.activeIDs())
	want := wantVoters(st.RF(), active)
	var good, bad []uint64       // nodes
	voter := map[uint64]uint64{} // node → its voting replica
	for id := range m.Voters {
		node := log.NodeOf(id)
		voter[node] = id
		n, ok := st.Node(node)
		if ok && n.State == Active && !dead[node] && st.Holds(shard, node) {
			good = append(good, node)
		} else {
			bad = append(bad, node)
		}
	}
	slices.Sort(good)
	slices.Sort(bad)
	if st.Placed() && shard != log.MetaShard {
		if c.placeHosts(ctx, st, shard, m, want, probes, self, dead, voterSlots) {
			return true
		}
	}
	if len(good) < want {
		if rid, ok := c.candidate(st, shard, m, probes, self, dead, voterSlots); ok {
			node := log.NodeOf(rid)
			n, _ := st.Node(node)
			if c.change(ctx, "promote", shard, node, func() error { return c.cfg.Host.Promote(ctx, shard, rid, n.RaftAddr) }) {
				voterSlots[node]++
				c.place(ctx, st, shard, append(good, node))
			}
			return true
		}
	}
	// A voter on a node that is leaving or dead goes once the good voters alone reach what
	// the shard should have — or, for a leaving node, when no replacement can be had and
	// the others still form a majority of what is left.
	for _, node := range bad {
		n, known := st.Node(node)
		if !known {
			continue // a voter that has not registered yet is never removed
		}
		replaceable := len(good) >= want
		if !replaceable && !(n.State != Active && len(good) >= 1) {
			continue
		}
		to := uint64(0)
		if len(good) > 0 {
			to = good[0]
		}
		return c.removeVoter(ctx, st, shard, m, "remove", node, to, voter, good, voterSlots)
	}
	// More good voters than the shard should have (the replication factor was lowered, or
	// balanceVotes promoted a node with few votes): the vote of the node holding the most
	// goes. That node keeps the shard: the next round adds it back as non-voting, under
	// a new replica id. The meta shard keeps its voters.
	if len(good) > want && len(bad) == 0 && shard != log.MetaShard {
		// Among nodes holding as many votes, this node's comes last: removing it means
		// handing the meta leadership off first.
		me := c.cfg.Prober.Self
		node := good[0]
		for _, g := range good[1:] {
			if voterSlots[g] > voterSlots[node] || (voterSlots[g] == voterSlots[node] &&
				(node == me || (g != me && g > node))) {
				node = g
			}
		}
		to := good[0]
		for _, g := range good {
			if g != node && (to == node || voterSlots[g] < voterSlots[to]) {
				to = g
			}
		}
		if st.Placed() {
			// The node leaves the shard's hosts; its voter goes in a later round, as any
			// voter of a node that does not hold the shard.
			c.change(ctx, "unhost", shard, node, func() error {
				_, err := Propose(ctx, c.cfg.Host, Command{Op: "absent", Shard: shard, ID: node, Absent: true})
				return err
			})
			return true
		}
		keep := slices.DeleteFunc(slices.Clone(good), func(g uint64) bool { return g == node })
		return c.removeVoter(ctx, st, shard, m, "remove_vote", node, to, voter, keep, voterSlots)
	}
	// Non-voting replicas of nodes that are leaving, dead or placed outside the shard go
	// at once. One of a node this round's state does not know yet stays: a join registers
	// the node, then adds its replicas, and the round may have read the state before.
	for id := range m.NonVoting {
		node := log.NodeOf(id)
		n, ok := st.Node(node)
		if ok && (n.State != Active || dead[node] || !st.Holds(shard, node)) {
			if node == c.cfg.Prober.Self {
				c.handoff = true
				return false
			}
			c.change(ctx, "remove", shard, node, func() error { return c.cfg.Host.RemoveReplica(ctx, shard, id) })
			return true
		}
	}
	if !slices.Equal(st.Placement[shard], good) && len(bad) == 0 {
		c.place(ctx, st, shard, good)
	}
	return false
}

// placeHosts keeps a data shard's hosts in placed hosting: it records the voters as the
// hosts when the shard has none yet, places the shard on another node when fewer live
// active nodes hold it than it needs voters (dropping dead ones from its hosts), and
// promotes a host's caught-up non-voting replica (a replica that moved in). It reports
// whether it tried a change: then the shard's round is over.
func (c *Controller) placeHosts(ctx context.Context, st State, shard uint64, m log.Membership, want int,
	probes map[uint64]Probe, self map[uint64]uint64, dead map[uint64]bool, voterSlots map[uint64]int) bool {
	live := func(id uint64) bool {
		n, ok := st.Node(id)
		return ok && n.State == Active && !dead[id]
	}
	hosts := st.Hosts[shard]
	if len(hosts) == 0 {
		var voters []uint64
		for id := range m.Voters {
			voters = append(voters, log.NodeOf(id))
		}
		c.change(ctx, "hosts", shard, 0, func() error {
			_, err := Propose(ctx, c.cfg.Host, Command{Op: "hosts", Shard: shard, Nodes: voters})
			return err
		})
		return true
	}
	kept := slices.DeleteFunc(slices.Clone(hosts), func(id uint64) bool { return !live(id) })
	if len(kept) < want {
		// The node holding the fewest shards takes it.
		held := map[uint64]int{}
		for _, ids := range st.Hosts {
			for _, id := range ids {
				held[id]++
			}
		}
		var to uint64
		for _, id := range st.activeIDs() {
			if live(id) && !slices.Contains(kept, id) && (to == 0 || held[id] < held[to]) {
				to = id
			}
		}
		if to == 0 {
			return false // nowhere to place it: the shard keeps what it has
		}
		next := append(kept, to)
		c.change(ctx, "host", shard, to, func() error {
			_, err := Propose(ctx, c.cfg.Host, Command{Op: "hosts", Shard: shard, Nodes: next})
			return err
		})
		return true
	}
	for id := range m.NonVoting {
		node := log.NodeOf(id)
		if !slices.Contains(kept, node) || !c.caughtUp(st, shard, node, probes, self, dead) {
			continue
		}
		n, _ := st.Node(node)
		if c.change(ctx, "promote", shard, node, func() error { return c.cfg.Host.Promote(ctx, shard, id, n.RaftAddr) }) {
			voterSlots[node]++
		}
		return true
	}
	return false
}

// removeVoter takes node's vote in shard (change kind), leaving keep as the voters. When
// node leads the shard, the leadership moves to node to's replica first, and the vote
// goes in a later round. The controller's own node is left to the next meta leader
// (see round). It reports whether it tried a change.
func (c *Controller) removeVoter(ctx context.Context, st State, shard uint64, m log.Membership, kind string,
	node, to uint64, voter map[uint64]uint64, keep []uint64, voterSlots map[uint64]int) bool {
	if leader, ok := c.cfg.Host.Leader(shard); ok && leader == voter[node] && to != 0 && to != node {
		rid := voter[to]
		c.change(ctx, "transfer_leader", shard, to, func() error { return c.transfer(ctx, st, shard, m, rid) })
		return true
	}
	if node == c.cfg.Prober.Self {
		c.handoff = true
		return false
	}
	if c.change(ctx, kind, shard, node, func() error { return c.cfg.Host.RemoveReplica(ctx, shard, voter[node]) }) {
		voterSlots[node]--
		c.place(ctx, st, shard, keep)
	}
	return true
}

// transfer hands shard's leadership to replica to. Raft takes the request from a voter
// (a follower passes it to the leader) but ignores it from a non-voting replica: when this
// node's replica of the shard does not vote, the leader's node is asked over HTTP.
func (c *Controller) transfer(ctx context.Context, st State, shard uint64, m log.Membership, to uint64) error {
	if _, votes := m.VoterOf(c.cfg.Prober.Self); votes {
		return c.cfg.Host.TransferLeader(ctx, shard, to)
	}
	leader, ok := c.cfg.Host.Leader(shard)
	if !ok {
		return fmt.Errorf("meta: shard %d: no leader known", shard)
	}
	n, ok := st.Node(log.NodeOf(leader))
	if !ok || n.HTTPAddr == "" {
		return fmt.Errorf("meta: shard %d: leader's node %d has no HTTP address", shard, log.NodeOf(leader))
	}
	return c.cfg.Prober.TransferLeader(ctx, n.HTTPAddr, shard, to)
}

// handOffMeta moves the meta shard's leadership to another voter of it, on an active,
// reachable node. The controller runs on the meta leader and sees a shard only through
// its own replica of it, so it never removes its own node's replica of a shard: the
// next meta leader does.
func (c *Controller) handOffMeta(ctx context.Context, st State, dead map[uint64]bool) {
	m, err := c.cfg.Host.Membership(ctx, log.MetaShard)
	if err != nil {
		return
	}
	// A node placed in every shard sees them all; any other will hand off again.
	var to, partial uint64
	for _, id := range slices.Sorted(maps.Keys(m.Voters)) {
		n, ok := st.Node(log.NodeOf(id))
		if id == c.cfg.Prober.Self || !ok || n.State != Active || dead[n.ID] {
			continue
		}
		everywhere := true
		for _, s := range c.cfg.Host.ShardIDs() {
			everywhere = everywhere && (s == log.MetaShard || st.Holds(s, n.ID))
		}
		if everywhere {
			to = id
			break
		}
		if partial == 0 {
			partial = id
		}
	}
	if to == 0 {
		to = partial
	}
	if to == 0 {
		return
	}
	c.change(ctx, "transfer_leader", log.MetaShard, log.NodeOf(to), func() error {
		return c.cfg.Host.TransferLeader(ctx, log.MetaShard, to)
	})
}

// candidate picks the non-voting replica to promote in shard: on an active, reachable
// node, caught up with this node's replica, on the node holding the fewest votes
// elsewhere. It returns the replica id.
func (c *Controller) candidate(st State, shard uint64, m log.Membership, probes map[uint64]Probe,
	self map[uint64]uint64, dead map[uint64]bool, voterSlots map[uint64]int) (uint64, bool) {
	var best uint64
	found := false
	for id := range m.NonVoting {
		node := log.NodeOf(id)
		if !st.Holds(shard, node) || !c.caughtUp(st, shard, node, probes, self, dead) {
			continue
		}
		b := log.NodeOf(best)
		if !found || voterSlots[node] < voterSlots[b] || (voterSlots[node] == voterSlots[b] && node < b) {
			best, found = id, true
		}
	}
	return best, found
}

// caughtUp reports whether node is active, reachable and its replica of shard trails
// this node's by at most CatchUpSlack entries.
func (c *Controller) caughtUp(st State, shard, node uint64, probes map[uint64]Probe, self map[uint64]uint64, dead map[uint64]bool) bool {
	n, ok := st.Node(node)
	p, reached := probes[node]
	if !ok || n.State != Active || dead[node] || !reached {
		return false
	}
	return p.Applied[shard]+c.cfg.CatchUpSlack >= self[shard]
}

// balanceVotes moves one data-shard vote from the active node holding the most to the one
// holding the fewest, when they differ by two or more (a node joined a cluster whose
// shards already had their voters): it promotes the second's caught-up non-voting
// replica in a shard where the first votes, and the next rounds take the surplus vote
// from the node holding the most (reconcile). It waits until every active node holds a
// replica of every shard, so one move finishes before the next starts.
func (c *Controller) balanceVotes(ctx context.Context, st State, members map[uint64]log.Membership,
	probes map[uint64]Probe, self map[uint64]uint64, dead map[uint64]bool) bool {
	if st.Placed() {
		return c.balanceHosts(ctx, st, members, dead)
	}
	slots := liveSlots(st, dead)
	if len(slots) < 2 {
		return false
	}
	shards := slices.Sorted(maps.Keys(members))
	for _, shard := range shards {
		if shard == log.MetaShard {
			continue
		}
		m := members[shard]
		for node := range slots {
			if _, ok := m.ReplicaOf(node); !ok && st.Holds(shard, node) {
				return false
			}
		}
		for id := range m.Voters {
			if _, ok := slots[log.NodeOf(id)]; ok {
				slots[log.NodeOf(id)]++
			}
		}
	}
	most, least := extremes(slots)
	if slots[most]-slots[least] < 2 {
		return false
	}
	for _, shard := range shards {
		m := members[shard]
		if shard == log.MetaShard {
			continue
		}
		if _, ok := m.VoterOf(most); !ok {
			continue
		}
		rid, ok := m.ReplicaOf(least)
		if _, votes := m.VoterOf(least); !ok || votes || !c.caughtUp(st, shard, least, probes, self, dead) {
			continue
		}
		n, _ := st.Node(least)
		return c.change(ctx, "move_vote", shard, least, func() error { return c.cfg.Host.Promote(ctx, shard, rid, n.RaftAddr) })
	}
	return false
}

// extremes returns the nodes with the largest and the smallest count, the lowest id first
// among equals.
func extremes(slots map[uint64]int) (most, least uint64) {
	for _, node := range slices.Sorted(maps.Keys(slots)) {
		if most == 0 || slots[node] > slots[most] {
			most = node
		}
		if least == 0 || slots[node] < slots[least] {
			least = node
		}
	}
	return most, least
}

// liveSlots returns a zero count for every active node that is not dead.
func liveSlots(st State, dead map[uint64]bool) map[uint64]int {
	slots := map[uint64]int{}
	for _, n := range st.Nodes {
		if n.State == Active && !dead[n.ID] {
			slots[n.ID] = 0
		}
	}
	return slots
}

// balanceHosts, in placed hosting, moves one data-shard replica from the active node
// holding the most to the one holding the fewest, when they differ by two or more: it
// places the shard on the second, whose new replica catches up and is promoted, and the
// first then leaves the shard's hosts (placeHosts, reconcile). It waits until every shard
// has settled (its voters are its hosts, and no replica is moving), so one move finishes
// before the next starts.
func (c *Controller) balanceHosts(ctx context.Context, st State, members map[uint64]log.Membership, dead map[uint64]bool) bool {
	slots := liveSlots(st, dead)
	if len(slots) < 2 {
		return false
	}
	shards := slices.Sorted(maps.Keys(members))
	for _, shard := range shards {
		if shard == log.MetaShard {
			continue
		}
		m := members[shard]
		var voters []uint64
		for id := range m.Voters {
			voters = append(voters, log.NodeOf(id))
		}
		slices.Sort(voters)
		if len(m.NonVoting) > 0 || !slices.Equal(voters, st.Hosts[shard]) {
			return false
		}
		for _, id := range voters {
			if _, ok := slots[id]; ok {
				slots[id]++
			}
		}
	}
	most, least := extremes(slots)
	if slots[most]-slots[least] < 2 {
		return false
	}
	for _, shard := range shards {
		if shard == log.MetaShard || !st.Holds(shard, most) || st.Holds(shard, least) {
			continue
		}
		return c.change(ctx, "host", shard, least, func() error {
			_, err := Propose(ctx, c.cfg.Host, Command{Op: "absent", Shard: shard, ID: least, Absent: false})
			return err
		})
	}
	return false
}

// balanceLeaders moves one data shard's leadership from the voter that leads the most
// shards to the one that leads the fewest, when they differ by two or more and the second
// has caught up in that shard.
func (c *Controller) balanceLeaders(ctx context.Context, st State, members map[uint64]log.Membership,
	probes map[uint64]Probe, self map[uint64]uint64, dead map[uint64]bool) bool {
	leads := map[uint64][]uint64{} // node → the shards it leads
	candidates := map[uint64]bool{}
	for shard, m := range members {
		if shard == log.MetaShard {
			continue
		}
		for id := range m.Voters {
			if !dead[log.NodeOf(id)] {
				candidates[log.NodeOf(id)] = true
			}
		}
		if l, ok := c.cfg.Host.Leader(shard); ok {
			leads[log.NodeOf(l)] = append(leads[log.NodeOf(l)], shard)
		}
	}
	var most, least uint64
	for id := range candidates {
		if most == 0 || len(leads[id]) > len(leads[most]) || (len(leads[id]) == len(leads[most]) && id < most) {
			most = id
		}
		if least == 0 || len(leads[id]) < len(leads[least]) || (len(leads[id]) == len(leads[least]) && id < least) {
			least = id
		}
	}
	if most == 0 || len(leads[most])-len(leads[least]) < 2 {
		return false
	}
	shards := slices.Sorted(slices.Values(leads[most]))
	for _, shard := range shards {
		// Raft hands leadership only to a replica whose log matches the leader's: one
		// still catching up (a node just restarted) would stall the shard instead.
		if rid, ok := members[shard].VoterOf(least); ok && c.caughtUp(st, shard, least, probes, self, dead) {
			c.change(ctx, "transfer_leader", shard, least, func() error { return c.transfer(ctx, st, shard, members[shard], rid) })
			return true
		}
	}
	return false
}

// change runs one membership change, logs and counts it, and reports whether it worked.
func (c *Controller) change(ctx context.Context, kind string, shard, node uint64, f func() error) bool {
	err := f()
	outcome := "ok"
	if err != nil {
		outcome = "error"
		c.log.Warn("cluster change failed", "kind", kind, "shard", shard, "node", node, "err", err)
	} else {
		c.log.Info("cluster change", "kind", kind, "shard", shard, "node", node)
	}
	c.changes.WithLabelValues(kind, outcome).Inc()
	return err == nil
}

// place records shard's voters in the meta state, when they changed.
func (c *Controller) place(ctx context.Context, st State, shard uint64, voters []uint64) {
	v := slices.Sorted(slices.Values(voters))
	if slices.Equal(st.Placement[shard], v) {
		return
	}
	if _, err := Propose(ctx, c.cfg.Host, Command{Op: "place", Shard: shard, Nodes: v}); err != nil {
		c.log.Warn("placement not recorded", "shard", shard, "err", err)
	}
}

// Propose applies cmd through the meta shard and returns the node it names as it is
// after the command, or the command's refusal as an error wrapping ErrRefused.
func Propose(ctx context.Context, h interface {
	ProposeMeta(context.Context, []byte) ([]byte, error)
}, cmd Command) (*Node, error) {
	b, _ := json.Marshal(cmd)
	res, err := h.ProposeMeta(ctx, b)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, fmt.Errorf("meta: result: %w", err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("%w: %s", ErrRefused, r.Error)
	}
	return r.Node, nil
}

// ErrRefused means the meta shard refused a command (an unknown or removed node, an
// address in use, a bad value).
var ErrRefused = errors.New("meta: refused")
