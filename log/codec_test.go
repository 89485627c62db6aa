package log_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/vclock"
)

// testEvent returns a fully populated event with a body of n pseudo-random but
// compressible bytes (JSON-ish text), so bodies past the threshold do get compressed.
func testEvent(n int) log.Event {
	return log.Event{
		Position:    log.Position{Shard: 3, Index: 42},
		TS:          log.MakeTimestamp(1_700_000_000_000, 7),
		Origin:      "eu-west",
		Op:          log.OpPut,
		Collection:  "orders",
		ID:          "a1",
		Version:     5,
		PrevVersion: 4,
		Body:        jsonBody(n),
		Principal:   "alice",
		RequestID:   "req-1",
		PrevHash:    sha256.Sum256([]byte("previous")),
	}
}

// jsonBody returns n bytes of repetitive JSON-like text (deterministic).
func jsonBody(n int) []byte {
	if n == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n; i++ {
		b.WriteString(`{"sku":"item-`)
		b.WriteByte(byte('a' + i%26))
		b.WriteString(`","qty":1},`)
	}
	return b.Bytes()[:n]
}

// randomBody returns n incompressible bytes.
func randomBody(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// equalEvents compares events treating a nil and an empty body as equal.
func equalEvents(a, b log.Event) bool {
	return a.Position == b.Position && a.TS == b.TS && a.Origin == b.Origin && a.Op == b.Op &&
		a.Collection == b.Collection && a.ID == b.ID && a.Version == b.Version &&
		a.PrevVersion == b.PrevVersion && bytes.Equal(a.Body, b.Body) &&
		a.Principal == b.Principal && a.RequestID == b.RequestID && a.PrevHash == b.PrevHash
}

func TestCodecRoundTrip(t *testing.T) {
	c := log.NewCodec(0)
	defer c.Close()

	maxed := testEvent(100)
	maxed.Position = log.Position{Shard: math.MaxUint64, Index: math.MaxUint64}
	maxed.TS = log.Timestamp(math.MaxUint64)
	maxed.Version, maxed.PrevVersion = math.MaxUint64, math.MaxUint64-1
	maxed.Op = log.OpDelete
	maxed.Origin = strings.Repeat("o", 300)
	maxed.Collection = strings.Repeat("c", 1000)
	maxed.ID = strings.Repeat("\xff", 70000)
	maxed.Principal = strings.Repeat("p", 128)
	maxed.RequestID = strings.Repeat("r", 255)
	for i := range maxed.PrevHash {
		maxed.PrevHash[i] = 0xff
	}

	zero := log.Event{Op: log.OpDelete}

	patch := testEvent(30)
	patch.Op = log.OpPatch

	tests := []struct {
		name           string
		ev             log.Event
		wantCompressed bool
	}{
		{"small body", testEvent(64), false},
		{"empty body", testEvent(0), false},
		{"zero event", zero, false},
		{"patch", patch, false},
		{"just below threshold", testEvent(log.DefaultCompressThreshold - 1), false},
		{"at threshold", testEvent(log.DefaultCompressThreshold), true},
		{"4 KiB body", testEvent(4 << 10), true},
		{"1 MiB body", testEvent(1 << 20), true},
		{"incompressible body over threshold", func() log.Event {
			e := testEvent(0)
			e.Body = randomBody(4 << 10)
			return e
		}(), false},
		{"max-ish fields", maxed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := c.Encode(&tt.ev)
			if b[0] != 1 {
				t.Fatalf("version byte = %d, want 1", b[0])
			}
			if got := b[1]&1 != 0; got != tt.wantCompressed {
				t.Errorf("compressed flag = %v, want %v (encoded %d bytes for a %d-byte body)", got, tt.wantCompressed, len(b), len(tt.ev.Body))
			}
			got, err := c.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !equalEvents(got, tt.ev) {
				t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", got, tt.ev)
			}
			if got.Hash() != tt.ev.Hash() {
				t.Fatal("hash changed through the round trip")
			}
			// Append after a prefix yields the same encoding.
			prefixed := c.Append([]byte("xyz"), &tt.ev)
			if !bytes.Equal(prefixed[3:], b) {
				t.Fatal("Append after a prefix differs from Encode")
			}
		})
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	c := log.NewCodec(0)
	defer c.Close()
	ev := testEvent(32)
	b := c.Encode(&ev)
	got, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if !equalEvents(got, ev) {
		t.Fatal("decoded event changed when the input buffer was overwritten")
	}
}

func TestCodecThreshold(t *testing.T) {
	c := log.NewCodec(64)
	defer c.Close()
	ev := testEvent(100)
	if b := c.Encode(&ev); b[1]&1 == 0 {
		t.Fatal("100-byte compressible body not compressed with threshold 64")
	}
	small := testEvent(63)
	if b := c.Encode(&small); b[1]&1 != 0 {
		t.Fatal("63-byte body compressed with threshold 64")
	}
}

// encodeRaw builds an event encoding by hand so that tests can produce what Encode never
// does (bad versions, flags, ops, compressed payloads).
func encodeRaw(version, flags byte, op log.Op, body []byte) []byte {
	var h log.Hash
	b := []byte{version, flags}
	b = wire.AppendUvarint(b, 1)
	b = wire.AppendUvarint(b, 2)
	b = wire.AppendUvarint(b, 3)
	b = wire.AppendString(b, "dc")
	b = append(b, byte(op))
	b = wire.AppendString(b, "coll")
	b = wire.AppendString(b, "id")
	b = wire.AppendUvarint(b, 1)
	b = wire.AppendUvarint(b, 0)
	b = wire.AppendString(b, "p")
	b = wire.AppendString(b, "r")
	b = append(b, h[:]...)
	return wire.AppendBytes(b, body)
}

func TestDecodeRejects(t *testing.T) {
	c := log.NewCodec(0)
	defer c.Close()
	ev := testEvent(16)
	good := c.Encode(&ev)
	if _, err := c.Decode(encodeRaw(1, 0, log.OpPut, []byte("{}"))); err != nil {
		t.Fatalf("hand-built encoding rejected: %v", err)
	}

	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"version 0", encodeRaw(0, 0, log.OpPut, nil)},
		{"version 2", encodeRaw(2, 0, log.OpPut, nil)},
		{"version 255", encodeRaw(255, 0, log.OpPut, nil)},
		{"unknown flag bit 1", encodeRaw(1, 2, log.OpPut, nil)},
		{"unknown flag bit 7", encodeRaw(1, 0x80, log.OpPut, nil)},
		{"known and unknown flags", encodeRaw(1, 0x81, log.OpPut, nil)},
		{"op 0", encodeRaw(1, 0, 0, nil)},
		{"op 5", encodeRaw(1, 0, 5, nil)},
		{"op 255", encodeRaw(1, 0, 255, nil)},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"trailing bytes", append(append([]byte(nil), good...), "garbage"...)},
		{"compressed flag on a plain body", encodeRaw(1, 1, log.OpPut, []byte(`{"a":1}`))},
		{"body length past the end", func() []byte {
			b := append([]byte(nil), good...)
			return append(b[:len(b)-17], 0x7f) // length 127, nothing after it
		}()},
		{"huge varint", append([]byte{1, 0}, bytes.Repeat([]byte{0xff}, 11)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Decode(tt.in)
			if !errors.Is(err, log.ErrCorruptEvent) {
				t.Fatalf("Decode = %+v, %v; want ErrCorruptEvent", got, err)
			}
			if !equalEvents(got, log.Event{}) {
				t.Fatalf("Decode returned a partial event with its error: %+v", got)
			}
		})
	}
}

