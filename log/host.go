package log

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	dblogger "github.com/lni/dragonboat/v4/logger"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerolithsdb/aerolith/log/raftnet"
)

// Config configures a Host. The zero value of every field but NodeID, RaftAddr, Dir and
// NewStateMachine means its default.
type Config struct {
	NodeID   uint64 // this node's id, 1..MaxNodeID: its replica id in every shard it joins first
	RaftAddr string // host:port peers dial; raft also binds to it unless RaftListenAddr is set
	Dir      string // directory for the raft log (created)
	Shards   int    // raft groups; shard ids are 1..Shards (default 4)
	// RaftListenAddr is the host:port raft binds to when it differs from RaftAddr, e.g.
	// 0.0.0.0:7071 in a container whose RaftAddr names it by hostname. Default: RaftAddr.
	RaftListenAddr string
	// InitialMembers maps replica id to raft address for a new shard. Default: this node
	// alone. Every node of a static cluster passes the same map and runs a replica of
	// every shard (replica id = node id), so the replication factor is the member count.
	// It is read only when the raft data is created; a restart keeps the membership it
	// has.
	InitialMembers map[uint64]string
	// Join starts every replica that has no raft data yet as joining a running cluster:
	// a member must already have added this node to the shard (AddNonVoting), and the
	// replica catches up from the shard's leader. InitialMembers is ignored.
	Join bool
	// Meta, when set, runs the meta shard (MetaShard) with this state machine: the
	// cluster's membership and placement. Every node of a cluster runs it or none does.
	Meta MetaMachine
	// DrainTimeout bounds how long Close spends handing the leadership of the shards this
	// node leads to other members (default 3s; negative: do not hand over).
	DrainTimeout time.Duration

	RTT          time.Duration // round-trip estimate, raft's tick (default 10ms)
	ElectionRTT  uint64        // election timeout in RTTs (default 50)
	HeartbeatRTT uint64        // heartbeat interval in RTTs (default 5)
	// SnapshotEntries is how many entries between snapshots (default 10000). Snapshots of
	// an on-disk state machine are cheap: they mark how far the log may be compacted.
	SnapshotEntries uint64

	// Group commit: concurrent commands to one shard are coalesced into one proposal of at
	// most MaxBatch commands / MaxBatchBytes bytes, with at most MaxInFlight proposals per
	// shard outstanding.
	DisableGroupCommit bool
	MaxBatch           int           // default 256
	MaxBatchBytes      int           // default 4 MiB
	MaxInFlight        int           // default 2
	ProposeTimeout     time.Duration // how long one proposal may take (default 5s)

	// NewStateMachine returns the state machine of a shard.
	NewStateMachine func(shard uint64) StateMachine

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Shards == 0 {
		c.Shards = 4
	}
	if c.RTT == 0 {
		c.RTT = 10 * time.Millisecond
	}
	if c.ElectionRTT == 0 {
		c.ElectionRTT = 50
	}
	if c.HeartbeatRTT == 0 {
		c.HeartbeatRTT = 5
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 10000
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 256
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 4 << 20
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 2
	}
	if c.ProposeTimeout == 0 {
		c.ProposeTimeout = 5 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 3 * time.Second
	}
	if c.InitialMembers == nil {
		c.InitialMembers = map[uint64]string{c.NodeID: c.RaftAddr}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == 0 || c.NodeID > MaxNodeID {
		errs = append(errs, fmt.Errorf("node id must be in 1..%d", uint64(MaxNodeID)))
	}
	if c.RaftAddr == "" {
		errs = append(errs, errors.New("raft address is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("directory is required"))
	}
	if c.Shards < 0 || c.Shards > 1024 {
		errs = append(errs, fmt.Errorf("shards must be in 1..1024, got %d", c.Shards))
	}
	if c.NewStateMachine == nil {
		errs = append(errs, errors.New("NewStateMachine is required"))
	}
	if c.MaxBatch < 0 || c.MaxInFlight < 0 || c.MaxBatchBytes < 0 {
		errs = append(errs, errors.New("group commit limits must not be negative"))
	}
	if c.HeartbeatRTT != 0 && c.ElectionRTT != 0 && c.ElectionRTT <= 2*c.HeartbeatRTT {
		errs = append(errs, fmt.Errorf("election RTT %d must exceed twice the heartbeat RTT %d", c.ElectionRTT, c.HeartbeatRTT))
	}
	if c.InitialMembers != nil && !c.Join {
		errs = append(errs, validateMembers(c.InitialMembers, c.NodeID, c.RaftAddr)...)
	}
	return errors.Join(errs...)
}

// ShardOf returns the shard (1..shards) of a document.
func ShardOf(collection, id string, shards int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(collection))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return h.Sum64()%uint64(shards) + 1
}

// Host runs this node's replicas of every shard on one dragonboat NodeHost and is the
// only way into the log. Propose and ReadBarrier are safe for concurrent use.
type Host struct {
	cfg      Config
	nh       *dragonboat.NodeHost
	batchers map[uint64]*batcher
	shards   map[uint64]*replica
	// leaderSeen is, per shard, when a leader was last known here (unix nanoseconds),
	// kept by watchLeaders: a shard leaderless for long refuses at once.
	leaderSeen map[uint64]*atomic.Int64
	placeMu    sync.Mutex // one Rejoin, Drop or Adopt at a time
	metrics    *metrics
	log        *slog.Logger

	stop     chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
	closeErr error
}

// Open starts the NodeHost and this node's replica of every shard but those it dropped
// (Drop; replicas.json records them), whose raft data a crash in the middle of Drop may
// have left behind and Open removes. It does not wait for leaders: call WaitReady.
func Open(cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("log: config: %w", err)
	}
	cfg.setDefaults()
	quietDragonboat()
	nhc := config.NodeHostConfig{
		DeploymentID:   1,
		NodeHostDir:    filepath.Join(cfg.Dir, "raft"),
		RTTMillisecond: uint64(cfg.RTT / time.Millisecond),
		RaftAddress:    cfg.RaftAddr,
		ListenAddress:  cfg.RaftListenAddr,
		Expert:         config.GetDefaultExpertConfig(),
	}
	// Few execution shards suit few cores; the small LogDB profile keeps memory modest.
	nhc.Expert.Engine.ExecShards = 2
	nhc.Expert.LogDB = config.GetSmallMemLogDBConfig()
	// Our transport reaches a restarted node on the next batch and repeats a TimeoutNow,
	// so leadership transfers succeed under load (see raftnet).
	nhc.Expert.TransportFactory = raftnet.Factory{
		TransferWindow: time.Duration(cfg.ElectionRTT) * cfg.RTT,
		Logger:         cfg.Logger,
		Registerer:     cfg.Registerer,
	}
	nh, err := dragonboat.NewNodeHost(nhc)
	if err != nil {
		return nil, fmt.Errorf("log: start node host: %w", err)
	}
	h := &Host{
		cfg:        cfg,
		nh:         nh,
		batchers:   make(map[uint64]*batcher, cfg.Shards),
		shards:     make(map[uint64]*replica, cfg.Shards),
		leaderSeen: make(map[uint64]*atomic.Int64, cfg.Shards+1),
		metrics:    newMetrics(cfg.Registerer),
		log:        cfg.Logger,
		stop:       make(chan struct{}),
	}
	members := make(map[uint64]dragonboat.Target, len(cfg.InitialMembers))
	for id, addr := range cfg.InitialMembers {
		members[id] = addr
	}
	recs, err := h.loadReplicaRecords()
	if err != nil {
		nh.Close()
		return nil, fmt.Errorf("log: %w", err)
	}
	// start runs this node's replica of shard: restarted (its raft data exists), joining
	// a running shard (cfg.Join, or a rejoin or adoption that a crash interrupted before
	// raft had data of the replica: the record says joined), or as a member of a new
	// shard (InitialMembers). A replica that joined restarts as non-voting: raft replays
	// its admission as a non-voting replica, and its promotion when there was one.
	start := func(shard uint64, rc config.Config, startReplica func(map[uint64]dragonboat.Target, bool, config.Config) error) error {
		rec, known := recs[shard]
		switch {
		case nh.HasNodeInfo(shard, rc.ReplicaID):
			rc.IsNonVoting = rec.Joined || (!known && cfg.Join)
			return startReplica(nil, false, rc)
		case rc.ReplicaID != cfg.NodeID || cfg.Join || rec.Joined:
			recs[shard] = replicaRecord{ID: rc.ReplicaID, Joined: true, Fresh: rec.Fresh}
			if err := h.saveReplicaRecords(recs); err != nil {
				return err
			}
			rc.IsNonVoting = true
			return startReplica(nil, true, rc)
		default:
			return startReplica(members, false, rc)
		}
	}
	rids := make(map[uint64]uint64, cfg.Shards) // the replica this node runs (or dropped), per data shard
	keep := make(map[uint64]uint64, cfg.Shards) // the replica whose raft data stays: none of a dropped shard
	for shard := uint64(1); shard <= uint64(cfg.Shards); shard++ {
		rids[shard] = cfg.NodeID
		if r, ok := recs[shard]; ok && NodeOf(r.ID) == cfg.NodeID {
			rids[shard] = r.ID
		}
		keep[shard] = rids[shard]
		if recs[shard].Dropped {
			keep[shard] = 0
		}
	}
	h.removeStaleReplicaData(keep)
	for s := uint64(1); s <= uint64(cfg.Shards); s++ {
		shard, rid := s, rids[s]
		rep := &replica{}
		rep.id.Store(rid)
		h.shards[shard] = rep
		// Every shard has its batcher, a dropped one too: Adopt may start its replica
		// again, and until then the batcher answers ErrNotHosted.
		b := &batcher{host: h, shard: shard, reqs: make(chan *pending, 4*cfg.MaxBatch), sem: make(chan struct{}, cfg.MaxInFlight)}
		h.batchers[shard] = b
		if !cfg.DisableGroupCommit {
			h.wg.Add(1)
			go func() { defer h.wg.Done(); b.run() }()
		}
		if recs[shard].Dropped {
			rep.dropped.Store(true)
			continue
		}
		// A replica under a later generation of the node id that has no raft data yet
		// keeps what the node's earlier replica applied (see adapter.fresh). An adopted
		// replica whose start a crash interrupted counts as fresh too, which changes
		// nothing: its state machine is empty (Adopt checks), so there is nothing to skip.
		// A rejoined replica stays fresh at every start (the record says so): raft may
		// hold its bootstrap record and no entry yet, and then the state's index must not
		// reach raft. Passing over the state costs a replay of the replica's raft log (or
		// a recovery from its last snapshot) at start.
		fresh := rid != cfg.NodeID && (!nh.HasNodeInfo(shard, rid) || recs[shard].Fresh)
		err := start(shard, h.replicaConfig(shard, rid), func(ms map[uint64]dragonboat.Target, join bool, rc config.Config) error {
			return nh.StartOnDiskReplica(ms, join, h.createFunc(shard, rep, fresh), rc)
		})
		if errors.Is(err, dragonboat.ErrReplicaRemoved) {
			// This node removed the data of this very replica id before (Drop), so
			// dragonboat never runs it here again: the record is wrong (Adopt refuses
			// such ids, so it should not happen). Rather than refuse to start, the shard
			// stays dropped; a later Adopt names a later generation.
			h.log.Warn("replica's data was removed on this node: shard stays dropped", "shard", shard, "replica", rid)
			recs[shard] = replicaRecord{ID: rid, Dropped: true}
			err = h.saveReplicaRecords(recs)
			rep.dropped.Store(true)
		}
		if err != nil {
			h.stopBatchers()
			nh.Close()
			return nil, fmt.Errorf("log: start shard %d: %w", shard, err)
		}
	}
	if cfg.Meta != nil {
		rep := &replica{}
		rep.id.Store(cfg.NodeID)
		h.shards[MetaShard] = rep
		rc := config.Config{
			ReplicaID: cfg.NodeID, ShardID: MetaShard, CheckQuorum: true, PreVote: true,
			ElectionRTT: cfg.ElectionRTT, HeartbeatRTT: cfg.HeartbeatRTT,
			SnapshotEntries: 1000, CompactionOverhead: 500,
		}
		create := func(uint64, uint64) sm.IStateMachine { return &metaAdapter{m: cfg.Meta, applied: rep} }
		err := start(MetaShard, rc, func(ms map[uint64]dragonboat.Target, join bool, rc config.Config) error {
			return nh.StartReplica(ms, join, create, rc)
		})
		if err != nil {
			h.stopBatchers()
			nh.Close()
			return nil, fmt.Errorf("log: start meta shard: %w", err)
		}
	}
	now := time.Now().UnixNano()
	for _, s := range h.ShardIDs() {
		h.leaderSeen[s] = new(atomic.Int64)
		h.leaderSeen[s].Store(now)
	}
	h.wg.Add(2)
	go func() { defer h.wg.Done(); h.watchLeaders() }()
	go func() { defer h.wg.Done(); h.watchSoleVoters() }()
	return h, nil
}

// Shards returns the number of shards.
func (h *Host) Shards() int { return h.cfg.Shards }

// ShardOf returns the shard of a document on this host.
func (h *Host) ShardOf(collection, id string) uint64 { return ShardOf(collection, id, h.cfg.Shards) }

// WaitReady blocks until every shard this node runs a replica of has a leader and this
// replica has applied everything committed before the call, or ctx ends. The leader may
// be another node: the barrier is a ReadIndex the leader confirms, so a follower is ready
// once it has caught up. Shards this node dropped (Drop) are passed over.
func (h *Host) WaitReady(ctx context.Context) error {
	for _, s := range h.ShardIDs() {
		for h.Runs(s) {
			err := h.pollLeader(ctx, s, func(uint64) bool { return true })
			if errors.Is(err, ErrNotHosted) {
				break // dropped meanwhile
			}
			if err != nil {
				return fmt.Errorf("%w: shard %d has no leader: %v", ErrUnavailable, s, err)
			}
			err = h.ReadBarrier(ctx, s)
			if err == nil || errors.Is(err, ErrNotHosted) {
				break
			}
			// A node that just restarted may not hear from a leader for a while (the
			// leader's connection to its old process breaks only when next written to):
			// keep waiting until ctx ends rather than give up at the first refusal.
			if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
				return fmt.Errorf("log: shard %d not ready: %w", s, err)
			}
		}
	}
	return nil
}

