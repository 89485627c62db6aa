package log

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lni/dragonboat/v4"
)

// A shard's leader that becomes its only voter restarts its replica, which starts a new
// term at once (it is its own quorum). dragonboat's raft keeps a ReadIndex request that
// was pending when the last other voter went: no voter is left to confirm it, and it
// stays queued until the next term. While anything is queued, the leader sends heartbeats
// to voters only, so until then the shard's non-voting replicas hear from it only when it
// appends an entry: a replica that joins (a node whose vote was taken rejoins under a new
// id) is never reached while the shard takes no writes, and the others learn of the last
// write only with the next one. A new term clears the queue. The restart costs the shard
// an election timeout, once per change to a single voter (lowering the replication factor
// to 1).

// soleVoterEvery is how often the shards' voter counts are looked at.
const soleVoterEvery = 250 * time.Millisecond

// watchSoleVoters restarts this node's replica of a shard it leads when the shard has
// gone from several voters to this one. It runs until the host closes.
func (h *Host) watchSoleVoters() {
	t := time.NewTicker(soleVoterEvery)
	defer t.Stop()
	voters := map[uint64]int{} // shard → its voters when last looked at
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		nhi := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
		if nhi == nil {
			continue
		}
		for _, si := range nhi.ShardInfoList {
			if si.ShardID == MetaShard || si.Pending {
				continue
			}
			before := voters[si.ShardID]
			voters[si.ShardID] = len(si.Replicas)
			// ShardInfo leaves IsLeader unset: the leader is LeaderID.
			if si.LeaderID != si.ReplicaID || len(si.Replicas) != 1 || before < 2 {
				continue
			}
			if _, ok := si.Replicas[si.ReplicaID]; !ok {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := h.restartReplica(ctx, si.ShardID, si.ReplicaID)
			cancel()
			if err != nil {
				h.log.Warn("sole voter's replica not restarted", "shard", si.ShardID, "replica", si.ReplicaID, "err", err)
				continue
			}
			h.log.Info("sole voter's replica restarted for a new term", "shard", si.ShardID, "replica", si.ReplicaID, "term", si.Term)
		}
	}
}

// restartReplica stops this node's replica rid of shard and starts it again on the data
// it has, once dragonboat has unloaded it.
func (h *Host) restartReplica(ctx context.Context, shard, rid uint64) error {
	h.placeMu.Lock()
	defer h.placeMu.Unlock()
	rep, ok := h.shards[shard]
	if !ok || rep.dropped.Load() || rep.id.Load() != rid {
		return fmt.Errorf("%w: shard %d: replica %d is not the one running", ErrNotHosted, shard, rid)
	}
	recs, err := h.loadReplicaRecords()
	if err != nil {
		return err
	}
	// As at a node's start (NewHost): a replica under a later generation keeps passing over
	// the state its node applied before it when its record says so, and one that joined
	// starts as non-voting (raft replays its promotion).
	rec, known := recs[shard]
	fresh := rid != h.cfg.NodeID && rec.Fresh
	rc := h.replicaConfig(shard, rid)
	rc.IsNonVoting = rec.Joined || (!known && h.cfg.Join)
	if err := h.nh.StopReplica(shard, rid); err != nil {
		return fmt.Errorf("log: shard %d: stop replica %d: %w", shard, rid, err)
	}
	backoff := time.Millisecond
	for {
		err := h.nh.StartOnDiskReplica(nil, false, h.createFunc(shard, rep, fresh), rc)
		if !errors.Is(err, dragonboat.ErrShardAlreadyExist) {
			if err != nil {
				return fmt.Errorf("log: shard %d: start replica %d again: %w", shard, rid, err)
			}
			h.leaderSeen[shard].Store(time.Now().UnixNano())
			return nil
		}
		// Still unloading.
		if !sleepCtx(ctx, h.stop, backoff) {
			return fmt.Errorf("%w: shard %d: replica %d did not stop", ErrUnavailable, shard, rid)
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}
