package bench

import (
	"encoding/base64"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to 10 minutes with 3 significant digits.
const (
	histLowest  = 1
	histHighest = int64(10 * time.Minute / time.Microsecond)
	histSigFigs = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histLowest, histHighest, histSigFigs) }

func recordDur(h *hdrhistogram.Histogram, d time.Duration) {
	us := int64(d / time.Microsecond)
	_ = h.RecordValue(min(max(us, histLowest), histHighest)) // clamped: cannot fail
}

// opInterval is what one shard saw of one operation type since the last drain.
type opInterval struct {
	hist     *hdrhistogram.Histogram // latencies of successful operations
	errs     map[string]int64        // failed operations by error code
	items    int64                   // documents in successful operations
	itemErrs map[string]int64        // failed items of batches, by code
}

func newOpInterval() *opInterval {
	return &opInterval{hist: newHist(), errs: map[string]int64{}, itemErrs: map[string]int64{}}
}

// recShard is one lock's worth of the recorder. Workers are spread over shards so they
// rarely contend; the collector locks each shard once a second to drain it.
type recShard struct {
	mu       sync.Mutex
	ops      map[string]*opInterval
	steps    int64
	stepErrs int64
	lag      *hdrhistogram.Histogram // open loop: how late steps started against the schedule
}

// recorder collects observations from the workers. Lock order: a recShard's mu alone; the
// collector never holds two shards' locks at once.
type recorder struct {
	shards []recShard
	// live counters for the progress line (all phases).
	liveSteps  atomic.Int64
	liveErrors atomic.Int64
}

func newRecorder(shards int) *recorder {
	r := &recorder{shards: make([]recShard, max(shards, 1))}
	for i := range r.shards {
		r.shards[i].ops = map[string]*opInterval{}
		r.shards[i].lag = newHist()
	}
	return r
}

func (r *recorder) shard(worker int) *recShard { return &r.shards[worker%len(r.shards)] }

// observe records one operation: code "" means success.
func (s *recShard) observe(op string, lat time.Duration, items int, code string) {
	s.mu.Lock()
	o := s.ops[op]
	if o == nil {
		o = newOpInterval()
		s.ops[op] = o
	}
	o.items += int64(items)
	if code == "" {
		recordDur(o.hist, lat)
	} else {
		o.errs[code]++
	}
	s.mu.Unlock()
}

func (s *recShard) itemErrors(op, code string, n int) {
	s.mu.Lock()
	o := s.ops[op]
	if o == nil {
		o = newOpInterval()
		s.ops[op] = o
	}
	o.itemErrs[code] += int64(n)
	s.mu.Unlock()
}

func (r *recorder) step(s *recShard, failed bool, lag time.Duration, open bool) {
	s.mu.Lock()
	s.steps++
	if failed {
		s.stepErrs++
	}
	if open {
		recordDur(s.lag, lag)
	}
	s.mu.Unlock()
	r.liveSteps.Add(1)
	if failed {
		r.liveErrors.Add(1)
	}
}

// opTotal accumulates one operation type over the measured phase.
type opTotal struct {
	hist     *hdrhistogram.Histogram
	errs     map[string]int64
	items    int64
	itemErrs map[string]int64
	sec      *opInterval // this second, being drained
}

// aggregator turns drained intervals into per-second points and phase totals. It is used
// by the collector goroutine only.
type aggregator struct {
	ops       map[string]*opTotal
	all       *hdrhistogram.Histogram // all operations this second
	lag       *hdrhistogram.Histogram
	steps     int64
	stepErrs  int64
	timeline  []Second
	elapsed   float64 // seconds covered by the timeline
	secSteps  int64
	secErrors int64
}

func newAggregator() *aggregator {
	return &aggregator{ops: map[string]*opTotal{}, all: newHist(), lag: newHist()}
}