// Ready reports whether every shard this node runs a replica of currently knows a leader.
func (h *Host) Ready() bool {
	for _, s := range h.ShardIDs() {
		if !h.Runs(s) {
			continue
		}
		if _, _, ok, err := h.nh.GetLeaderID(s); err != nil || !ok {
			return false
		}
	}
	return true
}

// ReadBarrier returns once this replica of shard has applied every entry committed before
// the call (raft ReadIndex). Reads of local state after it are linearizable. A shard this
// node holds no replica of is refused at once with ErrNotHosted, and so is a barrier
// under way when Drop stops the replica.
func (h *Host) ReadBarrier(ctx context.Context, shard uint64) error {
	if _, err := h.hosting(shard); err != nil {
		return err
	}
	start := time.Now()
	backoff := time.Millisecond
	for {
		if h.isClosed() {
			return ErrClosed
		}
		if err := h.leaderless(shard); err != nil {
			return err
		}
		// A read is always safe to retry, so one attempt waits at most two election
		// timeouts: a ReadIndex lost on the way to a leader is not answered at all.
		rctx, cancel := context.WithTimeout(ctx, min(h.cfg.ProposeTimeout, 2*time.Duration(h.cfg.ElectionRTT)*h.cfg.RTT))
		rctx, stopWatch := h.watchLeader(rctx, shard)
		_, err := h.nh.SyncRead(rctx, shard, nil)
		leaderChanged := context.Cause(rctx) == errLeaderChanged
		stopWatch()
		cancel()
		if err == nil {
			h.metrics.readBarrier.Observe(time.Since(start).Seconds())
			return nil
		}
		if _, herr := h.hosting(shard); herr != nil {
			return herr // Drop stopped the replica under the read
		}
		// ErrShardNotFound: the replica is restarting under a new id (Rejoin).
		if !dragonboat.IsTempError(err) && !errors.Is(err, context.DeadlineExceeded) && !leaderChanged &&
			!errors.Is(err, dragonboat.ErrShardNotFound) {
			return fmt.Errorf("log: read barrier shard %d: %w", shard, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: read barrier shard %d: %v", ErrUnavailable, shard, err)
		}
		if !sleepCtx(ctx, h.stop, backoff) {
			return fmt.Errorf("%w: read barrier shard %d: %v", ErrUnavailable, shard, ctx.Err())
		}
		backoff = min(backoff*2, 100*time.Millisecond)
	}
}

// Propose appends cmd to shard's log and returns what the state machine's Apply returned
// for it. ErrUnavailable means cmd was not proposed; ErrIndeterminate means it may or may
// not commit. ErrNotHosted means cmd was not proposed because this node holds no replica
// of shard (Drop): at once for a dropped shard, or for a queued command when Drop stops
// the replica before the command went to raft.
func (h *Host) Propose(ctx context.Context, shard uint64, cmd []byte) ([]byte, error) {
	b, ok := h.batchers[shard]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownShard, shard)
	}
	if _, err := h.hosting(shard); err != nil {
		return nil, err
	}
	if h.isClosed() {
		return nil, ErrClosed
	}
	if err := h.leaderless(shard); err != nil {
		return nil, err
	}
	if h.cfg.DisableGroupCommit {
		res, err := h.propose(ctx, shard, [][]byte{cmd})
		if err != nil {
			return nil, err
		}
		return res[0], nil
	}
	p := &pending{ctx: ctx, cmd: cmd, done: make(chan result, 1)}
	select {
	case b.reqs <- p:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	case <-h.stop:
		return nil, ErrClosed
	}
	select {
	case r := <-p.done:
		return r.data, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrIndeterminate, ctx.Err())
	}
}

