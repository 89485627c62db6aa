package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/aerolithsdb/aerolith/gateway/grpc/aerolithv1"
)

// Operations of the changefeed suite (besides OpWrite, the inserts).
const (
	// OpDeliver is an event received by a subscriber, timed from the acknowledgement of
	// its write to the writer until the subscriber received it.
	OpDeliver = "deliver"
	// OpDeliverFromSend is the same event timed from the moment the writer sent the write.
	OpDeliverFromSend = "deliver_from_send"
)

// changefeedSuite: Subscribers ChangeService.Watch streams on the run's collection, opened
// from "now" before the first write, while the workers insert new documents (one key
// number per write, never reused). Every document carries its key number and its send
// time; the writer records its acknowledgement time. Every subscriber must receive every
// acknowledged write exactly once.
func changefeedSuite() Suite {
	return Suite{
		Name: "changefeed",
		Summary: "subscribers watch the collection (gRPC ChangeService.Watch from now) while writers insert new documents: " +
			"write latency, delivery latency from ack and from send, every write to every subscriber exactly once",
		New: func(p Params) (Workload, error) {
			if _, err := grpcTargets(p); err != nil {
				return nil, err
			}
			return &changefeedWorkload{p: p, pad: p.FieldCount * p.FieldLength, acks: NewTracker(), epoch: time.Now()}, nil
		},
	}
}

// changefeedWorkload is one run of the changefeed suite. Goroutines: the runner's workers
// (writers) and one per subscriber, started by Start and stopped by Finish. Shared state:
// next, acks, acked and failed (atomics and the Tracker's own lock). A subscriber's other
// fields belong to its goroutine until Finish has waited for it.
type changefeedWorkload struct {
	p     Params
	pad   int
	epoch time.Time // ack times are monotonic offsets from here

	next   atomic.Int64 // next key number to write
	acks   *Tracker     // per key number: ack offset in ns × 2, +1 when the write was measured
	acked  atomic.Int64
	failed atomic.Int64

	subs   []*subscriber
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (w *changefeedWorkload) Info() WorkloadInfo {
	return WorkloadInfo{
		Mix:          []Mix{{OpWrite, 1}},
		Distribution: "new keys (sequential key numbers, hashed ids)",
		Ops:          []string{OpWrite, OpDeliver, OpDeliverFromSend},
		Notes: map[string]string{
			OpWrite: fmt.Sprintf("insert (put, if-none-match) of a new document carrying its key number and send time, over %s; "+
				"%d subscribers watch the collection", w.p.Protocol, w.p.Subscribers),
			OpDeliver: "an event received by a subscriber (ChangeService.Watch, gRPC), timed from the write's acknowledgement to " +
				"the writer; one per write per subscriber; an event received before the acknowledgement counts as zero",
			OpDeliverFromSend: "the same events timed from the client-side send time in the document",
		},
	}
}

func (w *changefeedWorkload) NewWorker(env *WorkerEnv) Worker {
	return &changefeedWriter{env: env, w: w}
}

// AppendDoc appends the document of key number n sent now. Fields are strings, so that a
// Client's decoded Get reads them.
func (w *changefeedWorkload) AppendDoc(buf []byte, n int64) []byte {
	return w.appendDoc(buf, n, time.Now().UnixNano())
}

func (w *changefeedWorkload) appendDoc(buf []byte, n, sentUnixNano int64) []byte {
	buf = append(buf, `{"n":"`...)
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, `","sent":"`...)
	buf = strconv.AppendInt(buf, sentUnixNano, 10)
	buf = append(buf, `","pad":"`...)
	c := padByte(n)
	for range w.pad {
		buf = append(buf, c)
	}
	return append(buf, `"}`...)
}

func padByte(n int64) byte { return 'a' + byte(n%26) }

// Prepare has nothing to do: there is no load phase.
func (w *changefeedWorkload) Prepare(context.Context, *WorkerEnv) error { return nil }

// ReadBack reads key number n and checks its key number and padding.
func (w *changefeedWorkload) ReadBack(ctx context.Context, env *WorkerEnv, n int64) error {
	id := KeyName(n)
	err := func() error {
		d, err := env.Client.Get(ctx, env.Collection, id, true)
		if err != nil {
			if api := (*APIError)(nil); errors.As(err, &api) && api.Code == "not_found" && env.Tracker.Version(n) > 0 {
				return &VerifyError{Kind: VerifyMissing, ID: id, Detail: "not found, its write was acknowledged"}
			}
			return err
		}
		if d.ID != id {
			return &VerifyError{Kind: VerifyWrongID, ID: id, Detail: "answer is for " + d.ID}
		}
		pad := d.Fields["pad"]
		if d.Fields["n"] != strconv.FormatInt(n, 10) || len(pad) != w.pad || len(d.Fields) != 3 {
			return &VerifyError{Kind: VerifyValueMismatch, ID: id, Detail: "document differs from what was written"}
		}
		for i := range len(pad) {
			if pad[i] != padByte(n) {
				return &VerifyError{Kind: VerifyValueMismatch, ID: id, Detail: "padding differs from what was written"}
			}
		}
		return nil
	}()
	if env.postRun {
		env.verify.checkedPostRun.Add(1)
	} else {
		env.verify.checkedInRun.Add(1)
	}
	env.verify.noteErr(err)
	return err
}

