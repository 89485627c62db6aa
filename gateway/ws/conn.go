package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/gofiber/contrib/websocket"
)

// conn is one WebSocket connection. See the package doc for its goroutines.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	id     uint64
	ctx    context.Context // ends when the connection does; parent of every subscription's
	cancel context.CancelFunc

	out        chan outMsg // bounded: Limits.QueueLength
	away       chan struct{}
	awayOnce   sync.Once
	quit       chan struct{} // closed when the reader and every subscription are done
	writerDone chan struct{}

	mu     sync.Mutex
	subs   map[string]*sub
	closed bool           // no new subscriptions
	subWG  sync.WaitGroup // subscription goroutines

	wmu    sync.Mutex
	stopAt time.Time // when set, no write may last beyond it
	ended  bool      // serveConn is returning: ws goes back to its pools, hands off

	rmu     sync.Mutex
	closing bool // a close frame is on its way: stop extending the read deadline
}

type sub struct {
	id     string
	start  string // the token a change subscription started from ("" for a live query)
	cancel context.CancelFunc
	done   chan struct{}
}

// outMsg is what subscriptions and the reader hand to the writer.
type outMsg struct {
	sub    string
	data   []byte
	token  string // sub's token once data is written
	forget bool   // sub is over: drop its token
	event  bool
	close  int // a close code: write the close frame after data and stop
	reason string
}

// serveConn runs a WebSocket connection; it returns when everything the connection started
// has ended.
func (s *Server) serveConn(wc *websocket.Conn) {
	c := &conn{s: s, ws: wc, id: s.nextID.Add(1), out: make(chan outMsg, s.lim.QueueLength),
		away: make(chan struct{}), quit: make(chan struct{}), writerDone: make(chan struct{}), subs: map[string]*sub{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	if info, ok := s.addConn(c); !ok {
		_ = wc.SetWriteDeadline(time.Now().Add(closeWrite))
		if b, err := json.Marshal(errorMsg{Type: "error", Error: toErrorBody(info)}); err == nil {
			_ = wc.WriteMessage(websocket.TextMessage, b)
		}
		code := websocket.CloseTryAgainLater
		if info.Code == "unavailable" {
			code = websocket.CloseGoingAway
		}
		_ = wc.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, info.Code), time.Now().Add(closeWrite))
		return
	}
	defer s.removeConn(c)
	defer func() { // Close may still hold c: keep it off ws from here on
		c.wmu.Lock()
		c.ended = true
		c.wmu.Unlock()
	}()
	start := time.Now()
	s.log.Debug("change stream connected", "conn", c.id, "remote", wc.RemoteAddr().String())
	go c.writeLoop()
	err := c.readLoop()
	c.stop()
	c.subWG.Wait()
	c.abort() // unblocks a write to a client that stopped reading
	close(c.quit)
	<-c.writerDone
	s.log.Debug("change stream disconnected", "conn", c.id, "remote", wc.RemoteAddr().String(),
		"duration", time.Since(start), "reason", err)
}

// stop ends every subscription and refuses new ones.
func (c *conn) stop() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
}

// abort cuts the connection: blocked reads and writes fail at once.
func (c *conn) abort() {
	c.stop()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ended {
		return
	}
	if u, ok := c.ws.NetConn().(interface{ UnsafeConn() net.Conn }); ok {
		_ = u.UnsafeConn().Close()
		return
	}
	c.stopAt = time.Now()
	_ = c.ws.NetConn().SetDeadline(c.stopAt)
}

// goAway asks the writer to send the closing message (node shutdown); writes may last
// until deadline.
func (c *conn) goAway(deadline time.Time) {
	c.wmu.Lock()
	c.stopAt = deadline
	if !c.ended {
		_ = c.ws.NetConn().SetWriteDeadline(deadline)
	}
	c.wmu.Unlock()
	c.awayOnce.Do(func() { close(c.away) })
}

func (c *conn) writeDeadline() time.Time {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	d := time.Now().Add(c.s.lim.WriteTimeout)
	if !c.stopAt.IsZero() && c.stopAt.Before(d) {
		d = c.stopAt
	}
	return d
}

func (c *conn) write(data []byte) error {
	_ = c.ws.SetWriteDeadline(c.writeDeadline())
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// extendRead moves the read deadline: a client must send something (a pong at least)
// within a ping interval plus the pong timeout.
func (c *conn) extendRead() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if !c.closing {
		_ = c.ws.SetReadDeadline(time.Now().Add(c.s.lim.PingInterval + c.s.lim.PongTimeout))
	}
}

// closeRead gives the client until d to answer our close frame.
func (c *conn) closeRead(d time.Time) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.closing = true
	_ = c.ws.SetReadDeadline(d)
}

