package rest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/node"
)

type client struct {
	t    *testing.T
	base string
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (c client) do(method, path, body string, headers ...string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (r response) code() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func startNode(t *testing.T) client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: loopback.FreeAddr(t), Shards: 2,
		Limits: gateway.Limits{MaxBodyBytes: 4096, MaxJSONDepth: 8},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return client{t: t, base: "http://" + n.HTTPAddr()}
}

func TestDocumentsOverHTTP(t *testing.T) {
	c := startNode(t)
	doc := "/v1/collections/orders/docs/a.b:c@d-1"

	r := c.do("PUT", doc, `{"total": 5, "status": "open"}`)
	if r.status != 201 || r.body["version"] != 1.0 || r.header.Get("ETag") != `"1"` {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if r = c.do("PUT", doc, `{"total": 6}`); r.status != 200 || r.body["version"] != 2.0 {
		t.Fatalf("replace: %d %s", r.status, r.raw)
	}
	r = c.do("GET", doc, "")
	if r.status != 200 || r.header.Get("ETag") != `"2"` || r.body["doc"].(map[string]any)["total"] != 6.0 {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	if r = c.do("PATCH", doc, `{"status":"paid"}`, "If-Match", `"1"`); r.status != 412 || r.code() != "precondition_failed" ||
		r.body["error"].(map[string]any)["current_version"] != 2.0 {
		t.Fatalf("stale patch: %d %s", r.status, r.raw)
	}
	if r = c.do("PATCH", doc, `{"status":"paid"}`, "If-Match", `"2"`); r.status != 200 || r.body["version"] != 3.0 {
		t.Fatalf("patch: %d %s", r.status, r.raw)
	}
	if r = c.do("PUT", doc, `{}`, "If-None-Match", "*"); r.status != 412 {
		t.Fatalf("create-only on existing: %d %s", r.status, r.raw)
	}
	if r = c.do("GET", doc+"?consistency=local", ""); r.status != 200 || r.body["doc"].(map[string]any)["status"] != "paid" {
		t.Fatalf("local get: %d %s", r.status, r.raw)
	}
	if r = c.do("DELETE", doc, ""); r.status != 200 || r.body["version"] != 4.0 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if r = c.do("GET", doc, ""); r.status != 404 || r.code() != "not_found" {
		t.Fatalf("get deleted: %d %s", r.status, r.raw)
	}
	if r = c.do("PATCH", doc, `{}`); r.status != 404 {
		t.Fatalf("patch deleted: %d %s", r.status, r.raw)
	}
	r = c.do("GET", doc+"/history", "")
	vs, _ := r.body["versions"].([]any)
	if r.status != 200 || len(vs) != 4 {
		t.Fatalf("history: %d %s", r.status, r.raw)
	}
	wantOps := []string{"put", "put", "patch", "delete"}
	for i, v := range vs {
		m := v.(map[string]any)
		if m["op"] != wantOps[i] || m["version"] != float64(i+1) || m["principal"] != "anonymous" {
			t.Fatalf("history[%d] = %v", i, m)
		}
	}

	// Idempotency: the same key gives the same answer and no second event.
	k := []string{"Idempotency-Key", "order-77"}
	first := c.do("POST", "/v1/collections/orders/docs", `{"n":1}`, k...)
	again := c.do("POST", "/v1/collections/orders/docs", `{"n":1}`, k...)
	if first.status != 201 || again.raw != first.raw {
		t.Fatalf("idempotent create: %s vs %s", first.raw, again.raw)
	}
	id := first.body["id"].(string)
	if r = c.do("GET", "/v1/collections/orders/docs/"+id+"/history", ""); len(r.body["versions"].([]any)) != 1 {
		t.Fatalf("retry appended an event: %s", r.raw)
	}
	if r = c.do("POST", "/v1/collections/orders/docs", `{"n":2}`); r.status != 201 || len(r.body["id"].(string)) != 26 {
		t.Fatalf("generated id: %d %s", r.status, r.raw)
	}

	r = c.do("POST", "/v1/batch", `{"writes":[
		{"op":"put","collection":"orders","id":"b1","doc":{"x":1}},
		{"op":"patch","collection":"orders","id":"b2","patch":{"x":2}},
		{"op":"delete","collection":"people","id":"nobody"}]}`)
	res, _ := r.body["results"].([]any)
	if r.status != 200 || len(res) != 3 {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	if res[1].(map[string]any)["status"] != 404.0 {
		t.Fatalf("batch patch of missing doc: %v", res[1])
	}

	r = c.do("GET", "/v1/collections", "")
	if r.status != 200 || !strings.Contains(r.raw, `"name":"orders"`) {
		t.Fatalf("collections: %d %s", r.status, r.raw)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	c := startNode(t)
	deep := strings.Repeat(`{"a":`, 9) + "1" + strings.Repeat("}", 9)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed", "PUT", "/v1/collections/c/docs/x", `{"a":`, 400, "invalid_json"},
		{"not an object", "PUT", "/v1/collections/c/docs/x", `[1,2]`, 400, "invalid_document"},
		{"too deep", "PUT", "/v1/collections/c/docs/x", deep, 400, "json_too_deep"},
		{"too large", "PUT", "/v1/collections/c/docs/x", `{"a":"` + strings.Repeat("x", 5000) + `"}`, 413, "body_too_large"},
		{"bad collection", "PUT", "/v1/collections/-c/docs/x", `{}`, 400, "invalid_collection"},
		{"bad id", "PUT", "/v1/collections/c/docs/x%20y", `{}`, 400, "invalid_id"},
		{"long id", "PUT", "/v1/collections/c/docs/" + strings.Repeat("i", 257), `{}`, 400, "invalid_id"},
		{"bad if-match", "PUT", "/v1/collections/c/docs/x", `{}`, 400, "invalid_argument"},
		{"bad consistency", "GET", "/v1/collections/c/docs/x?consistency=eventual", "", 400, "invalid_argument"},
		{"unknown route", "GET", "/v2/nothing", "", 404, "not_found"},
		{"batch bad op", "POST", "/v1/batch", `{"writes":[{"op":"upsert","collection":"c","id":"x"}]}`, 400, "invalid_argument"},
		{"batch empty", "POST", "/v1/batch", `{"writes":[]}`, 400, "invalid_argument"},
	}
	for _, tc := range cases {
		var hdr []string
		if tc.name == "bad if-match" {
			hdr = []string{"If-Match", "abc"}
		}
		r := c.do(tc.method, tc.path, tc.body, hdr...)
		if r.status != tc.status || r.code() != tc.code {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, r.status, r.raw, tc.status, tc.code)
		}
		if m, _ := r.body["error"].(map[string]any); m == nil || m["message"] == "" {
			t.Errorf("%s: error without message: %s", tc.name, r.raw)
		}
	}
	if r := c.do("GET", "/v1/collections", ""); strings.Contains(r.raw, `"name":"c"`) {
		t.Fatalf("a rejected request wrote: %s", r.raw)
	}
}

func TestOperationsEndpoints(t *testing.T) {
	c := startNode(t)
	if r := c.do("GET", "/healthz", ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	if r := c.do("GET", "/readyz", ""); r.status != 200 {
		t.Fatalf("readyz: %d %s", r.status, r.raw)
	}
	c.do("PUT", "/v1/collections/m/docs/1", `{"a":1}`)
	c.do("GET", "/v1/collections/m/docs/1", "")
	r := c.do("GET", "/metrics", "")
	for _, name := range []string{"aerolith_http_requests_total", "aerolith_log_proposals_total",
		"aerolith_materializer_events_applied_total", "aerolith_tier_hits_total", "aerolith_log_read_barrier_seconds"} {
		if !strings.Contains(r.raw, name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

func TestQueryAndIndexesOverHTTP(t *testing.T) {
	c := startNode(t)
	for i := 0; i < 20; i++ {
		c.do("PUT", "/v1/collections/items/docs/i"+string(rune('a'+i)), `{"n":`+strconv.Itoa(i)+`,"kind":"`+[]string{"x", "y"}[i%2]+`"}`)
	}
	r := c.do("PUT", "/v1/collections/items/indexes/by_kind", `{"fields":["kind","n"]}`)
	if r.status != 201 {
		t.Fatalf("create index: %d %s", r.status, r.raw)
	}
	if r = c.do("PUT", "/v1/collections/items/indexes/by_kind", `{"fields":["n"]}`); r.status != 409 || r.code() != "index_exists" {
		t.Fatalf("conflicting index: %d %s", r.status, r.raw)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = c.do("GET", "/v1/collections/items/indexes", "")
		if strings.Contains(r.raw, `"state":"ready"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("index never ready: %s", r.raw)
		}
		<-time.After(20 * time.Millisecond)
	}
	if !strings.Contains(r.raw, `"entries":20`) {
		t.Fatalf("index listing: %s", r.raw)
	}
	r = c.do("POST", "/v1/collections/items/query", `{"filter":"doc.kind == 'y' && doc.n > 10","sort":[{"field":"n","desc":true}],"limit":2,"fields":["n"],"explain":true}`)
	docs, _ := r.body["docs"].([]any)
	if r.status != 200 || len(docs) != 2 || r.body["next_cursor"] == "" || !strings.Contains(r.raw, `"access":"index"`) {
		t.Fatalf("query: %d %s", r.status, r.raw)
	}
	if got := docs[0].(map[string]any)["doc"]; got.(map[string]any)["n"] != 19.0 || len(got.(map[string]any)) != 1 {
		t.Fatalf("first doc: %v", got)
	}
	next := c.do("POST", "/v1/collections/items/query", `{"filter":"doc.kind == 'y' && doc.n > 10","sort":[{"field":"n","desc":true}],"limit":2,"cursor":"`+r.body["next_cursor"].(string)+`"}`)
	if d := next.body["docs"].([]any); len(d) != 2 || d[0].(map[string]any)["doc"].(map[string]any)["n"] != 15.0 {
		t.Fatalf("second page: %s", next.raw)
	}
	if r = c.do("POST", "/v1/collections/items/query", `{"filter":"doc.n > 3","count":true}`); r.body["count"] != 16.0 {
		t.Fatalf("count: %s", r.raw)
	}
	r = c.do("POST", "/v1/collections/items/query", `{"filter":"doc.n >"}`)
	if r.status != 400 || r.code() != "invalid_filter" || r.body["error"].(map[string]any)["column"] == nil {
		t.Fatalf("bad filter: %d %s", r.status, r.raw)
	}
	r = c.do("POST", "/v1/collections/items/query", `{"filter":"doc.a.exists(x, doc.b.exists(y, doc.c.exists(z, x == y)))"}`)
	if r.status != 400 || r.code() != "filter_too_expensive" {
		t.Fatalf("expensive filter: %d %s", r.status, r.raw)
	}
	if r = c.do("POST", "/v1/collections/items/query", `{"filter":"true","limit":100000}`); r.status != 400 || r.code() != "invalid_argument" {
		t.Fatalf("limit: %d %s", r.status, r.raw)
	}
	if r = c.do("POST", "/v1/collections/items/query", `{"filtre":"true"}`); r.status != 400 {
		t.Fatalf("unknown field: %d %s", r.status, r.raw)
	}
	if r = c.do("DELETE", "/v1/collections/items/indexes/by_kind", ""); r.status != 200 {
		t.Fatalf("drop: %d %s", r.status, r.raw)
	}
	if r = c.do("DELETE", "/v1/collections/items/indexes/by_kind", ""); r.status != 404 {
		t.Fatalf("drop again: %d %s", r.status, r.raw)
	}
}

func TestEventsAndAsOfOverHTTP(t *testing.T) {
	c := startNode(t)
	first := c.do("PUT", "/v1/collections/h/docs/x", `{"v":1}`)
	c.do("PUT", "/v1/collections/h/docs/x", `{"v":2}`)
	ts := first.body["ts"].(string)
	if r := c.do("GET", "/v1/collections/h/docs/x?as_of="+ts, ""); r.status != 200 || r.body["doc"].(map[string]any)["v"] != 1.0 {
		t.Fatalf("as_of: %d %s", r.status, r.raw)
	}
	if r := c.do("GET", "/v1/collections/h/docs/x?as_of=yesterday", ""); r.status != 400 {
		t.Fatalf("bad as_of: %d %s", r.status, r.raw)
	}
	r := c.do("GET", "/v1/events?collection=h&limit=1", "")
	evs, _ := r.body["events"].([]any)
	if r.status != 200 || len(evs) != 1 || r.body["next_cursor"] == "" {
		t.Fatalf("events page: %d %s", r.status, r.raw)
	}
	req, _ := http.NewRequest("GET", c.base+"/v1/events?collection=h", nil)
	req.Header.Set("Accept", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if res.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 2 || !strings.Contains(lines[1], `"version":2`) {
		t.Fatalf("ndjson: %s %q", res.Header.Get("Content-Type"), raw)
	}
	if r := c.do("GET", "/v1/events?shard=abc", ""); r.status != 400 {
		t.Fatalf("bad shard: %d %s", r.status, r.raw)
	}
}

func TestLeaderTransferEndpoint(t *testing.T) {
	c := startNode(t)
	for _, tc := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/v1/cluster/shards/x/leader", `{"to":1}`, 400, "invalid_argument"},
		{"/v1/cluster/shards/0/leader", `{"to":1}`, 400, "invalid_argument"},
		{"/v1/cluster/shards/9/leader", `{"to":1}`, 400, "invalid_argument"},
		{"/v1/cluster/shards/1/leader", `{}`, 400, "invalid_argument"},
		{"/v1/cluster/shards/1/leader", `{"to":"one"}`, 400, "invalid_argument"},
		// A single node leads its shards: handing the leadership to itself changes nothing.
		{"/v1/cluster/shards/1/leader", `{"to":1}`, 200, ""},
	} {
		r := c.do(http.MethodPost, tc.path, tc.body, "Content-Type", "application/json")
		if r.status != tc.status || r.code() != tc.code {
			t.Errorf("POST %s %s: HTTP %d %q, want %d %q (%s)", tc.path, tc.body, r.status, r.code(), tc.status, tc.code, r.raw)
		}
	}
}

func TestMemberEndpoint(t *testing.T) {
	c := startNode(t)
	// The node registers itself in the meta shard in the background.
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	r := c.do(http.MethodGet, "/v1/cluster/nodes/1", "")
	for r.status != 200 {
		select {
		case <-deadline:
			t.Fatalf("GET /v1/cluster/nodes/1: %d %s after 30 s", r.status, r.raw)
		case <-tick.C:
		}
		r = c.do(http.MethodGet, "/v1/cluster/nodes/1", "")
	}
	var n struct {
		ID    uint64 `json:"id"`
		State string `json:"state"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.raw), &n) != nil || n.ID != 1 || n.State != "active" {
		t.Fatalf("GET /v1/cluster/nodes/1: %d %s; want node 1 active", r.status, r.raw)
	}
	for path, want := range map[string]struct {
		status int
		code   string
	}{
		"/v1/cluster/nodes/7": {404, "not_found"},
		"/v1/cluster/nodes/x": {400, "invalid_argument"},
		"/v1/cluster/nodes/0": {400, "invalid_argument"},
	} {
		if r := c.do(http.MethodGet, path, ""); r.status != want.status || r.code() != want.code {
			t.Errorf("GET %s: %d %q, want %d %q (%s)", path, r.status, r.code(), want.status, want.code, r.raw)
		}
	}
}
