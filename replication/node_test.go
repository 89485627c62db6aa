package replication_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/node"
	"github.com/aerolithsdb/aerolith/replication"
)

func startNode(t *testing.T, dc, broker string) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: loopback.FreeAddr(t), GRPCAddr: node.GRPCOff,
		Shards: 2, DC: dc, Replication: replication.Config{Brokers: []string{broker}, DiscoverInterval: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestNodesReplicateOverHTTP: two nodes of different datacenters started with
// --kafka-brokers replicate a write made over REST, and report their links at
// GET /v1/replication and in /metrics.
func TestNodesReplicateOverHTTP(t *testing.T) {
	k, err := replication.StartDevKafka("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	east, west := startNode(t, "east", k.Addr()), startNode(t, "west", k.Addr())
	e, w := "http://"+east.HTTPAddr(), "http://"+west.HTTPAddr()
	if code, body := httpDo(t, "PUT", e+"/v1/collections/users/docs/ada", `{"name":"Ada"}`); code != 200 && code != 201 {
		t.Fatalf("put: %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body := httpDo(t, "GET", w+"/v1/collections/users/docs/ada", "")
		if code == 200 && strings.Contains(body, `"name":"Ada"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("west never got the document: %d %s", code, body)
		}
		<-tick.C
	}

	code, body := httpDo(t, "GET", w+"/v1/replication", "")
	var st replication.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("GET /v1/replication: %d %s %v", code, body, err)
	}
	var apply *replication.LinkStatus
	for i, l := range st.Links {
		if l.Direction == "apply" && l.Topic == "aerolith.east" {
			apply = &st.Links[i]
		}
	}
	if !st.Enabled || st.DC != "west" || apply == nil || apply.Events != 1 || apply.From != "east" || apply.State != "applying" {
		t.Fatalf("west's status: %s", body)
	}
	code, body = httpDo(t, "GET", e+"/metrics", "")
	if code != 200 || !strings.Contains(body, `aerolith_replication_events_total{direction="ship",topic="aerolith.east"} 1`) ||
		!strings.Contains(body, `aerolith_replication_link_up{direction="ship",topic="aerolith.east"} 1`) {
		t.Fatalf("east's metrics lack the ship link:\n%s", grepLines(body, "aerolith_replication"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
