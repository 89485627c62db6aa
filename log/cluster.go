package log

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"
)

// ClusterStatus is what this node knows of the cluster: every shard's replicas, its
// leader as this node last heard, and how far this node's replica has applied.
type ClusterStatus struct {
	NodeID   uint64
	RaftAddr string
	Nodes    []Member // the union of every shard's replicas, by id
	Shards   []ShardStatus
}

// Member is one replica: its replica id, the node it runs on (NodeOf(ID)) and its raft
// address. In Status.Nodes, ID is the node id.
type Member struct {
	ID       uint64
	Node     uint64
	RaftAddr string
}

// ShardStatus is one shard as this node sees it.
type ShardStatus struct {
	Shard     uint64
	Replicas  []Member // voters
	NonVoting []Member // replicas that receive the log but do not vote
	// Membership says where Replicas came from: "quorum" (confirmed by a ReadIndex on the
	// shard) or "local" (this replica's own view, when no quorum answered in time).
	Membership string
	Leader     uint64 // the leader's replica id; 0 when this node knows no leader
	Term       uint64
	Applied    uint64 // raft index this node's replica has applied
}

// membershipTimeout bounds the quorum read of one shard's membership in Status.
const membershipTimeout = time.Second

// Status reports the cluster as this node sees it, through the shards it runs a replica
// of (a dropped shard is left out). It never fails: a shard whose quorum does not answer
// within a second reports its local view of the membership.
func (h *Host) Status(ctx context.Context) ClusterStatus {
	out := ClusterStatus{NodeID: h.cfg.NodeID, RaftAddr: h.cfg.RaftAddr}
	local := map[uint64]map[uint64]string{}
	localNV := map[uint64]bool{}
	if nhi := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true}); nhi != nil {
		for _, si := range nhi.ShardInfoList {
			local[si.ShardID] = si.Replicas
			localNV[si.ShardID] = si.IsNonVoting
		}
	}
	nodes := map[uint64]string{}
	var ids []uint64
	for _, s := range h.ShardIDs() {
		if h.Runs(s) {
			ids = append(ids, s)
		}
	}
	out.Shards = make([]ShardStatus, len(ids))
	var wg sync.WaitGroup
	for i := range out.Shards {
		shard := ids[i]
		st := &out.Shards[i]
		st.Shard = shard
		if s := h.shards[shard]; s != nil {
			st.Applied = s.applied.Load()
		}
		if leader, term, ok, err := h.nh.GetLeaderID(shard); err == nil && ok {
			st.Leader, st.Term = leader, term
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mctx, cancel := context.WithTimeout(ctx, membershipTimeout)
			defer cancel()
			replicas, how := local[shard], "local"
			var nonVoting map[uint64]string
			if localNV[shard] {
				nonVoting = map[uint64]string{h.ReplicaOf(shard): h.cfg.RaftAddr}
			}
			if m, err := h.nh.SyncGetShardMembership(mctx, shard); err == nil {
				replicas, nonVoting, how = m.Nodes, m.NonVotings, "quorum"
			}
			st.Membership = how
			st.Replicas = members(replicas)
			st.NonVoting = members(nonVoting)
		}()
	}
	wg.Wait()
	for _, st := range out.Shards {
		for _, m := range append(st.Replicas, st.NonVoting...) {
			nodes[m.Node] = m.RaftAddr
		}
	}
	out.Nodes = members(nodes)
	return out
}

