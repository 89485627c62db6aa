//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client talks to the nodes. Its timeout is well above the server's own bounds on a write
// (10 s) and a linearizable read (5 s), so a refusal is the server's answer, not ours.
var client = &http.Client{Timeout: 30 * time.Second}

// reply is one answer of a node.
type reply struct {
	status int
	code   string // error.code of an error body
	body   []byte
	took   time.Duration
}

func (r reply) String() string {
	return fmt.Sprintf("%d %s in %v", r.status, bytes.TrimSpace(r.body), r.took.Round(time.Millisecond))
}

func do(ctx context.Context, method, url, body string, header map[string]string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return reply{took: time.Since(start)}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, body: b, took: time.Since(start)}
	if err != nil {
		return r, err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil {
			r.code = e.Error.Code
		}
	}
	return r, nil
}

func docURL(base, id string) string { return base + "/v1/collections/e2e/docs/" + id }

// put writes a document with an idempotency key equal to its id, so a retry of an
// indeterminate write is answered, never applied twice.
func put(ctx context.Context, base, id, doc string) (reply, error) {
	return do(ctx, "PUT", docURL(base, id), doc, map[string]string{"Idempotency-Key": id})
}

// get reads a document; local reads the node's replica without a raft round.
func get(ctx context.Context, base, id string, local bool) (reply, error) {
	u := docURL(base, id)
	if local {
		u += "?consistency=local"
	}
	return do(ctx, "GET", u, "", nil)
}

// written is the answer to a write.
type written struct {
	Version  uint64 `json:"version"`
	Position struct {
		Shard uint64 `json:"shard"`
		Index uint64 `json:"index"`
	} `json:"position"`
}

// putRetry writes until the write is acknowledged or ctx ends, retrying refusals that are
// safe to retry (503, 504 and transport errors; the idempotency key makes them safe).
func putRetry(ctx context.Context, base, id, doc string) (written, error) {
	var w written
	var refused error
	err := poll(ctx, 100*time.Millisecond, func() error {
		r, err := put(ctx, base, id, doc)
		if err != nil {
			return err
		}
		switch r.status {
		case 200, 201:
			return json.Unmarshal(r.body, &w)
		case 503, 504:
			return fmt.Errorf("put %s: %v", id, r)
		}
		refused = fmt.Errorf("put %s: %v", id, r)
		return nil
	})
	if refused != nil {
		return w, refused
	}
	return w, err
}

// document is the answer to a read.
type document struct {
	Version uint64          `json:"version"`
	Doc     json.RawMessage `json:"doc"`
}

// digest is a node's state digest (GET /v1/admin/digest).
type digest struct {
	Digest string `json:"digest"`
	Token  string `json:"token"`
}

func getDigest(ctx context.Context, base string) (digest, error) {
	var d digest
	r, err := do(ctx, "GET", base+"/v1/admin/digest", "", nil)
	if err != nil {
		return d, err
	}
	if r.status != 200 {
		return d, fmt.Errorf("digest: %v", r)
	}
	return d, json.Unmarshal(r.body, &d)
}

// clusterView is a node's GET /v1/cluster.
type clusterView struct {
	Node   uint64                `json:"node"`
	Nodes  []struct{ ID uint64 } `json:"nodes"`
	Shards []struct {
		Shard      uint64 `json:"shard"`
		Meta       bool   `json:"meta"` // the membership shard, which holds no documents
		Membership string `json:"membership"`
		Leader     uint64 `json:"leader"`
		Term       uint64 `json:"term"`
		Applied    uint64 `json:"applied"`
	} `json:"shards"`
}

func getCluster(ctx context.Context, base string) (clusterView, error) {
	var v clusterView
	r, err := do(ctx, "GET", base+"/v1/cluster", "", nil)
	if err != nil {
		return v, err
	}
	if r.status != 200 {
		return v, fmt.Errorf("cluster: %v", r)
	}
	return v, json.Unmarshal(r.body, &v)
}