// propose proposes cmds as one raft entry, retrying while raft says nothing was proposed.
func (h *Host) propose(ctx context.Context, shard uint64, cmds [][]byte) ([][]byte, error) {
	if _, err := h.hosting(shard); err != nil {
		return nil, err // dropped while the commands were queued: none was proposed
	}
	payload := encodeFrame(cmds)
	session := h.nh.GetNoOPSession(shard)
	start := time.Now()
	backoff := time.Millisecond
	for {
		// A proposal a follower forwards travels outside the log: when the leader drops it
		// (it is handing its leadership over) or the connection loses it (the peer
		// restarted), nothing answers, and the term need not change. One attempt waits
		// at most four election timeouts, far above a healthy commit, before its outcome
		// counts as unknown.
		pctx, cancel := context.WithTimeout(ctx, min(h.cfg.ProposeTimeout, 4*time.Duration(h.cfg.ElectionRTT)*h.cfg.RTT))
		pctx, stopWatch := h.watchLeader(pctx, shard)
		res, err := h.nh.SyncPropose(pctx, session, payload)
		if err != nil && context.Cause(pctx) == errLeaderChanged {
			err = errLeaderChanged
		}
		stopWatch()
		cancel()
		if err == nil {
			h.metrics.proposals.Inc()
			h.metrics.commands.Observe(float64(len(cmds)))
			h.metrics.proposeSeconds.Observe(time.Since(start).Seconds())
			out, derr := decodeFrame(res.Data)
			if derr != nil || len(out) != len(cmds) {
				return nil, fmt.Errorf("log: shard %d: %d results for %d commands: %v", shard, len(out), len(cmds), derr)
			}
			return out, nil
		}
		// Dropped before raft took it: safe to retry. Anything else may have been proposed.
		retry := errors.Is(err, dragonboat.ErrSystemBusy) || errors.Is(err, dragonboat.ErrShardNotReady) ||
			errors.Is(err, dragonboat.ErrShardNotInitialized) || errors.Is(err, dragonboat.ErrShardNotFound)
		if !retry {
			h.metrics.proposeErrors.WithLabelValues("indeterminate").Inc()
			return nil, fmt.Errorf("%w: shard %d: %v", ErrIndeterminate, shard, err)
		}
		h.metrics.proposeErrors.WithLabelValues("retry").Inc()
		if lerr := h.leaderless(shard); lerr != nil {
			return nil, lerr // raft dropped it: nothing was proposed
		}
		if !sleepCtx(ctx, h.stop, backoff) {
			return nil, fmt.Errorf("%w: shard %d: %v", ErrUnavailable, shard, err)
		}
		backoff = min(backoff*2, 50*time.Millisecond)
	}
}