// drain empties every shard. With keep false (warmup) what was drained is thrown away;
// otherwise it becomes one timeline point of length dur and is added to the totals.
func (a *aggregator) drain(r *recorder, dur time.Duration, keep bool) {
	a.secSteps, a.secErrors = 0, 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for name, o := range s.ops {
			t := a.ops[name]
			if t == nil {
				t = &opTotal{hist: newHist(), errs: map[string]int64{}, itemErrs: map[string]int64{}, sec: newOpInterval()}
				a.ops[name] = t
			}
			if keep {
				t.sec.hist.Merge(o.hist)
				for c, n := range o.errs {
					t.sec.errs[c] += n
				}
				for c, n := range o.itemErrs {
					t.sec.itemErrs[c] += n
				}
				t.sec.items += o.items
			}
			o.hist.Reset()
			clear(o.errs)
			clear(o.itemErrs)
			o.items = 0
		}
		if keep {
			a.secSteps += s.steps
			a.secErrors += s.stepErrs
			a.lag.Merge(s.lag)
		}
		s.steps, s.stepErrs = 0, 0
		s.lag.Reset()
		s.mu.Unlock()
	}
	if !keep {
		for _, t := range a.ops {
			t.sec.hist.Reset()
		}
		return
	}
	secs := dur.Seconds()
	a.elapsed += secs
	pt := Second{T: round3(a.elapsed), Seconds: round3(secs), Ops: a.secSteps, Errors: a.secErrors, ByOp: map[string]OpSecond{}}
	if secs > 0 {
		pt.OpsPerSec = round1(float64(a.secSteps) / secs)
	}
	for name, t := range a.ops {
		sec := t.sec
		errs := int64(0)
		for c, n := range sec.errs {
			t.errs[c] += n
			errs += n
		}
		for c, n := range sec.itemErrs {
			t.itemErrs[c] += n
		}
		t.items += sec.items
		cnt := sec.hist.TotalCount()
		if cnt > 0 || errs > 0 {
			pt.ByOp[name] = OpSecond{Count: cnt, Errors: errs, P99Us: sec.hist.ValueAtQuantile(99)}
		}
		t.hist.Merge(sec.hist)
		a.all.Merge(sec.hist)
		sec.hist.Reset()
		clear(sec.errs)
		clear(sec.itemErrs)
		sec.items = 0
	}
	if a.all.TotalCount() > 0 {
		pt.P50Us = a.all.ValueAtQuantile(50)
		pt.P99Us = a.all.ValueAtQuantile(99)
		pt.MaxUs = a.all.Max()
	}
	a.all.Reset()
	a.steps += a.secSteps
	a.stepErrs += a.secErrors
	a.timeline = append(a.timeline, pt)
}

// spectrumPercentiles are the points of the latency-by-percentile chart.
var spectrumPercentiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97, 98, 99, 99.5, 99.7, 99.9, 99.95, 99.99, 99.999, 100}

// opStats summarizes one operation type over a phase of elapsed seconds.
func (t *opTotal) stats(name string, elapsed float64) OpStats {
	s := OpStats{
		Op:               name,
		Count:            t.hist.TotalCount(),
		ErrorsByCode:     maps.Clone(t.errs),
		Items:            t.items,
		ItemErrorsByCode: maps.Clone(t.itemErrs),
	}
	for _, n := range t.errs {
		s.Errors += n
	}
	for _, n := range t.itemErrs {
		s.ItemErrors += n
	}
	if elapsed > 0 {
		s.OpsPerSec = round1(float64(s.Count) / elapsed)
		s.ItemsPerSec = round1(float64(s.Items) / elapsed)
	}
	s.Latency = latencyOf(t.hist)
	if s.Count > 0 {
		for _, p := range spectrumPercentiles {
			s.Spectrum = append(s.Spectrum, SpectrumPoint{Percentile: p, Us: t.hist.ValueAtQuantile(p)})
		}
		if enc, err := t.hist.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err == nil {
			s.HDR = base64.StdEncoding.EncodeToString(enc)
		}
	}
	return s
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		MinUs:  h.Min(),
		MeanUs: round1(h.Mean()),
		P50Us:  h.ValueAtQuantile(50),
		P90Us:  h.ValueAtQuantile(90),
		P99Us:  h.ValueAtQuantile(99),
		P999Us: h.ValueAtQuantile(99.9),
		MaxUs:  h.Max(),
	}
}

// results returns the per-operation stats in the given order, then any others by name.
func (a *aggregator) results(order []string, elapsed float64) []OpStats {
	names := slices.Sorted(maps.Keys(a.ops))
	seen := map[string]bool{}
	var out []OpStats
	for _, n := range append(slices.Clone(order), names...) {
		t := a.ops[n]
		if t == nil || seen[n] {
			continue
		}
		seen[n] = true
		s := t.stats(n, elapsed)
		if s.Count == 0 && s.Errors == 0 {
			continue
		}
		out = append(out, s)
	}
	return out
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
