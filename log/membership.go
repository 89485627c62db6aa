package log

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lni/dragonboat/v4"
)

// Membership is a shard's replicas as its quorum last agreed: voters take part in
// elections and commits; non-voting replicas receive the log and serve local reads.
type Membership struct {
	Voters    map[uint64]string // replica id → raft address
	NonVoting map[uint64]string
	Removed   []uint64 // ids that left the shard; raft never lets them back in
}

// ReplicaOf returns node's replica in the shard (a voter or not) and whether it has one.
func (m Membership) ReplicaOf(node uint64) (uint64, bool) {
	if id, ok := m.VoterOf(node); ok {
		return id, true
	}
	for id := range m.NonVoting {
		if NodeOf(id) == node {
			return id, true
		}
	}
	return 0, false
}

// VoterOf returns node's voting replica in the shard and whether it has one.
func (m Membership) VoterOf(node uint64) (uint64, bool) {
	for id := range m.Voters {
		if NodeOf(id) == node {
			return id, true
		}
	}
	return 0, false
}

// NextReplica returns the replica id node would join the shard under: its id of the
// generation after the last one removed from the shard (ReplicaID(node, 0) when none was).
func (m Membership) NextReplica(node uint64) uint64 {
	next := ReplicaID(node, 0)
	for _, id := range m.Removed {
		if NodeOf(id) == node && id >= next {
			next = ReplicaID(node, GenOf(id)+1)
		}
	}
	return next
}

// ShardIDs returns every raft group of the cluster: the data shards, then the meta shard
// when there is one. This node may hold no replica of some data shards (see Runs and
// Hosted).
func (h *Host) ShardIDs() []uint64 {
	out := make([]uint64, 0, h.cfg.Shards+1)
	for s := uint64(1); s <= uint64(h.cfg.Shards); s++ {
		out = append(out, s)
	}
	if h.cfg.Meta != nil {
		out = append(out, MetaShard)
	}
	return out
}

// Membership reads shard's membership through its quorum.
func (h *Host) Membership(ctx context.Context, shard uint64) (Membership, error) {
	if _, err := h.hosting(shard); err != nil {
		return Membership{}, err
	}
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	m, err := h.nh.SyncGetShardMembership(ctx, shard)
	if err != nil {
		return Membership{}, h.membershipErr(shard, "read membership", err)
	}
	out := Membership{Voters: m.Nodes, NonVoting: m.NonVotings}
	for id := range m.Removed {
		out.Removed = append(out.Removed, id)
	}
	slices.Sort(out.Removed)
	return out, nil
}

// AddNonVoting adds node id at raft address addr to shard as a non-voting replica. The
// node then starts its replica as joining (Config.Join) and catches up from the leader,
// by snapshot when the log was compacted. Adding a replica that is already a member does
// nothing.
func (h *Host) AddNonVoting(ctx context.Context, shard, id uint64, addr string) error {
	if _, err := h.hosting(shard); err != nil {
		return err
	}
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	err := h.nh.SyncRequestAddNonVoting(ctx, shard, id, addr, 0)
	return h.membershipErr(shard, fmt.Sprintf("add non-voting replica %d", id), err)
}

// Promote makes the non-voting replica id of shard a voter.
func (h *Host) Promote(ctx context.Context, shard, id uint64, addr string) error {
	if _, err := h.hosting(shard); err != nil {
		return err
	}
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	err := h.nh.SyncRequestAddReplica(ctx, shard, id, addr, 0)
	return h.membershipErr(shard, fmt.Sprintf("promote replica %d", id), err)
}

// RemoveReplica removes replica id from shard. Raft never lets the id back into the shard.
func (h *Host) RemoveReplica(ctx context.Context, shard, id uint64) error {
	if _, err := h.hosting(shard); err != nil {
		return err
	}
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	err := h.nh.SyncRequestDeleteReplica(ctx, shard, id, 0)
	return h.membershipErr(shard, fmt.Sprintf("remove replica %d", id), err)
}

// Leader returns shard's leader as this node last heard, and whether one is known (never
// for a shard this node holds no replica of).
func (h *Host) Leader(shard uint64) (uint64, bool) {
	if _, err := h.hosting(shard); err != nil {
		return 0, false
	}
	leader, _, ok, err := h.nh.GetLeaderID(shard)
	return leader, err == nil && ok
}

// TransferLeader asks shard's leadership to move to replica to and waits, until ctx ends
// or an election timeout passes, for it to move away from this node's view of the old
// leader.
func (h *Host) TransferLeader(ctx context.Context, shard, to uint64) error {
	if _, err := h.hosting(shard); err != nil {
		return err
	}
	from, _ := h.Leader(shard)
	if from == to {
		return nil
	}
	if err := h.nh.RequestLeaderTransfer(shard, to); err != nil {
		return h.membershipErr(shard, "transfer leadership", err)
	}
	tctx, cancel := context.WithTimeout(ctx, time.Duration(h.cfg.ElectionRTT)*h.cfg.RTT)
	defer cancel()
	if err := h.pollLeader(tctx, shard, func(leader uint64) bool { return leader != from }); err != nil {
		return fmt.Errorf("%w: shard %d: leadership did not move to %d: %v", ErrUnavailable, shard, to, err)
	}
	return nil
}

// membershipErr classifies a membership operation's error: nil stays nil; a request that
// raft rejected or dropped is ErrUnavailable (try again); anything else is ErrIndeterminate.
func (h *Host) membershipErr(shard uint64, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dragonboat.ErrShardNotFound):
		return fmt.Errorf("%w: %d", ErrUnknownShard, shard)
	case errors.Is(err, dragonboat.ErrRejected), dragonboat.IsTempError(err), errors.Is(err, dragonboat.ErrSystemBusy):
		return fmt.Errorf("%w: shard %d: %s: %v", ErrUnavailable, shard, what, err)
	default:
		return fmt.Errorf("%w: shard %d: %s: %v", ErrIndeterminate, shard, what, err)
	}
}

// Applied returns how far this node's replica of each shard it runs (the meta shard
// included) has applied. Dropped shards are left out.
func (h *Host) Applied() map[uint64]uint64 {
	out := make(map[uint64]uint64, len(h.shards))
	for id, r := range h.shards {
		if r.dropped.Load() {
			continue
		}
		out[id] = r.applied.Load()
	}
	return out
}
