package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerolithsdb/aerolith/gateway/peer/peerv1"
	"github.com/aerolithsdb/aerolith/internal/peercall"
	"github.com/aerolithsdb/aerolith/internal/tcpopt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
)

// A connection to a node is watched by the kernel, which answers for a node whose
// process is paused or starved of CPU, so only a node that is gone, or behind a
// partition, loses its connection: a call's data left unacknowledged for userTimeout
// (TCP_USER_TIMEOUT) aborts it, and so do keepalive probes unanswered after keepIdle of
// silence. The call then fails at once, and the next one dials again. (gRPC's own pings
// are off: they come from the process, at most every 10 s, and grpc-go would replace
// TCP_USER_TIMEOUT with their timeout.)
const (
	userTimeout = time.Second
	keepIdle    = 5 * time.Second
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// MaxMessage bounds a call's arguments and result (required).
	MaxMessage int
	// DialTimeout bounds opening a connection to a node (default 1s). Nodes share a
	// network: a connection that takes longer is to a node behind a partition.
	DialTimeout time.Duration
}

// Validate reports every problem with c.
func (c ClientConfig) Validate() error {
	var errs []error
	if c.MaxMessage <= 0 {
		errs = append(errs, errors.New("peer: max message size must be > 0"))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, errors.New("peer: dial timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// Client calls other nodes' peer services. It is safe for concurrent use.
type Client struct {
	cfg    ClientConfig
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn // by node address
	closed bool
}

// NewClient returns a client; it opens no connection until a call needs one.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = time.Second
	}
	return &Client{cfg: cfg, conns: map[string]*grpc.ClientConn{}}, nil
}

// PeerCall calls op on the node at addr (its host:port); see db.PeerTransport.
func (c *Client) PeerCall(ctx context.Context, addr, op string, args []byte) ([]byte, error) {
	cc, err := c.conn(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", peercall.ErrUnreachable, err)
	}
	var sent atomic.Bool
	resp, err := peerv1.NewPeerClient(cc).Call(context.WithValue(ctx, sentKey{}, &sent), &peerv1.CallRequest{Op: op, Args: args})
	if err == nil {
		return resp.Result, nil
	}
	if pe := fromStatus(err); pe != nil {
		return nil, pe
	}
	if !sent.Load() {
		// No connection took the call's headers: a dial that failed or timed out, a
		// connection in backoff, a deadline that passed first.
		return nil, fmt.Errorf("%w: %s: %v", peercall.ErrUnreachable, addr, err)
	}
	return nil, err
}

// conn returns the connection to addr, made at the first call.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("peer: client closed")
	}
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	dialer := &net.Dialer{Timeout: c.cfg.DialTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: keepIdle, Interval: time.Second, Count: 3}}
	dial := func(ctx context.Context, a string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, "tcp", a)
		if tc, ok := conn.(*net.TCPConn); ok {
			if err := tcpopt.SetUserTimeout(tc, userTimeout); err != nil {
				conn.Close()
				return nil, err
			}
		}
		return conn, err
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dial),
		// A node that restarts is back within seconds: retry soon, and at least every second.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: c.cfg.DialTimeout,
		}),
		grpc.WithStatsHandler(sentMarker{}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.cfg.MaxMessage+1024), grpc.MaxCallSendMsgSize(c.cfg.MaxMessage+1024)),
	)
	if err != nil {
		return nil, err
	}
	c.conns[addr] = cc
	return cc, nil
}

// Close closes every connection; calls after it fail as unreachable. Idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for addr, cc := range c.conns {
		errs = append(errs, cc.Close())
		delete(c.conns, addr)
	}
	return errors.Join(errs...)
}

// sentKey holds, in a call's context, the flag sentMarker sets once gRPC put the call's
// headers on a connection.
type sentKey struct{}

// sentMarker is the client's stats handler: it marks a call sent at its OutHeader, which
// grpc-go reports once the call has a stream on a live connection.
type sentMarker struct{}

func (sentMarker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (sentMarker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.OutHeader); ok {
		if f, ok := ctx.Value(sentKey{}).(*atomic.Bool); ok {
			f.Store(true)
		}
	}
}

func (sentMarker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (sentMarker) HandleConn(context.Context, stats.ConnStats) {}
