package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/aerolithsdb/aerolith/gateway/ws"
	"github.com/aerolithsdb/aerolith/node"
	"github.com/aerolithsdb/aerolith/replication"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newServerCmd() *cobra.Command {
	var (
		cfg        node.Config
		logLevel   string
		logFormat  string
		noGroup    bool
		members    string
		kafkaShip  bool
		kafkaApply bool
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a node (with no flags: a single node, data in ./data, HTTP on 127.0.0.1:7070)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return usageError(err)
			}
			logger, err := newLogger(logLevel, logFormat)
			if err != nil {
				return usageError(err)
			}
			cfg.Logger = logger
			cfg.DisableGroupCommit = noGroup
			cfg.Replication.NoShip, cfg.Replication.NoApply = !kafkaShip, !kafkaApply
			// Zero means "default" inside node.Config; on the command line it is a mistake.
			var errs []error
			if cfg.NodeID == 0 {
				errs = append(errs, errors.New("--node-id must be > 0"))
			}
			if cfg.Shards <= 0 {
				errs = append(errs, errors.New("--shards must be > 0"))
			}
			if members != "" && cfg.Join != "" {
				errs = append(errs, errors.New("--initial-members and --join exclude each other"))
			}
			if cfg.DeadAfter <= 0 {
				errs = append(errs, errors.New("--dead-after must be > 0"))
			}
			if members != "" {
				m, err := parseMembers(members)
				if err != nil {
					errs = append(errs, err)
				}
				cfg.InitialMembers = m
			}
			if err := errors.Join(append(errs, cfg.Validate())...); err != nil {
				return usageError(fmt.Errorf("invalid configuration:\n%w", err))
			}
			return runServer(cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", node.DefaultDataDir, "directory for the raft log and the store")
	f.StringVar(&cfg.HTTPAddr, "http-addr", node.DefaultHTTPAddr, "REST listen address")
	f.StringVar(&cfg.RaftAddr, "raft-addr", node.DefaultRaftAddr, "raft address: the one peers dial (--initial-members), and raft listens on it unless --raft-listen is set")
	f.StringVar(&cfg.RaftListenAddr, "raft-listen", "", "raft listen address when it differs from --raft-addr, e.g. 0.0.0.0:7071 in a container (default: --raft-addr)")
	f.StringVar(&cfg.GRPCAddr, "grpc-addr", node.DefaultGRPCAddr, `gRPC listen address ("off" disables gRPC)`)
	f.Uint64Var(&cfg.NodeID, "node-id", 1, "this node's id (> 0)")
	f.IntVar(&cfg.Shards, "shards", 4, "raft groups (shards) per node; fixed when the data dir is created")
	f.StringVar(&cfg.DC, "dc", "dc1", "datacenter name")
	addKafkaFlags(f, &cfg.Replication, &kafkaShip, &kafkaApply)
	f.StringVar(&members, "initial-members", "", "a static cluster: id=raft-host:port of every member, this node included, comma-separated\n"+
		"(the same on every node; each node holds a replica of every shard). Read when the data dir is created")
	f.StringVar(&cfg.Join, "join", "", "join a running cluster through the HTTP address of any member (host:port); read when the data dir is created")
	f.StringVar(&cfg.AdvertiseHTTP, "advertise-http", "", "host:port other nodes reach this node's HTTP API on (default: the bound --http-addr unless it is a wildcard)")
	f.DurationVar(&cfg.DeadAfter, "dead-after", 5*time.Minute, "how long a node may stay unreachable before its votes are re-created on other nodes")
	f.IntVar(&cfg.Limits.MaxBodyBytes, "max-body-bytes", gateway.DefaultLimits().MaxBodyBytes, "largest accepted request body")
	f.IntVar(&cfg.Limits.MaxJSONDepth, "max-json-depth", gateway.DefaultLimits().MaxJSONDepth, "deepest accepted JSON nesting")
	f.IntVar(&cfg.Changes.MaxConnections, "changes-max-connections", ws.DefaultLimits().MaxConnections, "change-stream connections (WebSocket and SSE) per node")
	f.IntVar(&cfg.Changes.MaxSubscriptions, "changes-max-subscriptions", ws.DefaultLimits().MaxSubscriptions, "subscriptions and live queries per WebSocket connection")
	f.Int64Var(&cfg.CacheBytes, "cache-bytes", 64<<20, "L1 document cache size in bytes")
	f.IntVar(&cfg.RetainEvents, "retain-events", 100_000, "events per shard kept in pebble before older ones move to the archive (-1: never by count)")
	f.DurationVar(&cfg.RetainAge, "retain-age", 0, "move events older than this to the archive (0: never by age)")
	f.IntVar(&cfg.SegmentEvents, "segment-events", 4096, "events per archive segment")
	f.BoolVar(&noGroup, "no-group-commit", false, "propose every write on its own (for measuring group commit)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

// applyEnv sets every flag not given on the command line from AEROLITH_<FLAG> (dashes as
// underscores), e.g. AEROLITH_DATA_DIR.
func applyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := "AEROLITH_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, got %q", format)
}

func runServer(cfg node.Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	n, err := node.Start(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	grpcAddr := n.GRPCAddr()
	if grpcAddr == "" {
		grpcAddr = node.GRPCOff
	}
	fmt.Printf("aerolith: serving http://%s, grpc %s (raft %s, data %s, %d shards, node %d, dc %s)\n",
		n.HTTPAddr(), grpcAddr, cfg.RaftAddr, cfg.DataDir, cfg.Shards, cfg.NodeID, cfg.DC)
	select {
	case <-ctx.Done():
		cfg.Logger.Info("shutting down", "reason", "signal")
	case err := <-n.Done():
		cfg.Logger.Error("the node stops on its own", "err", err)
		return errors.Join(err, n.Close())
	}
	return n.Close()
}

// addKafkaFlags binds the cross-datacenter replication flags (docs/replication.md).
func addKafkaFlags(f *pflag.FlagSet, rc *replication.Config, ship, apply *bool) {
	f.StringSliceVar(&rc.Brokers, "kafka-brokers", nil, "Kafka bootstrap brokers (host:port, comma-separated); replication to other datacenters is on when set")
	f.StringVar(&rc.TopicPrefix, "kafka-topic-prefix", replication.DefaultTopicPrefix, "each datacenter ships to the topic <prefix><dc>")
	f.StringSliceVar(&rc.Remotes, "kafka-remote-dcs", nil, "datacenters to apply here (comma-separated; default: every topic with the prefix but this datacenter's)")
	f.IntVar(&rc.Partitions, "kafka-partitions", 4, "partitions of the topic this datacenter creates when it does not exist")
	f.BoolVar(ship, "kafka-ship", true, "ship this datacenter's writes (in a datacenter of several nodes, exactly one node ships, or use --kafka-ship-elect)")
	f.BoolVar(&rc.Elect, "kafka-ship-elect", false, "in a datacenter of several nodes: the node that leads the meta shard ships, and shipping moves with that leadership\n"+
		"(progress kept in the meta shard); give it to every node")
	f.BoolVar(apply, "kafka-apply", true, "apply other datacenters' writes (nodes of a datacenter share one consumer group)")
	f.BoolVar(&rc.TLS, "kafka-tls", false, "connect to the brokers over TLS (implied by the other --kafka-tls-* flags)")
	f.StringVar(&rc.TLSCAFile, "kafka-tls-ca", "", "PEM file of the CAs that sign the brokers' certificates (default: the system's)")
	f.StringVar(&rc.TLSCertFile, "kafka-tls-cert", "", "PEM client certificate, with --kafka-tls-key")
	f.StringVar(&rc.TLSKeyFile, "kafka-tls-key", "", "PEM client key")
	f.StringVar(&rc.TLSServerName, "kafka-tls-server-name", "", "server name to verify in the brokers' certificates")
	f.BoolVar(&rc.TLSInsecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "do not verify the brokers' certificates (testing only)")
	f.StringVar(&rc.SASLMechanism, "kafka-sasl-mechanism", "", "plain, scram-sha-256 or scram-sha-512 (default: no SASL)")
	f.StringVar(&rc.SASLUser, "kafka-sasl-user", "", "SASL user")
	f.StringVar(&rc.SASLPassword, "kafka-sasl-password", "", "SASL password (prefer AEROLITH_KAFKA_SASL_PASSWORD)")
}
