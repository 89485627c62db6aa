package vclock

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aerolithsdb/aerolith/internal/wire"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b Clock
		want Ordering
	}{
		{nil, nil, Equal},
		{Clock{}, nil, Equal},
		{Clock{"a": 0}, nil, Equal}, // zero entries are absent
		{Clock{"a": 1}, Clock{"a": 1}, Equal},
		{nil, Clock{"a": 1}, Before},
		{Clock{"a": 1}, nil, After},
		{Clock{"a": 1}, Clock{"a": 2}, Before},
		{Clock{"a": 1}, Clock{"a": 1, "b": 1}, Before},
		{Clock{"a": 2, "b": 1}, Clock{"a": 1, "b": 1}, After},
		{Clock{"a": 1}, Clock{"b": 1}, Concurrent},
		{Clock{"a": 2, "b": 1}, Clock{"a": 1, "b": 2}, Concurrent},
		{Clock{"a": 1, "c": 0}, Clock{"a": 1, "b": 0}, Equal},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		// Compare is antisymmetric.
		rev := map[Ordering]Ordering{Equal: Equal, Before: After, After: Before, Concurrent: Concurrent}[tt.want]
		if got := Compare(tt.b, tt.a); got != rev {
			t.Errorf("Compare(%v, %v) = %v, want %v", tt.b, tt.a, got, rev)
		}
	}
}

func TestMergeAndTickCopy(t *testing.T) {
	a, b := Clock{"a": 2, "b": 1}, Clock{"b": 3, "c": 1}
	m := a.Merge(b)
	if Compare(m, Clock{"a": 2, "b": 3, "c": 1}) != Equal {
		t.Fatalf("merge = %v", m)
	}
	if Compare(m, a) != After || Compare(m, b) != After {
		t.Fatal("the merge does not dominate its inputs")
	}
	tk := a.Tick("c")
	if tk["c"] != 1 || tk["a"] != 2 || Compare(tk, a) != After {
		t.Fatalf("tick = %v", tk)
	}
	if len(a) != 2 || a["a"] != 2 || a["b"] != 1 || len(b) != 2 || b["b"] != 3 {
		t.Fatalf("inputs changed: %v %v", a, b)
	}
	var z Clock
	if got := z.Tick("x"); got["x"] != 1 || len(got) != 1 {
		t.Fatalf("tick of nil = %v", got)
	}
	if m.String() != "a:2,b:3,c:1" || Clock(nil).String() != "" {
		t.Fatalf("String = %q", m.String())
	}
}

func TestBinaryIsDeterministic(t *testing.T) {
	c := Clock{"zeta": 7, "alpha": 1, "mid": 300, "gone": 0}
	first := c.Append(nil)
	for range 20 { // map iteration order varies; the bytes must not
		if !bytes.Equal(c.Append(nil), first) {
			t.Fatal("encoding depends on map order")
		}
	}
	got, err := Decode(first)
	if err != nil || Compare(got, c) != Equal || len(got) != 3 {
		t.Fatalf("round trip = %v, %v", got, err)
	}
	if got, err := Decode(Clock(nil).Append(nil)); err != nil || got != nil {
		t.Fatalf("empty round trip = %v, %v", got, err)
	}
	// Append appends.
	if b := c.Append([]byte("x")); !bytes.Equal(b[1:], first) {
		t.Fatal("Append does not append")
	}
}

func TestDecodeRejects(t *testing.T) {
	enc := func(f func(b []byte) []byte) []byte { return f(nil) }
	cases := map[string][]byte{
		"empty":     {},
		"truncated": Clock{"a": 1, "b": 2}.Append(nil)[:5],
		"trailing":  append(Clock{"a": 1}.Append(nil), 0),
		"unsorted": enc(func(b []byte) []byte {
			b = wire.AppendUvarint(b, 2)
			b = wire.AppendUvarint(wire.AppendString(b, "b"), 1)
			return wire.AppendUvarint(wire.AppendString(b, "a"), 1)
		}),
		"repeated": enc(func(b []byte) []byte {
			b = wire.AppendUvarint(b, 2)
			b = wire.AppendUvarint(wire.AppendString(b, "a"), 1)
			return wire.AppendUvarint(wire.AppendString(b, "a"), 2)
		}),
		"zero": enc(func(b []byte) []byte {
			b = wire.AppendUvarint(b, 1)
			return wire.AppendUvarint(wire.AppendString(b, "a"), 0)
		}),
		"too many": wire.AppendUvarint(nil, MaxEntries+1),
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestJSONIsTheMap(t *testing.T) {
	b, err := json.Marshal(Clock{"dc2": 1, "dc1": 4})
	if err != nil || string(b) != `{"dc1":4,"dc2":1}` {
		t.Fatalf("json = %s, %v", b, err)
	}
	var c Clock
	if err := json.Unmarshal(b, &c); err != nil || Compare(c, Clock{"dc1": 4, "dc2": 1}) != Equal {
		t.Fatalf("unmarshal = %v, %v", c, err)
	}
}

// FuzzDecode: Decode never panics, and what it accepts re-encodes to bytes that decode to
// the same clock and are canonical (encode again to themselves).
func FuzzDecode(f *testing.F) {
	f.Add(Clock{"a": 1, "b": 1 << 40}.Append(nil))
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		enc := c.Append(nil)
		again, err := Decode(enc)
		if err != nil || Compare(again, c) != Equal || !bytes.Equal(again.Append(nil), enc) {
			t.Fatalf("%x decodes to %v, which encodes to %x and decodes to %v, %v", b, c, enc, again, err)
		}
	})
}
