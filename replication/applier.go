package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// applier applies the other datacenters' topics to the local database. Goroutine: run
// (the poll loop, which owns the Kafka clients). mu guards the status fields.
type applier struct {
	cfg    Config
	db     DB
	log    *slog.Logger
	health *health

	// testHookAfterApply, when set, runs after a batch was applied and before its
	// offsets are committed; an error makes the loop drop the client uncommitted, as a
	// crash would.
	testHookAfterApply func(applied int) error

	mu      sync.Mutex
	topics  map[string]*topicState
	state   string
	lastErr string
	errAt   time.Time
	errors  uint64
}

// topicState is the applier's view of one remote topic.
type topicState struct {
	applied   map[string]uint64 // origin/shard → last index applied
	next      map[int32]int64   // partition → next offset to consume
	hw        map[int32]int64   // partition → high watermark at the last fetch
	events    uint64
	skipped   uint64
	lastTS    log.Timestamp
	lastDelay time.Duration
}

func newApplier(cfg Config, d DB) *applier {
	return &applier{cfg: cfg, db: d, log: cfg.Logger.With("link", "apply", "group", cfg.Group), health: &health{},
		topics: map[string]*topicState{}, state: "starting"}
}

func (a *applier) setErr(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errors++
	a.lastErr, a.errAt = err.Error(), time.Now()
}

func (a *applier) setState(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state = s
}

func (a *applier) topic(t string) *topicState {
	ts := a.topics[t]
	if ts == nil {
		ts = &topicState{applied: map[string]uint64{}, next: map[int32]int64{}, hw: map[int32]int64{}}
		a.topics[t] = ts
	}
	return ts
}

// wait sleeps d or until ctx ends; it reports whether ctx is still live.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// run consumes until ctx ends: it finds the remote topics, consumes them in the group,
// and starts over after an error or when the set of topics changes.
func (a *applier) run(ctx context.Context) {
	opts, err := a.cfg.clientOpts("discover", a.health)
	if err != nil {
		a.setErr(err)
		return
	}
	meta, err := kgo.NewClient(opts...)
	if err != nil {
		a.setErr(err)
		return
	}
	defer meta.Close()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		topics, err := a.discover(ctx, meta)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.setErr(err)
			a.setState("retrying")
			wait(ctx, backoff)
			backoff = min(2*backoff, a.cfg.MaxBackoff)
			continue
		}
		if len(topics) == 0 {
			a.setState("idle")
			wait(ctx, min(a.cfg.DiscoverInterval, time.Second))
			continue
		}
		progressed, err := a.consume(ctx, meta, topics)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = 100 * time.Millisecond
		}
		if err != nil {
			a.setErr(err)
			a.setState("retrying")
			a.log.Warn("applying interrupted; resuming from the committed offsets", "err", err, "backoff", backoff)
			wait(ctx, backoff)
			backoff = min(2*backoff, a.cfg.MaxBackoff)
		}
	}
}

// discover returns the topics to consume: the configured remotes' or every topic with
// the prefix but this datacenter's own, sorted.
func (a *applier) discover(ctx context.Context, cl *kgo.Client) ([]string, error) {
	if len(a.cfg.Remotes) > 0 {
		out := make([]string, len(a.cfg.Remotes))
		for i, r := range a.cfg.Remotes {
			out[i] = a.cfg.Topic(r)
		}
		slices.Sort(out)
		return out, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
	if err != nil {
		return nil, fmt.Errorf("replication: list topics: %w", err)
	}
	own := a.cfg.Topic(a.cfg.DC)
	var out []string
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic == own || !strings.HasPrefix(*t.Topic, a.cfg.TopicPrefix) {
			continue
		}
		if dcName.MatchString(strings.TrimPrefix(*t.Topic, a.cfg.TopicPrefix)) {
			out = append(out, *t.Topic)
		}
	}
	slices.Sort(out)
	return out, nil
}

// consume runs one consumer-group session over topics. It returns (nil error) when
// discovery finds a different set of topics, or with the error that ended it.
func (a *applier) consume(ctx context.Context, meta *kgo.Client, topics []string) (progressed bool, err error) {
	opts, err := a.cfg.clientOpts("apply", a.health)
	if err != nil {
		return false, err
	}
	opts = append(opts, kgo.ConsumerGroup(a.cfg.Group), kgo.ConsumeTopics(topics...), kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond),
		// A member that died without leaving (a killed node) holds its partitions until
		// its session times out: keep that short (Kafka's minimum is 6s).
		kgo.SessionTimeout(10*time.Second))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return false, fmt.Errorf("replication: kafka client: %w", err)
	}
	defer cl.CloseAllowingRebalance()
	a.mu.Lock()
	a.state = "applying"
	for _, t := range topics {
		a.topic(t)
	}
	a.mu.Unlock()
	a.log.Info("consuming", "topics", topics)
	nextDiscover := time.Now().Add(a.cfg.DiscoverInterval)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollRecords(pctx, a.cfg.MaxBatch)
		cancel()
		if ctx.Err() != nil {
			return progressed, ctx.Err()
		}
		if fetches.IsClientClosed() {
			return progressed, errors.New("replication: kafka client closed")
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				a.setErr(fmt.Errorf("replication: fetch %s/%d: %w", t, p, err))
			}
		})
		a.mu.Lock()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err == nil {
				a.topic(p.Topic).hw[p.Partition] = p.HighWatermark
			}
		})
		a.mu.Unlock()
		if recs := fetches.Records(); len(recs) > 0 {
			if err := a.apply(ctx, cl, recs); err != nil {
				return progressed, err
			}
			progressed = true
		}
		cl.AllowRebalance()
		if len(a.cfg.Remotes) == 0 && time.Now().After(nextDiscover) {
			nextDiscover = time.Now().Add(a.cfg.DiscoverInterval)
			if now, err := a.discover(ctx, meta); err == nil && !slices.Equal(now, topics) {
				a.log.Info("remote topics changed", "was", topics, "now", now)
				return progressed, nil
			}
		}
	}
}

