package bench

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a small in-memory implementation of the document REST API (docs/api.md),
// for testing the runner, the suites and the verification without a node: it can return
// wrong answers on purpose, which a real node cannot be made to. The end-to-end test
// against a real embedded node is in package bench/embedded.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu   sync.Mutex
	docs map[string]*fakeDoc // collection + "/" + id

	// Faults, set before the run.
	corrupt func(id string, doc map[string]string) // alters a GET answer
	stale   bool                                   // GET answers the previous version
	delay   time.Duration                          // added to every document request
}

type fakeDoc struct {
	version int64
	doc     map[string]string
	prev    map[string]string
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, docs: map[string]*fakeDoc{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"status":"ok"}`) })
	mux.HandleFunc("PUT /v1/collections/{c}/docs/{id}", f.put)
	mux.HandleFunc("PATCH /v1/collections/{c}/docs/{id}", f.patch)
	mux.HandleFunc("GET /v1/collections/{c}/docs/{id}", f.get)
	mux.HandleFunc("POST /v1/batch", f.batch)
	f.srv = httptest.NewServer(mux) // binds 127.0.0.1:0
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeServer) count(coll string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k := range f.docs {
		if strings.HasPrefix(k, coll+"/") {
			n++
		}
	}
	return n
}

func (f *fakeServer) anyDocs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.docs)
}

func (f *fakeServer) wait() {
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		<-t.C
	}
}

func writeErr(w http.ResponseWriter, status int, code string) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": code}})
}

// apply performs a put (or a merge when patch) and returns the HTTP status and version.
func (f *fakeServer) apply(coll, id string, body []byte, createOnly, patch bool) (int, int64, string) {
	var doc map[string]string
	if err := json.Unmarshal(body, &doc); err != nil {
		return 400, 0, "invalid_document"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := coll + "/" + id
	d := f.docs[key]
	switch {
	case d != nil && createOnly:
		return 412, 0, "precondition_failed"
	case d == nil && patch:
		return 404, 0, "not_found"
	case d == nil:
		f.docs[key] = &fakeDoc{version: 1, doc: doc}
		return 201, 1, ""
	}
	d.prev = d.doc
	if patch {
		merged := maps.Clone(d.doc)
		maps.Copy(merged, doc)
		doc = merged
	}
	d.doc = doc
	d.version++
	return 200, d.version, ""
}

func (f *fakeServer) writeResult(w http.ResponseWriter, r *http.Request, patch bool) {
	f.wait()
	body, _ := io.ReadAll(r.Body)
	st, v, code := f.apply(r.PathValue("c"), r.PathValue("id"), body, r.Header.Get("If-None-Match") == "*", patch)
	if code != "" {
		writeErr(w, st, code)
		return
	}
	w.WriteHeader(st)
	json.NewEncoder(w).Encode(map[string]any{"collection": r.PathValue("c"), "id": r.PathValue("id"), "version": v})
}

func (f *fakeServer) put(w http.ResponseWriter, r *http.Request)   { f.writeResult(w, r, false) }
func (f *fakeServer) patch(w http.ResponseWriter, r *http.Request) { f.writeResult(w, r, true) }

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request) {
	f.wait()
	id := r.PathValue("id")
	f.mu.Lock()
	d := f.docs[r.PathValue("c")+"/"+id]
	var doc map[string]string
	var v int64
	if d != nil {
		doc, v = maps.Clone(d.doc), d.version
		if f.stale && d.prev != nil {
			doc, v = maps.Clone(d.prev), d.version-1
		}
	}
	f.mu.Unlock()
	if d == nil {
		writeErr(w, 404, "not_found")
		return
	}
	if f.corrupt != nil {
		f.corrupt(id, doc)
	}
	w.Header().Set("ETag", `"`+strconv.FormatInt(v, 10)+`"`)
	json.NewEncoder(w).Encode(map[string]any{"collection": r.PathValue("c"), "id": id, "version": v, "doc": doc})
}

func (f *fakeServer) batch(w http.ResponseWriter, r *http.Request) {
	f.wait()
	var req struct {
		Writes []struct {
			Op          string          `json:"op"`
			Collection  string          `json:"collection"`
			ID          string          `json:"id"`
			Doc         json.RawMessage `json:"doc"`
			IfNoneMatch bool            `json:"if_none_match"`
		} `json:"writes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, 400, "invalid_json")
		return
	}
	var results []map[string]any
	for _, wr := range req.Writes {
		st, v, code := f.apply(wr.Collection, wr.ID, wr.Doc, wr.IfNoneMatch, false)
		if code != "" {
			results = append(results, map[string]any{"status": st, "error": map[string]any{"code": code}})
			continue
		}
		results = append(results, map[string]any{"status": st, "collection": wr.Collection, "id": wr.ID, "version": v})
	}
	json.NewEncoder(w).Encode(map[string]any{"results": results})
}
