package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"regexp"
	"time"
)

// Key distributions (Params.Distribution).
const (
	DistZipfian = "zipfian" // YCSB's scrambled zipfian
	DistUniform = "uniform"
	DistLatest  = "latest" // YCSB's skewed latest: recent inserts are hot
)

// Protocols (Params.Protocol).
const (
	ProtocolREST = "rest"
	ProtocolGRPC = "grpc"
)

// Params are the parameters of a run; all of them are recorded in results.json. The zero
// value of each field means its default (listed on the field), except where noted.
type Params struct {
	Suite    string   `json:"suite"`              // default "ycsb-a"
	Addrs    []string `json:"addrs"`              // node addresses; clients are spread over them
	Embedded bool     `json:"embedded,omitempty"` // Addrs is one throwaway node started for this run
	Protocol string   `json:"protocol"`           // default "rest"
	// GRPCAddrs are the nodes' gRPC addresses, in the order of Addrs, for the grpc protocol
	// and for the changefeed suite's subscribers; default: each of Addrs with its port
	// plus 2 (the server's default layout: HTTP 7070, raft 7071, gRPC 7072).
	GRPCAddrs []string `json:"grpc_addrs,omitempty"`

	Clients int `json:"clients"` // concurrent clients (closed loop) or maximum in flight (open loop); default 16
	// Rate, when > 0, makes the run open loop: steps are started on a fixed schedule of
	// Rate per second whatever the latency, and latency is measured from the planned start.
	Rate     float64       `json:"rate,omitempty"`
	Duration time.Duration `json:"duration"` // measured phase; default 30s unless Ops is set
	Ops      int64         `json:"ops,omitempty"`
	// Warmup runs the workload before measuring and discards what it saw; zero means none.
	Warmup time.Duration `json:"warmup"`
	// MaxDuration bounds the whole run including the load; default Warmup+Duration+10m, or
	// 1h when only Ops bounds the measured phase.
	MaxDuration time.Duration `json:"max_duration"`
	OpTimeout   time.Duration `json:"op_timeout"` // per request; default 10s

	RecordCount int64  `json:"record_count"` // records loaded (YCSB) or keys written to (write suites); default 10000
	FieldCount  int    `json:"field_count"`  // default 10
	FieldLength int    `json:"field_length"` // bytes per field; default 100; at least 16
	Seed        uint64 `json:"seed"`         // default: chosen at random, and recorded
	// Distribution of key choice; default: the suite's own (zipfian for YCSB A–C, E, F;
	// latest for D; uniform for the write suites).
	Distribution   string `json:"distribution"`
	ScanLength     int    `json:"scan_length"`      // workload E: scans are uniform in [1, ScanLength]; default 100
	BatchSize      int    `json:"batch_size"`       // write-batch: writes per POST /v1/batch; default 100
	WriteAllFields bool   `json:"write_all_fields"` // YCSB update = PUT of the full record instead of PATCH of one field
	// Subscribers, for the changefeed suite: concurrent ChangeService.Watch streams on the
	// run's collection; default 8.
	Subscribers int `json:"subscribers,omitempty"`
	// WatchGRPCAddrs, for the xdc suite: the gRPC addresses the subscribers watch (nodes of
	// the other datacenter); default GRPCAddrs.
	WatchGRPCAddrs []string `json:"watch_grpc_addrs,omitempty"`
	// QueryIndex, for the query suite: "both" (the default: indexes are built and every
	// query runs as an indexed and as a full-scan operation), "indexed" or "full_scan"
	// (no index is built).
	QueryIndex string `json:"query_index,omitempty"`
	// QueryKinds, for the query suite: the queries to run, of eq, range, topk and count;
	// default all four.
	QueryKinds []string `json:"query_kinds,omitempty"`
	// Collection to use; default a fresh one per run, "bench_<suite>_<8 hex digits>", so
	// that a run's data is exactly what it wrote.
	Collection    string `json:"collection"`
	SkipLoad      bool   `json:"skip_load,omitempty"` // use records loaded before (requires Collection)
	LoadBatchSize int    `json:"load_batch_size"`     // records per batch in the load phase; default 100; 1 = single PUTs
	// VerifyFraction of the reads during the run are decoded and checked; default 0.1.
	VerifyFraction float64 `json:"verify_fraction"`
	// VerifySample keys are read back and checked after the run; default 500.
	VerifySample int `json:"verify_sample"`
	// ReadConsistency is "" (linearizable, the default) or "local". Local reads may be
	// stale, so they are not checked for staleness, only for integrity.
	ReadConsistency string `json:"read_consistency,omitempty"`
	// NodeCount is the number of nodes behind Addrs when it is not len(Addrs) (a load
	// balancer in front of a cluster); default len(Addrs).
	NodeCount int `json:"node_count"`
}

