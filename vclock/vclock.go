package vclock

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aerolithsdb/aerolith/internal/wire"
)

// Clock maps a datacenter to the number of the document's writes accepted there that a
// version has seen. Absent entries are zero.
type Clock map[string]uint64

// Ordering is how two clocks relate.
type Ordering int

// The orderings of Compare(a, b).
const (
	Equal      Ordering = iota // the same clock
	Before                     // a < b: b has seen everything a has, and more
	After                      // a > b
	Concurrent                 // neither has seen the other
)

func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Before:
		return "before"
	case After:
		return "after"
	case Concurrent:
		return "concurrent"
	}
	return fmt.Sprintf("ordering(%d)", int(o))
}

// Compare reports how a relates to b. Zero entries count as absent.
func Compare(a, b Clock) Ordering {
	less, greater := false, false
	for dc, av := range a {
		bv := b[dc]
		if av < bv {
			less = true
		} else if av > bv {
			greater = true
		}
	}
	for dc, bv := range b {
		if _, ok := a[dc]; !ok && bv > 0 {
			less = true
		}
	}
	switch {
	case less && greater:
		return Concurrent
	case less:
		return Before
	case greater:
		return After
	}
	return Equal
}

// Merge returns a new clock holding, for every datacenter, the larger of c's and o's
// counters.
func (c Clock) Merge(o Clock) Clock {
	out := make(Clock, max(len(c), len(o)))
	for dc, v := range c {
		if v > 0 {
			out[dc] = v
		}
	}
	for dc, v := range o {
		if v > out[dc] {
			out[dc] = v
		}
	}
	return out
}

// Tick returns a copy of c with dc's counter one higher.
func (c Clock) Tick(dc string) Clock {
	out := c.Merge(nil)
	out[dc]++
	return out
}

// Clone returns a copy of c (nil for an empty clock).
func (c Clock) Clone() Clock {
	if len(c) == 0 {
		return nil
	}
	return c.Merge(nil)
}

// IsZero reports whether c has no non-zero entry.
func (c Clock) IsZero() bool {
	for _, v := range c {
		if v > 0 {
			return false
		}
	}
	return true
}

// dcs returns the datacenters with non-zero counters, sorted.
func (c Clock) dcs() []string {
	out := make([]string, 0, len(c))
	for dc, v := range c {
		if v > 0 {
			out = append(out, dc)
		}
	}
	slices.Sort(out)
	return out
}

// String formats c as "dc1:3,dc2:1", sorted by datacenter; "" for an empty clock.
func (c Clock) String() string {
	var b strings.Builder
	for i, dc := range c.dcs() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(dc)
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(c[dc], 10))
	}
	return b.String()
}

// MaxEntries bounds the datacenters a decoded clock may hold.
const MaxEntries = 1024

// ErrCorrupt is returned by Decode for bytes Append did not write.
var ErrCorrupt = errors.New("vclock: corrupt clock")

// Append appends the binary form of c to b: the number of non-zero entries, then each
// datacenter (length-prefixed) and its counter as uvarints, sorted by datacenter. An empty
// clock is the single byte 0.
func (c Clock) Append(b []byte) []byte {
	dcs := c.dcs()
	b = wire.AppendUvarint(b, uint64(len(dcs)))
	for _, dc := range dcs {
		b = wire.AppendString(b, dc)
		b = wire.AppendUvarint(b, c[dc])
	}
	return b
}

// Read decodes a clock Append wrote from r. It returns nil for an empty clock and fails
// (through r's sticky error, or ErrCorrupt) on entries out of order, repeated, zero, or
// too many.
func Read(r *wire.Reader) (Clock, error) {
	n := r.Uvarint()
	if r.Err() != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, r.Err())
	}
	if n > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries", ErrCorrupt, n)
	}
	if n == 0 {
		return nil, nil
	}
	c := make(Clock, n)
	prev := ""
	for i := uint64(0); i < n; i++ {
		dc, v := r.String(), r.Uvarint()
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, r.Err())
		}
		if v == 0 || (i > 0 && dc <= prev) {
			return nil, fmt.Errorf("%w: entry %q out of order or zero", ErrCorrupt, dc)
		}
		c[dc], prev = v, dc
	}
	return c, nil
}

// Decode decodes a clock Append wrote, which must be all of b.
func Decode(b []byte) (Clock, error) {
	r := wire.NewReader(b)
	c, err := Read(r)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, r.Len())
	}
	return c, nil
}
