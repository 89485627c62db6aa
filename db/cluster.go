package db

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/meta"
)

// ErrMembership means the cluster refused a membership request: a node id that was
// removed (ids are never reused), an address that belongs to another node, an unknown
// node, or a decommission that would leave no voter.
var ErrMembership = errors.New("db: membership change refused")

// startMeta registers this node (and, in a static cluster, every initial member) in the
// meta shard, retrying until it succeeds, and runs the controller. Both stop with ctx.
func (d *DB) startMeta(ctx context.Context) {
	d.wg.Add(3)
	go func() {
		defer d.wg.Done()
		d.followReplicas(ctx)
	}()
	go func() {
		defer d.wg.Done()
		d.register(ctx)
	}()
	go func() {
		defer d.wg.Done()
		d.ctrl.Run(ctx)
	}()
}

// followReplicas restarts this node's replicas under the replica ids the meta shard gives
// them: when a node's vote in a shard moves to another node, the controller removes the
// node's replica and records a later generation of its id, under which the node keeps the
// shard as a non-voting replica (log.Host.Rejoin). It looks on every change of the meta
// state and every second, until ctx ends.
func (d *DB) followReplicas(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for shard := uint64(1); shard <= uint64(d.host.Shards()); shard++ {
			st := d.meta.State() // anew for each shard: a drop takes a while
			want, have := st.ReplicaOf(shard, d.cfg.NodeID), d.host.ReplicaOf(shard)
			switch {
			case !st.Holds(shard, d.cfg.NodeID):
				// Placed outside the shard: once the shard removed this node's replica
				// (a replica that joined and was never admitted counts too), its data
				// goes.
				if have != 0 && d.removedFrom(ctx, shard, have) {
					d.dropShard(ctx, shard)
				}
				d.recordNextReplica(ctx, st, shard)
				continue
			case have == 0:
				// Placed back in: the controller adds the next replica id this node
				// recorded; the replica starts empty and catches up.
				if dropped := d.host.DroppedReplica(shard); log.GenOf(want) > log.GenOf(dropped) {
					d.adoptShard(ctx, shard, want)
				} else {
					d.recordNextReplica(ctx, st, shard)
				}
				continue
			}
			if log.GenOf(want) <= log.GenOf(have) {
				continue
			}
			if err := d.host.Rejoin(ctx, shard, want); err != nil {
				d.cfg.Logger.Warn("replica not restarted under its new id", "shard", shard, "replica", want, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.replicasChanged:
		}
	}
}

// dropShard removes this node's replica of shard and the shard's data: the shard is then
// served by other nodes (peer.go).
func (d *DB) dropShard(ctx context.Context, shard uint64) {
	if err := d.host.Drop(ctx, shard); err != nil {
		d.cfg.Logger.Warn("replica not dropped", "shard", shard, "err", err)
		return
	}
	d.adopting.forget(shard)
	if err := d.dropData(ctx, shard); err != nil {
		d.cfg.Logger.Error("shard data not dropped", "shard", shard, "err", err)
		return
	}
	d.cfg.Logger.Info("shard placed elsewhere: replica and data dropped", "shard", shard)
}

// dropData removes everything this node keeps of a shard whose replica it dropped: the
// materialized state (documents, events, indexes, L1), the shard's archive segments (L4,
// which may hold bodies redacted since) and this node's signed checkpoints of it. Each
// step can be repeated: Open calls it for every dropped shard, which finishes a drop that
// a crash cut short (the log records the drop first).
func (d *DB) dropData(ctx context.Context, shard uint64) error {
	if err := d.mat.Drop(shard); err != nil {
		return err
	}
	d.localMu.Lock()
	defer d.localMu.Unlock()
	if err := d.archive.Drop(ctx, shard); err != nil {
		return err
	}
	for p := range d.scrubbed {
		if p.Shard == shard {
			delete(d.scrubbed, p)
		}
	}
	return d.store.DeleteCheckpoints(shard)
}

// removedFrom reports whether replica rid of this node is not a member of shard, as a node
// that holds the shard sees it (false when none answers). A replica the shard removed
// unloads once it applies its removal, but raft does not promise it ever does (the leader
// stops sending to it), so its own view is not enough.
func (d *DB) removedFrom(ctx context.Context, shard, rid uint64) bool {
	// A replica not admitted yet may be one the controller is adding just now (this
	// node's meta state may not show the shard placed here yet): ask in every case.
	var m log.Membership
	pctx, cancel := context.WithTimeout(ctx, d.cfg.ReadTimeout)
	defer cancel()
	if err := d.peerCall(pctx, shard, "membership", peerShard{Shard: shard}, &m); err != nil {
		return false
	}
	_, voter := m.Voters[rid]
	_, nonVoting := m.NonVoting[rid]
	return !voter && !nonVoting
}

// recordNextReplica records in the meta state, once this node dropped its replica of
// shard, the replica id it will run there if placed back in: a later generation than
// the one it dropped, which raft may or may not have admitted (and then removed).
func (d *DB) recordNextReplica(ctx context.Context, st meta.State, shard uint64) {
	dropped := d.host.DroppedReplica(shard)
	if dropped == 0 || log.GenOf(st.ReplicaOf(shard, d.cfg.NodeID)) > log.GenOf(dropped) {
		return
	}
	next := log.ReplicaID(d.cfg.NodeID, log.GenOf(dropped)+1)
	pctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	if _, err := meta.Propose(pctx, d.host, meta.Command{Op: "replica", Shard: shard, ID: d.cfg.NodeID, Replica: next}); err != nil {
		d.cfg.Logger.Warn("next replica id not recorded", "shard", shard, "replica", next, "err", err)
	}
}

// adoptShard starts this node's replica rid of shard, empty, to catch up from the leader.
func (d *DB) adoptShard(ctx context.Context, shard, rid uint64) {
	d.adopting.start(shard)
	if err := d.host.Adopt(ctx, shard, rid); err != nil {
		d.adopting.forget(shard)
		d.cfg.Logger.Warn("replica not started", "shard", shard, "replica", rid, "err", err)
		return
	}
	d.cfg.Logger.Info("shard placed here: replica started", "shard", shard, "replica", rid)
}

// adopting holds the shards whose replica this node adopted and does not serve from yet:
// until the shard admitted the replica and it applied the head this node's change feed
// had already announced (followed from other nodes), the node keeps serving the shard
// through the nodes that hold it (db.local is false), instead of making requests wait for
// an empty replica. A restart forgets it: a restarted node serves its replicas at once.
type adopting struct {
	n      atomic.Int32 // len(shards): the fast path of local
	mu     sync.Mutex
	shards map[uint64]*catchUp
}

// catchUp is one adopted replica's progress towards serving.
type catchUp struct {
	head     uint64 // the head to reach; set once the shard admitted the replica
	admitted bool
	checked  time.Time // last look, so that lookups under load stay rare
}

// adoptCheckEvery bounds how often caughtUp looks at a shard still catching up.
const adoptCheckEvery = 50 * time.Millisecond

func (a *adopting) start(shard uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.shards == nil {
		a.shards = map[uint64]*catchUp{}
	}
	if _, ok := a.shards[shard]; !ok {
		a.n.Add(1)
	}
	a.shards[shard] = &catchUp{}
}

func (a *adopting) forget(shard uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.shards[shard]; ok {
		delete(a.shards, shard)
		a.n.Add(-1)
	}
}

// caughtUp reports whether this node serves shard from its own replica: true unless the
// replica was adopted and has not caught up (adopting).
func (d *DB) caughtUp(shard uint64) bool {
	a := &d.adopting
	if a.n.Load() == 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.shards[shard]
	if !ok {
		return true
	}
	if time.Since(c.checked) < adoptCheckEvery {
		return false
	}
	c.checked = time.Now()
	if !c.admitted {
		if !d.host.Hosts(shard) {
			return false
		}
		c.admitted, c.head = true, d.hub.Head(shard)
	}
	if m, err := d.store.Meta(shard); err != nil || m.LastIndex < c.head {
		return false
	}
	delete(a.shards, shard)
	a.n.Add(-1)
	d.cfg.Logger.Info("adopted replica caught up: the shard is served from it", "shard", shard, "head", c.head)
	return true
}

func (d *DB) register(ctx context.Context) {
	nodes := []meta.Node{{ID: d.cfg.NodeID, RaftAddr: d.cfg.RaftAddr, HTTPAddr: d.cfg.AdvertiseHTTP}}
	if !d.cfg.Join {
		for id, addr := range d.cfg.InitialMembers {
			if id != d.cfg.NodeID {
				nodes = append(nodes, meta.Node{ID: id, RaftAddr: addr})
			}
		}
	}
	backoff := 50 * time.Millisecond
	for len(nodes) > 0 {
		n := nodes[0]
		_, err := meta.Propose(ctx, d.host, meta.Command{Op: "register", Node: n})
		switch {
		case err == nil:
			nodes = nodes[1:]
			continue
		case errors.Is(err, meta.ErrRefused):
			d.cfg.Logger.Error("node not registered in the cluster", "node", n.ID, "err", err)
			nodes = nodes[1:]
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
	d.cfg.Logger.Info("node registered in the cluster", "node", d.cfg.NodeID, "http_addr", d.cfg.AdvertiseHTTP)
}

// JoinRequest is a new node asking to join: its id, raft address and HTTP address.
type JoinRequest struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// Join adds a node to the cluster: it registers the node in the meta shard and adds it
// as a non-voting replica of every shard, so the node can start its replicas (joining)
// and catch up. The controller later promotes it where a shard needs voters. Asking
// again for a node already added changes nothing.
func (d *DB) Join(ctx context.Context, r JoinRequest) (meta.Node, error) {
	if r.ID == 0 || r.RaftAddr == "" {
		return meta.Node{}, fmt.Errorf("%w: a node needs an id > 0 and a raft address", ErrInvalidArgument)
	}
	if err := log.ValidateMembers(map[uint64]string{r.ID: r.RaftAddr}, r.ID, r.RaftAddr); err != nil {
		return meta.Node{}, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 4*d.cfg.WriteTimeout)
	defer cancel()
	n, err := meta.Propose(ctx, d.host, meta.Command{Op: "register", Node: meta.Node{ID: r.ID, RaftAddr: r.RaftAddr, HTTPAddr: r.HTTPAddr}})
	if err != nil {
		return meta.Node{}, d.membershipErr(err)
	}
	st := d.meta.State()
	for _, shard := range d.host.ShardIDs() {
		if shard != log.MetaShard && !st.Holds(shard, r.ID) {
			continue // placed hosting: the controller moves replicas to the node
		}
		// The controller adds a registered node's missing replicas too: a membership
		// change of its that is under way refuses this one for a moment.
		for backoff := 20 * time.Millisecond; ; backoff = min(2*backoff, 500*time.Millisecond) {
			err := d.addJoining(ctx, shard, r)
			if err == nil {
				break
			}
			if !errors.Is(err, log.ErrUnavailable) {
				return meta.Node{}, d.membershipErr(err)
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return meta.Node{}, d.membershipErr(err)
			case <-t.C:
			}
		}
	}
	d.cfg.Logger.Info("node joined", "node", r.ID, "raft_addr", r.RaftAddr, "http_addr", r.HTTPAddr)
	d.ctrl.Kick()
	return *n, nil
}

// addJoining adds a joining node to shard as a non-voting replica unless it has one.
func (d *DB) addJoining(ctx context.Context, shard uint64, r JoinRequest) error {
	admin := shardAdmin{Host: d.host, d: d}
	m, err := admin.Membership(ctx, shard)
	if err != nil {
		return err
	}
	if _, ok := m.ReplicaOf(r.ID); ok {
		return nil
	}
	if m.NextReplica(r.ID) != r.ID {
		// Its replica was removed (its vote moved away): the controller adds it back
		// under the next replica id.
		return nil
	}
	return admin.AddNonVoting(ctx, shard, r.ID, r.RaftAddr)
}

// ErrNodeRemoved means the cluster removed this node (decommissioned, or unreachable for
// longer than DeadAfter): raft never lets its replicas back, so it cannot start. Its data
// directory has to be wiped and the node joined again.
var ErrNodeRemoved = errors.New("db: this node was removed from the cluster; wipe its data directory and join it again")

// removedCheckEvery is how often a node waiting to get ready asks the other members
// whether it was removed.
const removedCheckEvery = 3 * time.Second

// waitReady waits until every shard is ready. A node the cluster removed while it was down
// never hears from a leader again, so meanwhile it asks the other members (their
// GET /v1/cluster/nodes/{id}) and gives up with ErrNodeRemoved when one says so, instead
// of waiting out ctx as if the cluster were unavailable.
func (d *DB) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if d.watchRemoved(wctx, removedCheckEvery) {
			cancel(ErrNodeRemoved)
		}
	}()
	err := d.host.WaitReady(ctx)
	stopWatch()
	<-watched
	if cause := context.Cause(ctx); errors.Is(cause, ErrNodeRemoved) {
		return fmt.Errorf("%w (node %d)", ErrNodeRemoved, d.cfg.NodeID)
	}
	return err
}

// watchRemoved asks the other members, every every, whether the cluster removed this node
// (decommissioned, or unreachable longer than DeadAfter: its replicas and their ids are
// gone for good). It reports true as soon as one says so, false when ctx ends first.
func (d *DB) watchRemoved(ctx context.Context, every time.Duration) bool {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		if d.removedByPeers(ctx) {
			return true
		}
	}
}

