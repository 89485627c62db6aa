package log

import (
	"context"
	"fmt"
	"io"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// MetaShard is the raft group that holds the cluster's own state (membership and
// placement). Its id is outside the data shards' 1..1024.
const MetaShard uint64 = 1 << 32

// MetaMachine is the state machine of the meta shard: small, held in memory and saved
// whole in every snapshot. Apply must be deterministic.
type MetaMachine interface {
	// Apply applies one command committed at raft index and returns its result.
	Apply(index uint64, cmd []byte) []byte
	// Save writes the whole state to w.
	Save(w io.Writer) error
	// Recover replaces the state with one written by Save.
	Recover(r io.Reader) error
}

// metaAdapter presents a MetaMachine to dragonboat as an in-memory state machine.
type metaAdapter struct {
	m       MetaMachine
	applied *replica
}

var _ sm.IStateMachine = (*metaAdapter)(nil)

func (a *metaAdapter) Update(e sm.Entry) (sm.Result, error) {
	cmds, err := decodeFrame(e.Cmd)
	if err != nil {
		return sm.Result{}, fmt.Errorf("meta entry %d: %w", e.Index, err)
	}
	res := make([][]byte, len(cmds))
	for i, c := range cmds {
		res[i] = a.m.Apply(e.Index, c)
	}
	a.applied.applied.Store(e.Index)
	return sm.Result{Value: uint64(len(res)), Data: encodeFrame(res)}, nil
}

func (a *metaAdapter) Lookup(any) (any, error) { return nil, nil }

func (a *metaAdapter) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	return a.m.Save(w)
}

func (a *metaAdapter) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	return a.m.Recover(r)
}

func (a *metaAdapter) Close() error { return nil }

// ProposeMeta appends cmd to the meta shard's log and returns what the MetaMachine's
// Apply returned. Errors are as Propose's.
func (h *Host) ProposeMeta(ctx context.Context, cmd []byte) ([]byte, error) {
	if h.cfg.Meta == nil {
		return nil, fmt.Errorf("%w: no meta shard", ErrUnknownShard)
	}
	if h.isClosed() {
		return nil, ErrClosed
	}
	res, err := h.propose(ctx, MetaShard, [][]byte{cmd})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// LeadsMeta reports whether this node's replica currently leads the meta shard.
func (h *Host) LeadsMeta() bool {
	if h.cfg.Meta == nil {
		return false
	}
	leader, _, ok, err := h.nh.GetLeaderID(MetaShard)
	return err == nil && ok && leader == h.cfg.NodeID
}