func TestDecodeRejectsEveryTruncation(t *testing.T) {
	c := log.NewCodec(0)
	defer c.Close()
	for _, n := range []int{0, 16, 4 << 10} {
		ev := testEvent(n)
		b := c.Encode(&ev)
		for i := 0; i < len(b); i++ {
			if _, err := c.Decode(b[:i:i]); !errors.Is(err, log.ErrCorruptEvent) {
				t.Fatalf("body %d: prefix of %d/%d bytes: err = %v, want ErrCorruptEvent", n, i, len(b), err)
			}
		}
	}
}

func TestDecodeRejectsOversizedCompressedBody(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 16 MiB")
	}
	c := log.NewCodec(0)
	defer c.Close()
	ev := testEvent(0)
	ev.Body = make([]byte, log.MaxBodySize+1) // zeros compress to almost nothing
	b := c.Encode(&ev)
	if b[1]&1 == 0 {
		t.Fatal("body not compressed")
	}
	if len(b) > 1<<20 {
		t.Fatalf("encoding unexpectedly large: %d bytes", len(b))
	}
	if _, err := c.Decode(b); !errors.Is(err, log.ErrCorruptEvent) {
		t.Fatalf("Decode of a body over MaxBodySize: %v, want ErrCorruptEvent", err)
	}
}

