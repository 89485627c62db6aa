package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Probe is a node's answer to GET /v1/cluster/local: who it is and how far each of its
// replicas has applied.
type Probe struct {
	Node    uint64            `json:"node"`
	Applied map[uint64]uint64 `json:"applied"` // shard → raft index applied
}

// LocalPath is the HTTP path every node answers probes on.
const LocalPath = "/v1/cluster/local"

// Prober reaches other nodes' HTTP APIs: probes for the controller and status, and the
// join request of a new node.
type Prober struct {
	Self   uint64
	Client *http.Client
}

// NewProber returns a Prober for node self with a client that gives up after timeout.
func NewProber(self uint64, timeout time.Duration) *Prober {
	return &Prober{Self: self, Client: &http.Client{Timeout: timeout}}
}

// Probe asks the node at httpAddr (host:port or a URL) for its applied indexes.
func (p *Prober) Probe(ctx context.Context, httpAddr string) (Probe, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, BaseURL(httpAddr)+LocalPath, nil)
	if err != nil {
		return Probe{}, err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return Probe{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Probe{}, fmt.Errorf("meta: probe %s: status %d", httpAddr, resp.StatusCode)
	}
	var out struct {
		Node    uint64            `json:"node"`
		Applied map[string]uint64 `json:"applied"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return Probe{}, fmt.Errorf("meta: probe %s: %w", httpAddr, err)
	}
	pr := Probe{Node: out.Node, Applied: make(map[uint64]uint64, len(out.Applied))}
	for k, v := range out.Applied {
		s, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			return Probe{}, fmt.Errorf("meta: probe %s: shard %q", httpAddr, k)
		}
		pr.Applied[s] = v
	}
	return pr, nil
}

// ProbeAll probes every other node that is not removed and has an HTTP address, in
// parallel, and returns the answers of those that answered as themselves. This node is not
// probed: its caller knows its own state.
func (p *Prober) ProbeAll(ctx context.Context, nodes []Node) map[uint64]Probe {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[uint64]Probe{}
	)
	for _, n := range nodes {
		if n.State == Removed || n.HTTPAddr == "" || n.ID == p.Self {
			continue
		}
		wg.Add(1)
		go func(n Node) {
			defer wg.Done()
			pr, err := p.Probe(ctx, n.HTTPAddr)
			if err != nil || pr.Node != n.ID {
				return
			}
			mu.Lock()
			out[n.ID] = pr
			mu.Unlock()
		}(n)
	}
	wg.Wait()
	return out
}

// Member asks the node at httpAddr what its meta state says of node id. ok is false when
// that node does not know id as a member (404).
func (p *Prober) Member(ctx context.Context, httpAddr string, id uint64) (n Node, ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s%s/%d", BaseURL(httpAddr), JoinPath, id), nil)
	if err != nil {
		return Node{}, false, err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return Node{}, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return Node{}, false, nil
	default:
		return Node{}, false, fmt.Errorf("meta: member %d at %s: status %d", id, httpAddr, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&n); err != nil {
		return Node{}, false, fmt.Errorf("meta: member %d at %s: %w", id, httpAddr, err)
	}
	return n, n.ID == id, nil
}

// JoinPath is the HTTP path a member accepts join requests on.
const JoinPath = "/v1/cluster/nodes"

// Join asks the member at memberAddr to add node n to the cluster, retrying until it
// answers or ctx ends. A refusal (4xx) is returned at once.
func (p *Prober) Join(ctx context.Context, memberAddr string, n Node) error {
	body, _ := json.Marshal(map[string]any{"id": n.ID, "raft_addr": n.RaftAddr, "http_addr": n.HTTPAddr})
	backoff := 100 * time.Millisecond
	for {
		err := p.joinOnce(ctx, memberAddr, body)
		var refused *refusedError
		if err == nil || errors.As(err, &refused) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("meta: join through %s: %w (last error: %v)", memberAddr, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// LeaderPath is the HTTP path (with the shard for %d) on which a node asks its replica of
// a shard to hand the leadership to another replica: what the controller uses when its
// own replica of the shard does not vote (raft ignores a transfer asked of a non-voting
// replica).
const LeaderPath = "/v1/cluster/shards/%d/leader"

// TransferLeader asks the node at httpAddr to hand shard's leadership to replica to.
func (p *Prober) TransferLeader(ctx context.Context, httpAddr string, shard, to uint64) error {
	body, _ := json.Marshal(map[string]uint64{"to": to})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, BaseURL(httpAddr)+fmt.Sprintf(LeaderPath, shard), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("meta: leader transfer through %s: status %d: %s", httpAddr, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

func (p *Prober) joinOnce(ctx context.Context, memberAddr string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, BaseURL(memberAddr)+JoinPath, bytes.NewReader(body))
	if err != nil {
		return &refusedError{err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	client := *p.Client
	client.Timeout = 30 * time.Second // adding the node to every shard takes a few raft rounds
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4:
		return &refusedError{fmt.Sprintf("meta: join refused by %s: %s", memberAddr, strings.TrimSpace(string(msg)))}
	default:
		return fmt.Errorf("meta: join through %s: status %d: %s", memberAddr, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
}

// BaseURL returns the URL of the HTTP API at addr: host:port, or a URL already.
func BaseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + addr
}
