package ws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// closeWrite bounds how long Close gives each connection to take its closing message.
const closeWrite = 2 * time.Second

// closeGrace is how long a connection that sent its close frame waits for the client's.
const closeGrace = 2 * time.Second

// Server serves GET /v1/changes. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	lim     Limits
	log     *slog.Logger
	metrics *metrics
	upgrade fiber.Handler
	nextID  atomic.Uint64

	mu      sync.Mutex
	closed  bool
	conns   map[*conn]struct{}
	streams map[*stream]struct{}
	wg      sync.WaitGroup // one per connection and stream in the sets
}

// New returns a Server; Register adds its route to a fiber app.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, lim: cfg.Limits.WithDefaults(), log: cfg.Logger,
		conns: map[*conn]struct{}{}, streams: map[*stream]struct{}{}}
	s.metrics = newMetrics(cfg.Registerer, s.queued)
	s.upgrade = websocket.New(s.serveConn, websocket.Config{
		ReadBufferSize: 4 << 10, WriteBufferSize: 16 << 10, RecoverHandler: s.recover,
	})
	return s, nil
}

// Register adds GET /v1/changes to r.
func (s *Server) Register(r fiber.Router) { r.Get("/v1/changes", s.handle) }

func (s *Server) handle(c *fiber.Ctx) error {
	if _, err := gateway.Authenticate(c.Get(fiber.HeaderAuthorization)); err != nil {
		return s.fail(c, s.lookup(err))
	}
	switch {
	case websocket.IsWebSocketUpgrade(c):
		if info, ok := s.admissible(); !ok {
			return s.fail(c, info)
		}
		return s.upgrade(c)
	case strings.Contains(c.Get(fiber.HeaderAccept), "text/event-stream"):
		return s.sse(c)
	}
	return s.fail(c, gateway.ErrorInfo{HTTP: fiber.StatusUpgradeRequired, Code: gateway.CodeUpgradeRequired,
		Message: "GET /v1/changes needs a WebSocket upgrade or Accept: text/event-stream"})
}

// admissible reports whether one more connection may open, and why not.
func (s *Server) admissible() (gateway.ErrorInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admissibleLocked()
}

func (s *Server) admissibleLocked() (gateway.ErrorInfo, bool) {
	if s.closed {
		return gateway.ErrorInfo{HTTP: fiber.StatusServiceUnavailable, Code: "unavailable", Message: "the node is shutting down; connect to another"}, false
	}
	if len(s.conns)+len(s.streams) >= s.lim.MaxConnections {
		return gateway.ErrorInfo{HTTP: fiber.StatusServiceUnavailable, Code: gateway.CodeTooManyConnections,
			Message: fmt.Sprintf("this node serves at most %d change-stream connections", s.lim.MaxConnections)}, false
	}
	return gateway.ErrorInfo{}, true
}

func (s *Server) addConn(c *conn) (gateway.ErrorInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, ok := s.admissibleLocked(); !ok {
		return info, false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.metrics.connections.WithLabelValues("ws").Inc()
	return gateway.ErrorInfo{}, true
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.metrics.connections.WithLabelValues("ws").Dec()
	s.wg.Done()
}

func (s *Server) addStream(st *stream) (gateway.ErrorInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, ok := s.admissibleLocked(); !ok {
		return info, false
	}
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	s.metrics.connections.WithLabelValues("sse").Inc()
	return gateway.ErrorInfo{}, true
}

func (s *Server) removeStream(st *stream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
	s.metrics.connections.WithLabelValues("sse").Dec()
	s.wg.Done()
}

// queued is the number of messages in every connection's send queue.
func (s *Server) queued() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		n += len(c.out)
	}
	return float64(n)
}

// Close tells every connection the node is going away — WebSocket clients get a closing
// message with their subscriptions' tokens and a close frame 1001, SSE streams a closing
// event — and waits until all of them have ended, or ctx ends (then it cuts them off and
// still waits for their goroutines, which no longer block). New connections are refused.
// Idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	conns, streams := s.snapshot()
	s.mu.Unlock()
	deadline := time.Now().Add(closeWrite)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for _, c := range conns {
		c.goAway(deadline)
	}
	for _, st := range streams {
		st.goAway(deadline)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	conns, streams = s.snapshot()
	s.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	for _, st := range streams {
		st.abort()
	}
	<-done
	return fmt.Errorf("changes: close: %w", ctx.Err())
}

func (s *Server) snapshot() ([]*conn, []*stream) {
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	streams := make([]*stream, 0, len(s.streams))
	for st := range s.streams {
		streams = append(streams, st)
	}
	return conns, streams
}

// lookup maps err through the one error table; internal errors are logged with an id the
// client sees.
func (s *Server) lookup(err error, attrs ...any) gateway.ErrorInfo {
	info := gateway.Lookup(err)
	if info.Code == gateway.CodeInternal {
		id := errorID()
		s.log.Error("change stream: internal error", append(attrs, "error_id", id, "err", err)...)
		info.Message = "internal error; error id " + id
	}
	return info
}

func (s *Server) fail(c *fiber.Ctx, info gateway.ErrorInfo) error {
	return c.Status(info.HTTP).JSON(fiber.Map{"error": toErrorBody(info)})
}

func (s *Server) recover(c *websocket.Conn) {
	if r := recover(); r != nil {
		s.log.Error("change stream: panic", "panic", r)
	}
}

func errorID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
