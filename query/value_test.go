package query

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// scalar is a value as a document or a literal holds it; ok false means missing.
type scalar struct {
	v  any
	ok bool
}

func (s scalar) String() string {
	if !s.ok {
		return "missing"
	}
	return fmt.Sprintf("%T(%#v)", s.v, s.v)
}

// keyScalars are the edge cases: every type rank, zero of both signs, the extremes of
// float64 and the integer types, and strings with NUL bytes and prefixes of each other.
var keyScalars = []scalar{
	{nil, false}, {nil, true}, {false, true}, {true, true},
	{0.0, true}, {math.Copysign(0, -1), true}, {1.0, true}, {-1.0, true}, {0.5, true}, {-0.5, true},
	{math.MaxFloat64, true}, {-math.MaxFloat64, true}, {math.SmallestNonzeroFloat64, true},
	{-math.SmallestNonzeroFloat64, true}, {1e-300, true}, {-1e-300, true}, {1e300, true}, {-1e300, true},
	{math.Inf(1), true}, {math.Inf(-1), true}, {9007199254740992.0, true}, {9007199254740993.0, true},
	{int64(0), true}, {int64(-1), true}, {int64(math.MaxInt64), true}, {int64(math.MinInt64), true},
	{int(7), true}, {uint64(math.MaxUint64), true}, {uint64(1), true},
	{"", true}, {"\x00", true}, {"\x00\x00", true}, {"\x00\x01", true}, {"\x01", true}, {"a", true},
	{"a\x00", true}, {"a\x00\x00", true}, {"a\x00b", true}, {"a\x01", true}, {"ab", true},
	{"abc", true}, {"b", true}, {"\xff", true}, {"\xff\x00", true}, {"\xff\xff", true},
}

func randomScalar(r *rand.Rand) scalar {
	switch r.IntN(8) {
	case 0:
		return keyScalars[r.IntN(len(keyScalars))]
	case 1:
		return scalar{r.IntN(2) == 0, true}
	case 2:
		return scalar{float64(r.IntN(21) - 10), true}
	case 3:
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) {
			f = 0
		}
		return scalar{f, true}
	case 4:
		return scalar{int64(r.Uint64()), true}
	default:
		alphabet := []byte{0, 1, 'a', 'b', 0xfe, 0xff}
		b := make([]byte, r.IntN(5))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return scalar{string(b), true}
	}
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func key(s scalar) []byte { return AppendKey(nil, s.v, s.ok) }

// TestAppendKeyOrderAgreesWithCompare: index keys sort as Compare orders values, and
// since the encoding is self-delimiting, the keys of value pairs (a compound index) sort
// lexicographically by the pairs.
func TestAppendKeyOrderAgreesWithCompare(t *testing.T) {
	check := func(a, b scalar) {
		t.Helper()
		if got, want := sign(bytes.Compare(key(a), key(b))), sign(Compare(a.v, a.ok, b.v, b.ok)); got != want {
			t.Fatalf("keys of %v and %v compare %d, Compare says %d (%x, %x)", a, b, got, want, key(a), key(b))
		}
	}
	for _, a := range keyScalars {
		for _, b := range keyScalars {
			check(a, b)
		}
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < 50_000; i++ {
		a1, a2, b1, b2 := randomScalar(r), randomScalar(r), randomScalar(r), randomScalar(r)
		check(a1, b1)
		want := sign(Compare(a1.v, a1.ok, b1.v, b1.ok))
		if want == 0 {
			want = sign(Compare(a2.v, a2.ok, b2.v, b2.ok))
		}
		ka := append(key(a1), key(a2)...)
		kb := append(key(b1), key(b2)...)
		if got := sign(bytes.Compare(ka, kb)); got != want {
			t.Fatalf("seed %d: keys of (%v, %v) and (%v, %v) compare %d, want %d", seed, a1, a2, b1, b2, got, want)
		}
	}
}

// TestAppendKeyEqualValues: values Compare calls equal have one key, whatever their Go
// type, so an equality span finds them all.
func TestAppendKeyEqualValues(t *testing.T) {
	for _, c := range [][2]scalar{
		{{0.0, true}, {math.Copysign(0, -1), true}},
		{{1.0, true}, {int64(1), true}},
		{{7.0, true}, {int(7), true}},
		{{3.0, true}, {uint64(3), true}},
	} {
		if !bytes.Equal(key(c[0]), key(c[1])) {
			t.Errorf("%v and %v: keys %x and %x", c[0], c[1], key(c[0]), key(c[1]))
		}
	}
}