// Config is a run: its Params plus where progress and logs go.
type Config struct {
	Params
	// Progress, when set, receives a live progress line (meant for a terminal).
	Progress io.Writer
	Logger   *slog.Logger
	// Probe, when set, is a directory on the server's disk (embedded runs): its fsync
	// latency is measured before the run and recorded in the shape.
	ProbeDir string
	// Shards, when known (embedded runs), is the target's raft shard count, recorded in
	// the shape.
	Shards int
}

var collectionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// withDefaults returns p with every zero field that has a default set to it. It does not
// choose the seed or the collection (the runner does, and records them).
func (p Params) withDefaults() Params {
	if p.Suite == "" {
		p.Suite = "ycsb-a"
	}
	if p.Protocol == "" {
		p.Protocol = ProtocolREST
	}
	if p.Clients == 0 {
		p.Clients = 16
	}
	if p.Duration == 0 && p.Ops == 0 {
		p.Duration = 30 * time.Second
	}
	if p.OpTimeout == 0 {
		p.OpTimeout = 10 * time.Second
	}
	if p.MaxDuration == 0 {
		if p.Duration > 0 {
			p.MaxDuration = p.Warmup + p.Duration + 10*time.Minute
		} else {
			p.MaxDuration = time.Hour
		}
	}
	if p.RecordCount == 0 {
		p.RecordCount = 10000
	}
	if p.FieldCount == 0 {
		p.FieldCount = 10
	}
	if p.FieldLength == 0 {
		p.FieldLength = 100
	}
	if p.ScanLength == 0 {
		p.ScanLength = 100
	}
	if p.BatchSize == 0 {
		p.BatchSize = 100
	}
	if p.LoadBatchSize == 0 {
		p.LoadBatchSize = 100
	}
	if p.VerifyFraction == 0 {
		p.VerifyFraction = 0.1
	}
	if p.VerifySample == 0 {
		p.VerifySample = 500
	}
	if p.NodeCount == 0 {
		p.NodeCount = len(p.Addrs)
	}
	if p.Subscribers == 0 {
		p.Subscribers = 8
	}
	return p
}

