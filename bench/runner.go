package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Run runs one suite of reg against the target described by cfg and returns what it
// measured. Every run is bounded: the measured phase by Duration (or Ops), the whole run by
// MaxDuration; canceling ctx stops it early with the results so far (Interrupted set).
//
// Run returns an error only when the run could not be made (invalid config, unknown suite,
// target not ready, a DataSet's Prepare failed); failed operations are counted in the
// results, never returned.
func Run(ctx context.Context, cfg Config, reg *Registry) (*Results, error) {
	p := cfg.Params.withDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	suite, err := reg.lookup(p.Suite)
	if err != nil {
		return nil, err
	}
	if p.Seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		p.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	if p.Collection == "" {
		p.Collection = fmt.Sprintf("bench_%s_%08x", p.Suite, uint32(rand.New(rand.NewPCG(p.Seed, 0xc011)).Uint64()))
	}
	wl, err := suite.New(p)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, p.MaxDuration)
	defer cancel()

	r := &runner{
		cfg:     cfg,
		p:       p,
		suite:   suite,
		wl:      wl,
		log:     logger,
		records: Records{FieldCount: p.FieldCount, FieldLength: p.FieldLength},
		tracker: NewTracker(),
		verify:  newVerifyCounters(),
	}
	ready, closeClients, err := r.connect()
	if err != nil {
		return nil, err
	}
	defer closeClients()
	readyCtx, readyCancel := context.WithTimeout(ctx, 30*time.Second)
	for _, ready := range ready {
		if err := ready(readyCtx); err != nil {
			readyCancel()
			return nil, err
		}
	}
	readyCancel()
	return r.run(ctx)
}

// connect makes one client per node in the run's protocol and, for a workload with
// subscribers (Background), one gRPC connection per subscriber, spread over the nodes: a
// subscriber is a consumer of its own, so its stream shares no connection with the writers
// or the other subscribers. It returns the readiness checks of the clients and a function
// that closes them.
func (r *runner) connect() ([]func(context.Context) error, func(), error) {
	p := r.p
	var ready []func(context.Context) error
	var conns []*grpcClient
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close() // nothing in flight: the run is over
		}
	}
	dial := func(target string) (*grpcClient, error) {
		c, err := newGRPCClient(target, p.ReadConsistency)
		if err != nil {
			closeAll()
			return nil, err
		}
		conns = append(conns, c)
		return c, nil
	}
	var targets []string
	_, watches := r.wl.(Background)
	if p.Protocol == ProtocolGRPC || watches {
		var err error
		if targets, err = grpcTargets(p); err != nil {
			return nil, nil, err
		}
	}
	if watches {
		watched := targets
		if len(p.WatchGRPCAddrs) > 0 {
			watched = p.WatchGRPCAddrs
		}
		for i := range p.Subscribers {
			c, err := dial(watched[i%len(watched)])
			if err != nil {
				return nil, nil, err
			}
			r.watchers = append(r.watchers, c)
		}
		for i := range min(len(watched), p.Subscribers) {
			ready = append(ready, r.watchers[i].Ready)
		}
	}
	if p.Protocol == ProtocolGRPC {
		for _, t := range targets {
			c, err := dial(t)
			if err != nil {
				return nil, nil, err
			}
			r.clients = append(r.clients, c)
			ready = append(ready, c.Ready)
		}
		return ready, closeAll, nil
	}
	hc := newHTTPClient(p.Clients)
	for _, a := range p.Addrs {
		c := newRESTClient(a, hc, p.ReadConsistency)
		r.clients = append(r.clients, c)
		ready = append(ready, c.Ready)
	}
	return ready, func() { closeAll(); hc.CloseIdleConnections() }, nil
}

type runner struct {
	cfg     Config
	p       Params
	suite   Suite
	wl      Workload
	log     *slog.Logger
	clients []Client
	// watchers are the gRPC connections of a Background workload's subscribers, one each
	// (nil for other workloads).
	watchers []*grpcClient
	records  Records
	tracker  *Tracker
	verify   *verifyCounters
}