// changefeedWriter inserts one new document per step.
type changefeedWriter struct {
	env *WorkerEnv
	w   *changefeedWorkload
	buf []byte
}

func (c *changefeedWriter) Step(ctx context.Context, start time.Time) error {
	e, w := c.env, c.w
	n := w.next.Add(1) - 1
	c.buf = w.appendDoc(c.buf[:0], n, time.Now().UnixNano())
	v, err := e.Client.Put(ctx, e.Collection, KeyName(n), c.buf, true)
	if err == nil {
		stamp := int64(time.Since(w.epoch)) * 2
		if !e.discard {
			stamp++
		}
		w.acks.Acked(n, max(stamp, 2)) // never 0, which means "not acknowledged"
		e.Tracker.Acked(n, v)
		w.acked.Add(1)
	} else {
		w.failed.Add(1)
	}
	e.Observe(OpWrite, start, one(err), err)
	return err
}

// Start opens the subscribers' streams and returns once each has caught up (from now, at
// once): every write after Start returns is one they must all receive.
func (w *changefeedWorkload) Start(ctx context.Context, newEnv func(i int) *WorkerEnv) error {
	sctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	ready := make(chan error, w.p.Subscribers) // each subscriber sends once
	for i := range w.p.Subscribers {
		env := newEnv(i)
		if env.watch == nil {
			cancel()
			w.wg.Wait()
			return fmt.Errorf("%w: changefeed: no gRPC client for the subscribers", ErrInvalidConfig)
		}
		s := &subscriber{env: env, w: w, pending: make([]pendingEvent, 0, 64)}
		w.subs = append(w.subs, s)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			s.run(sctx, ready)
		}()
	}
	fail := func(err error) error {
		cancel()
		w.wg.Wait()
		return err
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for range w.p.Subscribers {
		select {
		case err := <-ready:
			if err != nil {
				return fail(fmt.Errorf("bench: changefeed: a subscriber could not start: %w", err))
			}
		case <-timeout.C:
			return fail(fmt.Errorf("%w: changefeed: subscribers not caught up after 30s", ErrNotReady))
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	return nil
}

// Finish waits until every subscriber has received as many writes as were acknowledged
// (polling, at most settle), stops the subscribers, and counts what each missed. (The
// wait ends early when counts match even if an event of a failed write stands in for a
// missing one; the count of missing events after it is exact.)
func (w *changefeedWorkload) Finish(ctx context.Context, settle time.Duration) *StreamStats {
	start := time.Now()
	deadline := time.NewTimer(settle)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	settled := false
wait:
	for {
		settled = true
		for _, s := range w.subs {
			settled = settled && s.distinct.Load() >= w.acked.Load()
		}
		if settled {
			break
		}
		select {
		case <-ctx.Done():
			break wait
		case <-deadline.C:
			break wait
		case <-tick.C:
		}
	}
	interrupted := ctx.Err() != nil
	took := time.Since(start)
	w.cancel()
	w.wg.Wait()

	limit := w.next.Load()
	missing := int64(0)
	st := &StreamStats{
		Subscribers:   len(w.subs),
		WritesAcked:   w.acked.Load(),
		WritesFailed:  w.failed.Load(),
		SettleSeconds: round3(took.Seconds()),
		Note: "every subscriber must receive every acknowledged write exactly once (warmup included); " +
			"missing, duplicate and unexpected events are errors of the deliver operation",
	}
	if interrupted {
		st.Note += "; the run was interrupted, so missing events were not counted as errors"
	}
	for _, s := range w.subs {
		s.resolve(true)
		ss := SubscriberStats{Expected: st.WritesAcked, Duplicates: s.dups, Unexpected: s.unexpected,
			Unacked: s.unacked, BeforeAck: s.beforeAck, Resumes: s.resumes}
		for n := range limit {
			if w.acks.Version(n) == 0 {
				continue
			}
			if s.seen.has(n) {
				ss.Delivered++
				continue
			}
			ss.Missing++
			if !interrupted {
				s.fail(VerifyMissingEvent, KeyName(n), "never received, its write was acknowledged")
			}
		}
		st.BySubscriber = append(st.BySubscriber, ss)
		missing += ss.Missing
	}
	st.Settled = missing == 0
	return st
}

// subscriber is one change stream. Its fields other than distinct belong to its goroutine.
type subscriber struct {
	env      *WorkerEnv
	w        *changefeedWorkload
	seen     bitset
	distinct atomic.Int64 // distinct key numbers received (read by Finish while running)
	token    string       // the last resume token received
	pending  []pendingEvent

	dups, unexpected, unacked, beforeAck, resumes int64
}

// pendingEvent is an event received before its write's acknowledgement was recorded.
type pendingEvent struct {
	n        int64
	at, sent time.Time
}

// maxPending bounds the events held for an acknowledgement: beyond it they are counted
// as unacknowledged at once (only failed writes stay pending for long).
const maxPending = 1 << 14

// run receives events until ctx ends. It sends once on ready: nil when the first stream
// has caught up, or the error that kept it from doing so. A stream that fails later is
// counted as an error of the deliver operation and resumed from the last token.
func (s *subscriber) run(ctx context.Context, ready chan<- error) {
	req := &pb.WatchRequest{Collections: []string{s.env.Collection}, IncludeAfter: true}
	isReady := false
	wait := 50 * time.Millisecond
	for {
		err := s.stream(ctx, req, &isReady, ready)
		if ctx.Err() != nil {
			if !isReady {
				ready <- ctx.Err()
			}
			return
		}
		if !isReady {
			ready <- err
			return
		}
		s.env.discard = false
		s.env.ObserveLatency(OpDeliver, 0, 0, err)
		s.resumes++
		req.Start = &pb.WatchRequest_ResumeToken{ResumeToken: s.token}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
}

// stream runs one Watch call until it fails or ctx ends.
func (s *subscriber) stream(ctx context.Context, req *pb.WatchRequest, isReady *bool, ready chan<- error) error {
	st, err := s.env.watch.Watch(ctx, req)
	if err != nil {
		return grpcError(err)
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return grpcError(err)
		}
		at := time.Now()
		s.token = m.ResumeToken
		switch x := m.Message.(type) {
		case *pb.WatchResponse_CaughtUp:
			if !*isReady {
				*isReady = true
				ready <- nil
			}
		case *pb.WatchResponse_Event:
			s.event(x.Event, at)
		}
	}
}

// event accounts for one event received at at.
func (s *subscriber) event(ev *pb.ChangeEvent, at time.Time) {
	var body struct {
		N    string `json:"n"`
		Sent string `json:"sent"`
	}
	var n, sent int64
	err := json.Unmarshal(ev.AfterJson, &body)
	if err == nil {
		n, err = strconv.ParseInt(body.N, 10, 64)
	}
	if err == nil {
		sent, err = strconv.ParseInt(body.Sent, 10, 64)
	}
	if err != nil || n < 0 || ev.Collection != s.env.Collection || ev.Id != KeyName(n) ||
		ev.Op != pb.ChangeOp_CHANGE_OP_CREATE {
		s.unexpected++
		s.fail(VerifyUnexpectedEvent, ev.Id, fmt.Sprintf("event %s (%s of %s/%s) was not written by this run", ev.EventId, ev.Op, ev.Collection, ev.Id))
		return
	}
	if s.seen.set(n) {
		s.dups++
		s.fail(VerifyDuplicateEvent, ev.Id, "event "+ev.EventId+" received again")
		return
	}
	s.distinct.Add(1)
	s.resolve(false)
	p := pendingEvent{n: n, at: at, sent: time.Unix(0, sent)}
	if !s.record(p) {
		if len(s.pending) < maxPending {
			s.pending = append(s.pending, p)
		} else {
			s.unacked++
		}
	}
}

// record records the latencies of p once its write's acknowledgement is known.
func (s *subscriber) record(p pendingEvent) bool {
	stamp := s.w.acks.Version(p.n)
	if stamp == 0 {
		return false
	}
	ack := s.w.epoch.Add(time.Duration(stamp / 2))
	lat := p.at.Sub(ack)
	if lat < 0 {
		lat = 0
		s.beforeAck++
	}
	s.env.discard = stamp%2 == 0 // the write was in the warmup
	s.env.ObserveLatency(OpDeliver, lat, 1, nil)
	s.env.ObserveLatency(OpDeliverFromSend, max(p.at.Sub(p.sent), 0), 1, nil)
	return true
}

// resolve records the pending events whose acknowledgement has arrived; with final set,
// the others are counted as events of unacknowledged writes.
func (s *subscriber) resolve(final bool) {
	kept := s.pending[:0]
	for _, p := range s.pending {
		if !s.record(p) {
			kept = append(kept, p)
		}
	}
	s.pending = kept
	if final {
		s.unacked += int64(len(s.pending))
		s.pending = s.pending[:0]
	}
}

// fail counts a stream verification failure as an error of the deliver operation.
func (s *subscriber) fail(kind, id, detail string) {
	err := &VerifyError{Kind: kind, ID: id, Detail: detail}
	s.env.verify.noteErr(err)
	s.env.discard = false
	s.env.ObserveLatency(OpDeliver, 0, 0, err)
}

// bitset is a growable set of key numbers.
type bitset []uint64

// set adds n and reports whether it was already there.
func (b *bitset) set(n int64) bool {
	i := int(n / 64)
	for len(*b) <= i {
		*b = append(*b, 0)
	}
	bit := uint64(1) << (n % 64)
	had := (*b)[i]&bit != 0
	(*b)[i] |= bit
	return had
}

func (b bitset) has(n int64) bool {
	i := int(n / 64)
	return i < len(b) && b[i]&(uint64(1)<<(n%64)) != 0
}

// Check that the workload is what the runner expects of it.
var (
	_ DataSet    = (*changefeedWorkload)(nil)
	_ Background = (*changefeedWorkload)(nil)
)