// writeLoop is the only writer of data frames. It records, per change subscription, the
// token of the last message written: that is what the closing message reports.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	ping := time.NewTicker(c.s.lim.PingInterval)
	defer ping.Stop()
	tokens := map[string]string{}
	closeWith := func(code int, reason string) {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), c.writeDeadline())
		c.closeRead(time.Now().Add(closeGrace))
		<-c.quit
	}
	for {
		select {
		case <-c.quit:
			return
		case <-c.away:
			c.stop()
			c.mu.Lock()
			for id, sb := range c.subs {
				if _, ok := tokens[id]; !ok && sb.start != "" {
					tokens[id] = sb.start // nothing written for it yet
				}
			}
			c.mu.Unlock()
			b, err := json.Marshal(closingMsg{Type: "closing", Reason: "shutdown", Tokens: tokens})
			if err == nil && c.write(b) == nil {
				closeWith(websocket.CloseGoingAway, "shutdown")
				return
			}
			c.abort()
			<-c.quit
			return
		case m := <-c.out:
			if m.data != nil {
				if err := c.write(m.data); err != nil {
					c.s.log.Debug("change stream: write failed", "conn", c.id, "err", err)
					c.abort()
					<-c.quit
					return
				}
				if m.event {
					c.s.metrics.eventsSent.WithLabelValues("ws").Inc()
				}
			}
			switch {
			case m.forget:
				delete(tokens, m.sub)
			case m.token != "":
				tokens[m.sub] = m.token
			}
			if m.close != 0 {
				closeWith(m.close, m.reason)
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, c.writeDeadline()); err != nil {
				c.abort()
				<-c.quit
				return
			}
		}
	}
}

// enqueue hands m to the writer, waiting while the queue is full; false when ctx ended.
func (c *conn) enqueue(ctx context.Context, m outMsg) bool {
	select {
	case c.out <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *conn) sendError(ctx context.Context, sub string, info gateway.ErrorInfo, forget bool) {
	b, err := json.Marshal(errorMsg{Type: "error", Sub: sub, Error: toErrorBody(info)})
	if err != nil {
		return
	}
	c.enqueue(ctx, outMsg{sub: sub, data: b, forget: forget})
}

// readLoop reads client messages until the connection fails or closes.
func (c *conn) readLoop() error {
	c.extendRead()
	c.ws.SetPongHandler(func(string) error { c.extendRead(); return nil })
	limit := c.s.lim.MaxMessageBytes
	// Up to 4× the limit a message is answered with message_too_large (and the rest of it
	// discarded); beyond that the library closes with 1009 at once.
	c.ws.SetReadLimit(4 * int64(limit))
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		c.extendRead()
		c.rmu.Lock()
		closing := c.closing
		c.rmu.Unlock()
		if closing {
			continue // waiting for the client's close frame
		}
		data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
		if err != nil {
			return err
		}
		if len(data) > limit {
			c.sendError(c.ctx, "", gateway.ErrorInfo{Code: gateway.CodeMessageTooLarge,
				Message: fmt.Sprintf("a message may have at most %d bytes", limit)}, false)
			c.closeRead(time.Now().Add(c.s.lim.WriteTimeout + closeGrace))
			c.enqueue(c.ctx, outMsg{close: websocket.CloseMessageTooBig, reason: gateway.CodeMessageTooLarge})
			continue
		}
		c.handle(data)
	}
}

// handle acts on one client message.
func (c *conn) handle(data []byte) {
	if !json.Valid(data) {
		c.sendError(c.ctx, "", gateway.ErrorInfo{Code: gateway.CodeInvalidJSON, Message: "the message is not valid JSON"}, false)
		return
	}
	if d := gateway.JSONDepth(data); d > gateway.DefaultLimits().MaxJSONDepth {
		c.sendError(c.ctx, "", gateway.ErrorInfo{Code: gateway.CodeJSONTooDeep,
			Message: fmt.Sprintf("nesting depth %d exceeds the limit of %d", d, gateway.DefaultLimits().MaxJSONDepth)}, false)
		return
	}
	var m clientMsg
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var id struct {
			ID any `json:"id"`
		}
		_ = json.Unmarshal(data, &id)
		sid, _ := id.ID.(string)
		c.sendError(c.ctx, sid, c.s.lookup(fmt.Errorf("%w: %v", db.ErrInvalidArgument, err)), false)
		return
	}
	switch m.Type {
	case "subscribe":
		c.subscribe(m)
	case "unsubscribe":
		c.unsubscribe(m.ID)
	default:
		c.sendError(c.ctx, m.ID, c.s.lookup(fmt.Errorf("%w: unknown message type %q (subscribe, unsubscribe)", db.ErrInvalidArgument, m.Type)), false)
	}
}

