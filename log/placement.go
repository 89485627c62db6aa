package log

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lni/dragonboat/v4"
)

// Placement: a node need not hold a replica of every data shard. Drop takes this node's
// replica of a shard away (after a member removed it from the shard), Adopt starts one
// again as a new, empty, joining non-voting replica. The meta shard is never dropped.
//
// The materialized state of a shard belongs to the state machine, not to the log: Drop
// returns once the replica's state machine is closed, and the caller then drops the
// state (materializer.Materializer.Drop); Adopt refuses a shard whose state machine still
// holds state.

// hosting returns this node's replica of shard: ErrUnknownShard for a shard this host
// does not know, ErrNotHosted for a data shard it dropped.
func (h *Host) hosting(shard uint64) (*replica, error) {
	r, ok := h.shards[shard]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownShard, shard)
	}
	if r.dropped.Load() {
		return nil, fmt.Errorf("%w: %d", ErrNotHosted, shard)
	}
	return r, nil
}

// placing takes the placement lock for a Drop or Adopt (what) of data shard and returns
// its replica and the unlock.
func (h *Host) placing(shard uint64, what string) (*replica, func(), error) {
	if shard == MetaShard {
		return nil, nil, fmt.Errorf("log: the meta shard cannot be %s", what)
	}
	rep, ok := h.shards[shard]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %d", ErrUnknownShard, shard)
	}
	h.placeMu.Lock()
	if h.isClosed() {
		h.placeMu.Unlock()
		return nil, nil, ErrClosed
	}
	return rep, h.placeMu.Unlock, nil
}

// Runs reports whether this node runs a replica of shard (a data shard it has not
// dropped, or the meta shard), admitted by the shard or not yet (see Hosts).
func (h *Host) Runs(shard uint64) bool {
	_, err := h.hosting(shard)
	return err == nil
}

// DroppedReplica returns the replica id of shard that this node dropped (Drop) and runs
// no replica of since, or 0 when it runs one (or the shard is unknown). Adopt needs a
// later generation of the node's id than it.
func (h *Host) DroppedReplica(shard uint64) uint64 {
	if r, ok := h.shards[shard]; ok && r.dropped.Load() {
		return r.id.Load()
	}
	return 0
}

// Hosted returns the data shards this node runs a replica of, in order.
func (h *Host) Hosted() []uint64 {
	out := make([]uint64, 0, h.cfg.Shards)
	for s := uint64(1); s <= uint64(h.cfg.Shards); s++ {
		if h.Runs(s) {
			out = append(out, s)
		}
	}
	return out
}

// Drop takes away this node's replica of data shard: it records the shard as dropped,
// stops the replica (dragonboat closes its state machine) and removes its raft data.
// Call it after a member removed the replica from the shard (RemoveReplica; dragonboat
// then unloads it, or it stays loaded and never hears from the shard again): the raft
// data of a replica that is still a member must not go. Then drop the shard's
// materialized state (materializer.Materializer.Drop).
//
// From the moment the record is written, Propose, ReadBarrier, the membership calls,
// TransferLeader and Rejoin on shard return ErrNotHosted at once, commands queued on the
// shard's batcher are answered with ErrNotHosted (a proposal already handed to raft
// stays ErrIndeterminate), Hosts is false and ReplicaOf 0; Ready, WaitReady, Drain,
// Status and Applied leave the shard out. A restart starts no replica of it.
//
// Crashes: the record is written first. A crash after it leaves a dropped shard whose
// replica may still have raft data: the next Open starts no replica and removes that
// data. Drop returns an error when the replica does not unload in time (ctx), with the
// shard already dropped: call Drop again (or restart) to finish. Dropping a dropped shard
// finishes what is left and is otherwise a no-op.
func (h *Host) Drop(ctx context.Context, shard uint64) error {
	rep, unlock, err := h.placing(shard, "dropped")
	if err != nil {
		return err
	}
	defer unlock()
	rid := rep.id.Load()
	recs, err := h.loadReplicaRecords()
	if err != nil {
		return fmt.Errorf("log: shard %d: drop: %w", shard, err)
	}
	if rec := recs[shard]; !rec.Dropped || rec.ID != rid {
		recs[shard] = replicaRecord{ID: rid, Dropped: true}
		if err := h.saveReplicaRecords(recs); err != nil {
			return fmt.Errorf("log: shard %d: drop: %w", shard, err)
		}
	}
	wasRunning := !rep.dropped.Swap(true)
	if err := h.stopAndRemove(ctx, shard, rid); err != nil {
		return err
	}
	rep.applied.Store(0)
	if wasRunning {
		h.log.Info("replica dropped", "shard", shard, "replica", rid)
	}
	return nil
}

