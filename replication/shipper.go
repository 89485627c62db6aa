package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxPending bounds the feed messages the shipper holds that Kafka has not acknowledged
// (records in flight plus the skipped events and checkpoints queued behind them).
const maxPending = 8192

// stalledAfter is how long the oldest unacknowledged record may wait before the link
// reports itself stalled.
const stalledAfter = 5 * time.Second

// entry is one feed message the shipper passed, in feed order.
type entry struct {
	pos    log.Position // the event's position (zero for a checkpoint)
	tok    string       // the feed token after it
	record bool         // a record was produced for it
	done   bool         // acknowledged (or nothing to acknowledge)
	ts     log.Timestamp
}

// shipper produces this datacenter's events to its topic. Goroutines: run (the feed loop,
// which owns the Kafka client of the current session) and flush (the progress writer).
// mu guards everything below it; franz-go's promise callbacks take it too.
type shipper struct {
	cfg    Config
	db     DB
	topic  string
	prog   progress
	log    *slog.Logger
	health *health

	policies map[string]cachedPolicy // the run goroutine's own
	keep     func(tok string) error  // also keeps the progress elsewhere (elected shipping); may be nil

	mu       sync.Mutex
	gen      uint64 // session number; callbacks of older sessions are ignored
	q        []entry
	base     uint64     // sequence number of q[0]
	acked    feed.Token // per shard, the last position up to which everything is acknowledged
	ackedTok string     // the token after the last acknowledged entry ("" : from the beginning)
	stored   string     // the token last written to the progress file
	changed  chan struct{}
	failed   error // a produce failure in the current session
	state    string
	lastErr  string
	errAt    time.Time
	shipped  uint64 // records acknowledged
	skipped  uint64 // local events not shipped (policy)
	errors   uint64
	lastTS   log.Timestamp // origin time of the last acknowledged record
	closed   bool
}

type cachedPolicy struct {
	p  db.Policy
	at time.Time
}

func newShipper(cfg Config, d DB) (*shipper, error) {
	s := &shipper{cfg: cfg, db: d, topic: cfg.Topic(cfg.DC), prog: progress{dir: cfg.DataDir}, log: cfg.Logger.With("link", "ship", "topic", cfg.Topic(cfg.DC)),
		health: &health{}, policies: map[string]cachedPolicy{}, acked: feed.Token{}, changed: make(chan struct{}), state: "starting"}
	tok, err := s.prog.load()
	if err != nil {
		return nil, err
	}
	s.ackedTok, s.stored = tok, tok
	if tok != "" {
		s.acked, _ = feed.DecodeToken(tok)
	}
	return s, nil
}

// notifyLocked wakes WaitShipped callers and the feed loop.
func (s *shipper) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *shipper) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors++
	s.lastErr, s.errAt = err.Error(), time.Now()
}