func (r *runner) env(id int, stream uint64, rec *recorder) *WorkerEnv {
	c := r.clients[id%len(r.clients)]
	e := &WorkerEnv{
		ID:         id,
		Rand:       rand.New(rand.NewPCG(r.p.Seed, stream)),
		Client:     c,
		Collection: r.p.Collection,
		Records:    r.records,
		Tracker:    r.tracker,
		Params:     r.p,
		shard:      rec.shard(id),
		verify:     r.verify,
		stale:      r.p.ReadConsistency != "local",
	}
	if rs, ok := c.(rangeScanner); ok {
		e.rangeOps = rs
	}
	if id >= r.p.Clients && len(r.watchers) > 0 { // a subscriber (see Background)
		e.watch = r.watchers[(id-r.p.Clients)%len(r.watchers)].changes
	}
	if ds, ok := r.wl.(DataSet); ok {
		e.data = ds
	}
	return e
}

func (r *runner) shards() int { return min(r.p.Clients, 4*runtime.GOMAXPROCS(0)) }

func (r *runner) run(ctx context.Context) (*Results, error) {
	res := &Results{
		Schema:    SchemaVersion,
		Tool:      "aerolith bench",
		Params:    r.p,
		StartedAt: time.Now().UTC(),
	}
	res.Shape = hostShape()
	res.Shape.Target = "remote"
	if r.p.Embedded {
		res.Shape.Target = "embedded"
	}
	res.Shape.NodeCount = r.p.NodeCount
	res.Shape.Shards = r.cfg.Shards
	if _, ok := r.wl.(Background); ok {
		res.Shape.Subscribers = r.p.Subscribers
	}
	res.Shape.Protocol = r.p.Protocol
	res.Shape.Clients = r.p.Clients
	res.Shape.PayloadBytes = r.records.PayloadBytes()
	res.Shape.DocBytes = r.records.DocBytes()
	ds, ownData := r.wl.(DataSet)
	if ownData {
		res.Shape.DocBytes = len(ds.AppendDoc(nil, 0))
	}
	res.Shape.FieldCount = r.p.FieldCount
	res.Shape.FieldLength = r.p.FieldLength
	if r.p.Suite == "write-batch" {
		res.Shape.BatchSize = r.p.BatchSize
	}
	if r.cfg.ProbeDir != "" {
		if pr, err := ProbeFsync(r.cfg.ProbeDir, 200, 2*time.Second); err == nil {
			res.Shape.DiskFsync = pr
		} else {
			r.log.Warn("fsync probe failed", "err", err)
		}
	}

	info := r.wl.Info()
	if info.LoadRecords > 0 && !r.p.SkipLoad {
		load := r.load(ctx, info.LoadRecords)
		res.Load = &load
	}
	if ownData && ctx.Err() == nil {
		// An error after ctx ended is the interruption, reported as such below.
		if err := ds.Prepare(ctx, r.env(0, 1<<42, newRecorder(1))); err != nil && ctx.Err() == nil {
			return nil, err
		}
	}

	rec := newRecorder(r.shards())
	workers := make([]Worker, r.p.Clients)
	envs := make([]*WorkerEnv, r.p.Clients)
	for i := range workers {
		envs[i] = r.env(i, uint64(i)+1, rec)
		workers[i] = r.wl.NewWorker(envs[i])
	}
	info = r.wl.Info() // after NewWorker: emulations depend on the clients
	res.Suite = SuiteInfo{Name: r.suite.Name, Summary: r.suite.Summary, Mix: info.Mix, Distribution: info.Distribution, Emulations: info.Emulations, Notes: info.Notes}

	bg, _ := r.wl.(Background)
	if bg != nil && ctx.Err() == nil {
		// Subscribers get envs past the workers' (their own shards and random streams).
		newEnv := func(i int) *WorkerEnv { return r.env(r.p.Clients+i, 1<<43+uint64(i), rec) }
		if err := bg.Start(ctx, newEnv); err != nil && ctx.Err() == nil {
			return nil, err
		} else if err != nil {
			bg = nil // interrupted while starting: nothing is left running
		}
	} else {
		bg = nil
	}
	if ctx.Err() == nil {
		res.Run = r.measure(ctx, workers, envs, rec, info, bg)
	} else {
		res.Run.StoppedBy = stopCause(ctx)
		if bg != nil {
			res.Run.Streams = bg.Finish(ctx, 0)
		}
	}
	for i := range res.Run.ByOp {
		if e, ok := info.Emulations[res.Run.ByOp[i].Op]; ok {
			res.Run.ByOp[i].Emulated = e
		}
	}
	var post *OpStats
	if ctx.Err() == nil {
		post = r.postVerify(ctx)
	}
	res.Verify = r.verify.stats(r.p.ReadConsistency != "local")
	res.Verify.PostRun = post
	cut := func(s string) bool { return s == "interrupted" || s == "max_duration" }
	res.Interrupted = cut(res.Run.StoppedBy) || (res.Load != nil && cut(res.Load.StoppedBy))
	res.FinishedAt = time.Now().UTC()
	res.Warnings = warnings(res)
	return res, nil
}

