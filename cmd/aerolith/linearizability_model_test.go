package main

// The porcupine model of TestLinearizability: every document is a register holding a
// version and a value, and the history is partitioned by document.
//
// Operations and what a linearizable server may answer, given the register's state
// (version v, value x) at the operation's linearization point:
//
//   - read: v and x (v = 0 and no value while the document does not exist);
//   - write (PUT of a unique value y): applied, answering version v+1; the state becomes (v+1, y);
//   - conditional write (PUT y with If-Match m): when m = v, applied as a write; otherwise
//     refused with current_version v, leaving the state alone.
//
// A write whose outcome the client never learnt (no answer, 504 indeterminate, a deadline)
// is indeterminate: its return time is the end of the history, so it may linearize
// anywhere after its call, and the model accepts it whatever the state (applied there, or
// placed after everything else, where nothing observes it). Answers that say nothing was
// written, and failed reads, are not in the history at all.

import (
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

type regOp int

const (
	regRead regOp = iota
	regWrite
	regCAS
)

// regInput is one operation on one document.
type regInput struct {
	key     string
	op      regOp
	value   string // written value (regWrite, regCAS)
	ifMatch uint64 // regCAS: the version the write is conditional on
}

// regOutput is what the client was told.
type regOutput struct {
	unknown bool   // a write whose outcome is unknown
	refused bool   // regCAS answered 412: version holds current_version
	version uint64 // read: the version read (0: absent); write: the version made
	value   string // read: the value read
}

// regState is one document: its version (0 while it does not exist) and value.
type regState struct {
	version uint64
	value   string
}

func regStep(state, input, output any) (bool, any) {
	s, in, out := state.(regState), input.(regInput), output.(regOutput)
	applied := regState{version: s.version + 1, value: in.value}
	switch in.op {
	case regRead:
		return out.version == s.version && out.value == s.value, s
	case regWrite:
		if out.unknown {
			return true, applied
		}
		return out.version == s.version+1, applied
	case regCAS:
		match := in.ifMatch == s.version
		switch {
		case out.unknown && match:
			return true, applied
		case out.unknown:
			return true, s
		case out.refused:
			return !match && out.version == s.version, s
		default:
			return match && out.version == s.version+1, applied
		}
	}
	return false, s
}

// regModel is the register-per-document model, partitioned by document.
var regModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(regInput).key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return regState{} },
	Step: regStep,
	Hash: func(state any) uint64 {
		s := state.(regState)
		h := fnv.New64a()
		fmt.Fprintf(h, "%d\x00%s", s.version, s.value)
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		var call string
		switch in.op {
		case regRead:
			call = fmt.Sprintf("get(%s)", in.key)
		case regWrite:
			call = fmt.Sprintf("put(%s, %s)", in.key, in.value)
		case regCAS:
			call = fmt.Sprintf("put(%s, %s) if-match %d", in.key, in.value, in.ifMatch)
		}
		switch {
		case out.unknown:
			return call + " → unknown"
		case out.refused:
			return fmt.Sprintf("%s → 412, current %d", call, out.version)
		case in.op == regRead && out.version == 0:
			return call + " → 404"
		case in.op == regRead:
			return fmt.Sprintf("%s → v%d %s", call, out.version, out.value)
		}
		return fmt.Sprintf("%s → v%d", call, out.version)
	},
	DescribeState: func(state any) string {
		s := state.(regState)
		if s.version == 0 {
			return "absent"
		}
		return fmt.Sprintf("v%d %s", s.version, s.value)
	},
	DescribeOperationMetadata: func(info any) string {
		if info == nil {
			return ""
		}
		return fmt.Sprint(info)
	},
}

// regUnknownReturn is the return time of an indeterminate operation: after everything.
const regUnknownReturn = math.MaxInt64

// regOps builds histories for the model tests.
type regOps []porcupine.Operation

func (h *regOps) add(call, ret int64, in regInput, out regOutput) {
	*h = append(*h, porcupine.Operation{ClientId: len(*h), Input: in, Call: call, Output: out, Return: ret})
}

func (h *regOps) put(call, ret int64, key, value string, version uint64) {
	h.add(call, ret, regInput{key: key, op: regWrite, value: value}, regOutput{version: version})
}

func (h *regOps) putUnknown(call int64, key, value string) {
	h.add(call, regUnknownReturn, regInput{key: key, op: regWrite, value: value}, regOutput{unknown: true})
}

func (h *regOps) cas(call, ret int64, key, value string, ifMatch uint64, out regOutput) {
	h.add(call, ret, regInput{key: key, op: regCAS, value: value, ifMatch: ifMatch}, out)
}

func (h *regOps) get(call, ret int64, key, value string, version uint64) {
	h.add(call, ret, regInput{key: key, op: regRead}, regOutput{version: version, value: value})
}

func TestRegisterModel(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(h *regOps)
		want  porcupine.CheckResult
	}{
		{"sequential writes and reads", func(h *regOps) {
			h.get(0, 5, "a", "", 0)
			h.put(10, 20, "a", "x", 1)
			h.get(30, 40, "a", "x", 1)
			h.put(50, 60, "a", "y", 2)
			h.get(70, 80, "a", "y", 2)
		}, porcupine.Ok},
		{"stale read after an acknowledged write", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.put(20, 30, "a", "y", 2)
			h.get(40, 50, "a", "x", 1)
		}, porcupine.Illegal},
		{"reads concurrent with a write see old, then new", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.put(20, 60, "a", "y", 2)
			h.get(25, 30, "a", "x", 1)
			h.get(35, 50, "a", "y", 2)
			h.get(40, 70, "a", "y", 2)
		}, porcupine.Ok},
		{"new value seen, then old value", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.put(20, 60, "a", "y", 2)
			h.get(25, 30, "a", "y", 2)
			h.get(35, 40, "a", "x", 1)
		}, porcupine.Illegal},
		{"read of a value never written", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.get(20, 30, "a", "z", 1)
		}, porcupine.Illegal},
		{"a version skipped", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.put(20, 30, "a", "y", 3)
		}, porcupine.Illegal},
		{"concurrent writes in either order", func(h *regOps) {
			h.put(0, 30, "a", "x", 2)
			h.put(5, 35, "a", "y", 1)
			h.get(40, 50, "a", "x", 2)
		}, porcupine.Ok},
		{"conditional write applied", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.cas(20, 30, "a", "y", 1, regOutput{version: 2})
			h.get(40, 50, "a", "y", 2)
		}, porcupine.Ok},
		{"conditional write refused with the current version", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.cas(20, 30, "a", "y", 0, regOutput{refused: true, version: 1})
			h.get(40, 50, "a", "x", 1)
		}, porcupine.Ok},
		{"conditional write refused although it matched", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.cas(20, 30, "a", "y", 1, regOutput{refused: true, version: 1})
		}, porcupine.Illegal},
		{"conditional write applied although it did not match", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.cas(20, 30, "a", "y", 0, regOutput{version: 2})
		}, porcupine.Illegal},
		{"documents are independent", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.put(5, 15, "b", "p", 1)
			h.put(20, 30, "b", "q", 2)
			h.get(40, 50, "a", "x", 1)
			h.get(40, 50, "b", "q", 2)
		}, porcupine.Ok},
		{"a value read from another document", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.get(20, 30, "b", "x", 1)
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h regOps
			tc.build(&h)
			if got := porcupine.CheckOperationsTimeout(regModel, h, 10*time.Second); got != tc.want {
				t.Errorf("porcupine says %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRegisterModelIndeterminate checks that a write whose outcome is unknown may take
// effect at any point after its call, or never, but not before its call nor twice.
func TestRegisterModelIndeterminate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(h *regOps)
		want  porcupine.CheckResult
	}{
		{"applied, seen later", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.putUnknown(20, "a", "y")
			h.get(100, 110, "a", "y", 2)
		}, porcupine.Ok},
		{"never applied", func(h *regOps) {
			h.putUnknown(0, "a", "y")
			h.put(10, 20, "a", "x", 1)
			h.get(30, 40, "a", "x", 1)
			h.put(50, 60, "a", "z", 2)
		}, porcupine.Ok},
		{"applied between acknowledged writes, seen only through the version", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.putUnknown(15, "a", "y")
			h.put(20, 30, "a", "z", 3)
			h.get(40, 50, "a", "z", 3)
		}, porcupine.Ok},
		{"applied long after its call", func(h *regOps) {
			h.putUnknown(0, "a", "y")
			h.get(10, 20, "a", "", 0)
			h.put(30, 40, "a", "x", 1)
			h.get(50, 60, "a", "x", 1)
			h.get(1000, 1010, "a", "y", 2)
		}, porcupine.Ok},
		{"seen before its call", func(h *regOps) {
			h.get(0, 10, "a", "y", 1)
			h.putUnknown(20, "a", "y")
		}, porcupine.Illegal},
		{"seen, then gone", func(h *regOps) {
			h.putUnknown(0, "a", "y")
			h.get(10, 20, "a", "y", 1)
			h.get(30, 40, "a", "", 0)
		}, porcupine.Illegal},
		{"applied twice", func(h *regOps) {
			h.putUnknown(0, "a", "y")
			h.get(10, 20, "a", "y", 1)
			h.put(30, 40, "a", "x", 2)
			h.get(50, 60, "a", "y", 3)
		}, porcupine.Illegal},
		{"conditional write that matched, applied", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.cas(20, regUnknownReturn, "a", "y", 1, regOutput{unknown: true})
			h.get(30, 40, "a", "y", 2)
		}, porcupine.Ok},
		{"conditional write that matched, not applied", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.cas(20, regUnknownReturn, "a", "y", 1, regOutput{unknown: true})
			h.get(30, 40, "a", "x", 1)
		}, porcupine.Ok},
		{"conditional write that could not match, applied", func(h *regOps) {
			h.put(0, 10, "a", "x", 1)
			h.cas(20, regUnknownReturn, "a", "y", 0, regOutput{unknown: true})
			h.get(30, 40, "a", "y", 2)
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h regOps
			tc.build(&h)
			if got := porcupine.CheckOperationsTimeout(regModel, h, 10*time.Second); got != tc.want {
				t.Errorf("porcupine says %s, want %s", got, tc.want)
			}
		})
	}
}

