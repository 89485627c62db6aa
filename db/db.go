package db

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/meta"
	"github.com/aerolithsdb/aerolith/query"
	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/aerolithsdb/aerolith/tiers/archive"
	"github.com/aerolithsdb/aerolith/tiers/memory"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a DB. The zero value of each field means its default; DataDir,
// RaftAddr and NodeID have none.
type Config struct {
	DataDir  string
	NodeID   uint64
	RaftAddr string
	Shards   int    // raft groups (default 4)
	DC       string // datacenter name (default "dc1")
	// RaftListenAddr is where raft binds when it differs from RaftAddr (default RaftAddr).
	RaftListenAddr string
	// InitialMembers makes a static cluster: node id → raft address of every member, this
	// node included, the same on every node. Each node runs a replica of every shard.
	// Default: this node alone.
	InitialMembers map[uint64]string
	Cluster        string // cluster name stamped on change events (default "aerolith")
	// Join makes a new node join a running cluster: a member has added it (Join on that
	// member) before it starts. InitialMembers is ignored.
	Join bool
	// AdvertiseHTTP is the host:port other nodes reach this node's HTTP API on, for the
	// cluster controller's probes and the peer protocol (default: none, and the node is
	// probed and called by no one).
	AdvertiseHTTP string
	// Peers carries the peer protocol's calls to other nodes, for the shards this node
	// holds no replica of (default: none, and such shards are unavailable here).
	Peers PeerTransport
	// DeadAfter is how long a node may stay unreachable before the controller re-creates
	// its replicas' votes on other nodes (default 5m).
	DeadAfter time.Duration

	CacheBytes      int64 // L1 document cache bound (default 64 MiB)
	BlockCacheBytes int64 // L2 pebble block cache (default 256 MiB)

	DisableGroupCommit bool
	WriteTimeout       time.Duration // bound on one write, retries included (default 10s)
	ReadTimeout        time.Duration // bound on a linearizable read barrier (default 5s)
	IdempotencyTTL     time.Duration // how long idempotency keys are remembered (default 24h)

	// Signed checkpoints of each shard's head: every CheckpointEvents events or
	// CheckpointInterval, whichever comes first (defaults 1000 and 10s).
	CheckpointEvents   int
	CheckpointInterval time.Duration

	// The archive (L4): events beyond RetainEvents from a shard's head (default 100000;
	// negative: never by count), or older than RetainAge (0: never by age), move in
	// segments of SegmentEvents (default 4096) to ArchiveDir (default <DataDir>/archive),
	// checked every ArchiveInterval (default 1s; negative: only when asked).
	RetainEvents    int
	RetainAge       time.Duration
	SegmentEvents   int
	ArchiveDir      string
	ArchiveInterval time.Duration
	// SnapshotEntries is how many raft entries a shard applies between snapshots, after
	// which its log may be compacted (default 10000). A replica that falls behind a
	// compacted log catches up by snapshot.
	SnapshotEntries uint64

	MaxQueryLimit  int    // largest page a query may ask for (default 1000)
	QueryCostLimit uint64 // CEL cost bound per document (default query.DefaultCostLimit)

	// OnStart, when set, is called once this node's replicas run, before Open waits for
	// the shards to be ready (which can take a while after a restart). From then on
	// LocalApplied answers, so the node can answer the controller's probes as alive.
	OnStart func(*DB)

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.NodeID == 0 {
		errs = append(errs, errors.New("node id must be > 0"))
	}
	if c.RaftAddr == "" {
		errs = append(errs, errors.New("raft address is required"))
	}
	if c.Shards < 0 || c.Shards > 1024 {
		errs = append(errs, fmt.Errorf("shards must be in 1..1024, got %d", c.Shards))
	}
	if c.InitialMembers != nil && !c.Join {
		if err := log.ValidateMembers(c.InitialMembers, c.NodeID, c.RaftAddr); err != nil {
			errs = append(errs, err)
		}
	}
	if c.DC != "" && !ValidCollection(c.DC) {
		errs = append(errs, fmt.Errorf("datacenter name %q must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", c.DC))
	}
	if c.CacheBytes < 0 || c.BlockCacheBytes < 0 {
		errs = append(errs, errors.New("cache sizes must not be negative"))
	}
	if c.SegmentEvents < 0 || c.RetainAge < 0 {
		errs = append(errs, errors.New("segment size and retention age must not be negative"))
	}
	if c.CheckpointEvents < 0 || c.CheckpointInterval < 0 {
		errs = append(errs, errors.New("checkpoint cadence must not be negative"))
	}
	if c.MaxQueryLimit < 0 {
		errs = append(errs, errors.New("max query limit must not be negative"))
	}
	if c.WriteTimeout < 0 || c.ReadTimeout < 0 || c.IdempotencyTTL < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Shards == 0 {
		c.Shards = 4
	}
	if c.DC == "" {
		c.DC = "dc1"
	}
	if c.Cluster == "" {
		c.Cluster = "aerolith"
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 5 * time.Second
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = 24 * time.Hour
	}
	if c.MaxQueryLimit == 0 {
		c.MaxQueryLimit = 1000
	}
	if c.RetainEvents == 0 {
		c.RetainEvents = DefaultRetainEvents
	}
	if c.SegmentEvents == 0 {
		c.SegmentEvents = DefaultSegmentEvents
	}
	if c.ArchiveDir == "" {
		c.ArchiveDir = filepath.Join(c.DataDir, "archive")
	}
	if c.ArchiveInterval == 0 {
		c.ArchiveInterval = time.Second
	}
	if c.CheckpointEvents == 0 {
		c.CheckpointEvents = DefaultCheckpointEvents
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// DB is one aerolith node's database: the log host, its materializer and its tiers. Its
// methods are safe for concurrent use.
type DB struct {
	cfg      Config
	host     *log.Host
	mat      *materializer.Materializer
	store    *l2.DB
	cache    *memory.Cache
	codec    *log.Codec
	clock    *log.Clock
	compiler *query.Compiler
	hub      *feed.Hub
	key      *audit.Key
	archive  *archive.Archive
	meta     *meta.Machine
	ctrl     *meta.Controller
	// replicasChanged is signaled on every change of the meta state (followReplicas).
	replicasChanged chan struct{}
	removed         chan struct{} // closed when the cluster removed this node
	prober          *meta.Prober
	peers           *peers                // the L3 tier: other nodes serve the shards this one holds no replica of
	scrubbed        map[log.Position]bool // archived events whose segment no longer holds their erased body (under localMu)
	adopting        adopting              // adopted replicas not served from yet (cluster.go)
	// localMu keeps the passes over the shards this node holds (archiving, scrubbing,
	// checkpoint signing) apart from dropping a shard's data (dropData).
	localMu sync.Mutex
	xdc     xdc // cross-datacenter state (remote.go)

	backfillKick chan struct{}
	stop         context.CancelFunc
	wg           sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the node's data under cfg.DataDir, starts every shard and waits
// until each has a leader and has applied its log, or ctx ends.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("db: config: %w", err)
	}
	cfg.setDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	compiler, err := query.NewCompiler(query.Config{CostLimit: cfg.QueryCostLimit})
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	d := &DB{cfg: cfg, codec: log.NewCodec(0), clock: log.NewClock(nil), compiler: compiler,
		hub: feed.NewHub(), backfillKick: make(chan struct{}, 1), scrubbed: map[log.Position]bool{}}
	if d.key, err = audit.LoadOrCreateKey(filepath.Join(cfg.DataDir, "audit")); err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	if d.archive, err = archive.Open(ctx, archive.Dir{Path: cfg.ArchiveDir}); err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	if d.store, err = l2.Open(l2.Config{Dir: filepath.Join(cfg.DataDir, "store"), CacheBytes: cfg.BlockCacheBytes, Logger: cfg.Logger}); err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	if d.cache, err = memory.New(memory.Config{MaxBytes: cfg.CacheBytes}); err != nil {
		d.store.Close()
		return nil, fmt.Errorf("db: %w", err)
	}
	if d.mat, err = materializer.New(materializer.Config{
		Store: d.store, Cache: d.cache, Codec: d.codec, OnCommit: d.hub.Advance, Logger: cfg.Logger, Registerer: cfg.Registerer,
	}); err != nil {
		d.store.Close()
		return nil, fmt.Errorf("db: %w", err)
	}
	d.prober = meta.NewProber(cfg.NodeID, time.Second)
	d.peers = newPeers(cfg.NodeID, cfg.Peers, cfg.Registerer)
	d.replicasChanged = make(chan struct{}, 1)
	d.removed = make(chan struct{})
	d.meta = meta.NewMachine(func() {
		if d.ctrl != nil {
			d.ctrl.Kick()
		}
		select {
		case d.replicasChanged <- struct{}{}:
		default:
		}
	})
	if d.host, err = log.Open(log.Config{
		NodeID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RaftListenAddr: cfg.RaftListenAddr, Dir: cfg.DataDir, Shards: cfg.Shards,
		InitialMembers:     cfg.InitialMembers,
		Join:               cfg.Join,
		Meta:               d.meta,
		SnapshotEntries:    cfg.SnapshotEntries,
		DisableGroupCommit: cfg.DisableGroupCommit,
		NewStateMachine:    d.mat.StateMachine,
		Logger:             cfg.Logger, Registerer: cfg.Registerer,
	}); err != nil {
		d.store.Close()
		return nil, fmt.Errorf("db: %w", err)
	}
	for _, s := range d.shardIDs() {
		if d.host.DroppedReplica(s) == 0 {
			continue
		}
		if err := d.dropData(ctx, s); err != nil {
			d.host.Close()
			d.store.Close()
			return nil, fmt.Errorf("db: finish dropping shard %d: %w", s, err)
		}
	}
	if d.ctrl, err = meta.NewController(meta.ControllerConfig{Host: shardAdmin{Host: d.host, d: d}, Machine: d.meta, Prober: d.prober,
		DeadAfter: cfg.DeadAfter, Logger: cfg.Logger, Registerer: cfg.Registerer}); err != nil {
		d.host.Close()
		d.store.Close()
		return nil, fmt.Errorf("db: %w", err)
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(newTierCollector(d))
	}
	// The meta shard's work starts before the shards are ready: a node restarting while
	// one of its replicas rejoins under a new id gets that shard back only by following
	// the meta state.
	bctx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	d.startMeta(bctx)
	if cfg.OnStart != nil {
		cfg.OnStart(d)
	}
	if err := d.waitReady(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: %w", err)
	}
	d.wg.Add(4)
	go func() { defer d.wg.Done(); d.backfillLoop(bctx) }()
	go func() { defer d.wg.Done(); d.followHeads(bctx) }()
	go func() { defer d.wg.Done(); d.checkpointLoop(bctx) }()
	go func() {
		defer d.wg.Done()
		if d.watchRemoved(bctx, removedWatchEvery) {
			close(d.removed)
		}
	}()
	if cfg.ArchiveInterval > 0 {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.archiveLoop(bctx) }()
	}
	cfg.Logger.Info("database ready", "shards", cfg.Shards, "node", cfg.NodeID, "dc", cfg.DC)
	return d, nil
}

