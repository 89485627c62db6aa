package log

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/aerolithsdb/aerolith/internal/wire"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// Entry is one committed raft entry as the state machine sees it: its raft index and the
// commands coalesced into it by group commit. Apply sets Results, one per command.
type Entry struct {
	Index   uint64
	Cmds    [][]byte
	Results [][]byte
}

// StateMachine is what the log needs from whatever applies committed entries (the
// materializer). The log calls Apply, Sync, PrepareSnapshot, RecoverFromSnapshot and
// Close from one goroutine at a time; SaveSnapshot may run concurrently with Apply.
type StateMachine interface {
	// Open returns the raft index of the last entry whose effects are persisted. Entries
	// after it are applied again.
	Open() (uint64, error)
	// Apply applies entries in order and persists, atomically with their effects, the
	// index of the last one. It must be deterministic: it reads only its input and the
	// state earlier entries produced.
	Apply(entries []Entry) error
	// Sync makes everything applied so far durable.
	Sync() error
	// PrepareSnapshot captures a point-in-time view for SaveSnapshot.
	PrepareSnapshot() (any, error)
	// SaveSnapshot writes the state captured by PrepareSnapshot to w.
	SaveSnapshot(ctx any, w io.Writer, done <-chan struct{}) error
	// RecoverFromSnapshot replaces the state with one written by SaveSnapshot.
	RecoverFromSnapshot(r io.Reader, done <-chan struct{}) error
	// Close releases the state machine's resources.
	Close() error
}

// frame layout of a raft entry: version byte, uvarint count, then each command as bytes.
const frameVersion byte = 1

func encodeFrame(cmds [][]byte) []byte {
	n := 2 + len(cmds)*2
	for _, c := range cmds {
		n += len(c)
	}
	b := make([]byte, 0, n)
	b = append(b, frameVersion)
	b = wire.AppendUvarint(b, uint64(len(cmds)))
	for _, c := range cmds {
		b = wire.AppendBytes(b, c)
	}
	return b
}

func decodeFrame(b []byte) ([][]byte, error) {
	if len(b) == 0 {
		return nil, nil // raft's own empty entries
	}
	r := wire.NewReader(b)
	if v := r.Byte(); v != frameVersion {
		return nil, fmt.Errorf("%w: frame version %d", ErrCorruptEntry, v)
	}
	n := r.Uvarint()
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d commands in %d bytes", ErrCorruptEntry, n, len(b))
	}
	cmds := make([][]byte, 0, n)
	for i := uint64(0); i < n; i++ {
		cmds = append(cmds, r.Bytes())
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptEntry, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", ErrCorruptEntry)
	}
	return cmds, nil
}

// adapter presents a StateMachine to dragonboat as an on-disk state machine. It is the
// only place that knows dragonboat's entry type.
type adapter struct {
	sm      StateMachine
	applied *atomic.Uint64 // the last raft index applied, for Status
	// fresh marks a replica that joins its shard under a new replica id (Host.Rejoin)
	// while its state machine keeps what an earlier replica of this node applied: raft
	// must see a new replica at index 0, so Open reports 0 and the entries up to what the
	// state already holds (skip) are passed over instead of applied twice. Until raft has
	// delivered them all, the replica reports 0 applied, so it never counts as caught up.
	// An adopted replica (Host.Adopt) is not fresh: its state machine is empty.
	fresh bool
	skip  uint64
}

// replica is what the Host keeps of its replica of one shard.
type replica struct {
	id atomic.Uint64 // the replica id this node runs (or last ran, when dropped), see ReplicaID
	// dropped: this node runs no replica of the shard (Host.Drop) until Host.Adopt.
	dropped atomic.Bool
	applied atomic.Uint64
}

var _ sm.IOnDiskStateMachine = (*adapter)(nil)

func (a *adapter) Open(_ <-chan struct{}) (uint64, error) {
	idx, err := a.sm.Open()
	if a.fresh {
		a.skip = idx
		a.applied.Store(0)
		return 0, err
	}
	a.applied.Store(idx)
	return idx, err
}

func (a *adapter) Update(ents []sm.Entry) ([]sm.Entry, error) {
	if a.skip > 0 {
		n := 0
		for n < len(ents) && ents[n].Index <= a.skip {
			ents[n].Result = sm.Result{} // no proposal of this replica awaits it
			n++
		}
		if n > 0 && ents[n-1].Index == a.skip {
			// Raft has now delivered everything the state holds: the two agree again.
			a.applied.Store(a.skip)
			a.skip = 0
		}
		if n == len(ents) {
			return ents, nil
		}
		a.skip = 0
		if _, err := a.update(ents[n:]); err != nil {
			return nil, err
		}
		return ents, nil
	}
	return a.update(ents)
}

func (a *adapter) update(ents []sm.Entry) ([]sm.Entry, error) {
	batch := make([]Entry, len(ents))
	for i, e := range ents {
		cmds, err := decodeFrame(e.Cmd)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.Index, err)
		}
		batch[i] = Entry{Index: e.Index, Cmds: cmds}
	}
	if err := a.sm.Apply(batch); err != nil {
		return nil, err
	}
	if len(ents) > 0 {
		a.applied.Store(ents[len(ents)-1].Index)
	}
	for i := range ents {
		res := batch[i].Results
		ents[i].Result = sm.Result{Value: uint64(len(res)), Data: encodeFrame(res)}
	}
	return ents, nil
}

// Lookup serves read barriers: after dragonboat confirms the read index and the local
// state machine has applied up to it, it calls Lookup, which has nothing to return.
func (a *adapter) Lookup(any) (any, error) { return nil, nil }

func (a *adapter) Sync() error                   { return a.sm.Sync() }
func (a *adapter) PrepareSnapshot() (any, error) { return a.sm.PrepareSnapshot() }
func (a *adapter) Close() error                  { return a.sm.Close() }
func (a *adapter) SaveSnapshot(c any, w io.Writer, done <-chan struct{}) error {
	return a.sm.SaveSnapshot(c, w, done)
}
func (a *adapter) RecoverFromSnapshot(r io.Reader, done <-chan struct{}) error {
	if err := a.sm.RecoverFromSnapshot(r, done); err != nil {
		return err
	}
	a.skip = 0 // the state is now exactly the snapshot's
	// The snapshot moved the replica's applied index: report the new one (Status, probes).
	idx, err := a.sm.Open()
	if err == nil {
		a.applied.Store(idx)
	}
	return err
}
