package bench

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
)

func testRand() *rand.Rand { return rand.New(rand.NewPCG(42, 7)) }

// counts draws n values from next and returns how often each value in [0, items) came up.
func counts(t *testing.T, items int64, n int, next func() int64) []int {
	t.Helper()
	c := make([]int, items)
	for range n {
		v := next()
		if v < 0 || v >= items {
			t.Fatalf("value %d out of [0,%d)", v, items)
		}
		c[v]++
	}
	return c
}

func within(t *testing.T, what string, got, want, relTol float64) {
	t.Helper()
	if math.Abs(got-want) > relTol*want {
		t.Errorf("%s = %.5f, want %.5f ± %.0f%%", what, got, want, relTol*100)
	}
}

func TestUniformIsFlat(t *testing.T) {
	r := testRand()
	const items, n = 100, 200000
	c := counts(t, items, n, func() int64 { return uniformChooser{}.Next(r, items) })
	// Chi-square with 99 degrees of freedom: mean 99, sd 14; 99+5 sd ≈ 170.
	exp := float64(n) / items
	chi := 0.0
	for _, v := range c {
		d := float64(v) - exp
		chi += d * d / exp
	}
	if chi > 170 {
		t.Fatalf("chi-square %.1f: not uniform", chi)
	}
}

func TestZipfianShape(t *testing.T) {
	r := testRand()
	const items, n = 1000, 1000000
	z := newZipfian(items, zipfianConstant)
	c := counts(t, items, n, func() int64 { return z.next(r, items) })
	zetan := zeta(0, items, zipfianConstant, 0)
	p := func(i int) float64 { return 1 / math.Pow(float64(i+1), zipfianConstant) / zetan }
	// Ranks 0 and 1 are exact in Gray's algorithm; later ranks are a close approximation.
	within(t, "P(0)", float64(c[0])/n, p(0), 0.02)
	within(t, "P(1)", float64(c[1])/n, p(1), 0.03)
	for _, top := range []int{10, 100, 500} {
		got, want := 0, 0.0
		for i := range top {
			got += c[i]
			want += p(i)
		}
		within(t, "mass of the first ranks", float64(got)/n, want, 0.05)
	}
	// Popularity falls with rank: compare decades of ranks.
	sum := func(a, b int) (s int) {
		for i := a; i < b; i++ {
			s += c[i]
		}
		return s
	}
	if !(sum(0, 10) > sum(10, 100)/3 && sum(10, 100)/90 > sum(100, 1000)/900) {
		t.Fatalf("zipfian frequencies do not fall with rank: %d %d %d", sum(0, 10), sum(10, 100), sum(100, 1000))
	}
}

func TestZipfianGrowsIncrementally(t *testing.T) {
	z := newZipfian(100, zipfianConstant)
	r := testRand()
	z.next(r, 1000)
	want := zeta(0, 1000, zipfianConstant, 0)
	if math.Abs(z.zetan-want) > 1e-9 {
		t.Fatalf("incremental zeta %.12f, want %.12f", z.zetan, want)
	}
	z.next(r, 10) // shrinking recomputes from scratch
	if want := zeta(0, 10, zipfianConstant, 0); math.Abs(z.zetan-want) > 1e-12 {
		t.Fatalf("zeta after shrink %.12f, want %.12f", z.zetan, want)
	}
}

func TestScrambledZipfianShape(t *testing.T) {
	r := testRand()
	const items, n = 1000, 1000000
	s := newScrambledZipfian(items)
	c := counts(t, items, n, func() int64 { return s.Next(r, items) })

	// YCSB draws a zipfian rank over 1e10 items and hashes it onto the key space. Ranks 0
	// and 1 are exact in Gray's algorithm (P = 1/ζ and 0.5^θ/ζ); the rest of the mass is
	// spread by the hash (with n this large the approximation skips ranks ~2–20, as YCSB's
	// does), so every other key gets about (1-p0-p1)/items.
	p0 := 1 / scrambledZetan
	p1 := math.Pow(0.5, zipfianConstant) / scrambledZetan
	bg := (1 - p0 - p1) / items
	k0, k1 := fnvHash64(0)%items, fnvHash64(1)%items
	within(t, "P(key of rank 0)", float64(c[k0])/n, p0+bg, 0.05)
	within(t, "P(key of rank 1)", float64(c[k1])/n, p1+bg, 0.05)
	if k0 == 0 || argmax(c) != int(k0) {
		t.Fatalf("hottest key %d, want %d (the hash of rank 0, not key 0)", argmax(c), k0)
	}
	for k, v := range c {
		if int64(k) != k0 && int64(k) != k1 && float64(v)/n > p1 {
			t.Fatalf("key %d drawn %.4f, more than rank 1 (%.4f)", k, float64(v)/n, p1)
		}
	}
	// Skewed: the 10% most popular keys get well over 10% of the draws.
	sorted := append([]int(nil), c...)
	sort.Sort(sort.Reverse(sort.IntSlice(sorted)))
	top := 0
	for _, v := range sorted[:items/10] {
		top += v
	}
	if share := float64(top) / n; share < 0.25 {
		t.Fatalf("top 10%% of keys get %.2f of draws; not skewed", share)
	}
}