func TestOpNames(t *testing.T) {
	for _, op := range []log.Op{log.OpPut, log.OpPatch, log.OpDelete} {
		got, ok := log.ParseOp(op.String())
		if !ok || got != op {
			t.Errorf("ParseOp(%q) = %v, %v", op.String(), got, ok)
		}
	}
	if _, ok := log.ParseOp("PUT"); ok {
		t.Error(`ParseOp("PUT") accepted`)
	}
	if s := log.Op(9).String(); s != "op(9)" {
		t.Errorf("Op(9).String() = %q", s)
	}
}

func TestHashChain(t *testing.T) {
	a := testEvent(10)
	b := a
	b.Body = append([]byte(nil), a.Body...)
	if a.Hash() != b.Hash() {
		t.Fatal("equal events hash differently")
	}
	mutations := map[string]func(e *log.Event){
		"shard":      func(e *log.Event) { e.Position.Shard++ },
		"index":      func(e *log.Event) { e.Position.Index++ },
		"ts":         func(e *log.Event) { e.TS++ },
		"origin":     func(e *log.Event) { e.Origin += "x" },
		"op":         func(e *log.Event) { e.Op = log.OpPatch },
		"collection": func(e *log.Event) { e.Collection += "x" },
		"id":         func(e *log.Event) { e.ID += "x" },
		"version":    func(e *log.Event) { e.Version++ },
		"prev":       func(e *log.Event) { e.PrevVersion++ },
		"body":       func(e *log.Event) { e.Body[0] ^= 1 },
		"principal":  func(e *log.Event) { e.Principal += "x" },
		"request id": func(e *log.Event) { e.RequestID += "x" },
		"prev hash":  func(e *log.Event) { e.PrevHash[31] ^= 1 },
		// Moving a byte between adjacent strings must change the hash (length prefixes).
		"boundary": func(e *log.Event) { e.Collection, e.ID = "orders"+"a", "1" },
	}
	for name, mutate := range mutations {
		e := a
		e.Body = append([]byte(nil), a.Body...)
		mutate(&e)
		if e.Hash() == a.Hash() {
			t.Errorf("changing %s does not change the hash", name)
		}
	}
}

// FuzzDecodeEvent: Decode never panics, and whatever it accepts re-encodes to an event
// that decodes to the same value.
func FuzzDecodeEvent(f *testing.F) {
	c := log.NewCodec(0)
	defer c.Close()
	for _, n := range []int{0, 1, 100, 600, 4 << 10} {
		ev := testEvent(n)
		f.Add(c.Encode(&ev))
	}
	del := log.Event{Op: log.OpDelete, Collection: "c", ID: "i"}
	f.Add(c.Encode(&del))
	f.Add(encodeRaw(1, 1, log.OpPut, []byte(`{}`)))
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	clocked := testEvent(600)
	clocked.Clock = vclock.Clock{"dcA": 3, "dcB": 1}
	f.Add(c.Encode(&clocked))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := c.Decode(b)
		if err != nil {
			if !errors.Is(err, log.ErrCorruptEvent) {
				t.Fatalf("error not wrapping ErrCorruptEvent: %v", err)
			}
			return
		}
		again, err := c.Decode(c.Encode(&ev))
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v (event %+v)", err, ev)
		}
		if !equalEvents(ev, again) {
			t.Fatalf("round trip changed the event:\nfirst  %+v\nsecond %+v", ev, again)
		}
	})
}

func benchEvent(n int) log.Event {
	e := testEvent(0)
	e.Body = jsonBody(n)
	return e
}

func BenchmarkEncodeEvent(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"256B", 256}, {"4KiB", 4 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			c := log.NewCodec(0)
			defer c.Close()
			ev := benchEvent(size.n)
			buf := make([]byte, 0, 2*size.n+512)
			b.ReportAllocs()
			b.SetBytes(int64(size.n))
			for b.Loop() {
				buf = c.Append(buf[:0], &ev)
			}
			b.ReportMetric(float64(len(buf)), "encoded-bytes")
		})
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"256B", 256}, {"4KiB", 4 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			c := log.NewCodec(0)
			defer c.Close()
			ev := benchEvent(size.n)
			enc := c.Encode(&ev)
			b.ReportAllocs()
			b.SetBytes(int64(size.n))
			for b.Loop() {
				if _, err := c.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
