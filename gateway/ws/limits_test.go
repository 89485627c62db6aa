package ws_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/gateway/ws"
	"github.com/fasthttp/websocket"
)

// TestBadInputAndLimits checks that bad messages get an error message with a stable code
// (and leave the connection usable), and that the limits on subscriptions, connections,
// message size and unanswered pings hold.
func TestBadInputAndLimits(t *testing.T) {
	n := startNode(t, nodeConfig(t, ws.Limits{MaxConnections: 3, MaxSubscriptions: 2, MaxMessageBytes: 512}))
	defer n.Close()
	addr := n.HTTPAddr()
	c := connect(t, addr)
	expect := func(send any, sub, code string) msg {
		t.Helper()
		c.send(send)
		m := c.next(5 * time.Second)
		if m.Type != "error" || m.Sub != sub || m.code() != code {
			t.Fatalf("sent %v: got %+v (error %+v), want error %s for %q", send, m, m.Error, code, sub)
		}
		return m
	}
	expect(`{"type":"subscribe",`, "", "invalid_json")
	expect(`{"type":"dance","id":"x"}`, "x", "invalid_argument")
	expect(`{"type":"subscribe","id":"a","bogus":1}`, "a", "invalid_argument")
	expect(`{"type":"subscribe","id":""}`, "", "invalid_argument")
	expect(`{"type":"subscribe","id":"t","from":"token","token":"!!"}`, "t", "invalid_token")
	ahead := feed.Token{1: 1 << 40}.Encode()
	expect(`{"type":"subscribe","id":"t","from":"token","token":"`+ahead+`"}`, "t", "invalid_token")
	expect(`{"type":"subscribe","id":"t","from":"token","token":"`+feed.Token{99: 0}.Encode()+`"}`, "t", "invalid_token")
	if m := expect(`{"type":"subscribe","id":"f","filter":"doc.total >"}`, "f", "invalid_filter"); m.Error.Line != 1 {
		t.Fatalf("filter error without its line: %+v", m.Error)
	}
	expect(`{"type":"subscribe","id":"f","collections":["no spaces"]}`, "f", "invalid_collection")
	expect(`{"type":"subscribe","id":"f","from":"time","time":"yesterday"}`, "f", "invalid_argument")
	expect(`{"type":"subscribe","id":"f","from":"later"}`, "f", "invalid_argument")
	expect(`{"type":"subscribe","id":"f","include":["middle"]}`, "f", "invalid_argument")
	expect(`{"type":"subscribe","id":"q","query":{"collection":"c","limit":-1}}`, "q", "invalid_argument")
	expect(`{"type":"subscribe","id":"q","query":{"collection":"c"},"from":"now"}`, "q", "invalid_argument")
	expect(`{"type":"unsubscribe","id":"nope"}`, "nope", "unknown_subscription")

	// Subscriptions per connection.
	c.send(`{"type":"subscribe","id":"a"}`)
	c.until(5*time.Second, typ("caught_up"))
	expect(`{"type":"subscribe","id":"a"}`, "a", "duplicate_subscription")
	c.send(`{"type":"subscribe","id":"b","query":{"collection":"c"}}`)
	c.until(5*time.Second, typ("result"))
	expect(`{"type":"subscribe","id":"c"}`, "c", "too_many_subscriptions")
	c.send(`{"type":"unsubscribe","id":"a"}`)
	if m := c.next(5 * time.Second); m.Type != "unsubscribed" || m.Sub != "a" {
		t.Fatalf("unsubscribe: %+v", m)
	}
	c.send(`{"type":"subscribe","id":"c","from":"beginning"}`)
	if m := c.next(5 * time.Second); m.Type != "caught_up" || m.Sub != "c" || m.Token == "" || m.Lag == nil {
		t.Fatalf("subscribe after unsubscribe: %+v", m)
	}
	if v := metric(t, n, "aerolith_changes_subscriptions"); v != 2 {
		t.Fatalf("aerolith_changes_subscriptions %v, want 2", v)
	}

	// Connections per node: c plus two more (each serving, so counted); the fourth is
	// refused before the upgrade.
	for range 2 {
		c2 := connect(t, addr)
		c2.send(`{"type":"subscribe","id":"a"}`)
		c2.until(5*time.Second, typ("caught_up"))
	}
	_, res, err := dial(addr)
	if !errors.Is(err, websocket.ErrBadHandshake) || res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("fourth connection: %v %v", err, res)
	}
	if v := metric(t, n, `aerolith_changes_connections{protocol="ws"}`); v != 3 {
		t.Fatalf("aerolith_changes_connections %v, want 3", v)
	}
	var body struct{ Error struct{ Code string } }
	b, _ := io.ReadAll(res.Body)
	if json.Unmarshal(b, &body); body.Error.Code != "too_many_connections" {
		t.Fatalf("fourth connection refused with %s", b)
	}

	// Neither an upgrade nor an event stream.
	res, err = http.Get("http://" + addr + "/v1/changes")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d", res.StatusCode)
	}

	// A message over the limit: an error message, then close 1009.
	c.send(`{"type":"subscribe","id":"` + strings.Repeat("x", 600) + `"}`)
	if m := c.next(5 * time.Second); m.code() != "message_too_large" {
		t.Fatalf("large message: %+v", m)
	}
	_, err = c.read(5 * time.Second)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("after a large message: %v", err)
	}
	if err := n.Close(); err != nil { // with two connections still open
		t.Fatal(err)
	}
	noLeaks(t)
}

// TestUnansweredPingsClose checks that a client that stops answering pings is
// disconnected within the ping interval plus the pong timeout.
func TestUnansweredPingsClose(t *testing.T) {
	n := startNode(t, nodeConfig(t, ws.Limits{PingInterval: 100 * time.Millisecond, PongTimeout: 200 * time.Millisecond}))
	defer n.Close()
	c := connect(t, n.HTTPAddr())
	pings := 0
	c.ws.SetPingHandler(func(string) error { pings++; return nil }) // never pong
	c.send(`{"type":"subscribe","id":"a"}`)
	start := time.Now()
	for {
		if _, err := c.read(5 * time.Second); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("still open after %s", time.Since(start))
			}
			break
		}
	}
	if pings == 0 {
		t.Fatal("no ping")
	}
	t.Logf("closed after %s and %d pings", time.Since(start).Round(time.Millisecond), pings)
	// A client that answers stays: the default handler pongs while reading.
	c2 := connect(t, n.HTTPAddr())
	c2.send(`{"type":"subscribe","id":"a"}`)
	c2.until(5*time.Second, typ("caught_up"))
	if _, err := c2.read(time.Second); err == nil {
		t.Fatal("a message on an idle subscription")
	} else if ne, ok := err.(interface{ Timeout() bool }); !ok || !ne.Timeout() {
		t.Fatalf("a client that answers pings was closed: %v", err)
	}
}