func TestScrambledZipfianRespectsLimit(t *testing.T) {
	r := testRand()
	s := newScrambledZipfian(2000)
	for range 10000 {
		if v := s.Next(r, 1500); v < 0 || v >= 1500 {
			t.Fatalf("value %d outside the limit 1500", v)
		}
	}
}

func TestSkewedLatestFavorsNewest(t *testing.T) {
	r := testRand()
	const items, n = 1000, 500000
	l := newSkewedLatest(items)
	c := counts(t, items, n, func() int64 { return l.Next(r, items) })
	zetan := zeta(0, items, zipfianConstant, 0)
	within(t, "P(newest)", float64(c[items-1])/n, 1/zetan, 0.02)
	if !(c[items-1] > c[items-2] && c[items-2] > c[items-10] && c[items-10] > c[items/2]) {
		t.Fatalf("latest does not favor recent keys: %d %d %d %d", c[items-1], c[items-2], c[items-10], c[items/2])
	}
	// When keys are inserted the hot spot moves with the newest key.
	c2 := counts(t, items+500, 100000, func() int64 { return l.Next(r, items+500) })
	if best := argmax(c2); best != items+499 {
		t.Fatalf("hottest key after growth is %d, want %d", best, items+499)
	}
}

func argmax(c []int) int {
	b := 0
	for i, v := range c {
		if v > c[b] {
			b = i
		}
	}
	return b
}

func TestAckCounterOutOfOrder(t *testing.T) {
	c := newAckCounter(10)
	a, b, d := c.Take(), c.Take(), c.Take()
	if a != 10 || b != 11 || d != 12 {
		t.Fatalf("takes %d %d %d", a, b, d)
	}
	c.Ack(11)
	if c.Limit() != 10 {
		t.Fatalf("limit %d after acking 11 only, want 10", c.Limit())
	}
	c.Ack(10)
	if c.Limit() != 12 {
		t.Fatalf("limit %d, want 12", c.Limit())
	}
	c.Ack(12)
	if c.Limit() != 13 || len(c.done) != 0 {
		t.Fatalf("limit %d pending %d, want 13 and 0", c.Limit(), len(c.done))
	}
}

func TestAckCounterConcurrent(t *testing.T) {
	c := newAckCounter(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Ack(c.Take())
			}
		}()
	}
	wg.Wait()
	if c.Limit() != 8000 {
		t.Fatalf("limit %d, want 8000", c.Limit())
	}
}

func TestWorkloadMixRatios(t *testing.T) {
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		spec := ycsbSpecs()[name]
		ch := newOpChooser(spec.Mix)
		r := testRand()
		const n = 200000
		got := map[string]int{}
		for range n {
			got[ch.Next(r)]++
		}
		for _, m := range spec.Mix {
			if share := float64(got[m.Op]) / n; math.Abs(share-m.Proportion) > 0.01 {
				t.Errorf("workload %s: %s share %.3f, want %.2f", name, m.Op, share, m.Proportion)
			}
		}
		if len(got) != len(spec.Mix) {
			t.Errorf("workload %s: ops %v, want %v", name, got, spec.Mix)
		}
	}
}

func TestYCSBStandardMixes(t *testing.T) {
	want := map[string][]Mix{
		"a": {{OpRead, 0.5}, {OpUpdate, 0.5}},
		"b": {{OpRead, 0.95}, {OpUpdate, 0.05}},
		"c": {{OpRead, 1}},
		"d": {{OpRead, 0.95}, {OpInsert, 0.05}},
		"e": {{OpScan, 0.95}, {OpInsert, 0.05}},
		"f": {{OpRead, 0.5}, {OpReadModifyWrite, 0.5}},
	}
	for name, mix := range want {
		spec := ycsbSpecs()[name]
		if len(spec.Mix) != len(mix) {
			t.Fatalf("workload %s mix %v, want %v", name, spec.Mix, mix)
		}
		for i := range mix {
			if spec.Mix[i] != mix[i] {
				t.Fatalf("workload %s mix %v, want %v", name, spec.Mix, mix)
			}
		}
		wantDist := DistZipfian
		if name == "d" {
			wantDist = DistLatest
		}
		if spec.Distribution != wantDist {
			t.Errorf("workload %s distribution %s, want %s", name, spec.Distribution, wantDist)
		}
	}
}