// load inserts records 0..n-1, in batches of LoadBatchSize (single PUTs when 1), with
// Clients goroutines.
func (r *runner) load(ctx context.Context, n int64) PhaseStats {
	rec := newRecorder(r.shards())
	agg := newAggregator()
	bs := int64(r.p.LoadBatchSize)
	chunks := (n + bs - 1) / bs
	var next atomic.Int64
	var docs, errs atomic.Int64
	prog := newProgress(r.cfg.Progress, "load", 0, n, func() (int64, int64) { return docs.Load(), errs.Load() })
	start := time.Now()
	var wg sync.WaitGroup
	for i := range min(int64(r.p.Clients), chunks) {
		e := r.env(int(i), 1<<40+uint64(i), rec)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var writes []BatchWrite
			var buf []byte
			nums := make([]int64, 0, bs)
			for ctx.Err() == nil {
				c := next.Add(1) - 1
				if c >= chunks {
					return
				}
				nums = nums[:0]
				for k := c * bs; k < min((c+1)*bs, n); k++ {
					nums = append(nums, k)
				}
				opCtx, cancel := context.WithTimeout(ctx, r.p.OpTimeout)
				t := time.Now()
				var err error
				if bs == 1 {
					err = e.PutKey(opCtx, OpInsert, nums[0], true, t)
				} else {
					err = batchPut(opCtx, e, OpInsert, nums, true, t, &writes, &buf)
				}
				cancel()
				docs.Add(int64(len(nums)))
				if err != nil {
					errs.Add(1)
				}
				rec.step(e.shard, err != nil, 0, false)
			}
		}()
	}
	wg.Wait()
	prog.stop()
	took := time.Since(start)
	agg.drain(rec, took, true)
	ps := PhaseStats{Seconds: round3(took.Seconds()), Ops: agg.steps, Errors: agg.stepErrs, ByOp: agg.results([]string{OpInsert}, took.Seconds()), StoppedBy: "done"}
	ps.OpsPerSec = round1(float64(ps.Ops) / max(took.Seconds(), 1e-9))
	if ctx.Err() != nil {
		ps.StoppedBy = stopCause(ctx)
	}
	return ps
}

// stopCause names why ctx ended: the run's own MaxDuration bound or an interruption.
func stopCause(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "max_duration"
	}
	return "interrupted"
}

