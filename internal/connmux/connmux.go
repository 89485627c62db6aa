package connmux

import (
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// preface is how every HTTP/2 connection with prior knowledge opens (RFC 9113, 3.4).
const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Mux splits one listener's connections between HTTP/1 and HTTP/2.
type Mux struct {
	ln     net.Listener
	wait   time.Duration
	h1, h2 chan net.Conn

	mu      sync.Mutex
	sniffed map[net.Conn]struct{} // connections whose first bytes are awaited
	err     error                 // why accepting stopped; set once, before done closes
	done    chan struct{}         // closed when the Mux stops
	wg      sync.WaitGroup
}

// New starts splitting ln's connections. A connection that has not shown which protocol
// it speaks within wait is closed. The caller must Close the Mux, which closes ln.
func New(ln net.Listener, wait time.Duration) *Mux {
	m := &Mux{ln: ln, wait: wait, h1: make(chan net.Conn), h2: make(chan net.Conn),
		sniffed: map[net.Conn]struct{}{}, done: make(chan struct{})}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.accept() }()
	return m
}

// HTTP1 returns a listener of the connections that are not HTTP/2. Each call returns a
// new listener: closing one ends its Accept and leaves the others, and the connections
// still to come, to the rest.
func (m *Mux) HTTP1() net.Listener { return &view{m: m, ch: m.h1, closed: make(chan struct{})} }

// HTTP2 returns a listener of the connections that open with the HTTP/2 preface, as
// HTTP1 does for the others.
func (m *Mux) HTTP2() net.Listener { return &view{m: m, ch: m.h2, closed: make(chan struct{})} }

// Addr returns the listener's address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Close stops accepting, closes the listener and the connections not yet handed over,
// and waits for its goroutines. Connections handed over belong to their servers.
func (m *Mux) Close() error {
	m.stop(net.ErrClosed)
	err := m.ln.Close()
	m.mu.Lock()
	for c := range m.sniffed {
		c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// stop records why the Mux stopped, the first time, and ends every view's Accept.
func (m *Mux) stop(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err == nil {
		m.err = err
		close(m.done)
	}
}

func (m *Mux) accept() {
	backoff := 5 * time.Millisecond
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			// Out of file descriptors and the like: wait and go on, as net/http does.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				t := time.NewTimer(backoff)
				select {
				case <-m.done:
					t.Stop()
					return
				case <-t.C:
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			m.stop(err)
			return
		}
		backoff = 5 * time.Millisecond
		m.mu.Lock()
		select {
		case <-m.done:
			m.mu.Unlock()
			c.Close()
			return
		default:
		}
		m.sniffed[c] = struct{}{}
		m.mu.Unlock()
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.route(c) }()
	}
}

// route reads c's first bytes, only as many as it takes to tell the protocols apart, and
// hands c, with those bytes put back, to the listeners of its protocol.
func (m *Mux) route(c net.Conn) {
	var buf [len(preface)]byte
	n, h2 := 0, false
	c.SetReadDeadline(time.Now().Add(m.wait))
	for {
		k, err := c.Read(buf[n:])
		n += k
		if !strings.HasPrefix(preface, string(buf[:n])) {
			break
		}
		if n == len(preface) {
			h2 = true
			break
		}
		if err != nil {
			m.forget(c)
			c.Close()
			return
		}
	}
	c.SetReadDeadline(time.Time{})
	m.forget(c)
	ch := m.h1
	if h2 {
		ch = m.h2
	}
	select {
	case ch <- &conn{Conn: c, first: buf[:n]}:
	case <-m.done:
		c.Close()
	}
}

func (m *Mux) forget(c net.Conn) {
	m.mu.Lock()
	delete(m.sniffed, c)
	m.mu.Unlock()
}

// view is one listener of a protocol's connections.
type view struct {
	m      *Mux
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (v *view) Accept() (net.Conn, error) {
	select {
	case <-v.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-v.ch:
		return c, nil
	case <-v.closed:
		return nil, net.ErrClosed
	case <-v.m.done:
		v.m.mu.Lock()
		defer v.m.mu.Unlock()
		return nil, v.m.err
	}
}

func (v *view) Close() error {
	v.once.Do(func() { close(v.closed) })
	return nil
}

func (v *view) Addr() net.Addr { return v.m.ln.Addr() }

// conn is a connection whose first bytes, read to route it, are read again first.
type conn struct {
	net.Conn
	first []byte
}

func (c *conn) Read(p []byte) (int, error) {
	if len(c.first) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
