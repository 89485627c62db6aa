package grpc

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	streams  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerolith_grpc_requests_total", Help: "gRPC calls (unary and streams) by full method and status code.",
		}, []string{"method", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aerolith_grpc_request_seconds", Help: "gRPC call latency by full method (for streams: their lifetime).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
		}, []string{"method"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aerolith_grpc_streams_open", Help: "gRPC streams open now (Watch, health watches, reflection).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds, m.streams)
	}
	return m
}

func (m *metrics) done(method string, start time.Time, err error) {
	m.requests.WithLabelValues(method, status.Code(err).String()).Inc()
	m.seconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

func (s *Server) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	s.metrics.done(info.FullMethod, start, err)
	s.log.Debug("grpc call", "method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start))
	return resp, err
}

// errShuttingDown is the cause of a stream context cancelled by Shutdown.
var errShuttingDown = errors.New("grpc: server shutting down")

// observeStream records streams like calls and gives each stream a context that Shutdown
// cancels, so that no stream (ours, health watches, reflection) holds up a graceful stop.
// A stream that ends because of it ends UNAVAILABLE.
func (s *Server) observeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	stop := context.AfterFunc(s.stop, func() { cancel(errShuttingDown) })
	defer stop()
	err := handler(srv, &stream{ServerStream: ss, ctx: ctx})
	if context.Cause(ctx) == errShuttingDown && status.Code(err) != codes.Unavailable {
		err = status.Error(codes.Unavailable, "the server is shutting down; retry on another node")
	}
	s.metrics.done(info.FullMethod, start, err)
	s.log.Debug("grpc stream", "method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start))
	return err
}

// stream is a ServerStream with the context observeStream gave it.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }
