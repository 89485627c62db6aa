package materializer_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/vclock"
)

// Commands without cross-datacenter fields keep the version 1 encoding; the others round
// trip through version 2, and every truncation of them is refused.
func TestCommandV2RoundTrip(t *testing.T) {
	plain := materializer.Command{Origin: "dc1", Writes: []materializer.Write{{Op: log.OpPut, Collection: "c", ID: "i", Body: []byte(`{}`)}}}
	if b := materializer.EncodeCommand(&plain); b[0] != 1 {
		t.Fatalf("a plain command encodes as version %d", b[0])
	}
	cmds := []materializer.Command{
		{Origin: "dcA", Writes: []materializer.Write{
			{Op: log.OpPut, Collection: "c", ID: "i", Body: []byte(`{"a":1}`), Resolves: []string{"dcA:3", "dcB:1"}},
			{Op: log.OpDelete, Collection: "c", ID: "j", Clock: vclock.Clock{"dcA": 2}},
		}},
		{TS: 99, Origin: "dcA", Remote: []materializer.RemoteWrite{
			{Origin: "dcB", Shard: 3, Index: 17, Stream: 1<<32 - 1, TS: log.MakeTimestamp(1_700_000_000_000, 2), Op: log.OpPut,
				Collection: "c", ID: "i", Body: []byte(`{"b":2}`), Clock: vclock.Clock{"dcA": 1, "dcB": 4}, Principal: "bob", RequestID: "r1"},
			{Origin: "dcC", Shard: 1, Index: 1, Op: log.OpDelete, Collection: "c", ID: "k", Clock: vclock.Clock{"dcC": 1}},
		}},
		{Origin: "dcA", Policy: &materializer.PolicyOp{Collection: "c", Policy: materializer.Policy{
			Replicate: []string{}, Mode: "sync", Conflict: "dc-priority", Priority: []string{"dcB", "dcA"}}}},
	}
	for i, c := range cmds {
		b := materializer.EncodeCommand(&c)
		if b[0] != 2 {
			t.Fatalf("command %d encodes as version %d", i, b[0])
		}
		got, err := materializer.DecodeCommand(b)
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if !bytes.Equal(materializer.EncodeCommand(&got), b) || !reflect.DeepEqual(got.Policy, c.Policy) || len(got.Remote) != len(c.Remote) {
			t.Fatalf("command %d: decoded %+v", i, got)
		}
		for j := range c.Remote {
			x, y := got.Remote[j], c.Remote[j]
			if x.Origin != y.Origin || x.Shard != y.Shard || x.Index != y.Index || x.Stream != y.Stream || x.TS != y.TS ||
				x.Op != y.Op || !bytes.Equal(x.Body, y.Body) || vclock.Compare(x.Clock, y.Clock) != vclock.Equal || x.RequestID != y.RequestID {
				t.Fatalf("remote %d: %+v, want %+v", j, x, y)
			}
		}
		for n := range b {
			if _, err := materializer.DecodeCommand(b[:n]); !errors.Is(err, materializer.ErrCorruptCommand) {
				t.Fatalf("command %d truncated at %d: %v", i, n, err)
			}
		}
	}
	// A policy's "replicate to none" ([]) survives, distinct from "all" (nil).
	got, _ := materializer.DecodeCommand(materializer.EncodeCommand(&cmds[2]))
	if got.Policy.Policy.Replicate == nil {
		t.Fatal("an empty replicate list decodes as nil (all)")
	}
}

func TestSiblingID(t *testing.T) {
	for _, tt := range []struct {
		id string
		dc string
		n  uint64
		ok bool
	}{
		{"dcA:3", "dcA", 3, true},
		{"eu.west-1:12", "eu.west-1", 12, true},
		{"dcA:0", "", 0, false},
		{":3", "", 0, false},
		{"dcA", "", 0, false},
		{"dcA:x", "", 0, false},
	} {
		dc, n, ok := materializer.ParseSiblingID(tt.id)
		if ok != tt.ok || ok && (dc != tt.dc || n != tt.n) {
			t.Errorf("ParseSiblingID(%q) = %q %d %v", tt.id, dc, n, ok)
		}
	}
}