// Close stops the log (which closes every shard's state machine) and then the store.
// Idempotent.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		if d.stop != nil {
			d.stop()
			d.wg.Wait()
		}
		err := d.host.Close()
		d.codec.Close()
		d.archive.Close()
		d.closeErr = errors.Join(err, d.store.Close())
	})
	return d.closeErr
}

// Ready reports whether every shard has a leader.
func (d *DB) Ready() bool { return d.host.Ready() }

// Shards returns the number of shards.
func (d *DB) Shards() int { return d.host.Shards() }

// Write is one document write.
type Write struct {
	Op             log.Op
	Collection     string
	ID             string
	Body           []byte // document (put) or JSON merge patch (patch); a JSON object
	IfMatch        uint64
	HasIfMatch     bool
	IfNoneMatch    bool
	IdempotencyKey string
	// Resolves names the siblings (Sibling.ID) of a keep-both conflict the write replaces;
	// a write to a document with siblings must name every one of them.
	Resolves []string
}

// Result is the outcome of an applied write.
type Result struct {
	Collection string
	ID         string
	Version    uint64
	TS         log.Timestamp
	Position   log.Position
	Created    bool
}

func (w *Write) validate() error {
	if !ValidCollection(w.Collection) {
		return fmt.Errorf("%w: %q", ErrInvalidCollection, w.Collection)
	}
	if !ValidID(w.ID) {
		return fmt.Errorf("%w: %q", ErrInvalidID, w.ID)
	}
	if w.IdempotencyKey != "" && !ValidIdempotencyKey(w.IdempotencyKey) {
		return fmt.Errorf("%w: idempotency key must be 1-128 printable ASCII characters", ErrInvalidArgument)
	}
	switch w.Op {
	case log.OpPut, log.OpPatch:
		// A valid JSON text whose first token is '{' is an object; checking that is a
		// third of the cost of decoding it.
		if t := bytes.TrimLeft(w.Body, " \t\r\n"); len(t) == 0 || t[0] != '{' || !json.Valid(w.Body) {
			return fmt.Errorf("%w: body must be a JSON object", ErrInvalidDocument)
		}
	case log.OpDelete, log.OpRedact:
	default:
		return fmt.Errorf("%w: unknown operation %d", ErrInvalidArgument, w.Op)
	}
	if w.IfNoneMatch && w.Op != log.OpPut {
		return fmt.Errorf("%w: If-None-Match applies to put only", ErrInvalidArgument)
	}
	if len(w.Resolves) > maxResolves {
		return fmt.Errorf("%w: at most %d siblings per write", ErrInvalidArgument, maxResolves)
	}
	for _, id := range w.Resolves {
		if _, _, ok := materializer.ParseSiblingID(id); !ok {
			return fmt.Errorf("%w: sibling id %q is not dc:counter", ErrInvalidArgument, id)
		}
	}
	return nil
}

