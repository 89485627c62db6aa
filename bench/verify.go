package bench

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"
)

// verifyCounters counts the reads checked and the mismatches found, over all phases
// (a mismatch during warmup is still reported). Safe for concurrent use.
type verifyCounters struct {
	checkedInRun   atomic.Int64
	checkedPostRun atomic.Int64
	mu             sync.Mutex
	byKind         map[string]int64
}

func newVerifyCounters() *verifyCounters { return &verifyCounters{byKind: map[string]int64{}} }

// noteErr counts err when it is a verification failure.
func (v *verifyCounters) noteErr(err error) {
	var ve *VerifyError
	if !errors.As(err, &ve) {
		return
	}
	v.mu.Lock()
	v.byKind[ve.Kind]++
	v.mu.Unlock()
}

func (v *verifyCounters) stats(stale bool) VerifyStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := VerifyStats{
		CheckedInRun:   v.checkedInRun.Load(),
		CheckedPostRun: v.checkedPostRun.Load(),
		ByKind:         maps.Clone(v.byKind),
		Note: "each checked read is decoded; every field must be present and match the self-verifying value " +
			"written for that document and field; the document id must match",
	}
	if stale {
		s.Note += "; its version must be at least the highest version acknowledged to this client before the read began"
	}
	for _, n := range v.byKind {
		s.Mismatches += n
	}
	if len(s.ByKind) == 0 {
		s.ByKind = nil
	}
	return s
}