// run ships until ctx ends, starting a new session after any failure.
func (s *shipper) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		progressed, err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		s.setErr(err)
		s.mu.Lock()
		s.state = "retrying"
		s.mu.Unlock()
		s.log.Warn("shipping interrupted; resuming from the last acknowledged position", "err", err, "backoff", backoff)
		if progressed {
			backoff = 100 * time.Millisecond
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// session ships from the last acknowledged position with a new Kafka client until a
// produce fails or ctx ends. It reports whether anything was acknowledged.
func (s *shipper) session(ctx context.Context) (progressed bool, err error) {
	opts, err := s.cfg.clientOpts("ship", s.health)
	if err != nil {
		return false, err
	}
	opts = append(opts, kgo.DefaultProduceTopic(s.topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(s.cfg.Linger), kgo.MaxBufferedRecords(maxPending/2))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return false, fmt.Errorf("replication: kafka client: %w", err)
	}
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.q, s.failed = nil, nil
	start, before := s.ackedTok, s.shipped
	s.mu.Unlock()
	defer func() {
		// Give what is in flight a moment to be acknowledged, so a clean stop does not
		// ship it again; whatever is not acknowledged by then is shipped again later.
		fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cl.Flush(fctx)
		cancel()
		cl.Close()
		s.mu.Lock()
		s.gen++ // ignore late callbacks
		progressed = s.shipped > before
		s.mu.Unlock()
	}()
	if err := s.ensureTopic(ctx, cl); err != nil {
		return false, err
	}
	req := db.SubscribeRequest{From: "beginning", IncludeBefore: true, IncludeAfter: true}
	if start != "" {
		req.From, req.Token = "token", start
	}
	sub, err := s.db.Subscribe(req)
	if err != nil {
		return false, fmt.Errorf("replication: subscribe from %q: %w", start, err)
	}
	start0, _ := feed.DecodeToken(sub.Token())
	s.mu.Lock()
	s.state = "shipping"
	for sh, i := range start0 {
		// Every shard is known from the start, so lag counts shards not passed yet.
		if _, ok := s.acked[sh]; !ok {
			s.acked[sh] = i
		}
	}
	s.mu.Unlock()
	for {
		// Stop on a failed produce, and hold back while too much is unacknowledged.
		for {
			s.mu.Lock()
			failed, full, ch := s.failed, len(s.q) >= maxPending, s.changed
			s.mu.Unlock()
			if failed != nil {
				return false, failed
			}
			if !full {
				break
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-ch:
			}
		}
		msg, err := sub.Next(ctx)
		if err != nil {
			return false, err
		}
		if msg.Kind != feed.KindEvent {
			s.push(gen, entry{tok: msg.Token, done: true})
			continue
		}
		raw, env := msg.Raw, msg.Event
		e := entry{pos: raw.Position, tok: msg.Token, ts: raw.TS, done: true}
		if raw.Origin != s.cfg.DC || env.Op == feed.OpRedact {
			s.push(gen, e)
			continue
		}
		replicate, ship, err := s.policy(ctx, raw.Collection)
		if err != nil {
			return false, err
		}
		if !ship {
			s.mu.Lock()
			s.skipped++
			s.mu.Unlock()
			s.push(gen, e)
			continue
		}
		rec, err := encodeRecord(s.topic, s.cfg.Cluster, env, raw, replicate, time.Now())
		if err != nil {
			return false, err
		}
		e.done, e.record = false, true
		seq := s.push(gen, e)
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { s.ack(gen, seq, err) })
	}
}

// push appends e to the queue and returns its sequence number.
func (s *shipper) push(gen uint64, e entry) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := s.base + uint64(len(s.q))
	s.q = append(s.q, e)
	if e.done && len(s.q) == 1 {
		s.advanceLocked()
	}
	return seq
}

// ack records Kafka's answer for the record of entry seq.
func (s *shipper) ack(gen, seq uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen || seq < s.base || seq >= s.base+uint64(len(s.q)) {
		return
	}
	if err != nil {
		if s.failed == nil {
			s.failed = fmt.Errorf("replication: produce %s: %w", s.q[seq-s.base].pos, err)
			s.notifyLocked()
		}
		return
	}
	s.q[seq-s.base].done = true
	s.advanceLocked()
}

// advanceLocked pops the acknowledged prefix of the queue.
func (s *shipper) advanceLocked() {
	n := 0
	for n < len(s.q) && s.q[n].done {
		e := s.q[n]
		if e.pos.Shard != 0 {
			s.acked[e.pos.Shard] = e.pos.Index
		} else if t, err := feed.DecodeToken(e.tok); err == nil {
			for sh, i := range t {
				s.acked[sh] = max(s.acked[sh], i)
			}
		}
		if e.record {
			s.shipped++
			s.lastTS = e.ts
		}
		s.ackedTok = e.tok
		n++
	}
	if n == 0 {
		return
	}
	s.q = slices.Delete(s.q, 0, n)
	s.base += uint64(n)
	s.notifyLocked()
}

