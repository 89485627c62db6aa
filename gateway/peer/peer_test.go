package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/internal/connmux"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/internal/peercall"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// served is a real single-node database with its peer service on a loopback port, shared
// with nothing else, as a node serves it (connmux's HTTP/2 side).
type served struct {
	db   *db.DB
	srv  *Server
	addr string
	reg  *prometheus.Registry
}

func serve(t *testing.T, withStore bool) *served {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := db.Open(ctx, db.Config{DataDir: t.TempDir(), NodeID: 1, RaftAddr: loopback.FreeAddr(t), Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := connmux.New(ln, 5*time.Second)
	reg := prometheus.NewRegistry()
	srv, err := NewServer(ServerConfig{MaxMessage: db.MaxPeerBody, Ops: db.PeerOps, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if withStore {
		srv.SetStore(d)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(mux.HTTP2()) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		mux.Close()
		d.Close()
	})
	return &served{db: d, srv: srv, addr: ln.Addr().String(), reg: reg}
}

func client(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{MaxMessage: db.MaxPeerBody})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// metric returns the server's metric name whose labels include label=value ("" matches
// any), or nil while there is none.
func (s *served) metric(t *testing.T, name, label, value string) *dto.Metric {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == label && l.GetValue() == value {
					return m
				}
			}
			if label == "" {
				return m
			}
		}
	}
	return nil
}

// served reports how many calls of op the server has served and the seconds they took.
func (s *served) served(t *testing.T, op string) (uint64, float64) {
	t.Helper()
	h := s.metric(t, "aerolith_peer_serve_duration_seconds", "op", op).GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

// waitFor polls ok until it holds, and fails the test when 10 s pass first.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !ok() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

// A call reaches the serving node's database and brings back its result, or its error
// as the same kind and message.
func TestCallsBringBackResultsAndErrors(t *testing.T) {
	s := serve(t, true)
	c := client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.db.Write(ctx, "anonymous", db.Write{Op: log.OpPut, Collection: "c", ID: "a", Body: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	shard := log.ShardOf("c", "a", 2)
	out, err := c.PeerCall(ctx, s.addr, "get", fmt.Appendf(nil, `{"shard":%d,"collection":"c","id":"a","consistency":0}`, shard))
	if err != nil {
		t.Fatal(err)
	}
	var doc db.Doc
	if err := json.Unmarshal(out, &doc); err != nil || string(doc.Body) != `{"n":1}` || doc.Version != 1 {
		t.Fatalf("get answered %s (%v)", out, err)
	}

	for _, tc := range []struct{ op, args, kind string }{
		{"get", fmt.Sprintf(`{"shard":%d,"collection":"c","id":"nope"}`, shard), "not_found"},
		{"get", `{"shard":9,"collection":"c","id":"a"}`, "invalid_argument"},
		{"no-such-op", `{}`, "invalid_argument"},
	} {
		_, err := c.PeerCall(ctx, s.addr, tc.op, []byte(tc.args))
		var pe *peercall.Error
		if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Msg == "" {
			t.Errorf("%s %s: %v, want an error of kind %s", tc.op, tc.args, err, tc.kind)
		}
	}
	if n, _ := s.served(t, "get"); n != 3 {
		t.Errorf("the server counted %d get calls, want 3", n)
	}
	// An operation the store does not know is counted as "other", not under its name.
	if s.metric(t, "aerolith_peer_served_total", "op", "no-such-op") != nil || s.metric(t, "aerolith_peer_served_total", "op", "other") == nil {
		t.Error("the unknown operation was not counted as other")
	}
}

// A node whose database is not open yet answers every call unavailable.
func TestStartingNodeAnswersUnavailable(t *testing.T) {
	s := serve(t, false)
	_, err := client(t).PeerCall(context.Background(), s.addr, "head", []byte(`{"shard":1,"now":true}`))
	var pe *peercall.Error
	if !errors.As(err, &pe) || pe.Kind != "unavailable" {
		t.Fatalf("a starting node answered %v, want unavailable", err)
	}
}

// The caller's deadline is the serving node's: a head long poll, which would wait up to
// 5 s for the shard's head to move, ends on the serving node when the caller's 200 ms
// pass. The caller sees a call that went out and got no answer (not unreachable), or,
// when the serving node's copy of the deadline passes first, the head it answered then.
func TestTheCallersDeadlineCrosses(t *testing.T) {
	s := serve(t, true)
	c := client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.PeerCall(ctx, s.addr, "head", fmt.Appendf(nil, `{"shard":1,"after":%d}`, 1<<40))
	var pe *peercall.Error
	if errors.As(err, &pe) || errors.Is(err, peercall.ErrUnreachable) {
		t.Fatalf("a call whose deadline passed while it was served: %v, want a gRPC error or the head", err)
	}
	// The serving node records the call when its handler returns.
	waitFor(t, "the serving node finishes the head call", func() bool { n, _ := s.served(t, "head"); return n == 1 })
	if _, secs := s.served(t, "head"); secs >= 2.5 {
		t.Fatalf("the serving node kept the call %.2f s after the caller's 200 ms deadline", secs)
	}
}

// Only a call no connection carried is unreachable: a refused dial, a name that does not
// resolve, a deadline passed before the call, a listener that never speaks gRPC.
func TestUnsentCallsAreUnreachable(t *testing.T) {
	c := client(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mute := ln.Addr().String()
	go func() { // reads what it gets, then hangs up
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Read(make([]byte, 4096))
			conn.Close()
		}
	}()
	defer ln.Close()
	refused := loopback.FreeAddr(t)
	expired, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		addr string
	}{
		{"refused", context.Background(), refused},
		{"unresolvable", context.Background(), "no-such-host.invalid:7070"},
		{"expired", expired, refused},
		{"not gRPC", context.Background(), mute},
	} {
		ctx, cancel := context.WithTimeout(tc.ctx, 10*time.Second)
		_, err := c.PeerCall(ctx, tc.addr, "get", []byte(`{}`))
		cancel()
		if !errors.Is(err, peercall.ErrUnreachable) {
			t.Errorf("%s: %v, want unreachable", tc.name, err)
		}
	}
}

// Shutdown ends the calls in flight, so a long poll does not hold a node's stop open:
// it returns within its context, without forcing connections closed.
func TestShutdownEndsCallsInFlight(t *testing.T) {
	s := serve(t, true)
	c := client(t)
	answered := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := c.PeerCall(ctx, s.addr, "head", fmt.Appendf(nil, `{"shard":1,"after":%d}`, 1<<40))
		answered <- err
	}()
	waitFor(t, "the head call reaches the server", func() bool {
		return s.metric(t, "aerolith_peer_calls_in_flight", "", "").GetGauge().GetValue() == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a 5 s long poll in flight: %v", err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("the long poll in flight at Shutdown: %v, want the head", err)
	}
}
