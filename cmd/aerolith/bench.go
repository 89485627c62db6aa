package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aerolithsdb/aerolith/bench"
	"github.com/aerolithsdb/aerolith/bench/embedded"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// errVerifyFailed is returned (exit status 1) after the report when reads did not match
// what was written: such figures must not be taken for results.
var errVerifyFailed = errors.New("bench: verification failed: reads did not match what was written (see the warnings)")

// errPartial is returned (exit status 1) after the report of a run that stopped early.
var errPartial = errors.New("bench: the run stopped before its end; the figures above are partial")

func newBenchCmd() *cobra.Command {
	reg := bench.DefaultRegistry()
	var (
		p              bench.Params
		valueSize      int
		out            string
		noProgress     bool
		embeddedShards int
		logLevel       string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run a load suite against a node or cluster (or a throwaway embedded node) and report",
		Long: `Run a load suite and report per-operation throughput, errors and latency percentiles
(HDR histograms), with the shape of the run (build, cores, CPU, fsync, payload, nodes).

Suites: ` + strings.Join(reg.Names(), ", ") + ` (see "aerolith bench list").

Closed loop by default (--clients workers back to back); --rate R runs open loop at R
ops/s and says whether the rate was held. The run stops by itself after --duration (or
--ops). A sample of reads is checked against what was written; mismatches are errors and
make the command exit 1.

Examples:
  aerolith bench --embedded --suite ycsb-a --duration 30s --out results/a
  aerolith bench --addr 10.0.0.1:7070 --addr 10.0.0.2:7070 --suite write-batch --batch-size 100
  aerolith bench --embedded --protocol grpc --suite write --clients 32
  aerolith bench --embedded --suite changefeed --subscribers 8 --clients 32
  aerolith bench compare results/a/results.json results/b/results.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			if p.Embedded == (len(p.Addrs) > 0) {
				return usageError(errors.New("bench: give either --addr (one or more) or --embedded"))
			}
			if p.Embedded && len(p.GRPCAddrs) > 0 {
				return usageError(errors.New("bench: --grpc-addr is for --addr targets (the embedded node's is known)"))
			}
			if f.Changed("value-size") {
				if f.Changed("field-length") {
					return usageError(errors.New("bench: --value-size and --field-length both set; give one"))
				}
				if valueSize < 1 || p.FieldCount < 1 {
					return usageError(fmt.Errorf("bench: --value-size %d: want a positive size", valueSize))
				}
				p.FieldLength = (valueSize + p.FieldCount - 1) / p.FieldCount
			}
			suite, ok := reg.Get(p.Suite)
			if !ok {
				return usageError(fmt.Errorf("%w %q (have %s)", bench.ErrUnknownSuite, p.Suite, strings.Join(reg.Names(), ", ")))
			}
			if !f.Changed("record-count") && suite.RecordCount > 0 {
				p.RecordCount = suite.RecordCount
			}
			check := p
			if p.Embedded {
				check.Addrs, check.GRPCAddrs = []string{"embedded"}, []string{"embedded:0"}
			}
			if err := check.Validate(); err != nil {
				return usageError(fmt.Errorf("invalid parameters:\n%w", err))
			}
			return runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), reg, p, benchRunOpts{
				out: out, progress: !noProgress, shards: embeddedShards, logLevel: logLevel,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.Suite, "suite", "ycsb-a", "suite to run: "+strings.Join(reg.Names(), ", "))
	f.StringSliceVar(&p.Addrs, "addr", nil, "node address host:port (repeat or comma-separate for a cluster; clients are spread over them)")
	f.BoolVar(&p.Embedded, "embedded", false, "start a throwaway single node in a temporary directory, bench it, remove it")
	f.IntVar(&embeddedShards, "embedded-shards", 0, "raft shards of the embedded node (0: the server's default)")
	f.StringVar(&logLevel, "embedded-log-level", "error", "log level of the embedded node: debug, info, warn or error")
	f.StringVar(&p.Protocol, "protocol", bench.ProtocolREST, "client protocol: rest or grpc")
	f.StringSliceVar(&p.GRPCAddrs, "grpc-addr", nil, "gRPC address of each --addr node, same order (default: each --addr's port + 2, the server's default layout); for --protocol grpc and the changefeed suite's subscribers")
	f.StringSliceVar(&p.WatchGRPCAddrs, "watch-grpc-addr", nil, "xdc: gRPC address of each node of the other datacenter, watched by the subscribers")
	f.IntVar(&p.Subscribers, "subscribers", 8, "changefeed: concurrent change streams (gRPC ChangeService.Watch) on the run's collection")
	f.IntVar(&p.Clients, "clients", 16, "concurrent clients (closed loop) or most requests in flight (open loop)")
	f.Float64Var(&p.Rate, "rate", 0, "open loop: target ops/s (0: closed loop)")
	f.DurationVar(&p.Duration, "duration", 0, "length of the measured phase (default 30s unless --ops is given)")
	f.Int64Var(&p.Ops, "ops", 0, "stop the measured phase after this many operations")
	f.DurationVar(&p.Warmup, "warmup", 5*time.Second, "run this long before measuring; discarded")
	f.DurationVar(&p.MaxDuration, "max-duration", 0, "hard bound on the whole run including the load (default warmup+duration+10m, or 1h with --ops alone)")
	f.DurationVar(&p.OpTimeout, "op-timeout", 10*time.Second, "timeout of each request")
	f.Int64Var(&p.RecordCount, "record-count", 10000, "records loaded (YCSB, query) or keys written to (write suites); the query suite's default is 200000")
	f.IntVar(&p.FieldCount, "field-count", 10, "fields per record")
	f.IntVar(&p.FieldLength, "field-length", 100, "bytes per field (at least 16)")
	f.IntVar(&valueSize, "value-size", 0, "bytes of field data per document; sets --field-length to value-size/field-count")
	f.Uint64Var(&p.Seed, "seed", 0, "random seed (0: chosen at random; always recorded)")
	f.StringVar(&p.Distribution, "distribution", "", "key choice: zipfian, uniform or latest (default: the suite's: zipfian for YCSB, latest for D, uniform for write suites)")
	f.IntVar(&p.ScanLength, "scan-length", 100, "YCSB E: scans read uniform [1, scan-length] records")
	f.IntVar(&p.BatchSize, "batch-size", 100, "write-batch: writes per POST /v1/batch (≤ 1000)")
	f.BoolVar(&p.WriteAllFields, "write-all-fields", false, "YCSB update = PUT of the whole record (default: PATCH of one field)")
	f.StringVar(&p.QueryIndex, "query-index", "", "query suite: both (the default: each query indexed and as a full scan, interleaved), indexed, or full_scan (no index built)")
	f.StringSliceVar(&p.QueryKinds, "query-kinds", nil, "query suite: the queries to run, of eq, range, topk, count (default all)")
	f.StringVar(&p.Collection, "collection", "", "collection to use (default: a fresh bench_<suite>_<hex> per run)")
	f.BoolVar(&p.SkipLoad, "skip-load", false, "do not load; use records loaded before into --collection with the same --record-count")
	f.IntVar(&p.LoadBatchSize, "load-batch-size", 100, "records per batch in the load phase (1: single PUTs)")
	f.Float64Var(&p.VerifyFraction, "verify-fraction", 0.1, "share of reads decoded and checked during the run (0 < f ≤ 1)")
	f.IntVar(&p.VerifySample, "verify-sample", 500, "keys read back and checked after the run")
	f.StringVar(&p.ReadConsistency, "read-consistency", "", "reads: linearizable (default) or local")
	f.IntVar(&p.NodeCount, "node-count", 0, "nodes behind --addr when not one per address (recorded in the shape)")
	f.StringVar(&out, "out", "", "directory for results.json and report.html")
	f.BoolVar(&noProgress, "no-progress", false, "no progress line (it is only drawn when stderr is a terminal)")

	cmd.AddCommand(newBenchCompareCmd(), newBenchListCmd(reg))
	return cmd
}

type benchRunOpts struct {
	out      string
	progress bool
	shards   int
	logLevel string
}

func runBench(ctx context.Context, stdout, stderr io.Writer, reg *bench.Registry, p bench.Params, o benchRunOpts) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := bench.Config{Params: p}
	if o.progress {
		if f, ok := stderr.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
			cfg.Progress = stderr
		}
	}
	if p.Embedded {
		logger, lerr := newLogger(o.logLevel, "text")
		if lerr != nil {
			return usageError(lerr)
		}
		startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		n, serr := embedded.Start(startCtx, embedded.Config{Shards: o.shards, Logger: logger})
		cancel()
		if serr != nil {
			return serr
		}
		defer func() {
			if cerr := n.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		fmt.Fprintf(stderr, "embedded node on %s (data in %s, removed afterwards)\n", n.Addr(), n.Dir())
		cfg.Addrs = []string{n.Addr()}
		cfg.GRPCAddrs = []string{n.GRPCAddr()}
		cfg.NodeCount = 1
		cfg.ProbeDir = n.Dir()
		cfg.Shards = n.Shards()
	}
	res, err := bench.Run(ctx, cfg, reg)
	if err != nil {
		if errors.Is(err, bench.ErrInvalidConfig) || errors.Is(err, bench.ErrUnknownSuite) || errors.Is(err, bench.ErrProtocolUnsupported) {
			return usageError(err)
		}
		return err
	}
	if err := res.WriteMarkdown(stdout); err != nil {
		return err
	}
	if o.out != "" {
		if err := res.WriteDir(o.out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s and %s\n", filepath.Join(o.out, "results.json"), filepath.Join(o.out, "report.html"))
	}
	if res.Verify.Mismatches > 0 {
		return errVerifyFailed
	}
	if res.Interrupted {
		return errPartial
	}
	return nil
}

func newBenchCompareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare A/results.json B/results.json",
		Short: "Print two runs side by side with the ratios B/A, and what differs in their shapes",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError(fmt.Errorf("bench compare: want 2 results files, got %d", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := bench.ReadResults(args[0])
			if err != nil {
				return err
			}
			b, err := bench.ReadResults(args[1])
			if err != nil {
				return err
			}
			return bench.Compare(cmd.OutOrStdout(), a, b, args[0], args[1])
		},
	}
}

func newBenchListCmd(reg *bench.Registry) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the suites",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range reg.Suites() {
				fmt.Fprintf(cmd.OutOrStdout(), "%-12s %s\n", s.Name, s.Summary)
			}
			return nil
		},
	}
}
