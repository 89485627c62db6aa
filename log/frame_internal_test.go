package log

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aerolithsdb/aerolith/internal/wire"
)

func equalCmds(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmds [][]byte
	}{
		{"no commands", nil},
		{"one empty command", [][]byte{{}}},
		{"one command", [][]byte{[]byte("hello")}},
		{"several", [][]byte{[]byte("a"), nil, bytes.Repeat([]byte("b"), 300), []byte("c")}},
		{"many", func() [][]byte {
			out := make([][]byte, 1000)
			for i := range out {
				out[i] = bytes.Repeat([]byte{byte(i)}, i%200)
			}
			return out
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeFrame(tt.cmds)
			if b[0] != frameVersion {
				t.Fatalf("version byte %d", b[0])
			}
			got, err := decodeFrame(b)
			if err != nil {
				t.Fatal(err)
			}
			if !equalCmds(got, tt.cmds) {
				t.Fatalf("round trip: got %q, want %q", got, tt.cmds)
			}
		})
	}
}

func TestDecodeFrameEmptyEntry(t *testing.T) {
	// raft's own entries (elections, config changes) carry no payload.
	for _, b := range [][]byte{nil, {}} {
		cmds, err := decodeFrame(b)
		if err != nil || len(cmds) != 0 {
			t.Fatalf("decodeFrame(%v) = %q, %v; want no commands", b, cmds, err)
		}
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	good := encodeFrame([][]byte{[]byte("abc"), []byte("de")})
	tests := []struct {
		name string
		in   []byte
	}{
		{"version 0", []byte{0, 0}},
		{"version 2", []byte{2, 0}},
		{"no count", []byte{frameVersion}},
		{"count past input", []byte{frameVersion, 5, 1, 'a'}},
		{"huge count", wire.AppendUvarint([]byte{frameVersion}, 1<<62)},
		{"bad varint", append([]byte{frameVersion}, bytes.Repeat([]byte{0x80}, 11)...)},
		{"command length past input", []byte{frameVersion, 1, 9, 'a'}},
		{"trailing bytes", append(append([]byte(nil), good...), 'x')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, err := decodeFrame(tt.in)
			if !errors.Is(err, ErrCorruptEntry) {
				t.Fatalf("decodeFrame = %q, %v; want ErrCorruptEntry", cmds, err)
			}
		})
	}
	for i := 1; i < len(good); i++ {
		if _, err := decodeFrame(good[:i:i]); !errors.Is(err, ErrCorruptEntry) {
			t.Fatalf("prefix of %d/%d bytes: %v, want ErrCorruptEntry", i, len(good), err)
		}
	}
}

func TestDecodeFrameDoesNotAllocateForLyingCount(t *testing.T) {
	// A count larger than the input could hold is rejected before allocating for it.
	b := wire.AppendUvarint([]byte{frameVersion}, 1<<40)
	allocs := testing.AllocsPerRun(10, func() { _, _ = decodeFrame(b) })
	if allocs > 5 {
		t.Fatalf("%v allocations for a rejected frame", allocs)
	}
}

// FuzzDecodeFrame: decodeFrame never panics, and what it accepts re-encodes to the same
// bytes (the frame encoding is canonical).
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeFrame(nil))
	f.Add(encodeFrame([][]byte{[]byte("x")}))
	f.Add(encodeFrame([][]byte{[]byte("abc"), {}, bytes.Repeat([]byte{0xff}, 200)}))
	f.Add([]byte{frameVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmds, err := decodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptEntry) {
				t.Fatalf("error not wrapping ErrCorruptEntry: %v", err)
			}
			return
		}
		if len(b) == 0 {
			return
		}
		again := encodeFrame(cmds)
		if !bytes.Equal(again, b) && !nonCanonicalVarint(b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, again)
		}
		back, err := decodeFrame(again)
		if err != nil || !equalCmds(back, cmds) {
			t.Fatalf("re-encoded frame decodes to %q, %v; want %q", back, err, cmds)
		}
	})
}

// nonCanonicalVarint reports whether b is a valid frame whose varints are not minimally
// encoded (binary.Uvarint accepts e.g. 0x80 0x00 for 0); such inputs decode fine but do
// not re-encode byte for byte.
func nonCanonicalVarint(b []byte) bool {
	r := wire.NewReader(b[1:])
	n := r.Uvarint()
	used := len(b) - 1 - r.Len()
	if used != len(wire.AppendUvarint(nil, n)) {
		return true
	}
	for range n {
		before := r.Len()
		l := r.Uvarint()
		if before-r.Len() != len(wire.AppendUvarint(nil, l)) {
			return true
		}
		r.Fixed(int(l))
	}
	return false
}