// maxResolves bounds the siblings one write may name.
const maxResolves = 64

func (d *DB) toWrite(w *Write, principal string) materializer.Write {
	mw := materializer.Write{
		Op: w.Op, Collection: w.Collection, ID: w.ID, Body: w.Body,
		IfMatch: w.IfMatch, HasIfMatch: w.HasIfMatch, IfNoneMatch: w.IfNoneMatch, Resolves: w.Resolves,
	}
	if w.IdempotencyKey != "" {
		// Keys are per principal, so two principals never see each other's results.
		mw.RequestID = principal + "/" + w.IdempotencyKey
	}
	return mw
}

// command builds the command of writes ws. A command with a write that carries no
// idempotency key gets a retry token, so that propose can resubmit it too when an attempt's
// outcome is unknown.
func (d *DB) command(principal string, ws []materializer.Write) *materializer.Command {
	c := &materializer.Command{
		TS: d.clock.Now(), Origin: d.cfg.DC, Principal: principal,
		IdemTTL: uint64(d.cfg.IdempotencyTTL / time.Millisecond), Writes: ws,
	}
	for _, w := range ws {
		if w.RequestID == "" {
			c.Retry, c.RetryTTL = rand.Text(), uint64(d.retryWindow()/time.Millisecond)
			break
		}
	}
	return c
}

