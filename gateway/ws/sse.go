package ws

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/gofiber/fiber/v2"
)

// stream is one Server-Sent Events response.
type stream struct {
	s      *Server
	ctx    context.Context // ends at shutdown
	cancel context.CancelFunc
	nc     net.Conn

	wmu    sync.Mutex
	stopAt time.Time
}

// sse serves a change subscription as Server-Sent Events. The options are query
// parameters; a Last-Event-ID header (what EventSource sends when it reconnects) resumes
// after that token and takes precedence over from and token.
func (s *Server) sse(c *fiber.Ctx) error {
	var include []string
	if v := c.Query("include"); v != "" || c.Context().QueryArgs().Has("include") {
		if include = splitList(v); include == nil {
			include = []string{} // include= asks for no images
		}
	}
	req, err := subscribeRequest(splitList(c.Query("collections")), c.Query("filter"), include, c.Query("from"), c.Query("time"), c.Query("token"))
	if err != nil {
		return s.fail(c, s.lookup(err))
	}
	if id := c.Get("Last-Event-ID"); id != "" {
		req.From, req.Token = "token", id
	}
	st := &stream{s: s, nc: c.Context().Conn()}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	if info, ok := s.addStream(st); !ok {
		st.cancel()
		return s.fail(c, info)
	}
	fs, err := s.cfg.Store.Subscribe(req)
	if err != nil {
		st.cancel()
		s.removeStream(st)
		return s.fail(c, s.lookup(err))
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	c.Context().SetConnectionClose()
	remote := c.IP()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.removeStream(st)
		defer st.cancel()
		start := time.Now()
		s.log.Debug("change stream connected", "protocol", "sse", "remote", remote)
		err := st.run(w, fs)
		s.log.Debug("change stream disconnected", "protocol", "sse", "remote", remote, "duration", time.Since(start), "reason", err)
	})
	return nil
}

var errShutdown = errors.New("ws: shutdown")

// run writes frames until the client goes, the subscription fails or the node shuts down.
func (st *stream) run(w *bufio.Writer, fs *feed.Subscription) error {
	write := func(parts ...string) error {
		st.extendWrite()
		for _, p := range parts {
			if _, err := w.WriteString(p); err != nil {
				return err
			}
		}
		return w.Flush()
	}
	if err := write(": ok\n\n"); err != nil {
		return err
	}
	hb := st.s.lim.HeartbeatInterval
	last := time.Now()
	for {
		ctx, cancel := context.WithDeadline(st.ctx, last.Add(hb))
		m, err := fs.Next(ctx)
		cancel()
		switch {
		case st.ctx.Err() != nil:
			b, _ := json.Marshal(map[string]string{"reason": "shutdown", "token": fs.Token()})
			_ = write("event: closing\ndata: ", string(b), "\n\n")
			return errShutdown
		case errors.Is(err, context.DeadlineExceeded):
			if err := write(": ping\n\n"); err != nil {
				return err
			}
			last = time.Now()
			continue
		case err != nil:
			b, _ := json.Marshal(errorMsg{Type: "error", Error: toErrorBody(st.s.lookup(err, "protocol", "sse"))})
			_ = write("event: error\ndata: ", string(b), "\n\n")
			return err
		}
		var v any
		if m.Kind == feed.KindEvent {
			v = m.Event
		} else {
			lag := fs.Lag()
			st.s.metrics.lag.Observe(float64(lag.Events))
			v = tokenMsg{Type: kindName(m.Kind), Token: m.Token, Lag: lagOf(lag)}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := write("id: ", m.Token, "\nevent: ", kindName(m.Kind), "\ndata: ", string(b), "\n\n"); err != nil {
			return err
		}
		if m.Kind == feed.KindEvent {
			st.s.metrics.eventsSent.WithLabelValues("sse").Inc()
		}
		last = time.Now()
	}
}

// extendWrite bounds the next write: a client that accepts nothing for WriteTimeout is cut.
func (st *stream) extendWrite() {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	d := time.Now().Add(st.s.lim.WriteTimeout)
	if !st.stopAt.IsZero() && st.stopAt.Before(d) {
		d = st.stopAt
	}
	_ = st.nc.SetWriteDeadline(d)
}

func (st *stream) goAway(deadline time.Time) {
	st.wmu.Lock()
	st.stopAt = deadline
	_ = st.nc.SetWriteDeadline(deadline)
	st.wmu.Unlock()
	st.cancel()
}

func (st *stream) abort() { st.goAway(time.Now()) }
