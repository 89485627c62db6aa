package ws_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/gateway/ws"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/node"
	"github.com/fasthttp/websocket"
)

func nodeConfig(t testing.TB, lim ws.Limits) node.Config {
	return node.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: loopback.FreeAddr(t), Shards: 2, Changes: lim}
}

func startNode(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// msg is any server message.
type msg struct {
	Type   string         `json:"type"`
	Sub    string         `json:"sub"`
	Token  string         `json:"token"`
	Event  *feed.Envelope `json:"event"`
	Tokens map[string]string
	Reason string
	Lag    *struct {
		Events  uint64  `json:"events"`
		Seconds float64 `json:"seconds"`
	} `json:"lag"`
	Error *struct {
		Code     string        `json:"code"`
		Message  string        `json:"message"`
		Earliest *log.Position `json:"earliest"`
		Line     int           `json:"line"`
	} `json:"error"`
	Docs  []doc `json:"docs"`
	Op    string
	Index *int
	Doc   doc
	Last  bool
}

type doc struct {
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Version    uint64          `json:"version"`
	TS         string          `json:"ts"`
	Doc        json.RawMessage `json:"doc"`
}

func (m msg) code() string {
	if m.Error == nil {
		return ""
	}
	return m.Error.Code
}

type client struct {
	t  testing.TB
	ws *websocket.Conn
}

func dial(addr string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial("ws://"+addr+"/v1/changes", nil)
}

func connect(t testing.TB, addr string) *client {
	t.Helper()
	c, _, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, ws: c}
}

func (c *client) send(v any) {
	c.t.Helper()
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatal(err)
	}
}

// next reads one message, failing the test after timeout.
func (c *client) next(timeout time.Duration) msg {
	c.t.Helper()
	m, err := c.read(timeout)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

func (c *client) read(timeout time.Duration) (msg, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		return msg{}, err
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		return msg{}, fmt.Errorf("%w: %s", err, b)
	}
	return m, nil
}

// until reads messages until one satisfies ok.
func (c *client) until(timeout time.Duration, ok func(msg) bool) msg {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.t.Fatal("timed out waiting for a message")
		}
		if m := c.next(left); ok(m) {
			return m
		}
	}
}

func typ(t string) func(msg) bool { return func(m msg) bool { return m.Type == t } }

type rest struct {
	t    testing.TB
	base string
}

func (r rest) do(method, path, body string) (int, string, error) {
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func (r rest) must(method, path, body string) string {
	r.t.Helper()
	code, b, err := r.do(method, path, body)
	if err != nil || code >= 300 {
		r.t.Fatalf("%s %s: %d %s %v", method, path, code, b, err)
	}
	return b
}

// noLeaks fails the test when goroutines of package ws are still running (after the
// nodes were closed).
func noLeaks(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 8<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left [][]byte
		for _, g := range bytes.Split(buf, []byte("\n\n")) {
			if bytes.Contains(g, []byte("aerolith/gateway/ws.(")) {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of gateway/ws outlive the node:\n%s", len(left), bytes.Join(left, []byte("\n\n")))
		}
		<-time.After(10 * time.Millisecond) // polling
	}
}

// metric reads one unlabelled sample from the node's /metrics.
func metric(t testing.TB, n *node.Node, name string) float64 {
	t.Helper()
	res, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
