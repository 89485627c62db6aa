package log

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aerolithsdb/aerolith/internal/durable"
	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// A replica id names one node's replica of one shard: the node id in the low 32 bits and
// a generation in the high 32. A node's first replica of a shard has generation 0, so its
// replica id is the node id. Raft never lets a removed replica id back into a shard; when
// a node's vote in a shard is taken away (its replica removed) and the node is to keep
// the shard as a non-voting replica, it rejoins under the next generation.

// MaxNodeID is the largest node id: the low 32 bits of a replica id.
const MaxNodeID = 1<<32 - 1

// ReplicaID returns node's replica id of generation gen.
func ReplicaID(node uint64, gen uint32) uint64 { return uint64(gen)<<32 | node&MaxNodeID }

// NodeOf returns the node a replica id belongs to.
func NodeOf(replica uint64) uint64 { return replica & MaxNodeID }

// GenOf returns a replica id's generation.
func GenOf(replica uint64) uint32 { return uint32(replica >> 32) }

// replicasFile records, per shard, the replica this node runs when that is not the
// plain node id, or when the replica joined a running shard, or that this node dropped
// the shard: a restart resumes the replica a rejoin or an adoption started, restarts a
// joined replica as non-voting (raft replays its admission as one), and starts no
// replica of a dropped shard.
const replicasFile = "replicas.json"

type replicaRecord struct {
	ID     uint64 `json:"id"`
	Joined bool   `json:"joined,omitempty"`
	// Dropped: this node holds no replica of the shard (Drop); ID is the one it dropped.
	Dropped bool `json:"dropped,omitempty"`
	// Fresh: the replica rejoined (Rejoin) with the state an earlier replica of this node
	// applied, so every start passes over that state (adapter.fresh). Raft records a new
	// replica before it has any entry: a restart that reported the state's index would
	// make raft take the replica for a new one at a non-zero index and stop the process.
	Fresh bool `json:"fresh,omitempty"`
}

func (h *Host) loadReplicaRecords() (map[uint64]replicaRecord, error) {
	b, err := os.ReadFile(filepath.Join(h.cfg.Dir, replicasFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[uint64]replicaRecord{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[uint64]replicaRecord{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", replicasFile, err)
	}
	return out, nil
}

// saveReplicaRecords replaces the file atomically and durably.
func (h *Host) saveReplicaRecords(recs map[uint64]replicaRecord) error {
	b, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	return durable.WriteFile(h.cfg.Dir, replicasFile, b)
}

// ReplicaOf returns the replica id of this node's replica of shard, 0 when it runs none
// (a dropped shard, or an unknown one).
func (h *Host) ReplicaOf(shard uint64) uint64 {
	if r, ok := h.shards[shard]; ok && !r.dropped.Load() {
		return r.id.Load()
	}
	return 0
}

// Hosts reports whether this node runs a replica of shard that the shard admitted: it
// is loaded and has applied a membership. A replica removed from its shard is unloaded;
// one that rejoins under a new id, or that Adopt started, is pending until the leader
// reaches it. False for a dropped shard.
func (h *Host) Hosts(shard uint64) bool {
	if !h.Runs(shard) {
		return false
	}
	nhi := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
	if nhi == nil {
		return false
	}
	for _, si := range nhi.ShardInfoList {
		if si.ShardID == shard {
			return !si.Pending
		}
	}
	return false
}

// replicaConfig is the raft configuration of this node's replica rid of data shard.
func (h *Host) replicaConfig(shard, rid uint64) config.Config {
	return config.Config{
		ReplicaID:          rid,
		ShardID:            shard,
		CheckQuorum:        true,
		PreVote:            true,
		ElectionRTT:        h.cfg.ElectionRTT,
		HeartbeatRTT:       h.cfg.HeartbeatRTT,
		SnapshotEntries:    h.cfg.SnapshotEntries,
		CompactionOverhead: h.cfg.SnapshotEntries / 2,
	}
}

// createFunc returns the constructor of shard's state machine adapter; fresh for a
// replica joining under a new replica id (see adapter).
func (h *Host) createFunc(shard uint64, rep *replica, fresh bool) sm.CreateOnDiskStateMachineFunc {
	return func(uint64, uint64) sm.IOnDiskStateMachine {
		return &adapter{sm: h.cfg.NewStateMachine(shard), applied: &rep.applied, fresh: fresh}
	}
}

// Rejoin restarts this node's replica of data shard under replica id rid, a later
// generation of this node's id, as a joining non-voting replica: a member must have
// added rid to the shard (AddNonVoting), after the replica running now was removed from
// it. The replica keeps the state it has applied — the same shard's log, so the new
// replica skips the entries it already holds and catches up on the rest from the leader,
// by snapshot when the log was compacted. Until it has, proposals and reads on this node
// wait for it or fail as unavailable. The new id is recorded first, so a crash midway
// resumes the rejoin at the next start.
func (h *Host) Rejoin(ctx context.Context, shard, rid uint64) error {
	rep, ok := h.shards[shard]
	if !ok || shard == MetaShard {
		return fmt.Errorf("%w: %d", ErrUnknownShard, shard)
	}
	h.placeMu.Lock()
	defer h.placeMu.Unlock()
	if rep.dropped.Load() {
		return fmt.Errorf("%w: %d: nothing to rejoin (Adopt starts a replica)", ErrNotHosted, shard)
	}
	old := rep.id.Load()
	if NodeOf(rid) != h.cfg.NodeID || GenOf(rid) <= GenOf(old) {
		return fmt.Errorf("log: shard %d: replica %d cannot replace replica %d of node %d", shard, rid, old, h.cfg.NodeID)
	}
	if h.isClosed() {
		return ErrClosed
	}
	recs, err := h.loadReplicaRecords()
	if err != nil {
		return fmt.Errorf("log: shard %d: rejoin: %w", shard, err)
	}
	recs[shard] = replicaRecord{ID: rid, Joined: true, Fresh: true}
	if err := h.saveReplicaRecords(recs); err != nil {
		return fmt.Errorf("log: shard %d: rejoin: %w", shard, err)
	}
	if err := h.stopAndRemove(ctx, shard, old); err != nil {
		return err
	}
	rc := h.replicaConfig(shard, rid)
	rc.IsNonVoting = true
	if err := h.nh.StartOnDiskReplica(nil, true, h.createFunc(shard, rep, true), rc); err != nil {
		return fmt.Errorf("log: shard %d: start replica %d: %w", shard, rid, err)
	}
	rep.id.Store(rid)
	h.leaderSeen[shard].Store(time.Now().UnixNano())
	h.log.Info("replica rejoined its shard under a new id", "shard", shard, "old_replica", old, "replica", rid)
	return nil
}

// removeStaleReplicaData drops the raft data of this node's replicas other than the
// one keep names for their shard: what a rejoin interrupted by a crash left behind. Those
// replicas are removed from their shards (a rejoin records the new id only after the old
// one left).
func (h *Host) removeStaleReplicaData(keep map[uint64]uint64) {
	nhi := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{})
	if nhi == nil {
		return
	}
	for _, li := range nhi.LogInfo {
		want, data := keep[li.ShardID]
		if data && li.ReplicaID != want && NodeOf(li.ReplicaID) == h.cfg.NodeID {
			if err := h.nh.RemoveData(li.ShardID, li.ReplicaID); err != nil {
				h.log.Warn("stale replica data not removed", "shard", li.ShardID, "replica", li.ReplicaID, "err", err)
			}
		}
	}
}
