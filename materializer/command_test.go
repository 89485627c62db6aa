package materializer_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/vclock"
)

// equalCommands compares commands treating nil and empty slices as equal.
func equalCommands(a, b materializer.Command) bool {
	if a.TS != b.TS || a.Origin != b.Origin || a.Principal != b.Principal || a.IdemTTL != b.IdemTTL || len(a.Writes) != len(b.Writes) ||
		a.Retry != b.Retry || a.RetryTTL != b.RetryTTL {
		return false
	}
	for i := range a.Writes {
		x, y := a.Writes[i], b.Writes[i]
		if x.Op != y.Op || x.Collection != y.Collection || x.ID != y.ID || !bytes.Equal(x.Body, y.Body) ||
			x.IfMatch != y.IfMatch || x.HasIfMatch != y.HasIfMatch || x.IfNoneMatch != y.IfNoneMatch ||
			x.RequestID != y.RequestID {
			return false
		}
	}
	return true
}

func TestCommandRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmd  materializer.Command
	}{
		{"empty", materializer.Command{}},
		{"one put", materializer.Command{
			TS: log.MakeTimestamp(1_700_000_000_000, 1), Origin: "dc1", Principal: "anonymous", IdemTTL: 86_400_000,
			Writes: []materializer.Write{{Op: log.OpPut, Collection: "orders", ID: "a1", Body: []byte(`{"x":1}`)}},
		}},
		{"conditions and keys", materializer.Command{
			TS: 1, Origin: "dc2", Principal: "bob",
			Writes: []materializer.Write{
				{Op: log.OpPatch, Collection: "c", ID: "1", Body: []byte(`{"y":null}`), IfMatch: 7, HasIfMatch: true, RequestID: "r1"},
				{Op: log.OpPut, Collection: "c", ID: "2", Body: []byte(`{}`), IfNoneMatch: true, RequestID: "r2"},
				{Op: log.OpDelete, Collection: "c", ID: "3", HasIfMatch: true}, // If-Match: 0 (must not exist)
			},
		}},
		{"retry token", materializer.Command{
			TS: 9, Origin: "dc1", Principal: "p", Retry: "TOKEN", RetryTTL: 60_000,
			Writes: []materializer.Write{
				{Op: log.OpPut, Collection: "c", ID: "1", Body: []byte(`{}`)},
				{Op: log.OpPut, Collection: "c", ID: "2", Body: []byte(`{}`), RequestID: "p/k"},
			},
		}},
		{"extremes", materializer.Command{
			TS: math.MaxUint64, Origin: strings.Repeat("o", 500), Principal: "\x00\xff", IdemTTL: math.MaxUint64,
			Writes: []materializer.Write{{Op: 255, Collection: strings.Repeat("c", 300), ID: "", Body: bytes.Repeat([]byte("b"), 70_000), IfMatch: math.MaxUint64, HasIfMatch: true, IfNoneMatch: true, RequestID: strings.Repeat("r", 200)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := materializer.EncodeCommand(&tt.cmd)
			got, err := materializer.DecodeCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			if !equalCommands(got, tt.cmd) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.cmd)
			}
			// Decoded bodies must not alias the input.
			for i := range b {
				b[i] = 0
			}
			if !equalCommands(got, tt.cmd) {
				t.Fatal("decoded command aliases its input")
			}
		})
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	good := materializer.EncodeCommand(&materializer.Command{
		TS: 5, Origin: "dc", Principal: "p",
		Writes: []materializer.Write{{Op: log.OpPut, Collection: "c", ID: "i", Body: []byte(`{}`), RequestID: "r"}},
	})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"version 3", append([]byte{3}, good[1:]...)},
		{"version 4", append([]byte{4}, good[1:]...)},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"write count past input", func() []byte {
			b := []byte{1}
			b = wire.AppendUvarint(b, 0)
			b = wire.AppendString(b, "")
			b = wire.AppendString(b, "")
			b = wire.AppendUvarint(b, 0)
			return wire.AppendUvarint(b, 1<<40)
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := materializer.DecodeCommand(tt.in); !errors.Is(err, materializer.ErrCorruptCommand) {
				t.Fatalf("DecodeCommand = %+v, %v; want ErrCorruptCommand", got, err)
			}
		})
	}
	for i := 0; i < len(good); i++ {
		if _, err := materializer.DecodeCommand(good[:i:i]); !errors.Is(err, materializer.ErrCorruptCommand) {
			t.Fatalf("prefix of %d/%d bytes: %v, want ErrCorruptCommand", i, len(good), err)
		}
	}
}

