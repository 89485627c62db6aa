package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestQueryRequestShaping(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantMethod string
		wantURI    string
		wantBody   string // JSON, compared as a value; "" means no body
	}{
		{
			name:       "filter only",
			args:       []string{"query", "orders", `doc.status == "open"`},
			wantMethod: "POST",
			wantURI:    "/v1/collections/orders/query",
			wantBody:   `{"filter":"doc.status == \"open\""}`,
		},
		{
			name:       "no filter: every document",
			args:       []string{"query", "orders"},
			wantMethod: "POST",
			wantURI:    "/v1/collections/orders/query",
			wantBody:   `{}`,
		},
		{
			name: "every option",
			args: []string{"query", "my.orders", `doc.total > 100`, "--sort", "-total,+name,id", "--limit", "10",
				"--cursor", "abc", "--fields", "total,address.city", "--explain", "--consistency", "local", "--as-of", "2026-11-22T01:47:21Z"},
			wantMethod: "POST",
			wantURI:    "/v1/collections/my.orders/query",
			wantBody: `{"filter":"doc.total > 100","sort":[{"field":"total","desc":true},{"field":"name"},{"field":"id"}],` +
				`"limit":10,"cursor":"abc","fields":["total","address.city"],"explain":true,"consistency":"local","as_of":"2026-11-22T01:47:21Z"}`,
		},
		{
			name:       "count",
			args:       []string{"query", "orders", `doc.customer == "c123"`, "--count"},
			wantMethod: "POST",
			wantURI:    "/v1/collections/orders/query",
			wantBody:   `{"filter":"doc.customer == \"c123\"","count":true}`,
		},
		{
			name:       "collection is one escaped segment",
			args:       []string{"query", "..", ""},
			wantMethod: "POST",
			wantURI:    "/v1/collections/%2E%2E/query",
			wantBody:   `{}`,
		},
		{
			name:       "index create",
			args:       []string{"index", "create", "orders", "by_status_total", "status", "total"},
			wantMethod: "PUT",
			wantURI:    "/v1/collections/orders/indexes/by_status_total",
			wantBody:   `{"fields":["status","total"]}`,
		},
		{
			name:       "index create on a nested field",
			args:       []string{"index", "create", "orders", "by_city", "address.city"},
			wantMethod: "PUT",
			wantURI:    "/v1/collections/orders/indexes/by_city",
			wantBody:   `{"fields":["address.city"]}`,
		},
		{
			name:       "index list",
			args:       []string{"index", "list", "orders"},
			wantMethod: "GET",
			wantURI:    "/v1/collections/orders/indexes",
		},
		{
			name:       "index list local",
			args:       []string{"index", "list", "orders", "--consistency", "local"},
			wantMethod: "GET",
			wantURI:    "/v1/collections/orders/indexes?consistency=local",
		},
		{
			name:       "index drop",
			args:       []string{"index", "drop", "orders", "by_city"},
			wantMethod: "DELETE",
			wantURI:    "/v1/collections/orders/indexes/by_city",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeAPI{status: 200, body: `{"docs":[],"next_cursor":""}`}
			srv := httptest.NewServer(api)
			defer srv.Close()
			out, err := runClient(t, "", append(tc.args, "--addr", srv.URL)...)
			if err != nil {
				t.Fatalf("aerolith %s: %v", strings.Join(tc.args, " "), err)
			}
			got := api.last(t)
			if got.method != tc.wantMethod || got.uri != tc.wantURI {
				t.Errorf("request = %s %s, want %s %s", got.method, got.uri, tc.wantMethod, tc.wantURI)
			}
			if tc.wantBody == "" {
				if got.body != "" {
					t.Errorf("body = %q, want none", got.body)
				}
			} else {
				if ct := got.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				var g, w any
				if err := json.Unmarshal([]byte(got.body), &g); err != nil {
					t.Fatalf("body %q: %v", got.body, err)
				}
				if err := json.Unmarshal([]byte(tc.wantBody), &w); err != nil {
					t.Fatal(err)
				}
				gb, _ := json.Marshal(g)
				wb, _ := json.Marshal(w)
				if string(gb) != string(wb) {
					t.Errorf("body = %s, want %s", gb, wb)
				}
			}
			if want := "{\n  \"docs\": [],\n  \"next_cursor\": \"\"\n}\n"; out != want {
				t.Errorf("stdout = %q, want the indented answer %q", out, want)
			}
		})
	}
}

// pagingAPI answers queries from a fixed list of documents, limit per page, with the
// cursor being the index of the next document. It records the request bodies.
type pagingAPI struct {
	mu     sync.Mutex
	docs   []string
	bodies []map[string]any
	stuck  bool // answer the same cursor forever
}

