package ws_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/gateway/ws"
	"github.com/fasthttp/websocket"
)

// TestShutdownSendsClosingWithTokens checks that node.Close tells every WebSocket client
// it is going away, with the token of the last message each subscription was sent, then
// closes with 1001; and that resuming from those tokens after a restart gives exactly
// the events written meanwhile.
func TestShutdownSendsClosingWithTokens(t *testing.T) {
	cfg := nodeConfig(t, ws.Limits{})
	n := startNode(t, cfg)
	api := rest{t: t, base: "http://" + n.HTTPAddr()}
	c := connect(t, n.HTTPAddr())
	c.send(`{"type":"subscribe","id":"s1","collections":["a"],"from":"beginning"}`)
	c.send(`{"type":"subscribe","id":"s2","collections":["b"]}`)
	c.send(`{"type":"subscribe","id":"q","query":{"collection":"a"}}`)
	for i := 0; i < 5; i++ {
		api.must("PUT", fmt.Sprintf("/v1/collections/a/docs/d%d", i), `{}`)
	}
	last := map[string]string{}
	events := 0
	for events < 5 || last["s2"] == "" {
		m := c.next(5 * time.Second)
		switch m.Type {
		case "event":
			events++
			last[m.Sub] = m.Event.Token
		case "checkpoint", "caught_up":
			last[m.Sub] = m.Token
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	var closing msg
	for closing.Type == "" {
		m := c.next(5 * time.Second)
		switch m.Type {
		case "event":
			last[m.Sub] = m.Event.Token
		case "checkpoint", "caught_up":
			last[m.Sub] = m.Token
		case "closing":
			closing = m
		}
	}
	if closing.Reason != "shutdown" || len(closing.Tokens) != 2 || closing.Tokens["s1"] != last["s1"] || closing.Tokens["s2"] != last["s2"] {
		t.Fatalf("closing %+v, last tokens %v", closing, last)
	}
	_, err := c.read(5 * time.Second)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("after closing: %v", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node.Close did not return")
	}

	// Same directories and ports: resume both subscriptions where they were.
	cfg.HTTPAddr = n.HTTPAddr()
	n = startNode(t, cfg)
	defer n.Close()
	api.must("PUT", "/v1/collections/a/docs/d9", `{}`)
	api.must("PUT", "/v1/collections/b/docs/d9", `{}`)
	c = connect(t, n.HTTPAddr())
	c.send(`{"type":"subscribe","id":"s1","collections":["a"],"from":"token","token":"` + closing.Tokens["s1"] + `"}`)
	c.send(`{"type":"subscribe","id":"s2","collections":["b"],"from":"token","token":"` + closing.Tokens["s2"] + `"}`)
	got := map[string][]string{}
	for caught := 0; caught < 2; {
		m := c.next(5 * time.Second)
		switch m.Type {
		case "event":
			got[m.Sub] = append(got[m.Sub], m.Event.ID)
		case "caught_up":
			caught++
		case "error":
			t.Fatalf("resume: %+v", m.Error)
		}
	}
	if fmt.Sprint(got) != "map[s1:[d9] s2:[d9]]" {
		t.Fatalf("after resuming: %v", got)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	noLeaks(t)
}
