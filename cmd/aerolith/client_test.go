package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

// seenRequest is what the fake server recorded of one request.
type seenRequest struct {
	method, uri string
	header      http.Header
	body        string
}

// fakeAPI answers every request with status and body and records it. It stands in for the
// server only to check how the client shapes requests and prints answers.
type fakeAPI struct {
	mu     sync.Mutex
	seen   []seenRequest
	status int
	body   string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{r.Method, r.RequestURI, r.Header.Clone(), string(b)})
	status, body := f.status, f.body
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (f *fakeAPI) last(t *testing.T) seenRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		t.Fatal("the client sent no request")
	}
	return f.seen[len(f.seen)-1]
}

func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// runClient runs one client command line as main would, with stdin, and returns stdout and
// the error main would print after "aerolith: ".
func runClient(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "aerolith", SilenceUsage: true, SilenceErrors: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newClientCmds()...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ec *exitCode
	if errors.As(err, &ec) {
		return ec.code
	}
	return 1
}

func TestClientRequestShaping(t *testing.T) {
	const writeResult = `{"collection":"orders","id":"a1","version":3,"ts":"2025-01-01T00:00:00.000000001Z","position":{"shard":2,"index":17}}`
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantMethod string
		wantURI    string
		wantHeader map[string]string // "" means must be absent
		wantBody   string
	}{
		{
			name:       "put with body argument and conditions",
			args:       []string{"put", "orders", "a1", `{"total": 5}`, "--if-match", "4", "--idempotency-key", "k-1"},
			wantMethod: "PUT",
			wantURI:    "/v1/collections/orders/docs/a1",
			wantHeader: map[string]string{"If-Match": `"4"`, "Idempotency-Key": "k-1", "Content-Type": "application/json", "If-None-Match": ""},
			wantBody:   `{"total": 5}`,
		},
		{
			name:       "put quoted if-match",
			args:       []string{"put", "orders", "a1", `{}`, "--if-match", `"12"`},
			wantMethod: "PUT",
			wantURI:    "/v1/collections/orders/docs/a1",
			wantHeader: map[string]string{"If-Match": `"12"`},
			wantBody:   `{}`,
		},
		{
			name:       "put body from stdin, create only",
			args:       []string{"put", "orders", "a1", "-", "--if-none-match"},
			stdin:      " {\"x\":[1,2]}\n",
			wantMethod: "PUT",
			wantURI:    "/v1/collections/orders/docs/a1",
			wantHeader: map[string]string{"If-None-Match": "*", "If-Match": "", "Idempotency-Key": ""},
			wantBody:   `{"x":[1,2]}`,
		},
		{
			name:       "put body from stdin when omitted",
			args:       []string{"put", "orders", "a1"},
			stdin:      `{"y":1}`,
			wantMethod: "PUT",
			wantURI:    "/v1/collections/orders/docs/a1",
			wantBody:   `{"y":1}`,
		},
		{
			name:       "put generate-id posts to the collection",
			args:       []string{"put", "orders", "--generate-id", `{"a":1}`, "--idempotency-key", "gen-1"},
			wantMethod: "POST",
			wantURI:    "/v1/collections/orders/docs",
			wantHeader: map[string]string{"Idempotency-Key": "gen-1"},
			wantBody:   `{"a":1}`,
		},
		{
			name:       "ids with every allowed punctuation stay readable",
			args:       []string{"get", "my.coll-1", "user:42@eu_west-1.x"},
			wantMethod: "GET",
			wantURI:    "/v1/collections/my.coll-1/docs/user:42@eu_west-1.x",
		},
		{
			name:       "unsafe characters are escaped, never path separators",
			args:       []string{"get", "orders", "a/b?c#d e%"},
			wantMethod: "GET",
			wantURI:    "/v1/collections/orders/docs/a%2Fb%3Fc%23d%20e%25",
		},
		{
			name:       "dot ids are not dot-segments",
			args:       []string{"get", "orders", ".."},
			wantMethod: "GET",
			wantURI:    "/v1/collections/orders/docs/%2E%2E",
		},
		{
			name:       "local consistency",
			args:       []string{"get", "orders", "a1", "--consistency", "local"},
			wantMethod: "GET",
			wantURI:    "/v1/collections/orders/docs/a1?consistency=local",
		},
		{
			name:       "patch",
			args:       []string{"patch", "orders", "a1", `{"status":"paid","note":null}`, "--if-match", "3"},
			wantMethod: "PATCH",
			wantURI:    "/v1/collections/orders/docs/a1",
			wantHeader: map[string]string{"If-Match": `"3"`, "Content-Type": "application/json"},
			wantBody:   `{"status":"paid","note":null}`,
		},
		{
			name:       "delete",
			args:       []string{"delete", "orders", "a1", "--if-match", "7", "--idempotency-key", "del-1"},
			wantMethod: "DELETE",
			wantURI:    "/v1/collections/orders/docs/a1",
			wantHeader: map[string]string{"If-Match": `"7"`, "Idempotency-Key": "del-1", "Content-Type": ""},
		},
		{
			name:       "history",
			args:       []string{"history", "orders", "a:1"},
			wantMethod: "GET",
			wantURI:    "/v1/collections/orders/docs/a:1/history",
		},
		{
			name:       "collections",
			args:       []string{"collections"},
			wantMethod: "GET",
			wantURI:    "/v1/collections",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeAPI{status: 200, body: writeResult}
			srv := httptest.NewServer(api)
			defer srv.Close()
			out, err := runClient(t, tc.stdin, append(tc.args, "--addr", srv.URL)...)
			if err != nil {
				t.Fatalf("aerolith %s: %v", strings.Join(tc.args, " "), err)
			}
			got := api.last(t)
			if got.method != tc.wantMethod || got.uri != tc.wantURI {
				t.Errorf("request = %s %s, want %s %s", got.method, got.uri, tc.wantMethod, tc.wantURI)
			}
			for k, want := range tc.wantHeader {
				if g := got.header.Get(k); g != want {
					t.Errorf("header %s = %q, want %q", k, g, want)
				}
			}
			if got.body != tc.wantBody {
				t.Errorf("body = %q, want %q", got.body, tc.wantBody)
			}
			// The answer is printed indented, one trailing newline.
			if !strings.HasPrefix(out, "{\n  \"collection\": \"orders\",") || !strings.HasSuffix(out, "}\n") {
				t.Errorf("stdout is not the indented answer:\n%s", out)
			}
		})
	}
}

func TestClientErrorAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"api error", 412, `{"error":{"code":"precondition_failed","message":"current version is 4","current_version":4}}`, "precondition_failed: current version is 4"},
		{"not found", 404, `{"error":{"code":"not_found","message":"no document orders/a1"}}`, "not_found: no document orders/a1"},
		{"indeterminate", 504, `{"error":{"code":"indeterminate","message":"outcome unknown"}}`, "indeterminate: outcome unknown"},
		{"not the API's shape", 502, `<html>bad gateway</html>`, "http_502: <html>bad gateway</html>"},
		{"empty body", 503, ``, "http_503: Service Unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeAPI{status: tc.status, body: tc.body}
			srv := httptest.NewServer(api)
			defer srv.Close()
			out, err := runClient(t, "", "put", "orders", "a1", `{"a":1}`, "--addr", srv.URL)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			if s := exitStatus(err); s != 1 {
				t.Errorf("exit status %d, want 1", s)
			}
			if out != "" {
				t.Errorf("stdout should be empty on error, got %q", out)
			}
		})
	}
}

func TestClientUsageErrors(t *testing.T) {
	api := &fakeAPI{status: 200, body: `{}`}
	srv := httptest.NewServer(api)
	defer srv.Close()
	tests := [][]string{
		{"get", "orders"},
		{"get", "orders", "a", "b"},
		{"put", "orders", "a1", "{not json"},
		{"put", "orders", "a1", `{}`, "--if-match", "four"},
		{"put", "orders", "--generate-id", `{}`, "--if-none-match"},
		{"put", "orders", "a1", `{}`, "--idempotency-key", "has space"},
		{"put", "orders", "a1", `{}`, "--no-such-flag"},
		{"put", "orders", "a1", "-"}, // empty stdin
		{"collections", "extra"},
		{"get", "orders", "a1", "--addr", "ftp://host:1"},
		{"get", "orders", "a1", "--timeout", "0s"},
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

func TestClientAddr(t *testing.T) {
	api := &fakeAPI{status: 200, body: `{"collections":[]}`}
	srv := httptest.NewServer(api)
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")

	// host:port without a scheme.
	if _, err := runClient(t, "", "collections", "--addr", hostPort); err != nil {
		t.Fatalf("--addr %s: %v", hostPort, err)
	}
	// From the environment, with a trailing slash.
	t.Setenv(addrEnv, srv.URL+"/")
	out, err := runClient(t, "", "collections")
	if err != nil {
		t.Fatalf("%s=%s: %v", addrEnv, srv.URL, err)
	}
	if want := "{\n  \"collections\": []\n}\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if got := api.last(t).uri; got != "/v1/collections" {
		t.Errorf("uri = %q", got)
	}
}

func TestClientConnectionRefused(t *testing.T) {
	// A port that was just free: nothing listens there now.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = runClient(t, "", "get", "orders", "a1", "--addr", addr)
	if err == nil {
		t.Fatal("want an error with nothing listening")
	}
	if s := exitStatus(err); s != 1 {
		t.Errorf("exit status %d, want 1", s)
	}
	if !strings.Contains(err.Error(), "cannot connect to http://"+addr) {
		t.Errorf("error %q does not say it cannot connect", err)
	}
}