// Adopt starts a replica of data shard, which this node holds none of (Drop), under
// replica id rid: a member must already have added rid to the shard (AddNonVoting), and
// rid must be this node's (NodeOf) and of a later generation than the replica this node
// dropped (dragonboat never runs a replica id again on a node that removed its data).
// The replica joins as non-voting with an empty state machine: it reports applied index
// 0, and the leader sends it the log, or a snapshot when the log was compacted. Hosts
// turns true once the leader has reached it; until then proposals and reads on this node
// wait for it or fail as unavailable, like a rejoining replica's.
//
// The shard's state machine must be empty (its materialized state dropped): Adopt opens
// it to check and refuses otherwise. It first finishes a Drop that did not (the old
// replica's raft data), then records {rid, joined} before it starts the replica, so a
// crash midway resumes rid as a joining, non-voting replica at the next start. When the
// start fails the record goes back to dropped. Adopting the replica the node runs
// already is a no-op.
func (h *Host) Adopt(ctx context.Context, shard, rid uint64) error {
	rep, unlock, err := h.placing(shard, "adopted")
	if err != nil {
		return err
	}
	defer unlock()
	old := rep.id.Load()
	if !rep.dropped.Load() {
		if old == rid {
			return nil
		}
		return fmt.Errorf("log: shard %d: this node runs replica %d already", shard, old)
	}
	if NodeOf(rid) != h.cfg.NodeID || GenOf(rid) <= GenOf(old) {
		return fmt.Errorf("log: shard %d: replica %d cannot follow dropped replica %d of node %d", shard, rid, old, h.cfg.NodeID)
	}
	if err := h.stopAndRemove(ctx, shard, old); err != nil {
		return err
	}
	if err := h.checkEmpty(shard); err != nil {
		return err
	}
	recs, err := h.loadReplicaRecords()
	if err != nil {
		return fmt.Errorf("log: shard %d: adopt: %w", shard, err)
	}
	prev := recs[shard]
	recs[shard] = replicaRecord{ID: rid, Joined: true}
	if err := h.saveReplicaRecords(recs); err != nil {
		return fmt.Errorf("log: shard %d: adopt: %w", shard, err)
	}
	rc := h.replicaConfig(shard, rid)
	rc.IsNonVoting = true
	rep.applied.Store(0)
	// Not fresh: the state machine is empty, there is nothing of an earlier replica to
	// keep or skip. Raft replays the shard to it from index 1 or a snapshot.
	if err := h.nh.StartOnDiskReplica(nil, true, h.createFunc(shard, rep, false), rc); err != nil {
		recs[shard] = prev
		if serr := h.saveReplicaRecords(recs); serr != nil {
			// The next Open starts rid as joining (or, when dragonboat refuses the id,
			// records the shard dropped again).
			h.log.Warn("adopt failed and the shard's record could not go back to dropped", "shard", shard, "replica", rid, "err", serr)
		}
		return fmt.Errorf("log: shard %d: start replica %d: %w", shard, rid, err)
	}
	rep.id.Store(rid)
	h.leaderSeen[shard].Store(time.Now().UnixNano())
	rep.dropped.Store(false)
	h.log.Info("replica adopted", "shard", shard, "replica", rid)
	return nil
}

// checkEmpty opens shard's state machine, which no replica drives, and refuses when it
// holds state: an adopted replica must start at index 0.
func (h *Host) checkEmpty(shard uint64) error {
	sm := h.cfg.NewStateMachine(shard)
	idx, err := sm.Open()
	if cerr := sm.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("log: shard %d: adopt: open state machine: %w", shard, err)
	}
	if idx != 0 {
		return fmt.Errorf("log: shard %d: adopt: the state machine holds state up to index %d: drop it first", shard, idx)
	}
	return nil
}

// stopAndRemove stops this node's replica rid of shard (if it runs) and removes its raft
// data once it is unloaded (dragonboat has closed its state machine by then).
func (h *Host) stopAndRemove(ctx context.Context, shard, rid uint64) error {
	if err := h.nh.StopReplica(shard, rid); err != nil && !errors.Is(err, dragonboat.ErrShardNotFound) {
		return fmt.Errorf("log: shard %d: stop replica %d: %w", shard, rid, err)
	}
	// StopReplica only asks; the data can go once the replica is unloaded.
	backoff := time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := h.nh.SyncRemoveData(rctx, shard, rid)
		cancel()
		if err == nil {
			return nil
		}
		if !errors.Is(err, dragonboat.ErrShardNotStopped) {
			return fmt.Errorf("log: shard %d: remove data of replica %d: %w", shard, rid, err)
		}
		if !sleepCtx(ctx, h.stop, backoff) {
			return fmt.Errorf("%w: shard %d: replica %d did not stop", ErrUnavailable, shard, rid)
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}