// removedWatchEvery is how often a running node asks whether it was removed.
const removedWatchEvery = 5 * time.Second

// Removed is closed once this node learns that the cluster removed it: it cannot serve
// any more, and whoever runs it should stop it (the server exits with ErrNodeRemoved).
func (d *DB) Removed() <-chan struct{} { return d.removed }

// removedByPeers reports whether this node's meta state, or any other member it can reach,
// has this node removed.
func (d *DB) removedByPeers(ctx context.Context) bool {
	st := d.meta.State()
	if n, ok := st.Node(d.cfg.NodeID); ok && n.State == meta.Removed {
		return true
	}
	for _, n := range st.Nodes {
		if n.ID == d.cfg.NodeID || n.State == meta.Removed || n.HTTPAddr == "" {
			continue
		}
		m, ok, err := d.prober.Member(ctx, n.HTTPAddr, d.cfg.NodeID)
		if err == nil && ok && m.State == meta.Removed {
			d.cfg.Logger.Error("this node was removed from the cluster", "node", d.cfg.NodeID, "told_by", n.ID)
			return true
		}
	}
	return false
}

// Member returns node id as this node's meta state has it; ErrNotFound when it is not a
// member.
func (d *DB) Member(id uint64) (meta.Node, error) {
	n, ok := d.meta.State().Node(id)
	if !ok {
		return meta.Node{}, fmt.Errorf("%w: node %d is not a member", ErrNotFound, id)
	}
	return n, nil
}