// retryWindow is how long a retry token's outcome is remembered: every copy of a command
// is proposed within the write timeout, and one that commits later than a minute after the
// first copy is not a delay raft's transport can hold.
func (d *DB) retryWindow() time.Duration { return max(time.Minute, 2*d.cfg.WriteTimeout) }

// Write applies one write on behalf of principal.
func (d *DB) Write(ctx context.Context, principal string, w Write) (Result, error) {
	if err := w.validate(); err != nil {
		return Result{}, err
	}
	shard := d.host.ShardOf(w.Collection, w.ID)
	if err := d.checkSync(shard, w.Collection); err != nil {
		return Result{}, err
	}
	cmd := d.command(principal, []materializer.Write{d.toWrite(&w, principal)})
	rs, err := d.propose(ctx, shard, cmd)
	if err != nil {
		return Result{}, err
	}
	res, err := resultOf(&w, rs[0])
	if err != nil {
		return res, err
	}
	return res, d.waitShipped(ctx, shard, w.Collection, res)
}

// ItemResult is the outcome of one write of a batch.
type ItemResult struct {
	Result Result
	Err    error
}

// MaxBatch bounds the writes of one Batch call.
const MaxBatch = 1000

// Batch applies writes grouped by shard: each shard's writes apply all or none; shards are
// independent. With an idempotency key k, write i uses k/i. Results are in input order.
func (d *DB) Batch(ctx context.Context, principal string, ws []Write, idempotencyKey string) ([]ItemResult, error) {
	if len(ws) == 0 || len(ws) > MaxBatch {
		return nil, fmt.Errorf("%w: a batch holds 1 to %d writes, got %d", ErrInvalidArgument, MaxBatch, len(ws))
	}
	if idempotencyKey != "" && !ValidIdempotencyKey(idempotencyKey) {
		return nil, fmt.Errorf("%w: idempotency key must be 1-128 printable ASCII characters", ErrInvalidArgument)
	}
	out := make([]ItemResult, len(ws))
	groups := map[uint64][]int{}
	for i := range ws {
		if idempotencyKey != "" {
			ws[i].IdempotencyKey = fmt.Sprintf("%s/%d", idempotencyKey, i)
		}
		s := d.host.ShardOf(ws[i].Collection, ws[i].ID)
		if err := ws[i].validate(); err != nil {
			out[i].Err = err
			continue
		}
		if err := d.checkSync(s, ws[i].Collection); err != nil {
			out[i].Err = err
			continue
		}
		groups[s] = append(groups[s], i)
	}
	// An invalid item aborts the other writes of its shard, as a failed condition would.
	for s, idx := range groups {
		for _, i := range idx {
			if out[i].Err != nil {
				for _, j := range idx {
					if out[j].Err == nil {
						out[j].Err = ErrAborted
					}
				}
				delete(groups, s)
				break
			}
		}
	}
	var wg sync.WaitGroup
	for shard, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mws := make([]materializer.Write, len(idx))
			for k, i := range idx {
				mws[k] = d.toWrite(&ws[i], principal)
			}
			rs, err := d.propose(ctx, shard, d.command(principal, mws))
			for k, i := range idx {
				if err != nil {
					out[i].Err = err
					continue
				}
				out[i].Result, out[i].Err = resultOf(&ws[i], rs[k])
				if out[i].Err == nil {
					out[i].Err = d.waitShipped(ctx, shard, ws[i].Collection, out[i].Result)
				}
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// propose submits cmd to shard. A command with a retry token, or whose writes all carry
// idempotency keys, is resubmitted when its outcome is unknown, since the materializer
// answers a repeat from its records instead of applying it twice.
func (d *DB) propose(ctx context.Context, shard uint64, cmd *materializer.Command) ([]materializer.WriteResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	retryable := true
	for _, w := range cmd.Writes {
		retryable = retryable && (cmd.Retry != "" || w.RequestID != "")
	}
	payload := materializer.EncodeCommand(cmd)
	unknown := false // an attempt ended with its outcome unknown
	for {
		out, err := d.proposeOnce(ctx, shard, payload)
		if err == nil {
			want := len(cmd.Writes)
			if cmd.Index != nil {
				want = 1
			}
			rs, err := materializer.DecodeResults(out)
			if err != nil || len(rs) != want {
				return nil, fmt.Errorf("db: shard %d: %d results for %d operations: %v", shard, len(rs), want, err)
			}
			return rs, nil
		}
		switch {
		case errors.Is(err, log.ErrIndeterminate) && retryable && ctx.Err() == nil:
			d.cfg.Logger.Warn("write outcome unknown; resubmitting", "shard", shard, "err", err)
			unknown = true
			continue
		case errors.Is(err, log.ErrIndeterminate):
			return nil, fmt.Errorf("%w: %v", ErrIndeterminate, err)
		case unknown && (errors.Is(err, log.ErrUnavailable) || errors.Is(err, log.ErrClosed)):
			// An earlier attempt may have committed: that is not "nothing written".
			return nil, fmt.Errorf("%w: an earlier attempt's outcome is unknown, and then: %v", ErrIndeterminate, err)
		case errors.Is(err, log.ErrUnavailable), errors.Is(err, log.ErrClosed):
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return nil, err
	}
}

func resultOf(w *Write, r materializer.WriteResult) (Result, error) {
	switch r.Status {
	case materializer.StatusOK, materializer.StatusCreated:
		return Result{
			Collection: w.Collection, ID: w.ID, Version: r.Version, TS: r.TS, Position: r.Position,
			Created: r.Status == materializer.StatusCreated,
		}, nil
	case materializer.StatusNotFound:
		return Result{}, fmt.Errorf("%w: no document %q in %q", ErrNotFound, w.ID, w.Collection)
	case materializer.StatusPrecondition:
		return Result{}, &PreconditionError{Current: r.Current}
	case materializer.StatusIdemReused:
		return Result{}, ErrIdempotencyKeyReused
	case materializer.StatusAborted:
		return Result{}, ErrAborted
	case materializer.StatusInvalid:
		return Result{}, fmt.Errorf("%w: the result is not a JSON object", ErrInvalidDocument)
	case materializer.StatusSiblings:
		return Result{}, fmt.Errorf("%w: %q in %q has siblings the write does not name (GET /v1/conflicts)", ErrSiblingsUnresolved, w.ID, w.Collection)
	}
	return Result{}, fmt.Errorf("db: unknown write status %d", r.Status)
}

// Consistency selects how fresh a read must be.
type Consistency int

const (
	// Linearizable reads reflect every write acknowledged before the read began.
	Linearizable Consistency = iota
	// Local reads serve the local replica as it is, without a round of raft.
	Local
)

// ParseConsistency parses "", "linearizable" or "local".
func ParseConsistency(s string) (Consistency, error) {
	switch s {
	case "", "linearizable":
		return Linearizable, nil
	case "local":
		return Local, nil
	}
	return 0, fmt.Errorf("%w: consistency must be linearizable or local, got %q", ErrInvalidArgument, s)
}

func (d *DB) barrier(ctx context.Context, shard uint64, c Consistency) error {
	if c == Local {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ReadTimeout)
	defer cancel()
	if err := d.host.ReadBarrier(ctx, shard); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Doc is a document as read.
type Doc struct {
	Collection string
	ID         string
	Version    uint64
	TS         log.Timestamp
	Position   log.Position
	Body       json.RawMessage
}

// Get reads a document. Deleted documents are ErrNotFound.
func (d *DB) Get(ctx context.Context, collection, id string, c Consistency) (Doc, error) {
	if err := validName(collection, id); err != nil {
		return Doc{}, err
	}
	k := tiers.Key{Shard: d.host.ShardOf(collection, id), Collection: collection, ID: id}
	if !d.local(k.Shard) {
		var doc Doc
		err := d.readRemote(ctx, "get", k, c, &doc)
		return doc, err
	}
	if err := d.barrier(ctx, k.Shard, c); err != nil {
		return Doc{}, err
	}
	rec, err := d.mat.Get(k)
	if errors.Is(err, tiers.ErrNotFound) || err == nil && rec.Deleted {
		return Doc{}, fmt.Errorf("%w: no document %q in %q", ErrNotFound, id, collection)
	}
	if err != nil {
		return Doc{}, fmt.Errorf("db: get: %w", err)
	}
	return Doc{Collection: collection, ID: id, Version: rec.Version, TS: rec.TS, Position: rec.Position, Body: rec.Body}, nil
}

// Version is one entry of a document's history.
type Version struct {
	Version   uint64
	Op        log.Op
	TS        log.Timestamp
	Principal string
	Position  log.Position
	Body      json.RawMessage // the document after this version; nil after a delete or a redaction
	Redacted  bool
}

// History returns every version of a document, oldest first; ErrNotFound when it never
// existed.
func (d *DB) History(ctx context.Context, collection, id string, c Consistency) ([]Version, error) {
	if err := validName(collection, id); err != nil {
		return nil, err
	}
	k := tiers.Key{Shard: d.host.ShardOf(collection, id), Collection: collection, ID: id}
	if !d.local(k.Shard) {
		var vs []Version
		err := d.readRemote(ctx, "history", k, c, &vs)
		return vs, err
	}
	if err := d.barrier(ctx, k.Shard, c); err != nil {
		return nil, err
	}
	vs, err := d.mat.History(k)
	if err != nil {
		return nil, fmt.Errorf("db: history: %w", err)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: no document %q in %q", ErrNotFound, id, collection)
	}
	out := make([]Version, len(vs))
	for i, v := range vs {
		out[i] = Version{Version: v.Version, Op: v.Op, TS: v.TS, Principal: v.Principal, Position: v.Position, Body: v.Body, Redacted: v.Redacted}
	}
	return out, nil
}

// Collections lists collections with their live document counts, summed over the
// shards (those this node holds no replica of are counted by a node that does).
func (d *DB) Collections(ctx context.Context, c Consistency) ([]materializer.CollectionCount, error) {
	total := map[string]int64{}
	for s := uint64(1); s <= uint64(d.host.Shards()); s++ {
		var counts map[string]int64
		if d.local(s) {
			if err := d.barrier(ctx, s, c); err != nil {
				return nil, err
			}
			var err error
			if counts, err = d.store.Counts(s); err != nil {
				return nil, err
			}
		} else if err := d.peerCall(ctx, s, "counts", peerShard{Shard: s, Consistency: c}, &counts); err != nil {
			return nil, err
		}
		for k, v := range counts {
			total[k] += v
		}
	}
	out := make([]materializer.CollectionCount, 0, len(total))
	for k, v := range total {
		out = append(out, materializer.CollectionCount{Name: k, Count: v})
	}
	slices.SortFunc(out, func(a, b materializer.CollectionCount) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Digest returns the SHA-256 state digest of each shard this node holds a replica of:
// equal on replicas that applied the same events.
func (d *DB) Digest() (map[uint64]log.Hash, error) {
	out := map[uint64]log.Hash{}
	for _, s := range d.localShards() {
		h, err := d.mat.Digest(s)
		if err != nil {
			return nil, err
		}
		out[s] = h
	}
	return out, nil
}

func validName(collection, id string) error {
	if !ValidCollection(collection) {
		return fmt.Errorf("%w: %q", ErrInvalidCollection, collection)
	}
	if !ValidID(id) {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	return nil
}
