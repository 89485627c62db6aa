package rest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// conns tracks the server's open connections and the requests in its handlers, so a
// graceful stop can tell "a request is still being answered" from "a connection is open
// but its client has not sent a request": fasthttp counts the second as active until its
// read timeout, which would hold a stop open for no one (an HTTP client's spare
// connection, dialed and never used, is one).
type conns struct {
	mu       sync.Mutex
	open     map[net.Conn]struct{}
	inflight atomic.Int64
}

func newConns() *conns { return &conns{open: map[net.Conn]struct{}{}} }

// state is the fasthttp ConnState hook. It runs on every state change of every
// connection, so the active/idle changes of each request take no lock.
func (t *conns) state(c net.Conn, st fasthttp.ConnState) {
	switch st {
	case fasthttp.StateNew:
		t.mu.Lock()
		t.open[c] = struct{}{}
		t.mu.Unlock()
	case fasthttp.StateHijacked, fasthttp.StateClosed:
		t.mu.Lock()
		delete(t.open, c) // a hijacked connection (WebSocket) belongs to its handler now
		t.mu.Unlock()
	}
}

// track counts a request while its handler runs.
func (t *conns) track(c *fiber.Ctx) error {
	t.inflight.Add(1)
	defer t.inflight.Add(-1)
	return c.Next()
}

// closeWhenIdle runs while the server shuts down: whenever no handler is running it
// closes every connection still open, since none of them carries a request being
// answered; it sweeps again every 50ms until stop (the shutdown finished) or ctx ends.
func (t *conns) closeWhenIdle(ctx context.Context, stop <-chan struct{}) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-tick.C:
		}
		if t.inflight.Load() > 0 {
			continue
		}
		t.mu.Lock()
		for c := range t.open {
			_ = c.Close()
		}
		t.mu.Unlock()
	}
}