// Decommission marks node id leaving. The controller then moves its votes to other
// nodes, removes its replicas, and marks it removed; Cluster shows the progress.
func (d *DB) Decommission(ctx context.Context, id uint64) (meta.Node, error) {
	st := d.meta.State()
	n, ok := st.Node(id)
	if !ok {
		return meta.Node{}, fmt.Errorf("%w: node %d is not a member", ErrMembership, id)
	}
	if n.State != meta.Active {
		return n, nil
	}
	active := 0
	for _, x := range st.Nodes {
		if x.State == meta.Active {
			active++
		}
	}
	if active <= 1 {
		return meta.Node{}, fmt.Errorf("%w: node %d is the last active node", ErrMembership, id)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	out, err := meta.Propose(ctx, d.host, meta.Command{Op: "state", ID: id, State: meta.Leaving})
	if err != nil {
		return meta.Node{}, d.membershipErr(err)
	}
	d.cfg.Logger.Info("node decommission started", "node", id)
	d.ctrl.Kick()
	return *out, nil
}

// SetReplicationFactor sets how many voters each shard should have (1..7, capped by the
// active nodes and kept odd).
func (d *DB) SetReplicationFactor(ctx context.Context, rf int) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	if _, err := meta.Propose(ctx, d.host, meta.Command{Op: "rf", RF: rf}); err != nil {
		if errors.Is(err, meta.ErrRefused) {
			return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
		return d.membershipErr(err)
	}
	d.ctrl.Kick()
	return nil
}

// PlaceShard places node outside shard (absent true) or back in it. A node placed
// outside a shard loses its vote there (the controller promotes another node's replica
// first), then its replica; it drops the shard's data and serves the shard through the
// nodes that hold it. Placed back in, it gets a new replica that catches up from the
// leader. The meta state refuses to leave a shard fewer active nodes than its voters.
func (d *DB) PlaceShard(ctx context.Context, shard, node uint64, absent bool) error {
	if shard == 0 || shard > uint64(d.host.Shards()) {
		return fmt.Errorf("%w: no shard %d", ErrInvalidArgument, shard)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	if _, err := meta.Propose(ctx, d.host, meta.Command{Op: "absent", Shard: shard, ID: node, Absent: absent}); err != nil {
		return d.membershipErr(err)
	}
	d.ctrl.Kick()
	return nil
}

// SetHosting sets which nodes hold a replica of each data shard: meta.HostingAll (every
// node; the default) or meta.HostingPlaced (as many nodes as the shard has voters, spread
// evenly: each node stores only its share of the data and serves the rest through the
// nodes that hold it).
func (d *DB) SetHosting(ctx context.Context, mode string) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	if _, err := meta.Propose(ctx, d.host, meta.Command{Op: "hosting", Hosting: mode}); err != nil {
		if errors.Is(err, meta.ErrRefused) {
			return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
		return d.membershipErr(err)
	}
	d.ctrl.Kick()
	return nil
}

// TransferLeader asks this node's replica of shard to hand the leadership to replica to,
// and waits up to an election timeout for it to move.
func (d *DB) TransferLeader(ctx context.Context, shard, to uint64) error {
	if shard == 0 || (shard > uint64(d.host.Shards()) && shard != log.MetaShard) {
		return fmt.Errorf("%w: no shard %d", ErrInvalidArgument, shard)
	}
	if to == 0 {
		return fmt.Errorf("%w: a leader transfer needs the target replica id (\"to\")", ErrInvalidArgument)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	return d.membershipErr(d.host.TransferLeader(ctx, shard, to))
}

func (d *DB) membershipErr(err error) error {
	switch {
	case errors.Is(err, meta.ErrRefused):
		return fmt.Errorf("%w: %v", ErrMembership, err)
	case errors.Is(err, log.ErrIndeterminate):
		return fmt.Errorf("%w: %v", ErrIndeterminate, err)
	case errors.Is(err, log.ErrUnavailable), errors.Is(err, log.ErrClosed), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// LocalApplied is this node's id and how far each of its replicas has applied: the
// answer to other nodes' probes.
func (d *DB) LocalApplied() meta.Probe {
	return meta.Probe{Node: d.cfg.NodeID, Applied: d.host.Applied()}
}

// ClusterView is the cluster as this node sees it: the raft view of every shard, the
// meta shard's members and placement, and how far every reachable replica has applied.
type ClusterView struct {
	log.ClusterStatus
	Members           []meta.Node
	ReplicationFactor int
	Placement         map[uint64][]uint64
	Hosting           string              // meta.HostingAll or meta.HostingPlaced
	Hosts             map[uint64][]uint64 // placed hosting: the nodes holding each shard
	Absent            map[uint64][]uint64 // hosting all: the nodes placed outside a shard
	// Remote holds the shards this node holds no replica of: their status comes from a
	// node that holds one.
	Remote map[uint64]bool
	// Applied holds, per node that answered a probe (node → shard → index), how far its
	// replicas have applied.
	Applied map[uint64]map[uint64]uint64
}

// Cluster reports the nodes and shards of the cluster as this node sees them: replicas,
// leaders, each reachable replica's applied index, members and their states.
func (d *DB) Cluster(ctx context.Context) ClusterView {
	var (
		wg   sync.WaitGroup
		view ClusterView
	)
	st := d.meta.State()
	wg.Add(1)
	go func() {
		defer wg.Done()
		view.ClusterStatus = d.host.Status(ctx)
		for s := uint64(1); s <= uint64(d.host.Shards()); s++ {
			if d.local(s) {
				continue
			}
			var sh log.ShardStatus
			if err := d.peerCall(ctx, s, "status", peerShard{Shard: s}, &sh); err != nil {
				sh = log.ShardStatus{Shard: s, Membership: "unknown"}
			}
			if view.Remote == nil {
				view.Remote = map[uint64]bool{}
			}
			view.Remote[s] = true
			sh.Applied = 0
			view.Shards = append(view.Shards, sh)
		}
		slices.SortFunc(view.Shards, func(a, b log.ShardStatus) int { return cmp.Compare(a.Shard, b.Shard) })
	}()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	probes := d.prober.ProbeAll(pctx, st.Nodes)
	cancel()
	wg.Wait()
	probes[d.cfg.NodeID] = d.LocalApplied()
	view.Members, view.ReplicationFactor, view.Placement = st.Nodes, st.RF(), st.Placement
	view.Hosting, view.Hosts, view.Absent = st.Hosting, st.Hosts, st.Absent
	if view.Hosting == "" {
		view.Hosting = meta.HostingAll
	}
	view.Applied = make(map[uint64]map[uint64]uint64, len(probes))
	for id, p := range probes {
		view.Applied[id] = p.Applied
	}
	return view
}

// LeadsMeta reports whether this node leads the meta shard: the one node of the cluster
// that runs work done once per cluster (the controller; shipping to other datacenters
// when it is elected).
func (d *DB) LeadsMeta() bool { return d.host.LeadsMeta() }

// ShipProgress returns the replication shipper's progress kept in the meta shard ("" when
// none was kept).
func (d *DB) ShipProgress() string { return d.meta.State().Shipped }

// SetShipProgress keeps the replication shipper's progress in the meta shard.
func (d *DB) SetShipProgress(ctx context.Context, token string) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	_, err := meta.Propose(ctx, d.host, meta.Command{Op: "shipped", Token: token})
	return d.membershipErr(err)
}
