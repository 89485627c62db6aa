package ws_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/gateway/ws"
	"github.com/aerolithsdb/aerolith/node"
	"github.com/fasthttp/websocket"
)

// cluster is one node that a test restarts on the same data directory and ports.
type restartable struct {
	t   *testing.T
	cfg node.Config

	mu    sync.Mutex
	n     *node.Node
	ready chan struct{} // closed while the node serves
}

func (r *restartable) node() (*node.Node, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.ready
}

// restart closes the node and starts it again on the same directories and addresses.
func (r *restartable) restart() error {
	r.mu.Lock()
	n := r.n
	r.ready = make(chan struct{})
	r.mu.Unlock()
	if err := n.Close(); err != nil {
		return err
	}
	n2 := startNode(r.t, r.cfg)
	r.mu.Lock()
	r.n = n2
	close(r.ready)
	r.mu.Unlock()
	return nil
}

// TestResumeWithoutGapOrDuplicate is the change-stream resume test: writers write
// continuously over REST while WebSocket subscribers drop their connection at random
// moments (abruptly or with a close frame) and resume from their last token, and the
// server restarts once on the same data directory in the middle (subscribers then resume
// from the tokens of the closing message). Every subscriber must have received, per
// shard, exactly the committed positions 1..head, in order.
func TestResumeWithoutGapOrDuplicate(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	cfg := nodeConfig(t, ws.Limits{})
	r := &restartable{t: t, cfg: cfg, ready: make(chan struct{})}
	r.n = startNode(t, cfg)
	close(r.ready)
	r.cfg.HTTPAddr = r.n.HTTPAddr() // the same port after the restart
	defer func() { n, _ := r.node(); n.Close() }()
	addr := r.cfg.HTTPAddr
	api := rest{t: t, base: "http://" + addr}

	const writes, restartAt = 1200, 500
	var written atomic.Int64
	writersDone := make(chan struct{})
	var wwg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(100+w)))
			fails := 0
			for written.Load() < writes {
				coll := fmt.Sprint("c", rng.IntN(2))
				path := fmt.Sprintf("/v1/collections/%s/docs/k%d", coll, rng.IntN(60))
				method, body := "PUT", fmt.Sprintf(`{"w":%d,"n":%d,"pad":"%0100d"}`, w, rng.IntN(1000), 0)
				if rng.IntN(8) == 0 {
					method, body = "DELETE", ""
				}
				code, b, err := api.do(method, path, body)
				switch {
				case err == nil && (code < 300 || code == 404):
					written.Add(1)
					fails = 0
				default:
					// The node is restarting: wait until it serves again.
					if fails++; fails > 50 {
						t.Errorf("writer %d: %d failures in a row, last: %d %s %v", w, fails, code, b, err)
						return
					}
					_, ready := r.node()
					<-ready
				}
			}
		}()
	}
	go func() { wwg.Wait(); close(writersDone) }()

	restarted := make(chan error, 1)
	go func() {
		for written.Load() < restartAt {
			select {
			case <-writersDone:
				restarted <- errors.New("writers finished before the restart")
				return
			case <-time.After(10 * time.Millisecond): // polling a counter
			}
		}
		restarted <- r.restart()
	}()

	committed := func() map[uint64]uint64 {
		n, ready := r.node()
		<-ready
		heads := map[uint64]uint64{}
		for s := uint64(1); s <= uint64(n.DB().Shards()); s++ {
			heads[s] = n.DB().Hub().Head(s)
		}
		return heads
	}
	finished := func(got map[uint64][]uint64) bool {
		select {
		case <-writersDone:
		default:
			return false
		}
		for s, h := range committed() {
			if uint64(len(got[s])) < h {
				return false
			}
		}
		return true
	}

	deadline := time.Now().Add(70 * time.Second)
	type result struct {
		got               map[uint64][]uint64
		reconnects, close int
		err               error
	}
	results := make([]result, 2)
	var swg sync.WaitGroup
	for i := range results {
		swg.Add(1)
		go func() {
			defer swg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			res := &results[i]
			res.got = map[uint64][]uint64{}
			token := ""
			for !finished(res.got) {
				if time.Now().After(deadline) {
					res.err = fmt.Errorf("timed out; received %d events", total(res.got))
					return
				}
				conn, _, err := dial(addr)
				if err != nil {
					_, ready := r.node()
					<-ready
					continue
				}
				res.reconnects++
				c := &client{t: t, ws: conn}
				sub := map[string]any{"type": "subscribe", "id": "s", "from": "beginning", "include": []string{"after"}}
				if token != "" {
					sub["from"], sub["token"] = "token", token
				}
				if err := conn.WriteJSON(sub); err != nil {
					conn.Close()
					continue
				}
				quota := 1 + rng.IntN(150)
				for quota > 0 {
					m, err := c.read(2 * time.Second)
					if err != nil {
						var ce *websocket.CloseError
						if errors.As(err, &ce) && ce.Code == websocket.CloseGoingAway {
							res.close++
						}
						break // server restart, or idle: reconnect and check for the end
					}
					switch m.Type {
					case "event":
						e := m.Event
						res.got[e.Position.Shard] = append(res.got[e.Position.Shard], e.Position.Index)
						token = e.Token
						quota--
						if len(e.After) == 0 && e.Op != "d" {
							res.err = fmt.Errorf("event without its after image: %+v", e)
							conn.Close()
							return
						}
					case "checkpoint", "caught_up":
						token = m.Token
					case "closing":
						// Absent when the subscription was not set up before the shutdown:
						// then nothing came on this connection and the old token stands.
						if tok, ok := m.Tokens["s"]; ok {
							token = tok
						}
					case "error":
						res.err = fmt.Errorf("error message: %+v", m.Error)
						conn.Close()
						return
					}
					if finished(res.got) {
						break
					}
				}
				if rng.IntN(2) == 0 {
					_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				}
				conn.Close() // otherwise abruptly, possibly with unread messages in flight
			}
		}()
	}
	swg.Wait()
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	heads := committed()
	for i, res := range results {
		if res.err != nil {
			t.Fatalf("subscriber %d: %v", i, res.err)
		}
		for s, h := range heads {
			want := make([]uint64, h)
			for j := range want {
				want[j] = uint64(j + 1)
			}
			if !slices.Equal(res.got[s], want) {
				t.Fatalf("subscriber %d shard %d: received %d events, committed %d; first difference at %d",
					i, s, len(res.got[s]), h, firstDiff(res.got[s], want))
			}
		}
		// A subscriber between connections at the restart sees no close frame; the shutdown
		// test checks the closing message itself.
		t.Logf("subscriber %d: %d events over %d connections; %d ended by the restart's close 1001",
			i, total(res.got), res.reconnects, res.close)
	}
	t.Logf("committed per shard %v, writes acknowledged %d", heads, written.Load())
}

func total(got map[uint64][]uint64) int {
	n := 0
	for _, g := range got {
		n += len(g)
	}
	return n
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
