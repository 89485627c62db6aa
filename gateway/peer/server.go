package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerolithsdb/aerolith/gateway/peer/peerv1"
	"github.com/aerolithsdb/aerolith/internal/peercall"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the domain of the ErrorInfo detail of an error a node answers with.
const ErrorDomain = "aerolith.peer"

// Store serves peer calls: the database.
type Store interface {
	// ServePeer serves op with its arguments and returns its result, or a
	// *peercall.Error.
	ServePeer(ctx context.Context, op string, args []byte) ([]byte, error)
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// MaxMessage bounds a call's arguments and result (required).
	MaxMessage int
	// Ops names the operations the store serves: the metrics label a call by its
	// operation only when it is one of these, and "other" otherwise, so that callers
	// cannot add series at will.
	Ops    []string
	Logger *slog.Logger
	// Registerer receives the server's metrics (aerolith_peer_served_*) when set.
	Registerer prometheus.Registerer
}

// Validate reports every problem with c.
func (c ServerConfig) Validate() error {
	if c.MaxMessage <= 0 {
		return errors.New("peer: max message size must be > 0")
	}
	return nil
}

// maxStreams bounds the calls one connection may have open at once.
const maxStreams = 1024

// Server is the peer service of one node.
type Server struct {
	peerv1.UnimplementedPeerServer

	cfg      ServerConfig
	ops      map[string]bool
	srv      *grpc.Server
	store    atomic.Pointer[storeRef]
	served   *prometheus.CounterVec
	took     *prometheus.HistogramVec
	inFlight prometheus.Gauge

	// stop is cancelled when Shutdown begins: calls in flight end.
	stop     context.Context
	stopNow  context.CancelFunc
	shutOnce sync.Once
}

type storeRef struct{ Store }

// NewServer builds the server; the caller must call Shutdown.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, ops: map[string]bool{},
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerolith_peer_served_total",
			Help: "Peer calls this node served for other nodes, by operation and result (ok, or the error's kind).",
		}, []string{"op", "result"}),
		took: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aerolith_peer_serve_duration_seconds",
			Help:    "Time this node took to serve a peer call for another node, by operation (head calls are long polls).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"op"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aerolith_peer_calls_in_flight",
			Help: "Peer calls of other nodes this node is serving now (head long polls among them).",
		}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.served, s.took, s.inFlight)
	}
	for _, op := range cfg.Ops {
		s.ops[op] = true
	}
	s.stop, s.stopNow = context.WithCancel(context.Background())
	s.srv = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxMessage+1024),
		grpc.MaxSendMsgSize(cfg.MaxMessage+1024),
		// A node's calls of another share one connection: bound what one connection may
		// have open (more wait on the caller's side).
		grpc.MaxConcurrentStreams(maxStreams),
	)
	peerv1.RegisterPeerServer(s.srv, s)
	return s, nil
}

// SetStore makes the server serve calls from st. Until then every call is answered
// unavailable.
func (s *Server) SetStore(st Store) { s.store.Store(&storeRef{st}) }

// Serve serves on ln until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Shutdown ends the calls in flight, waits for them until ctx ends, then closes every
// connection. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutOnce.Do(func() {
		s.stopNow()
		done := make(chan struct{})
		go func() { s.srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.srv.Stop()
			<-done
			err = fmt.Errorf("peer: graceful stop: %w", ctx.Err())
		}
	})
	return err
}

// Call serves one peer call.
func (s *Server) Call(ctx context.Context, req *peerv1.CallRequest) (*peerv1.CallResponse, error) {
	start := time.Now()
	op := req.Op
	if !s.ops[op] {
		op = "other"
	}
	ref := s.store.Load()
	if ref == nil {
		s.served.WithLabelValues(op, "unavailable").Inc()
		return nil, toStatus(&peercall.Error{Kind: "unavailable", Msg: "the node is starting"})
	}
	s.inFlight.Inc()
	defer s.inFlight.Dec()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stop, cancel)()
	out, err := ref.ServePeer(ctx, req.Op, req.Args)
	s.took.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		var pe *peercall.Error
		if !errors.As(err, &pe) {
			pe = &peercall.Error{Kind: "internal", Msg: err.Error()}
		}
		s.served.WithLabelValues(op, pe.Kind).Inc()
		if pe.Kind == "internal" {
			s.cfg.Logger.Error("peer call failed", "op", req.Op, "err", pe.Msg)
		}
		return nil, toStatus(pe)
	}
	s.served.WithLabelValues(op, "ok").Inc()
	return &peerv1.CallResponse{Result: out}, nil
}

// kindCodes maps an error's kind to the status code it travels with. The caller goes by the
// kind; the code is for what shows the call between (logs, metrics, grpcurl).
var kindCodes = map[string]codes.Code{
	"not_hosted":         codes.FailedPrecondition,
	"not_found":          codes.NotFound,
	"invalid_argument":   codes.InvalidArgument,
	"invalid_collection": codes.InvalidArgument,
	"invalid_id":         codes.InvalidArgument,
	"invalid_filter":     codes.InvalidArgument,
	"invalid_query":      codes.InvalidArgument,
	"too_expensive":      codes.InvalidArgument,
	"indeterminate":      codes.DeadlineExceeded,
	"unavailable":        codes.Unavailable,
}

func toStatus(e *peercall.Error) error {
	code, ok := kindCodes[e.Kind]
	if !ok {
		code = codes.Internal
	}
	st := status.New(code, e.Msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: e.Kind, Domain: ErrorDomain}); err == nil {
		st = d
	}
	return st.Err()
}

// fromStatus returns the peercall.Error a status carries, or nil when it carries none
// (the status is gRPC's own).
func fromStatus(err error) *peercall.Error {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == ErrorDomain {
			return &peercall.Error{Kind: info.Reason, Msg: st.Message()}
		}
	}
	return nil
}