// apply applies one polled batch, then commits its offsets.
func (a *applier) apply(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	evs := make([]db.RemoteEvent, 0, len(recs))
	skipped := map[string]uint64{}
	for _, r := range recs {
		d, err := decodeRecord(r.Value, r.Partition)
		if err != nil {
			skipped[r.Topic]++
			a.log.Warn("skipping a record that is not a replication record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			continue
		}
		if d.ev.Origin == a.cfg.DC || !sendsTo(d.replicate, a.cfg.DC) {
			skipped[r.Topic]++
			continue
		}
		evs = append(evs, d.ev)
	}
	if err := a.applyRetrying(ctx, evs); err != nil {
		return err
	}
	if a.testHookAfterApply != nil {
		if err := a.testHookAfterApply(len(evs)); err != nil {
			return err
		}
	}
	commitErr := cl.CommitRecords(ctx, recs...)
	if commitErr != nil {
		// Not fatal: the batch is applied; a later commit covers it, or a restart
		// delivers it again and the apply dedupes.
		a.setErr(fmt.Errorf("replication: commit offsets: %w", commitErr))
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for t, n := range skipped {
		a.topic(t).skipped += n
	}
	for _, r := range recs {
		ts := a.topic(r.Topic)
		ts.next[r.Partition] = max(ts.next[r.Partition], r.Offset+1)
	}
	for _, e := range evs {
		ts := a.topic(a.cfg.Topic(e.Origin))
		k := e.Origin + "/" + strconv.FormatUint(e.Shard, 10)
		ts.applied[k] = max(ts.applied[k], e.Index)
		ts.events++
		if e.TS > ts.lastTS {
			ts.lastTS = e.TS
			ts.lastDelay = now.Sub(e.TS.Time())
		}
	}
	return nil
}

// applyRetrying calls ApplyRemote until it succeeds or ctx ends. A batch refused as
// invalid is applied event by event, and the events refused on their own are skipped.
func (a *applier) applyRetrying(ctx context.Context, evs []db.RemoteEvent) error {
	if len(evs) == 0 {
		return nil
	}
	backoff := 50 * time.Millisecond
	for {
		err := a.db.ApplyRemote(ctx, evs)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if invalid(err) {
			return a.applyEach(ctx, evs)
		}
		a.setErr(fmt.Errorf("replication: apply %d remote events: %w", len(evs), err))
		if !wait(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, a.cfg.MaxBackoff)
	}
}

func (a *applier) applyEach(ctx context.Context, evs []db.RemoteEvent) error {
	for i := range evs {
		for {
			err := a.db.ApplyRemote(ctx, evs[i:i+1])
			if err == nil {
				break
			}
			if invalid(err) {
				a.setErr(fmt.Errorf("replication: skipping invalid remote event %s-%d-%d: %w", evs[i].Origin, evs[i].Shard, evs[i].Index, err))
				a.mu.Lock()
				a.topic(a.cfg.Topic(evs[i].Origin)).skipped++
				a.mu.Unlock()
				break
			}
			if !wait(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	return nil
}

// invalid reports whether the database refused events as invalid (retrying cannot help).
func invalid(err error) bool {
	return errors.Is(err, db.ErrInvalidArgument) || errors.Is(err, db.ErrInvalidDocument) ||
		errors.Is(err, db.ErrInvalidCollection) || errors.Is(err, db.ErrInvalidID)
}

func (a *applier) close() {
	a.setState("stopped")
}

// status reports one link per remote topic seen.
func (a *applier) status() []LinkStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	down, downAt, isDown := a.health.down()
	var out []LinkStatus
	for t, ts := range a.topics {
		st := LinkStatus{Direction: "apply", From: strings.TrimPrefix(t, a.cfg.TopicPrefix), To: a.cfg.DC, Topic: t, State: a.state,
			Applied: map[string]uint64{}, Offsets: map[string]int64{}, Events: ts.events, Skipped: ts.skipped,
			Errors: a.errors, LastError: a.lastErr, LastDelaySeconds: ts.lastDelay.Seconds()}
		for k, v := range ts.applied {
			st.Applied[k] = v
		}
		for p, n := range ts.next {
			st.Offsets[strconv.Itoa(int(p))] = n
		}
		for p, hw := range ts.hw {
			if hw > ts.next[p] {
				st.LagEvents += uint64(hw - ts.next[p])
			}
		}
		if ts.lastTS != 0 {
			st.LastEventTime = ts.lastTS.Time().UTC().Format(time.RFC3339Nano)
			if st.LagEvents > 0 {
				st.LagSeconds = max(0, time.Since(ts.lastTS.Time()).Seconds())
			}
		}
		if !a.errAt.IsZero() {
			st.LastErrorAt = a.errAt.UTC().Format(time.RFC3339Nano)
		}
		if isDown && st.State != "stopped" {
			st.State = "disconnected"
			if downAt.After(a.errAt) {
				st.LastError, st.LastErrorAt = down, downAt.UTC().Format(time.RFC3339Nano)
			}
		}
		out = append(out, st)
	}
	if len(out) == 0 {
		st := LinkStatus{Direction: "apply", From: strings.Join(a.cfg.Remotes, ","), To: a.cfg.DC, State: a.state, Errors: a.errors, LastError: a.lastErr}
		if st.From == "" {
			st.From = a.cfg.TopicPrefix + "*"
		}
		if isDown && st.State != "stopped" {
			st.State, st.LastError = "disconnected", down
		}
		out = append(out, st)
	}
	return out
}
