package wire_test

import (
	"errors"
	"math"
	"testing"

	"github.com/aerolithsdb/aerolith/internal/wire"
)

func TestRoundTrip(t *testing.T) {
	var b []byte
	b = wire.AppendUvarint(b, 0)
	b = wire.AppendUvarint(b, math.MaxUint64)
	b = wire.AppendUint64(b, 0x0102030405060708)
	b = wire.AppendString(b, "")
	b = wire.AppendString(b, "hello")
	b = wire.AppendBytes(b, []byte{0, 1, 2})
	b = append(b, 0xab)
	b = append(b, "fixed"...)

	r := wire.NewReader(b)
	if v := r.Uvarint(); v != 0 {
		t.Fatalf("Uvarint = %d", v)
	}
	if v := r.Uvarint(); v != math.MaxUint64 {
		t.Fatalf("Uvarint = %d", v)
	}
	if v := r.Uint64(); v != 0x0102030405060708 {
		t.Fatalf("Uint64 = %#x", v)
	}
	if s := r.String(); s != "" {
		t.Fatalf("String = %q", s)
	}
	if s := r.String(); s != "hello" {
		t.Fatalf("String = %q", s)
	}
	if p := r.Bytes(); string(p) != "\x00\x01\x02" {
		t.Fatalf("Bytes = %x", p)
	}
	if c := r.Byte(); c != 0xab {
		t.Fatalf("Byte = %#x", c)
	}
	if p := r.Fixed(5); string(p) != "fixed" {
		t.Fatalf("Fixed = %q", p)
	}
	if r.Err() != nil || r.Len() != 0 {
		t.Fatalf("after reading everything: err %v, %d bytes left", r.Err(), r.Len())
	}
}

func TestUint64IsBigEndian(t *testing.T) {
	if got := wire.AppendUint64(nil, 1); string(got) != "\x00\x00\x00\x00\x00\x00\x00\x01" {
		t.Fatalf("AppendUint64(1) = %x", got)
	}
}

func TestReaderStickyError(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		read func(r *wire.Reader) // the read that fails
		want error
	}{
		{"byte on empty", nil, func(r *wire.Reader) { r.Byte() }, wire.ErrShort},
		{"uvarint on empty", nil, func(r *wire.Reader) { r.Uvarint() }, wire.ErrShort},
		{"uvarint cut", []byte{0x80}, func(r *wire.Reader) { r.Uvarint() }, wire.ErrShort},
		{"uvarint overflow", withTail(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), func(r *wire.Reader) { r.Uvarint() }, wire.ErrShort},
		{"uint64 short", []byte{1, 2, 3}, func(r *wire.Reader) { r.Uint64() }, wire.ErrShort},
		{"fixed short", []byte{1, 2, 3}, func(r *wire.Reader) { r.Fixed(4) }, wire.ErrShort},
		{"bytes length past end", []byte{5, 'a', 'b'}, func(r *wire.Reader) { r.Bytes() }, wire.ErrTooLong},
		{"bytes huge length", withTail(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), func(r *wire.Reader) { r.Bytes() }, wire.ErrTooLong},
		{"bytes no length", nil, func(r *wire.Reader) { r.Bytes() }, wire.ErrShort},
		{"string length past end", []byte{3, 'a'}, func(r *wire.Reader) { _ = r.String() }, wire.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := wire.NewReader(tt.in)
			tt.read(r)
			first := r.Err()
			if !errors.Is(first, tt.want) {
				t.Fatalf("Err() = %v, want %v", first, tt.want)
			}
			if r.Len() != 0 {
				t.Fatalf("Len() = %d after an error, want 0", r.Len())
			}
			// Every later read returns a zero value and the first error stays.
			if v := r.Byte(); v != 0 {
				t.Errorf("Byte after error = %d", v)
			}
			if v := r.Uvarint(); v != 0 {
				t.Errorf("Uvarint after error = %d", v)
			}
			if v := r.Uint64(); v != 0 {
				t.Errorf("Uint64 after error = %d", v)
			}
			if v := r.Bytes(); v != nil {
				t.Errorf("Bytes after error = %x", v)
			}
			if v := r.String(); v != "" {
				t.Errorf("String after error = %q", v)
			}
			if v := r.Fixed(0); v != nil {
				t.Errorf("Fixed(0) after error = %x", v)
			}
			if r.Err() != first {
				t.Errorf("error changed from %v to %v", first, r.Err())
			}
		})
	}
}

// withTail returns b followed by data that would decode if a reader carried on after an
// error: the reader must not resynchronise on it.
func withTail(b ...byte) []byte { return append(b, 1, 'x', 0, 0, 0, 0, 0, 0, 0, 9) }

func TestReaderErrorAfterGoodReads(t *testing.T) {
	b := wire.AppendString(nil, "ok")
	b = append(b, 7) // a length prefix with nothing after it
	r := wire.NewReader(b)
	if s := r.String(); s != "ok" || r.Err() != nil {
		t.Fatalf("first String = %q, %v", s, r.Err())
	}
	if s := r.String(); s != "" || !errors.Is(r.Err(), wire.ErrTooLong) {
		t.Fatalf("second String = %q, %v", s, r.Err())
	}
	if s := r.String(); s != "" || !errors.Is(r.Err(), wire.ErrTooLong) {
		t.Fatalf("third String = %q, %v", s, r.Err())
	}
}

func TestReaderAliasesInput(t *testing.T) {
	b := wire.AppendBytes(nil, []byte("abc"))
	r := wire.NewReader(b)
	p := r.Bytes()
	b[1] = 'z'
	if string(p) != "zbc" {
		t.Fatalf("Bytes does not alias its input: %q", p)
	}
	// The result's capacity stops at its end, so appending to it cannot clobber the input.
	if cap(p) != len(p) {
		t.Fatalf("cap %d > len %d", cap(p), len(p))
	}
}