// TestCheckLinearizableTimeline checks the path TestLinearizability reports a failure by:
// an illegal history gives a timeline file, a legal one none.
func TestCheckLinearizableTimeline(t *testing.T) {
	dir := t.TempDir()
	var bad regOps
	bad.put(0, 10, "a", "x", 1)
	bad.put(20, 30, "a", "y", 2)
	bad.get(40, 50, "a", "x", 1)
	faults := []porcupine.Annotation{{Tag: "faults", Start: 15, End: 35, Description: "kill node 1"}}
	res, path := checkLinearizable(t, bad, faults, dir, 10*time.Second)
	if res != porcupine.Illegal || path == "" {
		t.Fatalf("stale read: got %s, timeline %q; want Illegal and a timeline", res, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"get(a) → v1 x", "kill node 1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("timeline %s does not mention %q", path, want)
		}
	}

	var good regOps
	good.put(0, 10, "a", "x", 1)
	good.get(20, 30, "a", "x", 1)
	if res, path := checkLinearizable(t, good, nil, t.TempDir(), 10*time.Second); res != porcupine.Ok || path != "" {
		t.Errorf("legal history: got %s, timeline %q; want Ok and none", res, path)
	}
}

// TestPruneUnapplied checks which indeterminate writes pruneUnapplied leaves out, and that
// the history stays checkable either way.
func TestPruneUnapplied(t *testing.T) {
	var h regOps
	h.putUnknown(0, "a", "never")  // not in a's history: left out
	h.putUnknown(5, "a", "landed") // in a's history: kept
	h.put(10, 20, "a", "x", 2)
	h.get(30, 40, "a", "x", 2)
	h.putUnknown(50, "b", "q") // b's history unknown: kept
	h.put(60, 70, "c", "acked", 1)
	applied := map[string]map[string]bool{"a": {"landed": true, "x": true}, "c": {}}

	kept, dropped := pruneUnapplied(h, applied)
	if dropped != 1 || len(kept) != len(h)-1 {
		t.Fatalf("dropped %d, kept %d of %d; want 1 dropped", dropped, len(kept), len(h))
	}
	for _, op := range kept {
		if op.Input.(regInput).value == "never" {
			t.Errorf("kept the write no history shows")
		}
	}
	if res := porcupine.CheckOperationsTimeout(regModel, kept, 10*time.Second); res != porcupine.Ok {
		t.Errorf("pruned history: porcupine says %s, want Ok", res)
	}

	// Leaving out the write that made version 1 makes the versions that follow illegal:
	// a history that misses an applied write fails the check.
	kept, _ = pruneUnapplied(h, map[string]map[string]bool{"a": {"x": true}})
	if res := porcupine.CheckOperationsTimeout(regModel, kept, 10*time.Second); res != porcupine.Illegal {
		t.Errorf("history missing an applied write: porcupine says %s, want Illegal", res)
	}
}
