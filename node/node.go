package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/gateway"
	grpcgw "github.com/aerolithsdb/aerolith/gateway/grpc"
	"github.com/aerolithsdb/aerolith/gateway/peer"
	"github.com/aerolithsdb/aerolith/gateway/rest"
	"github.com/aerolithsdb/aerolith/gateway/ws"
	"github.com/aerolithsdb/aerolith/internal/connmux"
	"github.com/aerolithsdb/aerolith/meta"
	"github.com/aerolithsdb/aerolith/replication"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// peerSniffWait is how long a new connection to the HTTP port may take to show whether it
// speaks HTTP/1 or HTTP/2 (the peer service) before it is closed.
const peerSniffWait = 10 * time.Second

// Defaults of a single node with embedded everything.
const (
	DefaultDataDir  = "./data"
	DefaultHTTPAddr = "127.0.0.1:7070"
	DefaultRaftAddr = "127.0.0.1:7071"
	DefaultGRPCAddr = "127.0.0.1:7072"
	// GRPCOff as Config.GRPCAddr runs the node without the gRPC gateway.
	GRPCOff = "off"
)

// Config configures a node. Zero values mean defaults.
type Config struct {
	DataDir  string
	HTTPAddr string // "host:0" picks a free port; HTTPAddr() tells which
	RaftAddr string
	// RaftListenAddr is where raft binds when it differs from RaftAddr, the address peers
	// dial (e.g. 0.0.0.0:7071 in a container named by its hostname). Default: RaftAddr.
	RaftListenAddr string
	// GRPCAddr is the gRPC gateway's address: default DefaultGRPCAddr, or "host:0" when
	// HTTPAddr asks for port 0 (so nodes started for tests can run side by side); GRPCOff
	// disables it. GRPCAddr() tells which port was taken.
	GRPCAddr string
	NodeID   uint64 // default 1
	Shards   int    // default 4
	DC       string // default "dc1"
	// InitialMembers makes this node one of a static cluster: node id → raft address of
	// every member, itself included, the same on every node. Every node runs a replica of
	// every shard. Default: a cluster of this node alone.
	InitialMembers map[uint64]string
	// Join is the HTTP address of a member of a running cluster: a node with no raft data
	// yet asks it to be added, then starts its replicas as joining. A restarted node
	// (its raft data exists) just starts. InitialMembers is ignored.
	Join string
	// AdvertiseHTTP is the host:port other nodes reach this node's HTTP API and peer
	// service on (default: the address HTTPAddr bound, unless that is a wildcard address).
	AdvertiseHTTP string
	// DeadAfter: see db.Config.
	DeadAfter time.Duration

	Limits     gateway.Limits
	Changes    ws.Limits // GET /v1/changes (WebSocket and SSE): connections, subscriptions, keepalive
	CacheBytes int64
	// Archive (L4) retention, per shard: see db.Config.
	RetainEvents       int
	RetainAge          time.Duration
	SegmentEvents      int
	DisableGroupCommit bool
	ShutdownTimeout    time.Duration // default 15s

	// Replication to other datacenters through Kafka: on when Brokers are given. DC,
	// NodeID, Logger and Registerer come from the node; DataDir defaults to
	// <DataDir>/replication.
	Replication replication.Config

	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.RaftAddr == "" {
		c.RaftAddr = DefaultRaftAddr
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
		if host, port, err := net.SplitHostPort(c.HTTPAddr); err == nil && port == "0" {
			c.GRPCAddr = net.JoinHostPort(host, "0")
		}
	}
	if c.NodeID == 0 {
		c.NodeID = 1
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c Config) dbConfig() db.Config {
	return db.Config{
		DataDir: c.DataDir, NodeID: c.NodeID, RaftAddr: c.RaftAddr, RaftListenAddr: c.RaftListenAddr, Shards: c.Shards, DC: c.DC,
		CacheBytes: c.CacheBytes, DisableGroupCommit: c.DisableGroupCommit, Logger: c.Logger,
		InitialMembers: c.InitialMembers, Join: c.Join != "", AdvertiseHTTP: c.AdvertiseHTTP, DeadAfter: c.DeadAfter,
		RetainEvents: c.RetainEvents, RetainAge: c.RetainAge, SegmentEvents: c.SegmentEvents,
	}
}

// Validate reports every problem with c (after defaults), creating nothing.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if err := c.dbConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Changes.Validate(); err != nil {
		errs = append(errs, err)
	}
	addrs := map[string]string{"http address": c.HTTPAddr, "raft address": c.RaftAddr}
	if c.GRPCAddr != GRPCOff {
		addrs["grpc address"] = c.GRPCAddr
	}
	if c.RaftListenAddr != "" {
		addrs["raft listen address"] = c.RaftListenAddr
	}
	for name, addr := range addrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", name, addr, err))
		}
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("shutdown timeout must not be negative"))
	}
	if c.Replication.Enabled() {
		if err := c.replicationConfig().Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// replicationConfig is Replication with what the node decides filled in.
func (c Config) replicationConfig() replication.Config {
	rc := c.Replication
	rc.DC, rc.NodeID, rc.Logger = c.DC, c.NodeID, c.Logger
	if rc.DC == "" {
		rc.DC = "dc1"
	}
	if rc.DataDir == "" {
		rc.DataDir = filepath.Join(c.DataDir, "replication")
	}
	return rc
}

// Node is a running node.
type Node struct {
	cfg      Config
	db       *db.DB
	rest     *rest.Server
	changes  *ws.Server
	mux      *connmux.Mux // the HTTP port: the REST gateway (HTTP/1) and the peer service (gRPC)
	peer     *peer.Server
	peers    *peer.Client
	grpc     *grpcgw.Server // nil when GRPCAddr is GRPCOff
	grpcLn   net.Listener
	rep      *replication.Replicator // nil without replication
	serveErr chan error
	quit     chan struct{} // closed when Close begins
	once     sync.Once
	closeErr error
}

// Start opens the database, waits until it is ready and starts serving HTTP.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node: config: %w", err)
	}
	cfg.setDefaults()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dcfg := cfg.dbConfig()
	dcfg.Registerer = reg
	// Bind HTTP first, so a taken port fails before any data is opened.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("node: http listen: %w", err)
	}
	var grpcLn net.Listener
	if cfg.GRPCAddr != GRPCOff {
		if grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("node: grpc listen: %w", err)
		}
	}
	peers, err := peer.NewClient(peer.ClientConfig{MaxMessage: db.MaxPeerBody})
	var peerSrv *peer.Server
	if err == nil {
		peerSrv, err = peer.NewServer(peer.ServerConfig{MaxMessage: db.MaxPeerBody, Ops: db.PeerOps, Logger: cfg.Logger, Registerer: reg})
	}
	if err != nil {
		ln.Close()
		if grpcLn != nil {
			grpcLn.Close()
		}
		return nil, fmt.Errorf("node: %w", err)
	}
	// The HTTP port carries the REST gateway and the peer service between nodes (gRPC).
	// Until the gateway serves, the node answers probes, and 503 to everything else; the
	// peer service answers every call unavailable until the database is open.
	mux := connmux.New(ln, peerSniffWait)
	early := serveStarting(mux.HTTP1(), cfg.NodeID)
	peerDone := make(chan error, 1)
	go func() { peerDone <- peerSrv.Serve(mux.HTTP2()) }()
	dcfg.Peers = peers
	closeListeners := func() {
		early.handOver()
		peerSrv.Shutdown(context.Background())
		<-peerDone
		peers.Close()
		mux.Close()
		if grpcLn != nil {
			grpcLn.Close()
		}
	}
	if dcfg.AdvertiseHTTP == "" {
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
			dcfg.AdvertiseHTTP = tcp.String()
		}
	}
	if err := join(ctx, cfg, dcfg); err != nil {
		closeListeners()
		return nil, fmt.Errorf("node: %w", err)
	}
	dcfg.OnStart = early.probing
	d, err := db.Open(ctx, dcfg)
	if err != nil {
		closeListeners()
		return nil, fmt.Errorf("node: %w", err)
	}
	var rep *replication.Replicator
	var repStatus rest.Replication // stays a nil interface without replication
	if cfg.Replication.Enabled() {
		rc := cfg.replicationConfig()
		rc.Registerer = reg
		if rep, err = replication.New(rc, d); err != nil {
			closeListeners()
			d.Close()
			return nil, fmt.Errorf("node: %w", err)
		}
		repStatus = rep
	}
	closeData := func() {
		if rep != nil {
			rep.Close()
		}
		d.Close()
	}
	changes, err := ws.New(ws.Config{Store: d, Limits: cfg.Changes, Logger: cfg.Logger, Registerer: reg})
	if err != nil {
		closeListeners()
		closeData()
		return nil, fmt.Errorf("node: %w", err)
	}
	rs, err := rest.New(rest.Config{Store: d, Limits: cfg.Limits, Logger: cfg.Logger, Gatherer: reg, Registry: reg,
		Routes: rest.JoinRoutes(changes.Register, rest.ReplicationRoutes(repStatus))})
	if err != nil {
		closeListeners()
		closeData()
		return nil, fmt.Errorf("node: %w", err)
	}
	n := &Node{cfg: cfg, db: d, rest: rs, changes: changes, mux: mux, peer: peerSrv, peers: peers, grpcLn: grpcLn, rep: rep,
		serveErr: make(chan error, 3), quit: make(chan struct{})}
	if grpcLn != nil {
		if n.grpc, err = grpcgw.New(grpcgw.Config{Store: d, Limits: cfg.Limits, Logger: cfg.Logger, Registerer: reg}); err != nil {
			closeListeners()
			closeData()
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	if rep != nil {
		// Sync-mode writes wait for Kafka only on the node that ships; elsewhere they are
		// refused (no ShipWaiter).
		if rep.Ships() {
			d.SetShipWaiter(rep)
		}
		rep.Start()
	}
	if n.grpc != nil {
		go func() { n.serveErr <- n.grpc.Serve(grpcLn) }()
	}
	peerSrv.SetStore(d)
	early.handOver()
	go func() { n.serveErr <- rs.Serve(mux.HTTP1()) }()
	go func() {
		if err := <-peerDone; err != nil {
			n.serveErr <- fmt.Errorf("node: peer service: %w", err)
		}
	}()
	go func() {
		select {
		case <-d.Removed():
			n.serveErr <- fmt.Errorf("node %d: %w", cfg.NodeID, db.ErrNodeRemoved)
		case <-n.quit:
		}
	}()
	cfg.Logger.Info("node serving", "http", mux.Addr().String(), "grpc", n.GRPCAddr(), "raft", cfg.RaftAddr, "data_dir", cfg.DataDir,
		"node_id", cfg.NodeID, "shards", d.Shards(), "dc", cfg.DC)
	return n, nil
}

// join asks the member cfg.Join to add this node, unless it has raft data already (a
// restart of a node that joined before).
func join(ctx context.Context, cfg Config, dcfg db.Config) error {
	if cfg.Join == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "raft")); err == nil {
		return nil
	}
	cfg.Logger.Info("joining the cluster", "through", cfg.Join, "node_id", cfg.NodeID, "raft", cfg.RaftAddr, "http", dcfg.AdvertiseHTTP)
	p := meta.NewProber(cfg.NodeID, 10*time.Second)
	return p.Join(ctx, cfg.Join, meta.Node{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, HTTPAddr: dcfg.AdvertiseHTTP})
}