func (p *pagingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req map[string]any
	_ = json.Unmarshal(b, &req)
	p.mu.Lock()
	p.bodies = append(p.bodies, req)
	p.mu.Unlock()
	from := 0
	if c, ok := req["cursor"].(string); ok {
		from = int(c[0] - '0')
	}
	limit := 2
	if l, ok := req["limit"].(float64); ok {
		limit = int(l)
	}
	to := min(from+limit, len(p.docs))
	next := ""
	if to-from == limit {
		next = string(rune('0' + to))
		if p.stuck {
			next = "0"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"docs":[`+strings.Join(p.docs[from:to], ",")+`],"next_cursor":"`+next+`"}`)
}

func TestQueryAllFollowsCursors(t *testing.T) {
	api := &pagingAPI{docs: []string{
		`{"collection":"orders","id":"a","version":1,"doc":{"total": 1}}`,
		`{"collection":"orders","id":"b","version":1,"doc":{"total": 2}}`,
		`{"collection":"orders","id":"c","version":2,"doc":{"x": {"y": [1, 2]}}}`,
		`{"collection":"orders","id":"d","version":1,"doc":{}}`,
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	out, err := runClient(t, "", "query", "orders", "doc.total > 0", "--sort", "-total", "--limit", "2", "--all", "--addr", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"collection":"orders","id":"a","version":1,"doc":{"total":1}}
{"collection":"orders","id":"b","version":1,"doc":{"total":2}}
{"collection":"orders","id":"c","version":2,"doc":{"x":{"y":[1,2]}}}
{"collection":"orders","id":"d","version":1,"doc":{}}
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	// Four documents in pages of two: the third page is empty and has no cursor.
	if len(api.bodies) != 3 {
		t.Fatalf("%d requests, want 3: %v", len(api.bodies), api.bodies)
	}
	for i, b := range api.bodies {
		if b["filter"] != "doc.total > 0" || b["limit"] != float64(2) {
			t.Errorf("request %d lost the filter or limit: %v", i, b)
		}
		if s, _ := b["sort"].([]any); len(s) != 1 {
			t.Errorf("request %d lost the sort: %v", i, b)
		}
	}
	if _, ok := api.bodies[0]["cursor"]; ok {
		t.Errorf("first request has a cursor: %v", api.bodies[0])
	}
	if api.bodies[1]["cursor"] != "2" || api.bodies[2]["cursor"] != "4" {
		t.Errorf("cursors not followed: %v", api.bodies)
	}

	// A server that keeps answering the same cursor is not followed forever.
	stuck := &pagingAPI{docs: api.docs, stuck: true}
	srv2 := httptest.NewServer(stuck)
	defer srv2.Close()
	_, err = runClient(t, "", "query", "orders", "--limit", "2", "--cursor", "0", "--all", "--addr", srv2.URL)
	if err == nil || exitStatus(err) != 1 || !strings.Contains(err.Error(), "same next_cursor") {
		t.Fatalf("stuck cursor: %v", err)
	}
}

func TestQueryErrorAnswer(t *testing.T) {
	api := &fakeAPI{status: 400, body: `{"error":{"code":"invalid_filter","message":"1:5: undeclared reference to 'dox'","line":1,"column":5}}`}
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, args := range [][]string{
		{"query", "orders", "dox.a == 1"},
		{"query", "orders", "dox.a == 1", "--all"},
	} {
		out, err := runClient(t, "", append(args, "--addr", srv.URL)...)
		if err == nil || err.Error() != "invalid_filter: 1:5: undeclared reference to 'dox'" || exitStatus(err) != 1 {
			t.Errorf("aerolith %s: error %v (exit %d)", strings.Join(args, " "), err, exitStatus(err))
		}
		if out != "" {
			t.Errorf("stdout should be empty on error, got %q", out)
		}
	}
}

func TestQueryUsageErrors(t *testing.T) {
	api := &fakeAPI{status: 200, body: `{}`}
	srv := httptest.NewServer(api)
	defer srv.Close()
	tests := [][]string{
		{"query"},
		{"query", "orders", "true", "extra"},
		{"query", "", "true"},
		{"query", "orders", "--sort", "-total,,name"},
		{"query", "orders", "--sort", "-"},
		{"query", "orders", "--limit", "0"},
		{"query", "orders", "--limit", "-3"},
		{"query", "orders", "--limit", "ten"},
		{"query", "orders", "--fields", "a,,b"},
		{"query", "orders", "--consistency", "eventual"},
		{"query", "orders", "--all", "--count"},
		{"query", "orders", "--all", "--explain"},
		{"index"},
		{"index", "rebuild", "orders"},
		{"index", "create", "orders", "by_x"},
		{"index", "create", "orders", "by_x", ""},
		{"index", "list"},
		{"index", "drop", "orders"},
		{"index", "list", "orders", "--addr", "ftp://x:1"},
	}
	for _, args := range tests {
		_, err := runClient(t, "", append([]string{"--addr", srv.URL}, args...)...)
		if s := exitStatus(err); s != 2 {
			t.Errorf("aerolith %s: exit status %d (%v), want 2", strings.Join(args, " "), s, err)
		}
	}
	if n := api.count(); n != 0 {
		t.Errorf("usage errors sent %d request(s), want none", n)
	}
}