func members(m map[uint64]string) []Member {
	out := make([]Member, 0, len(m))
	for id, addr := range m {
		out = append(out, Member{ID: id, Node: NodeOf(id), RaftAddr: addr})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Drain hands the leadership of every shard this replica leads to another member and
// waits, until ctx ends, for each to move. It returns how many shards it moved; shards it
// could not move (no other member answered in time) stay led here and are named in the
// error. A node that drains before it stops spares the others an election timeout.
func (h *Host) Drain(ctx context.Context) (int, error) {
	var (
		mu     sync.Mutex
		moved  int
		errs   []error
		wg     sync.WaitGroup
		voters = h.localVoters()
	)
	for _, s := range h.ShardIDs() {
		if !h.Runs(s) {
			continue
		}
		if leader, _, ok, err := h.nh.GetLeaderID(s); err != nil || !ok || leader != h.ReplicaOf(s) {
			continue
		}
		others := voters[s]
		if len(others) == 0 {
			continue
		}
		wg.Add(1)
		go func(shard uint64, others []uint64) {
			defer wg.Done()
			err := h.transfer(ctx, shard, others)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			moved++
		}(s, others)
	}
	wg.Wait()
	return moved, errors.Join(errs...)
}

// transfer asks each of targets in turn (starting at one that depends on the shard, so
// drained leaders spread) to take over shard, giving each an election timeout.
func (h *Host) transfer(ctx context.Context, shard uint64, targets []uint64) error {
	per := time.Duration(h.cfg.ElectionRTT) * h.cfg.RTT
	for i := range targets {
		target := targets[(int(shard)+i)%len(targets)]
		if err := h.nh.RequestLeaderTransfer(shard, target); err != nil {
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, per)
		self := h.ReplicaOf(shard)
		err := h.pollLeader(tctx, shard, func(leader uint64) bool { return leader != self })
		cancel()
		if err == nil {
			h.log.Info("leadership handed over", "shard", shard, "to", target)
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("log: shard %d: leadership not handed over: %w", shard, err)
	}
	return fmt.Errorf("log: shard %d: leadership not handed over: none of replicas %v took it within an election timeout", shard, targets)
}

// pollLeader polls shard's leader until done(leader) holds for a known leader or ctx ends,
// or returns ErrNotHosted once this node drops the shard.
func (h *Host) pollLeader(ctx context.Context, shard uint64, done func(leader uint64) bool) error {
	backoff := time.Millisecond
	for {
		if r, ok := h.shards[shard]; ok && r.dropped.Load() {
			return fmt.Errorf("%w: %d", ErrNotHosted, shard)
		}
		leader, _, ok, err := h.nh.GetLeaderID(shard)
		if err != nil && !errors.Is(err, dragonboat.ErrShardNotFound) {
			return err
		}
		if ok && done(leader) {
			return nil
		}
		if !sleepCtx(ctx, h.stop, backoff) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return ErrClosed
		}
		backoff = min(backoff*2, 20*time.Millisecond)
	}
}

// localVoters returns, per shard, the voters other than this node in this replica's own
// view of the membership, sorted.
func (h *Host) localVoters() map[uint64][]uint64 {
	out := map[uint64][]uint64{}
	nhi := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
	if nhi == nil {
		return out
	}
	for _, si := range nhi.ShardInfoList {
		for id := range si.Replicas {
			if id != si.ReplicaID {
				out[si.ShardID] = append(out[si.ShardID], id)
			}
		}
		slices.Sort(out[si.ShardID])
	}
	return out
}

// validateMembers reports what is wrong with a static member list for node id at addr.
func validateMembers(members map[uint64]string, id uint64, addr string) []error {
	var errs []error
	seen := map[string]uint64{}
	ids := make([]uint64, 0, len(members))
	for m := range members {
		ids = append(ids, m)
	}
	slices.Sort(ids)
	for _, m := range ids {
		a := members[m]
		if m == 0 || m > MaxNodeID {
			errs = append(errs, fmt.Errorf("initial member id must be in 1..%d, got %d (address %q)", uint64(MaxNodeID), m, a))
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("initial member %d: address %q: %v", m, a, err))
		}
		if other, dup := seen[a]; dup {
			errs = append(errs, fmt.Errorf("initial members %d and %d share the address %q", other, m, a))
		}
		seen[a] = m
	}
	if a, ok := members[id]; !ok {
		errs = append(errs, fmt.Errorf("initial members do not include this node (%d)", id))
	} else if a != addr {
		errs = append(errs, fmt.Errorf("initial members give node %d the raft address %q, but this node's raft address is %q", id, a, addr))
	}
	return errs
}

// ValidateMembers reports every problem with a static member list for the node id whose
// raft address is addr: ids > 0, addresses host:port and distinct, the node itself listed
// with its own address. Nil when there is none.
func ValidateMembers(members map[uint64]string, id uint64, addr string) error {
	return errors.Join(validateMembers(members, id, addr)...)
}
