package grpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/aerolithsdb/aerolith/gateway/grpc/aerolithv1"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
)

// Store is what the gRPC gateway needs from the database.
type Store interface {
	Write(ctx context.Context, principal string, w db.Write) (db.Result, error)
	Batch(ctx context.Context, principal string, ws []db.Write, idempotencyKey string) ([]db.ItemResult, error)
	Get(ctx context.Context, collection, id string, c db.Consistency) (db.Doc, error)
	History(ctx context.Context, collection, id string, c db.Consistency) ([]db.Version, error)
	Collections(ctx context.Context, c db.Consistency) ([]materializer.CollectionCount, error)
	Query(ctx context.Context, r db.QueryRequest) (*db.QueryResult, error)
	Subscribe(r db.SubscribeRequest) (*feed.Subscription, error)
	Ready() bool
}

// Config configures a Server.
type Config struct {
	Store  Store // required
	Limits gateway.Limits
	Logger *slog.Logger
	// Registerer receives the gateway's metrics (aerolith_grpc_*) when set.
	Registerer prometheus.Registerer
	// HealthEvery is how often the health service is refreshed from Store.Ready (default 1s).
	HealthEvery time.Duration
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("grpc: store is required"))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("grpc: %w", err))
	}
	if c.HealthEvery < 0 {
		errs = append(errs, errors.New("grpc: health interval must not be negative"))
	}
	return errors.Join(errs...)
}

// services are the names the health service reports on, besides "" (the whole server).
var services = []string{aerolithv1.DocumentService_ServiceDesc.ServiceName, aerolithv1.ChangeService_ServiceDesc.ServiceName}

// Server is the gRPC gateway.
type Server struct {
	aerolithv1.UnimplementedDocumentServiceServer
	aerolithv1.UnimplementedChangeServiceServer

	cfg     Config
	log     *slog.Logger
	srv     *grpc.Server
	health  *health.Server
	metrics *metrics

	// stop is cancelled when Shutdown begins: it ends open streams and the health loop.
	stop     context.Context
	stopNow  context.CancelFunc
	wg       sync.WaitGroup
	shutOnce sync.Once
}

// New builds the server, registers its services and starts its health loop; the caller
// must call Shutdown.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HealthEvery == 0 {
		cfg.HealthEvery = time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, health: health.NewServer(), metrics: newMetrics(cfg.Registerer)}
	s.stop, s.stopNow = context.WithCancel(context.Background())
	s.srv = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.Limits.MaxBodyBytes),
		grpc.ChainUnaryInterceptor(s.observeUnary),
		grpc.ChainStreamInterceptor(s.observeStream),
		// Find dead watchers: ping a connection idle for a minute, drop it if no answer.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	aerolithv1.RegisterDocumentServiceServer(s.srv, s)
	aerolithv1.RegisterChangeServiceServer(s.srv, s)
	healthpb.RegisterHealthServer(s.srv, s.health)
	reflection.Register(s.srv)
	s.refreshHealth()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.healthLoop() }()
	return s, nil
}

// Serve serves on ln until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown marks every service NOT_SERVING, ends open streams, and waits for unary calls in
// flight until ctx ends; then it closes every connection. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutOnce.Do(func() {
		s.health.Shutdown()
		s.stopNow()
		done := make(chan struct{})
		go func() { s.srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.srv.Stop()
			<-done
			err = fmt.Errorf("grpc: graceful stop: %w", ctx.Err())
		}
		s.wg.Wait()
	})
	return err
}

func (s *Server) healthLoop() {
	t := time.NewTicker(s.cfg.HealthEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop.Done():
			return
		case <-t.C:
			s.refreshHealth()
		}
	}
}

// refreshHealth sets every service's status from Store.Ready. After health.Shutdown it
// changes nothing.
func (s *Server) refreshHealth() {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if s.cfg.Store.Ready() {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	for _, name := range services {
		s.health.SetServingStatus(name, st)
	}
}

// principal establishes who is calling; gateway.Authenticate is the one place that decides.
func principal(ctx context.Context) (string, error) {
	var auth string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			auth = v[0]
		}
	}
	return gateway.Authenticate(auth)
}
