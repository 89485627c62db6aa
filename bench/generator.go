package bench

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// The key generators follow YCSB's site.ycsb.generator package. Each takes the caller's
// *rand.Rand so that a worker owns its randomness; generators that keep state (latest) are
// built per worker, the rest are immutable and may be shared.

// zipfianConstant is YCSB's default skew (ZipfianGenerator.ZIPFIAN_CONSTANT).
const zipfianConstant = 0.99

// Scrambled zipfian draws from a fixed huge item space whose zeta is precomputed, exactly as
// YCSB's ScrambledZipfianGenerator does (ITEM_COUNT and ZETAN for theta 0.99).
const (
	scrambledItemCount = 10_000_000_000
	scrambledZetan     = 26.46902820178302
)

// zeta returns sum_{i=from+1..to} 1/i^theta added to initial: zeta(to) computed
// incrementally from zeta(from) = initial.
func zeta(from, to int64, theta, initial float64) float64 {
	sum := initial
	for i := from; i < to; i++ {
		sum += 1 / math.Pow(float64(i+1), theta)
	}
	return sum
}

// zipfian draws integers in [0, items) with P(i) ∝ 1/(i+1)^theta, using the algorithm of
// Gray et al., "Quickly Generating Billion-Record Synthetic Databases" (SIGMOD 1994), as in
// YCSB's ZipfianGenerator: item 0 is the most popular. The item count may grow between
// draws (for the latest distribution); zeta is then extended incrementally.
// A zipfian is not safe for concurrent use when the item count changes; copy it per worker.
type zipfian struct {
	theta      float64
	alpha      float64
	zeta2theta float64
	count      int64 // the item count zetan and eta were computed for
	zetan      float64
	eta        float64
}

func newZipfian(items int64, theta float64) *zipfian {
	return newZipfianWithZeta(items, theta, zeta(0, items, theta, 0))
}

func newZipfianWithZeta(items int64, theta, zetan float64) *zipfian {
	z := &zipfian{
		theta:      theta,
		alpha:      1 / (1 - theta),
		zeta2theta: zeta(0, 2, theta, 0),
		count:      items,
		zetan:      zetan,
	}
	z.eta = z.etaFor(items)
	return z
}

func (z *zipfian) etaFor(items int64) float64 {
	return (1 - math.Pow(2/float64(items), 1-z.theta)) / (1 - z.zeta2theta/z.zetan)
}

// next draws from [0, items). items must be ≥ 1.
func (z *zipfian) next(r *rand.Rand, items int64) int64 {
	if items != z.count {
		if items > z.count {
			z.zetan = zeta(z.count, items, z.theta, z.zetan)
		} else {
			z.zetan = zeta(0, items, z.theta, 0)
		}
		z.count = items
		z.eta = z.etaFor(items)
	}
	u := r.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < 1+math.Pow(0.5, z.theta) {
		return min(1, items-1)
	}
	v := int64(float64(items) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(max(v, 0), items-1)
}

// clone returns an independent copy (for a worker that will grow the item count).
func (z *zipfian) clone() *zipfian {
	c := *z
	return &c
}

// KeyChooser picks a key number in [0, limit): limit is the number of keys that exist now
// (it grows when a workload inserts).
type KeyChooser interface {
	Next(r *rand.Rand, limit int64) int64
}

// uniformChooser picks uniformly in [0, limit).
type uniformChooser struct{}

func (uniformChooser) Next(r *rand.Rand, limit int64) int64 { return r.Int64N(limit) }

// scrambledZipfian is YCSB's ScrambledZipfianGenerator over [0, items): zipfian popularity,
// with the popular items spread over the key space by hashing instead of clustered at 0.
// Draws at or beyond the current limit are redrawn, as YCSB's CoreWorkload.nextKeynum does.
// Immutable; safe for concurrent use.
type scrambledZipfian struct {
	items int64
	gen   *zipfian
}

func newScrambledZipfian(items int64) *scrambledZipfian {
	return &scrambledZipfian{items: items, gen: newZipfianWithZeta(scrambledItemCount, zipfianConstant, scrambledZetan)}
}

func (s *scrambledZipfian) draw(r *rand.Rand) int64 {
	return fnvHash64(s.gen.next(r, scrambledItemCount)) % s.items
}

func (s *scrambledZipfian) Next(r *rand.Rand, limit int64) int64 {
	for range 64 {
		if v := s.draw(r); v < limit {
			return v
		}
	}
	return s.draw(r) % limit
}

// skewedLatest is YCSB's SkewedLatestGenerator: zipfian over the distance from the newest
// key, so the most recently inserted keys are the most popular. Not safe for concurrent
// use: it keeps the zeta of a growing item count; build one per worker with clone.
type skewedLatest struct {
	z *zipfian
}

func newSkewedLatest(items int64) *skewedLatest {
	return &skewedLatest{z: newZipfian(max(items, 1), zipfianConstant)}
}

func (s *skewedLatest) Next(r *rand.Rand, limit int64) int64 {
	return limit - 1 - s.z.next(r, limit)
}

func (s *skewedLatest) clone() *skewedLatest { return &skewedLatest{z: s.z.clone()} }

// ackCounter hands out new key numbers for inserts and tracks how many keys exist: Limit
// is the length of the prefix [0, Limit) of key numbers whose inserts all completed (YCSB's
// AcknowledgedCounterGenerator). Readers never pick a key whose insert is still in flight.
// Safe for concurrent use. The pending set holds at most the inserts in flight.
type ackCounter struct {
	next  atomic.Int64
	limit atomic.Int64
	mu    sync.Mutex
	done  map[int64]struct{}
}

func newAckCounter(start int64) *ackCounter {
	c := &ackCounter{done: make(map[int64]struct{})}
	c.next.Store(start)
	c.limit.Store(start)
	return c
}

// Take returns a fresh key number to insert.
func (c *ackCounter) Take() int64 { return c.next.Add(1) - 1 }

// Ack marks n as finished (successfully or not: a failed insert must not stall the
// counter; reading that key later reports not_found, which is counted as an error).
func (c *ackCounter) Ack(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done[n] = struct{}{}
	l := c.limit.Load()
	for {
		if _, ok := c.done[l]; !ok {
			break
		}
		delete(c.done, l)
		l++
	}
	c.limit.Store(l)
}

// Limit is the number of key numbers known to be finished, from 0.
func (c *ackCounter) Limit() int64 { return c.limit.Load() }

// opChooser picks an operation by weight (YCSB's DiscreteGenerator). Immutable.
type opChooser struct {
	ops []string
	cum []float64 // cumulative weights, last = total
}

// Mix is one operation and its share of a workload.
type Mix struct {
	Op         string  `json:"op"`
	Proportion float64 `json:"proportion"`
}

func newOpChooser(mix []Mix) *opChooser {
	c := &opChooser{}
	total := 0.0
	for _, m := range mix {
		if m.Proportion <= 0 {
			continue
		}
		total += m.Proportion
		c.ops = append(c.ops, m.Op)
		c.cum = append(c.cum, total)
	}
	return c
}

func (c *opChooser) Next(r *rand.Rand) string {
	x := r.Float64() * c.cum[len(c.cum)-1]
	for i, v := range c.cum {
		if x < v {
			return c.ops[i]
		}
	}
	return c.ops[len(c.ops)-1]
}