// Phases of the measured run.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// measure runs the workers through the warmup and the measured phase. Goroutines: one per
// worker, plus this one as the collector (it drains the recorder once a second and decides
// when to stop), plus the progress line. All are gone when measure returns.
//
// With a Background workload, its Finish runs once the workers stopped and before the last
// drain, bounded by OpTimeout: the phase ends when the subscribers have seen the last writes.
func (r *runner) measure(ctx context.Context, workers []Worker, envs []*WorkerEnv, rec *recorder, info WorkloadInfo, bg Background) PhaseStats {
	p := r.p
	open := p.Rate > 0
	var (
		phase    atomic.Int32
		claimed  atomic.Int64 // steps claimed in the measured phase (Ops bound)
		started  atomic.Int64 // steps started in the measured phase (rate check)
		seq      atomic.Int64 // open loop: next slot of the schedule
		stopOnce sync.Once
		stopped  = make(chan struct{})
		opsHit   atomic.Bool
	)
	stop := func() {
		stopOnce.Do(func() {
			phase.Store(phaseStop)
			close(stopped)
		})
	}
	runStart := time.Now()
	if p.Warmup == 0 {
		phase.Store(phaseMeasure)
	}
	var interval float64
	if open {
		interval = float64(time.Second) / p.Rate
	}

	var wg sync.WaitGroup
	for i, w := range workers {
		shard, env := rec.shard(i), envs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var timer *time.Timer
			for {
				if phase.Load() == phaseStop || ctx.Err() != nil {
					return
				}
				start := time.Now()
				if open {
					planned := runStart.Add(time.Duration(float64(seq.Add(1)-1) * interval))
					if wait := time.Until(planned); wait > 0 {
						if timer == nil {
							timer = time.NewTimer(wait)
						} else {
							timer.Reset(wait)
						}
						select {
						case <-stopped:
							timer.Stop()
							return
						case <-ctx.Done():
							timer.Stop()
							return
						case <-timer.C:
						}
					}
					start = planned
				}
				// A step belongs to the phase it starts in: steps begun in the warmup
				// record nothing, even when they end after it.
				switch phase.Load() {
				case phaseMeasure:
					if p.Ops > 0 && claimed.Add(1) > p.Ops {
						opsHit.Store(true)
						stop()
						return
					}
					started.Add(1)
					env.discard = false
				case phaseWarmup:
					env.discard = true
				default:
					return
				}
				lag := time.Since(start)
				opCtx, cancel := context.WithTimeout(ctx, p.OpTimeout)
				err := w.Step(opCtx, start)
				cancel()
				if env.discard {
					rec.liveSteps.Add(1) // progress only
				} else {
					rec.step(shard, err != nil, lag, open)
				}
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	agg := newAggregator()
	var prog *progress
	counts := func() (int64, int64) { return rec.liveSteps.Load(), rec.liveErrors.Load() }
	if p.Warmup > 0 {
		prog = newProgress(r.cfg.Progress, "warmup", p.Warmup, 0, counts)
	} else {
		prog = newProgress(r.cfg.Progress, "run", p.Duration, 0, counts)
	}
	var measureStart, lastTick, stopAt time.Time
	beginMeasure := func(now time.Time) {
		measureStart, lastTick = now, now
		if p.Warmup > 0 {
			agg.drain(rec, 0, false) // throw the warmup away
			phase.CompareAndSwap(phaseWarmup, phaseMeasure)
			prog.stop()
			rec.liveSteps.Store(0)
			rec.liveErrors.Store(0)
			prog = newProgress(r.cfg.Progress, "run", p.Duration, 0, counts)
		}
	}
	if p.Warmup == 0 {
		beginMeasure(runStart)
	}
	stoppedBy := ""
	timer := time.NewTimer(0)
	<-timer.C
loop:
	for {
		now := time.Now()
		var next time.Time
		if measureStart.IsZero() {
			next = runStart.Add(p.Warmup)
		} else {
			next = lastTick.Add(time.Second)
			if p.Duration > 0 {
				if end := measureStart.Add(p.Duration); end.Before(next) {
					next = end
				}
			}
		}
		timer.Reset(max(next.Sub(now), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			stoppedBy = stopCause(ctx)
			break loop
		case <-stopped:
			timer.Stop()
			stoppedBy = "ops"
			break loop
		case <-workersDone:
			// Workers end on their own only when ctx ends or the Ops bound is reached,
			// and select may see this before ctx.Done.
			timer.Stop()
			stoppedBy = "done"
			if ctx.Err() != nil {
				stoppedBy = stopCause(ctx)
			}
			break loop
		case now = <-timer.C:
		}
		if measureStart.IsZero() {
			beginMeasure(now)
			continue
		}
		if p.Duration > 0 && !now.Before(measureStart.Add(p.Duration)) {
			stoppedBy = "duration"
			break
		}
		agg.drain(rec, now.Sub(lastTick), true)
		lastTick = now
	}
	stopAt = time.Now()
	stop()
	<-workersDone // in-flight steps finish (each bounded by OpTimeout)
	var streams *StreamStats
	if bg != nil {
		streams = bg.Finish(ctx, p.OpTimeout)
	}
	end := time.Now()
	prog.stop()
	if measureStart.IsZero() { // stopped during warmup
		measureStart, lastTick = end, end
	} else {
		agg.drain(rec, end.Sub(lastTick), true)
	}
	if opsHit.Load() {
		stoppedBy = "ops"
	}

	elapsed := end.Sub(measureStart).Seconds()
	ps := PhaseStats{
		Seconds:   round3(elapsed),
		Ops:       agg.steps,
		Errors:    agg.stepErrs,
		ByOp:      agg.results(info.Ops, elapsed),
		Timeline:  agg.timeline,
		StoppedBy: stoppedBy,
		Streams:   streams,
	}
	if elapsed > 0 {
		ps.OpsPerSec = round1(float64(ps.Ops) / elapsed)
	}
	if open {
		window := stopAt.Sub(measureStart).Seconds()
		rs := &RateStats{Target: p.Rate, LagP50Us: agg.lag.ValueAtQuantile(50), LagP99Us: agg.lag.ValueAtQuantile(99), LagMaxUs: agg.lag.Max()}
		if window > 0 {
			rs.Achieved = round1(float64(started.Load()) / window)
			// Held when the steps started kept up with the schedule (one step of slack for
			// the boundary).
			rs.Held = float64(started.Load()+1) >= 0.99*p.Rate*window
		}
		ps.Rate = rs
	}
	return ps
}

// postVerify reads back VerifySample keys that were written and checks them. Keys are
// drawn uniformly among the key numbers with an acknowledged write (or among RecordCount
// when nothing was tracked, as after SkipLoad).
func (r *runner) postVerify(ctx context.Context) *OpStats {
	start := time.Now()
	rec := newRecorder(1)
	par := min(r.p.Clients, 8)
	var next atomic.Int64
	var wg sync.WaitGroup
	for i := range par {
		e := r.env(i, 1<<41+uint64(i), rec)
		e.postRun = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && next.Add(1) <= int64(r.p.VerifySample) {
				limit := r.tracker.KeyLimit()
				if limit == 0 {
					limit = r.p.RecordCount
				}
				n := e.Rand.Int64N(limit)
				for try := 0; try < 32 && r.tracker.Version(n) == 0 && r.tracker.KeyLimit() > 0; try++ {
					n = e.Rand.Int64N(limit)
				}
				opCtx, cancel := context.WithTimeout(ctx, r.p.OpTimeout)
				t := time.Now()
				var err error
				if e.data != nil {
					err = e.data.ReadBack(opCtx, e, n)
				} else {
					err = e.read(opCtx, n, true)
				}
				e.Observe(opVerify, t, one(err), err)
				cancel()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	agg := newAggregator()
	agg.drain(rec, took, true)
	if ops := agg.results([]string{opVerify}, took.Seconds()); len(ops) == 1 {
		return &ops[0]
	}
	return nil
}

// opVerify names the post-run reads.
const opVerify = "verify"

func warnings(res *Results) []string {
	var w []string
	codes := func(ops []OpStats) string {
		m := map[string]int64{}
		for _, o := range ops {
			for c, n := range o.ErrorsByCode {
				m[c] += n
			}
		}
		var parts []string
		for c, n := range m {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
		sort.Strings(parts)
		return strings.Join(parts, ", ")
	}
	if res.Load != nil && res.Load.Errors > 0 {
		w = append(w, fmt.Sprintf("load: %d of %d load requests failed (%s): reads of the missing records count as errors", res.Load.Errors, res.Load.Ops, codes(res.Load.ByOp)))
	}
	var failed int64
	for _, o := range res.Run.ByOp {
		failed += o.Errors
	}
	if failed > 0 {
		w = append(w, fmt.Sprintf("run: %d operations failed (%s)", failed, codes(res.Run.ByOp)))
	}
	if pr := res.Verify.PostRun; pr != nil && pr.Errors > 0 {
		w = append(w, fmt.Sprintf("post-run verification: %d of %d reads failed (%s)", pr.Errors, pr.Count+pr.Errors, codes([]OpStats{*pr})))
	}
	if res.Verify.Mismatches > 0 {
		var parts []string
		for k, n := range res.Verify.ByKind {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(parts)
		w = append(w, fmt.Sprintf("VERIFY: %d reads did not match what was written (%s)", res.Verify.Mismatches, strings.Join(parts, ", ")))
	}
	if rs := res.Run.Rate; rs != nil && !rs.Held {
		w = append(w, fmt.Sprintf("rate not held: target %.0f ops/s, achieved %.0f ops/s (schedule lag p99 %s); latencies include the wait", rs.Target, rs.Achieved, fmtUs(rs.LagP99Us)))
	}
	for op, e := range res.Suite.Emulations {
		w = append(w, fmt.Sprintf("%s is emulated: %s", op, e))
	}
	if res.Shape.Target == "embedded" {
		w = append(w, fmt.Sprintf("embedded node: the server and the clients share this machine's %d cores", res.Shape.Cores))
	}
	switch res.Run.StoppedBy {
	case "interrupted":
		w = append(w, "the run was interrupted before its end: partial results")
	case "max_duration":
		w = append(w, fmt.Sprintf("the run hit its max duration (%s) before its end: partial results", res.Params.MaxDuration))
	case "duration":
		if res.Params.Ops > 0 && res.Run.Ops < res.Params.Ops {
			w = append(w, fmt.Sprintf("stopped by the duration after %d of %d ops", res.Run.Ops, res.Params.Ops))
		}
	}
	return w
}
