package log

import (
	"io"
	"sync/atomic"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// countingSM is a state machine that has applied everything up to index and records
// what it is asked to apply after that.
type countingSM struct {
	index   uint64
	applied []uint64
}

func (c *countingSM) Open() (uint64, error) { return c.index, nil }
func (c *countingSM) Apply(es []Entry) error {
	for i := range es {
		c.applied = append(c.applied, es[i].Index)
		c.index = es[i].Index
		es[i].Results = make([][]byte, len(es[i].Cmds))
	}
	return nil
}
func (c *countingSM) Sync() error                                        { return nil }
func (c *countingSM) PrepareSnapshot() (any, error)                      { return nil, nil }
func (c *countingSM) SaveSnapshot(any, io.Writer, <-chan struct{}) error { return nil }
func (c *countingSM) RecoverFromSnapshot(io.Reader, <-chan struct{}) error {
	return nil
}
func (c *countingSM) Close() error { return nil }

func entries(from, to uint64) []sm.Entry {
	var out []sm.Entry
	for i := from; i <= to; i++ {
		out = append(out, sm.Entry{Index: i, Cmd: encodeFrame([][]byte{[]byte("x")})})
	}
	return out
}

// A replica rejoining under a new id reports index 0 to raft, passes over the entries its
// state already holds, reports itself caught up once raft delivered them, and applies the
// rest.
func TestFreshAdapterSkipsWhatTheStateHolds(t *testing.T) {
	var applied atomic.Uint64
	s := &countingSM{index: 5}
	a := &adapter{sm: s, applied: &applied, fresh: true}
	if idx, err := a.Open(nil); err != nil || idx != 0 {
		t.Fatalf("Open = %d, %v; want 0", idx, err)
	}
	if _, err := a.Update(entries(1, 3)); err != nil {
		t.Fatal(err)
	}
	if len(s.applied) != 0 || applied.Load() != 0 {
		t.Fatalf("after entries 1-3: applied %v, reported %d; want nothing applied, 0", s.applied, applied.Load())
	}
	if _, err := a.Update(entries(4, 5)); err != nil {
		t.Fatal(err)
	}
	if len(s.applied) != 0 || applied.Load() != 5 {
		t.Fatalf("after entries 4-5: applied %v, reported %d; want nothing applied, 5", s.applied, applied.Load())
	}
	if _, err := a.Update(entries(6, 7)); err != nil {
		t.Fatal(err)
	}
	if len(s.applied) != 2 || s.applied[0] != 6 || applied.Load() != 7 {
		t.Fatalf("after entries 6-7: applied %v, reported %d; want [6 7], 7", s.applied, applied.Load())
	}

	// A batch that straddles what the state holds applies only the part past it.
	s2 := &countingSM{index: 5}
	b := &adapter{sm: s2, applied: &applied, fresh: true}
	b.Open(nil)
	ents, err := b.Update(entries(4, 8))
	if err != nil || len(ents) != 5 {
		t.Fatalf("Update: %d entries, %v", len(ents), err)
	}
	if len(s2.applied) != 3 || s2.applied[0] != 6 || applied.Load() != 8 {
		t.Fatalf("straddling batch: applied %v, reported %d; want [6 7 8], 8", s2.applied, applied.Load())
	}
}