// errLeaderChanged ends a raft operation early: the shard's leader changed while it was
// under way. A proposal or ReadIndex forwarded to a leader that died is never answered,
// and waiting out ProposeTimeout would stall writes long after a new leader took over.
var errLeaderChanged = errors.New("log: leader changed")

// watchLeader returns ctx canceled with errLeaderChanged when shard's term moves on from
// the one known now. When no leader is known now, raft drops what is proposed meanwhile
// without an answer, so ctx is canceled once a leader is known and leaderGrace has passed
// without the operation finishing. Call stop when done.
func (h *Host) watchLeader(ctx context.Context, shard uint64) (context.Context, func()) {
	_, term, known, err := h.nh.GetLeaderID(shard)
	known = known && err == nil
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		var since time.Time // when a leader became known, if none was at the start
		for {
			select {
			case <-done:
				return
			case <-wctx.Done():
				return
			case <-t.C:
			}
			_, now, ok, err := h.nh.GetLeaderID(shard)
			if err != nil || !ok {
				continue
			}
			switch {
			case known && now != term:
				cancel(errLeaderChanged)
				return
			case !known && since.IsZero():
				since = time.Now()
			case !known && time.Since(since) >= leaderGrace:
				cancel(errLeaderChanged)
				return
			}
		}
	}()
	return wctx, func() { close(done); cancel(nil) }
}