// Validate reports every problem with the parameters at once (after defaults are applied).
// Each problem wraps ErrInvalidConfig.
func (p Params) Validate() error {
	p = p.withDefaults()
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...))
	}
	if len(p.Addrs) == 0 {
		bad("no target: give at least one address (or run embedded)")
	}
	switch p.Protocol {
	case ProtocolREST, ProtocolGRPC:
	default:
		bad("protocol %q: want %s or %s", p.Protocol, ProtocolREST, ProtocolGRPC)
	}
	if len(p.GRPCAddrs) > 0 && len(p.Addrs) > 0 && len(p.GRPCAddrs) != len(p.Addrs) {
		bad("%d gRPC addresses for %d addresses: give one per node, in the same order", len(p.GRPCAddrs), len(p.Addrs))
	}
	if p.Protocol == ProtocolGRPC {
		if _, err := grpcTargets(p); err != nil {
			errs = append(errs, err)
		}
	}
	if p.Subscribers < 1 || p.Subscribers > 10000 {
		bad("subscribers %d: want 1..10000", p.Subscribers)
	}
	if p.Clients < 1 || p.Clients > 100000 {
		bad("clients %d: want 1..100000", p.Clients)
	}
	if p.Rate < 0 || math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0) || p.Rate > 10_000_000 {
		bad("rate %v: want 0 (closed loop) or a positive ops/s up to 1e7", p.Rate)
	}
	if p.Duration < 0 {
		bad("duration %v is negative", p.Duration)
	}
	if p.Ops < 0 {
		bad("ops %d is negative", p.Ops)
	}
	if p.Warmup < 0 {
		bad("warmup %v is negative", p.Warmup)
	}
	if p.OpTimeout <= 0 || p.OpTimeout > 5*time.Minute {
		bad("op timeout %v: want (0, 5m]", p.OpTimeout)
	}
	if p.MaxDuration <= 0 {
		bad("max duration %v must be positive", p.MaxDuration)
	} else if p.MaxDuration < p.Warmup+p.Duration {
		bad("max duration %v is shorter than warmup+duration %v", p.MaxDuration, p.Warmup+p.Duration)
	}
	if p.RecordCount < 1 || p.RecordCount > 1_000_000_000 {
		bad("record count %d: want 1..1e9", p.RecordCount)
	}
	if p.FieldCount < 1 || p.FieldCount > 1000 {
		bad("field count %d: want 1..1000", p.FieldCount)
	}
	if p.FieldLength < minFieldLength || p.FieldLength > 1<<20 {
		bad("field length %d: want %d..%d (each value carries a %d-byte tag so reads can be verified)", p.FieldLength, minFieldLength, 1<<20, tagLen+1)
	}
	if p.FieldCount*p.FieldLength > 1<<20-64*1024 {
		bad("document of %d×%d bytes is over the server's 1 MiB body limit", p.FieldCount, p.FieldLength)
	}
	switch p.Distribution {
	case "", DistZipfian, DistUniform, DistLatest:
	default:
		bad("distribution %q: want %s, %s or %s", p.Distribution, DistZipfian, DistUniform, DistLatest)
	}
	if p.ScanLength < 1 || p.ScanLength > 10000 {
		bad("scan length %d: want 1..10000", p.ScanLength)
	}
	if p.BatchSize < 1 || p.BatchSize > 1000 {
		bad("batch size %d: want 1..1000 (the server's limit)", p.BatchSize)
	}
	if p.LoadBatchSize < 1 || p.LoadBatchSize > 1000 {
		bad("load batch size %d: want 1..1000", p.LoadBatchSize)
	}
	if p.VerifyFraction <= 0 || p.VerifyFraction > 1 || math.IsNaN(p.VerifyFraction) {
		bad("verify fraction %v: want (0, 1]", p.VerifyFraction)
	}
	if p.VerifySample < 1 {
		bad("verify sample %d: want at least 1", p.VerifySample)
	}
	switch p.ReadConsistency {
	case "", "local", "linearizable":
	default:
		bad("read consistency %q: want linearizable or local", p.ReadConsistency)
	}
	if p.Collection != "" && !collectionRE.MatchString(p.Collection) {
		bad("collection %q: 1–64 bytes, first [A-Za-z0-9], then [A-Za-z0-9_.-]", p.Collection)
	}
	if p.SkipLoad && p.Collection == "" {
		bad("skip load needs the collection loaded before (set the collection)")
	}
	if p.NodeCount < 0 {
		bad("node count %d is negative", p.NodeCount)
	}
	return errors.Join(errs...)
}

// MarshalJSON writes durations as Go duration strings ("30s").
func (p Params) MarshalJSON() ([]byte, error) {
	type plain Params
	return json.Marshal(struct {
		plain
		Duration    string `json:"duration"`
		Warmup      string `json:"warmup"`
		MaxDuration string `json:"max_duration"`
		OpTimeout   string `json:"op_timeout"`
	}{plain(p), p.Duration.String(), p.Warmup.String(), p.MaxDuration.String(), p.OpTimeout.String()})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Params) UnmarshalJSON(b []byte) error {
	type plain Params
	var v struct {
		plain
		Duration    string `json:"duration"`
		Warmup      string `json:"warmup"`
		MaxDuration string `json:"max_duration"`
		OpTimeout   string `json:"op_timeout"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Params(v.plain)
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{v.Duration, &p.Duration}, {v.Warmup, &p.Warmup}, {v.MaxDuration, &p.MaxDuration}, {v.OpTimeout, &p.OpTimeout}} {
		if d.s == "" {
			continue
		}
		x, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("bench: params: %w", err)
		}
		*d.dst = x
	}
	return nil
}