func TestResultsRoundTrip(t *testing.T) {
	tests := [][]materializer.WriteResult{
		nil,
		{{Status: materializer.StatusCreated, Version: 1, TS: 99, Position: log.Position{Shard: 1, Index: 1}}},
		{
			{Status: materializer.StatusPrecondition, Current: 4},
			{Status: materializer.StatusAborted},
			{Status: materializer.StatusOK, Version: math.MaxUint64, TS: math.MaxUint64, Position: log.Position{Shard: math.MaxUint64, Index: math.MaxUint64}, Replayed: true},
		},
	}
	for i, rs := range tests {
		got, err := materializer.DecodeResults(materializer.EncodeResults(rs))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(got) != len(rs) {
			t.Fatalf("case %d: %d results, want %d", i, len(got), len(rs))
		}
		for j := range rs {
			if got[j] != rs[j] {
				t.Fatalf("case %d result %d: got %+v, want %+v", i, j, got[j], rs[j])
			}
		}
	}
	enc := materializer.EncodeResults(tests[2])
	for i := 0; i < len(enc); i++ {
		if _, err := materializer.DecodeResults(enc[:i:i]); !errors.Is(err, materializer.ErrCorruptCommand) {
			t.Fatalf("results prefix of %d/%d bytes: %v, want ErrCorruptCommand", i, len(enc), err)
		}
	}
}

func TestStatusApplied(t *testing.T) {
	for s := materializer.Status(0); s < 10; s++ {
		want := s == materializer.StatusOK || s == materializer.StatusCreated
		if s.Applied() != want {
			t.Errorf("Status(%d).Applied() = %v", s, s.Applied())
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(materializer.EncodeCommand(&materializer.Command{}))
	f.Add(materializer.EncodeCommand(&materializer.Command{
		TS: 77, Origin: "dc", Principal: "p", IdemTTL: 1000,
		Writes: []materializer.Write{
			{Op: log.OpPut, Collection: "c", ID: "1", Body: []byte(`{"a":1}`), RequestID: "r"},
			{Op: log.OpPatch, Collection: "c", ID: "2", Body: []byte(`{"a":null}`), HasIfMatch: true, IfMatch: 3},
			{Op: log.OpDelete, Collection: "c", ID: "3", IfNoneMatch: true},
		},
	}))
	f.Add([]byte{1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f})
	f.Add(materializer.EncodeCommand(&materializer.Command{Origin: "dcA", Remote: []materializer.RemoteWrite{
		{Origin: "dcB", Shard: 1, Index: 2, Stream: 3, TS: 4, Op: log.OpPut, Collection: "c", ID: "i", Body: []byte(`{}`), Clock: vclock.Clock{"dcB": 1}},
	}}))
	f.Add(materializer.EncodeCommand(&materializer.Command{Writes: []materializer.Write{
		{Op: log.OpPut, Collection: "c", ID: "i", Body: []byte(`{}`), Resolves: []string{"dcA:1"}, Clock: vclock.Clock{"dcA": 2}},
	}}))
	f.Add(materializer.EncodeCommand(&materializer.Command{Policy: &materializer.PolicyOp{Collection: "c", Policy: materializer.Policy{Mode: "sync"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := materializer.DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, materializer.ErrCorruptCommand) {
				t.Fatalf("error not wrapping ErrCorruptCommand: %v", err)
			}
			return
		}
		again, err := materializer.DecodeCommand(materializer.EncodeCommand(&c))
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if !equalCommands(c, again) {
			t.Fatalf("round trip changed the command:\nfirst  %+v\nsecond %+v", c, again)
		}
	})
}