// watchLeaders notes, every 20ms, which shards know a leader, until the host closes.
func (h *Host) watchLeaders() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		for s, seen := range h.leaderSeen {
			if !h.Runs(s) {
				continue
			}
			if _, _, ok, err := h.nh.GetLeaderID(s); err == nil && ok {
				seen.Store(now)
			}
		}
	}
}

// leaderless returns ErrUnavailable when shard has known no leader for longer than four
// election timeouts: this replica is cut off from a quorum (or the quorum is gone), and a
// proposal or read would only wait out its timeout. Elections in a healthy cluster take
// well under that. For a shard this node dropped it returns ErrNotHosted.
func (h *Host) leaderless(shard uint64) error {
	if r, ok := h.shards[shard]; ok && r.dropped.Load() {
		return fmt.Errorf("%w: %d", ErrNotHosted, shard)
	}
	seen, ok := h.leaderSeen[shard]
	if !ok {
		return nil
	}
	if _, _, known, err := h.nh.GetLeaderID(shard); err == nil && known {
		seen.Store(time.Now().UnixNano())
		return nil
	}
	limit := 4 * time.Duration(h.cfg.ElectionRTT) * h.cfg.RTT
	if d := time.Since(time.Unix(0, seen.Load())); d > limit {
		return fmt.Errorf("%w: shard %d has had no leader for %s", ErrUnavailable, shard, d.Round(time.Millisecond))
	}
	return nil
}

