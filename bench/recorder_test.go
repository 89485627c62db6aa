package bench

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func TestAggregatorTotalsAndTimeline(t *testing.T) {
	rec := newRecorder(3)
	agg := newAggregator()

	// Warmup: recorded, then thrown away.
	rec.shard(0).observe("read", 5*time.Second, 1, "")
	rec.step(rec.shard(0), false, 0, false)
	agg.drain(rec, 0, false)

	// Second 1: 100 reads of 1..100 ms over three shards, 2 failures, 1 write.
	for i := 1; i <= 100; i++ {
		s := rec.shard(i)
		s.observe("read", time.Duration(i)*time.Millisecond, 1, "")
		rec.step(s, false, 0, false)
	}
	rec.shard(1).observe("read", 0, 0, "timeout")
	rec.shard(2).observe("read", 0, 0, "not_found")
	rec.step(rec.shard(1), true, 0, false)
	rec.step(rec.shard(2), true, 0, false)
	rec.shard(0).observe("write", 7*time.Millisecond, 10, "")
	rec.shard(0).itemErrors("write", "precondition_failed", 3)
	rec.step(rec.shard(0), false, 0, false)
	agg.drain(rec, time.Second, true)

	// Half a second: 10 reads of 200 ms.
	for range 10 {
		rec.shard(0).observe("read", 200*time.Millisecond, 1, "")
		rec.step(rec.shard(0), false, 0, false)
	}
	agg.drain(rec, 500*time.Millisecond, true)

	if len(agg.timeline) != 2 {
		t.Fatalf("timeline %+v", agg.timeline)
	}
	s1, s2 := agg.timeline[0], agg.timeline[1]
	if s1.T != 1 || s1.Ops != 103 || s1.Errors != 2 || s1.OpsPerSec != 103 || s1.ByOp["read"].Count != 100 || s1.ByOp["read"].Errors != 2 {
		t.Fatalf("second 1: %+v", s1)
	}
	if p := s1.ByOp["read"].P99Us; p < 98_000 || p > 100_100 {
		t.Fatalf("second 1 read p99 %dµs, want ~99ms", p)
	}
	if s2.T != 1.5 || s2.Seconds != 0.5 || s2.Ops != 10 || s2.OpsPerSec != 20 || s2.P50Us < 199_000 || s2.P50Us > 200_200 {
		t.Fatalf("second 2: %+v", s2)
	}
	if agg.steps != 113 || agg.stepErrs != 2 {
		t.Fatalf("steps %d errors %d", agg.steps, agg.stepErrs)
	}

	ops := agg.results([]string{"write", "read"}, 1.5)
	if len(ops) != 2 || ops[0].Op != "write" || ops[1].Op != "read" {
		t.Fatalf("order %+v", ops)
	}
	w, r := ops[0], ops[1]
	if w.Count != 1 || w.Items != 10 || w.ItemErrors != 3 || w.ItemErrorsByCode["precondition_failed"] != 3 {
		t.Fatalf("write %+v", w)
	}
	if r.Count != 110 || r.Errors != 2 || r.ErrorsByCode["timeout"] != 1 || r.ErrorsByCode["not_found"] != 1 {
		t.Fatalf("read %+v", r)
	}
	if r.OpsPerSec != round1(110/1.5) {
		t.Fatalf("read ops/s %v", r.OpsPerSec)
	}
	// 110 values: 1..100 ms and ten of 200 ms. p50 = 55 ms, p90 = 99 ms, max 200 ms; the
	// warmup's 5 s is not there.
	l := r.Latency
	near := func(got, want int64) bool { return got >= want-want/500-1 && got <= want+want/500+1 }
	if !near(l.P50Us, 55_000) || !near(l.P90Us, 99_000) || !near(l.MaxUs, 200_000) || !near(l.MinUs, 1000) {
		t.Fatalf("latency %+v", l)
	}
	if l.P99Us > l.MaxUs || l.P999Us > l.MaxUs || l.P90Us > l.P99Us {
		t.Fatalf("percentiles not ordered: %+v", l)
	}
	// The encoded histogram decodes to the same distribution.
	raw, err := base64.StdEncoding.DecodeString(r.HDR)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hdrhistogram.Decode(raw)
	if err != nil || h.TotalCount() != 110 || h.ValueAtQuantile(50) != l.P50Us {
		t.Fatalf("decoded histogram: err %v count %d", err, h.TotalCount())
	}
	if len(r.Spectrum) != len(spectrumPercentiles) || r.Spectrum[len(r.Spectrum)-1].Us != l.MaxUs {
		t.Fatalf("spectrum %+v", r.Spectrum)
	}
}

func TestRecordClampsOutOfRange(t *testing.T) {
	h := newHist()
	recordDur(h, 0)
	recordDur(h, time.Hour)
	if h.TotalCount() != 2 || h.Min() != histLowest || h.Max() < histHighest-histHighest/1000 {
		t.Fatalf("count %d min %d max %d", h.TotalCount(), h.Min(), h.Max())
	}
}
