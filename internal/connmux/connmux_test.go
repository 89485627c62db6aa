package connmux

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// echoFirst accepts one connection from ln and sends back what it reads, up to n bytes.
func echoFirst(t *testing.T, ln net.Listener, n int) <-chan string {
	out := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			out <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		b := make([]byte, n)
		k, err := io.ReadFull(c, b)
		if err != nil {
			out <- "read: " + err.Error()
			return
		}
		out <- string(b[:k])
	}()
	return out
}

func send(t *testing.T, addr, s string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
	return c
}

// Each connection reaches the listener of its protocol with every byte it sent, the ones
// read to tell the protocols apart first.
func TestConnectionsGoToTheirProtocol(t *testing.T) {
	m := New(listen(t), 5*time.Second)
	defer m.Close()
	for _, tc := range []struct {
		name, sent string
		h2         bool
	}{
		{"HTTP/2 preface and a frame", preface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00", true},
		{"a short HTTP/1.0 request", "GET / HTTP/1.0\r\n\r\n", false},
		{"a request that starts as the preface does", "PUT /v1/x HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"PRI, then not the preface", "PRI * HTTP/1.1\r\n\r\nSM\r\n\r\nxyz", false},
	} {
		ln := m.HTTP1()
		if tc.h2 {
			ln = m.HTTP2()
		}
		got := echoFirst(t, ln, len(tc.sent))
		c := send(t, m.Addr().String(), tc.sent)
		if s := <-got; s != tc.sent {
			t.Errorf("%s: the listener read %q, want %q", tc.name, s, tc.sent)
		}
		c.Close()
		ln.Close()
	}
}

// An HTTP/1 server and an HTTP/2 reader share the port, and one protocol's listener
// closing leaves the other serving.
func TestServersShareThePort(t *testing.T) {
	m := New(listen(t), 5*time.Second)
	defer m.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })}
	go srv.Serve(m.HTTP1())
	defer srv.Close()
	get := func() string {
		resp, err := http.Get("http://" + m.Addr().String() + "/")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if s := get(); s != "hello" {
		t.Fatalf("HTTP/1 GET answered %q", s)
	}
	h2 := m.HTTP2()
	got := echoFirst(t, h2, len(preface))
	c := send(t, m.Addr().String(), preface)
	if s := <-got; s != preface {
		t.Fatalf("the HTTP/2 listener read %q", s)
	}
	c.Close()
	h2.Close()
	if _, err := h2.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v", err)
	}
	if s := get(); s != "hello" {
		t.Fatalf("HTTP/1 GET after the HTTP/2 listener closed answered %q", s)
	}
}

// A connection that says nothing is closed after the wait; Close ends Accept and closes
// the connections not handed over yet.
func TestSilentConnectionsAndClose(t *testing.T) {
	m := New(listen(t), 200*time.Millisecond)
	c, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(c).ReadByte(); !closedByPeer(err) {
		t.Fatalf("a silent connection was not closed by the mux: %v", err)
	}
	c.Close()

	// One connection stays in the middle of the preface when Close comes.
	half := send(t, m.Addr().String(), preface[:5])
	defer half.Close()
	accepted := make(chan error, 1)
	go func() { _, err := m.HTTP1().Accept(); accepted <- err }()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	half.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := half.Read(make([]byte, 1)); !closedByPeer(err) {
		t.Fatalf("a connection still being routed at Close was not closed: %v", err)
	}
	if _, err := net.Dial("tcp", m.Addr().String()); err == nil {
		t.Fatal("the port still accepts after Close")
	}
}

// closedByPeer reports whether a read ended because the other end closed (not because
// its own deadline passed).
func closedByPeer(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}