// policy returns where a collection's events go: ship is false when nowhere but here.
func (s *shipper) policy(ctx context.Context, coll string) (replicate []string, ship bool, err error) {
	c, ok := s.policies[coll]
	if !ok || time.Since(c.at) > s.cfg.PolicyTTL {
		p, err := s.db.Policy(ctx, coll)
		if err != nil {
			return nil, false, fmt.Errorf("replication: policy of %q: %w", coll, err)
		}
		c = cachedPolicy{p: p, at: time.Now()}
		s.policies[coll] = c
	}
	if c.p.Replicate == nil {
		return nil, true, nil
	}
	for _, dc := range c.p.Replicate {
		if dc != s.cfg.DC {
			return c.p.Replicate, true, nil
		}
	}
	return nil, false, nil
}

// ensureTopic creates the topic unless it exists.
func (s *shipper) ensureTopic(ctx context.Context, cl *kgo.Client) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = s.topic, int32(s.cfg.Partitions), -1
	if s.cfg.ReplicationFactor > 0 {
		t.ReplicationFactor = s.cfg.ReplicationFactor
	}
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 10_000
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := req.RequestWith(rctx, cl)
	if err != nil {
		return fmt.Errorf("replication: create topic %s: %w", s.topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("replication: create topic %s: %w", s.topic, err)
		}
	}
	return nil
}

// flushLoop writes the acknowledged token to the progress file whenever it moved.
func (s *shipper) flushLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flush()
		}
	}
}

func (s *shipper) flush() {
	s.mu.Lock()
	tok, stored := s.ackedTok, s.stored
	s.mu.Unlock()
	if tok == stored {
		return
	}
	if err := s.prog.store(tok); err != nil {
		s.setErr(err)
		s.log.Error("storing shipping progress", "err", err)
		return
	}
	if s.keep != nil {
		if err := s.keep(tok); err != nil {
			s.setErr(err)
			s.log.Warn("keeping shipping progress in the meta shard", "err", err)
			return
		}
	}
	s.mu.Lock()
	s.stored = tok
	s.mu.Unlock()
}

// WaitShipped returns once Kafka acknowledged the local event at pos (or the shipper
// passed it without shipping it, as its policy says), or ctx ends.
func (s *shipper) WaitShipped(ctx context.Context, pos log.Position) error {
	for {
		s.mu.Lock()
		done, closed, ch := s.acked[pos.Shard] >= pos.Index, s.closed, s.changed
		s.mu.Unlock()
		if done {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replication: waiting for Kafka to acknowledge %s: %w", pos, ctx.Err())
		case <-ch:
		}
	}
}

// close marks the shipper closed (its goroutines have stopped) and writes the final progress.
func (s *shipper) close() {
	s.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed, s.state = true, "stopped"
	s.notifyLocked()
}

// status reports the shipping link.
func (s *shipper) status(hub Heads) LinkStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := LinkStatus{Direction: "ship", From: s.cfg.DC, To: s.topic, Topic: s.topic, State: s.state,
		Events: s.shipped, Skipped: s.skipped, Errors: s.errors, LastError: s.lastErr, Shipped: map[string]uint64{}}
	if !s.errAt.IsZero() {
		st.LastErrorAt = s.errAt.UTC().Format(time.RFC3339Nano)
	}
	for sh, i := range s.acked {
		st.Shipped[fmt.Sprint(sh)] = i
		if h := hub.Head(sh); h > i {
			st.LagEvents += h - i
		}
	}
	if s.lastTS != 0 {
		st.LastEventTime = s.lastTS.Time().UTC().Format(time.RFC3339Nano)
	}
	for _, e := range s.q {
		if !e.done {
			st.LagSeconds = max(0, time.Since(e.ts.Time()).Seconds())
			if st.State == "shipping" && time.Since(e.ts.Time()) > stalledAfter {
				st.State = "stalled"
			}
			break
		}
	}
	if msg, at, down := s.health.down(); down && st.State != "stopped" {
		st.State = "disconnected"
		if at.After(s.errAt) {
			st.LastError, st.LastErrorAt = msg, at.UTC().Format(time.RFC3339Nano)
		}
	}
	return st
}