// leaderGrace is how long an operation started while no leader was known may still take
// once one is: a proposal raft queued commits within it, one it dropped never answers.
const leaderGrace = 250 * time.Millisecond

// opContext bounds one raft operation by the caller's deadline and ProposeTimeout.
func (h *Host) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.cfg.ProposeTimeout)
}

func (h *Host) isClosed() bool {
	select {
	case <-h.stop:
		return true
	default:
		return false
	}
}

// Close hands the leadership of the shards this node leads to other members (Drain,
// bounded by DrainTimeout), stops the batchers, answers queued commands with ErrClosed
// (they were never proposed), and stops the NodeHost, which closes every state machine.
// Idempotent.
func (h *Host) Close() error {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	if h.closed {
		return h.closeErr
	}
	h.closed = true
	if h.cfg.DrainTimeout > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.DrainTimeout)
		if n, err := h.Drain(ctx); n > 0 || err != nil {
			h.log.Info("drained leadership before stopping", "shards_moved", n, "err", err)
		}
		cancel()
	}
	h.stopBatchers()
	h.nh.Close()
	return nil
}

// stopBatchers stops the batchers and the leader watch, waits for them and their
// proposals, and answers the commands still queued with ErrClosed.
func (h *Host) stopBatchers() {
	close(h.stop)
	h.wg.Wait()
	for _, b := range h.batchers {
		b.drainClosed()
	}
}

func sleepCtx(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

// quietOnce: dragonboat's loggers are process-wide, and setting their level while another
// NodeHost of the process logs is a data race, so it is done once.
var quietOnce sync.Once

// quietDragonboat turns dragonboat's own loggers (which print to stderr) down: raft's
// elections log at warning level, so only errors pass. Our own logs report leadership.
func quietDragonboat() { quietOnce.Do(setDragonboatLevels) }

func setDragonboatLevels() {
	for _, name := range []string{"dragonboat", "raft", "rsm", "transport", "logdb", "raftpb", "config", "settings", "grpc", "gossip", "registry"} {
		dblogger.GetLogger(name).SetLevel(dblogger.ERROR)
	}
}