// HTTPAddr returns the address the REST gateway listens on.
func (n *Node) HTTPAddr() string { return n.mux.Addr().String() }

// GRPCAddr returns the address the gRPC gateway listens on ("" when it is off).
func (n *Node) GRPCAddr() string {
	if n.grpcLn == nil {
		return ""
	}
	return n.grpcLn.Addr().String()
}

// DB returns the node's database.
func (n *Node) DB() *db.DB { return n.db }

// Done yields a gateway's (HTTP or gRPC) error if it stops serving on its own, or
// db.ErrNodeRemoved when the cluster removed this node while it ran.
func (n *Node) Done() <-chan error { return n.serveErr }

// Close stops accepting requests, waits for in-flight ones (up to ShutdownTimeout) and
// closes the database. Idempotent.
func (n *Node) Close() error {
	n.once.Do(func() {
		close(n.quit)
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		defer cancel()
		// Change streams first: fiber does not wait for hijacked WebSocket connections, so
		// they are told to go away (with their tokens) and waited for here, before the
		// database they read closes.
		errChanges := n.changes.Close(ctx)
		// Then gRPC: its Watch streams end at once (UNAVAILABLE, with their resume token),
		// then both gateways finish their in-flight calls.
		var errGRPC error
		if n.grpc != nil {
			errGRPC = n.grpc.Shutdown(ctx)
		}
		errHTTP := n.rest.Shutdown(ctx)
		// Then the peer service: calls of other nodes in flight end (they ask another
		// node), and its connections close.
		errPeer := n.peer.Shutdown(ctx)
		n.mux.Close()
		if errors.Is(errChanges, context.DeadlineExceeded) || errors.Is(errHTTP, context.DeadlineExceeded) {
			// Something held the stop open for the whole ShutdownTimeout: show what.
			n.cfg.Logger.Error("graceful stop timed out; goroutine dump follows on stderr", "timeout", n.cfg.ShutdownTimeout)
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		}
		// Replication stops before the database it reads and writes.
		var errRep error
		if n.rep != nil {
			errRep = n.rep.Close()
		}
		n.closeErr = errors.Join(errChanges, errGRPC, errHTTP, errPeer, errRep, n.db.Close(), n.peers.Close())
		n.cfg.Logger.Info("node stopped", "err", n.closeErr)
	})
	return n.closeErr
}