func (c *conn) subscribe(m clientMsg) {
	if !validSubID(m.ID) {
		c.sendError(c.ctx, "", c.s.lookup(fmt.Errorf("%w: id must be 1 to 64 printable ASCII characters without spaces", db.ErrInvalidArgument)), false)
		return
	}
	c.mu.Lock()
	_, dup := c.subs[m.ID]
	n, closed := len(c.subs), c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return
	case dup:
		c.sendError(c.ctx, m.ID, gateway.ErrorInfo{Code: gateway.CodeDuplicateSubscription, Message: fmt.Sprintf("subscription %q is active; unsubscribe first", m.ID)}, false)
		return
	case n >= c.s.lim.MaxSubscriptions:
		c.sendError(c.ctx, m.ID, gateway.ErrorInfo{Code: gateway.CodeTooManySubscriptions,
			Message: fmt.Sprintf("a connection may hold at most %d subscriptions", c.s.lim.MaxSubscriptions)}, false)
		return
	}
	var run func(ctx context.Context, sb *sub, fs *feed.Subscription)
	var fs *feed.Subscription
	var err error
	if q := m.Query; q != nil {
		if m.Collections != nil || m.Filter != "" || m.Include != nil || m.From != "" || m.Time != "" || m.Token != "" {
			err = fmt.Errorf("%w: a live query takes only query", db.ErrInvalidArgument)
		} else {
			// The token is taken before the first run: every event after it re-runs the query.
			fs, err = c.s.cfg.Store.Subscribe(db.SubscribeRequest{Collections: []string{q.Collection}, From: "now"})
			req := q.request()
			run = func(ctx context.Context, sb *sub, fs *feed.Subscription) { c.live(ctx, sb, fs, req) }
		}
	} else {
		var req db.SubscribeRequest
		if req, err = subscribeRequest(m.Collections, m.Filter, m.Include, m.From, m.Time, m.Token); err == nil {
			fs, err = c.s.cfg.Store.Subscribe(req)
		}
		run = c.stream
	}
	if err != nil {
		c.sendError(c.ctx, m.ID, c.s.lookup(err, "conn", c.id, "sub", m.ID), false)
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	sb := &sub{id: m.ID, cancel: cancel, done: make(chan struct{})}
	if m.Query == nil {
		sb.start = fs.Token()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		return
	}
	c.subs[sb.id] = sb
	c.subWG.Add(1)
	c.mu.Unlock()
	c.s.metrics.subscriptions.Inc()
	go func() {
		defer c.subWG.Done()
		defer close(sb.done)
		defer c.s.metrics.subscriptions.Dec()
		defer c.drop(sb)
		defer cancel()
		run(ctx, sb, fs)
	}()
}

// drop forgets sb if it is still the subscription of its id.
func (c *conn) drop(sb *sub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[sb.id] == sb {
		delete(c.subs, sb.id)
	}
}

func (c *conn) unsubscribe(id string) {
	c.mu.Lock()
	sb, ok := c.subs[id]
	delete(c.subs, id)
	c.mu.Unlock()
	if !ok {
		c.sendError(c.ctx, id, gateway.ErrorInfo{Code: gateway.CodeUnknownSubscription, Message: fmt.Sprintf("no active subscription %q", id)}, false)
		return
	}
	sb.cancel()
	<-sb.done // nothing of it can follow the acknowledgement
	if b, err := json.Marshal(unsubscribedMsg{Type: "unsubscribed", Sub: id}); err == nil {
		c.enqueue(c.ctx, outMsg{sub: id, data: b, forget: true})
	}
}

// subFailed reports why a subscription ended.
func (c *conn) subFailed(ctx context.Context, id string, err error) {
	c.sendError(ctx, id, c.s.lookup(err, "conn", c.id, "sub", id), true)
}

// stream runs a change subscription.
func (c *conn) stream(ctx context.Context, sb *sub, fs *feed.Subscription) {
	var lastLag time.Time
	for {
		m, err := fs.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.subFailed(ctx, sb.id, err)
			}
			return
		}
		var v any
		if m.Kind == feed.KindEvent {
			v = eventMsg{Type: "event", Sub: sb.id, Event: m.Event}
			if time.Since(lastLag) >= time.Second {
				c.s.metrics.lag.Observe(float64(fs.Lag().Events))
				lastLag = time.Now()
			}
		} else {
			lag := fs.Lag()
			c.s.metrics.lag.Observe(float64(lag.Events))
			lastLag = time.Now()
			v = tokenMsg{Type: kindName(m.Kind), Sub: sb.id, Token: m.Token, Lag: lagOf(lag)}
		}
		b, err := json.Marshal(v)
		if err != nil {
			c.subFailed(ctx, sb.id, err)
			return
		}
		if !c.enqueue(ctx, outMsg{sub: sb.id, data: b, token: m.Token, event: m.Kind == feed.KindEvent}) {
			return
		}
	}
}
