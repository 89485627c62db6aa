package main

// TestCrashAcknowledgedWritesSurvive checks the durability claim "acknowledged means
// durable" from outside, the way a user would: it runs the real binary, writes to it
// concurrently over REST, kills it with SIGKILL at a random moment, restarts it on the same
// data directory and checks every key's history against what the writers were told.
//
// Every write carries a unique id, used both as its Idempotency-Key and as the "w" field of
// the document or patch it writes, so each event in a key's history names the request that
// produced it. After each restart, for every key:
//
//   - versions are 1..n with no gap, in one shard, at strictly increasing log indexes, and
//     the history verified after the previous restart is an unchanged prefix;
//   - every acknowledged write is there, at the version and position it was acknowledged
//     with (nothing lost, no version regressed);
//   - every put/patch event names a request that was acknowledged or whose outcome was
//     unknown (a refused request never applies), and no request appears twice;
//   - each event's document is what the request says: the put body, or the merge patch
//     applied to the previous version; deletes no acknowledged delete explains are at most
//     the deletes whose outcome was unknown;
//   - conditional writes respected their condition (If-Match v → version v+1);
//   - GET, linearizable and ?consistency=local, returns the last version (ETag included),
//     or 404 after a delete.
//
// Then a sample of acknowledged writes (and of unknown-outcome writes that turned out to be
// applied) is re-sent with the same Idempotency-Key: the answer must be the first one and the
// history must not grow. The live count of GET /v1/collections must match.
//
// Writes whose outcome is unknown (the connection died, or 504 indeterminate) may or may not
// be in the history; once a restart has shown which, that is settled for good.
//
// Run longer:  go test ./cmd/aerolith -run TestCrash -v -timeout 60m -crash.cycles=200
// Reproduce:   ... -crash.seed=N (the seed is logged; thread scheduling still varies).

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
)

var (
	crashCycles = flag.Int("crash.cycles", 0, "kill/restart cycles of TestCrashAcknowledgedWritesSurvive (default $AEROLITH_CRASH_CYCLES or 20)")
	crashSeed   = flag.Uint64("crash.seed", 0, "seed of TestCrashAcknowledgedWritesSurvive (default $AEROLITH_CRASH_SEED or from the clock)")
)

const (
	crashCollection = "crash"
	crashKeys       = 48
	crashWriters    = 16
	crashShards     = 4
	// A write gets this many attempts (same Idempotency-Key) while the server answers
	// 503 or 504.
	crashAttempts = 4
	// Re-sent after each restart: this many acknowledged writes from any cycle, and this
	// many unknown-outcome writes of the last cycle that turned out to be applied.
	crashResendAcked   = 12
	crashResendApplied = 6
)

// outcome is what the test knows about whether a write was applied.
type outcome int

const (
	outPending       outcome = iota // not answered yet
	outAcked                        // 2xx: must be in the history at the answered version
	outRefused                      // a definite "no" (404, 412, 503, never sent): must never apply
	outIndeterminate                // unknown until the next restart shows it
	outApplied                      // was unknown; a restart found it applied
	outAbsent                       // was unknown; a restart found it not applied: must never apply
	outSettledDelete                // an unknown-outcome delete after the restart that settled it
)

var outcomeNames = [...]string{"pending", "acknowledged", "refused", "indeterminate", "applied-after-unknown", "absent-after-unknown", "settled-delete"}

func (o outcome) String() string { return outcomeNames[o] }

type position struct {
	Shard uint64 `json:"shard"`
	Index uint64 `json:"index"`
}

// writeResult is the body of a successful write.
type writeResult struct {
	Collection string   `json:"collection"`
	ID         string   `json:"id"`
	Version    uint64   `json:"version"`
	TS         string   `json:"ts"`
	Position   position `json:"position"`
}

type historyEntry struct {
	Version  uint64          `json:"version"`
	Op       string          `json:"op"`
	TS       string          `json:"ts"`
	Position position        `json:"position"`
	Doc      json.RawMessage `json:"doc"`
	doc      any             // Doc decoded; nil for a delete
}

// crashWrite is one request of the test and everything it learnt about it.
type crashWrite struct {
	id          string // Idempotency-Key and the "w" field of the body
	key         string
	cycle       int
	op          string // put, patch, delete
	body        []byte
	doc         any // body decoded the way the server's documents are
	ifMatch     uint64
	ifNoneMatch bool

	outcome outcome
	status  int         // HTTP status of the acknowledgment
	result  writeResult // the acknowledgment, or the history entry once outApplied
	note    string      // how the last attempt ended, for failure messages
}

func (w *crashWrite) String() string {
	s := fmt.Sprintf("%s %s/%s (request %s, cycle %d", strings.ToUpper(w.op), crashCollection, w.key, w.id, w.cycle)
	if w.ifMatch > 0 {
		s += fmt.Sprintf(", If-Match %d", w.ifMatch)
	}
	if w.ifNoneMatch {
		s += ", If-None-Match *"
	}
	return s + ", " + w.outcome.String() + ")"
}

type crashHarness struct {
	t       *testing.T
	bin     string
	dataDir string
	logPath string
	base    string // http://127.0.0.1:P
	args    []string
	hc      *http.Client
	proc    *serverProc
	starts  int

	mu       sync.Mutex // guards writes, byID, byKey, known while writers run
	writes   []*crashWrite
	byID     map[string]*crashWrite
	byKey    map[string][]*crashWrite
	known    map[string]uint64 // highest version an answer showed per key, for If-Match
	verified map[string][]historyEntry
	// Unknown-outcome deletes per key since the last verification: the deletes in the new
	// part of a history that no acknowledged delete explains must not outnumber them.
	pendingDeletes map[string]int

	// Counts for the summary.
	acked, refused, indeterminate, applied, absent, resent, keysVerified int
}

func crashConfig(t *testing.T) (cycles int, seed uint64) {
	cycles = *crashCycles
	if cycles == 0 {
		cycles = 20
		if s := os.Getenv("AEROLITH_CRASH_CYCLES"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				t.Fatalf("AEROLITH_CRASH_CYCLES=%q: want a positive integer", s)
			}
			cycles = n
		}
	}
	seed = *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
		if s := os.Getenv("AEROLITH_CRASH_SEED"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("AEROLITH_CRASH_SEED=%q: want an unsigned integer", s)
			}
			seed = n
		}
	}
	return cycles, seed
}

func TestCrashAcknowledgedWritesSurvive(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds the binary and kills it repeatedly; skipped with -short")
	}
	cycles, seed := crashConfig(t)
	t.Logf("crash test: %d cycles, seed %d (rerun with -crash.seed=%d)", cycles, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	began := time.Now()
	budgetEnd := time.Time{}
	if d, ok := t.Deadline(); ok {
		budgetEnd = d.Add(-45 * time.Second)
	}

	dir := t.TempDir()
	h := &crashHarness{
		t:              t,
		bin:            buildBinary(t, dir),
		dataDir:        filepath.Join(dir, "data"),
		logPath:        filepath.Join(dir, "server.log"),
		byID:           map[string]*crashWrite{},
		byKey:          map[string][]*crashWrite{},
		known:          map[string]uint64{},
		verified:       map[string][]historyEntry{},
		pendingDeletes: map[string]int{},
	}
	httpPort := loopback.PortOn(t, "127.0.0.1")
	raftPort := loopback.PortOn(t, "127.0.0.1")
	for raftPort == httpPort {
		raftPort = loopback.PortOn(t, "127.0.0.1")
	}
	h.base = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	h.args = []string{"server",
		"--data-dir", h.dataDir,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--raft-addr", fmt.Sprintf("127.0.0.1:%d", raftPort),
		"--grpc-addr", "off", // not exercised here; a fixed default port could collide
		"--node-id", "1",
		"--shards", strconv.Itoa(crashShards),
	}
	t.Cleanup(func() {
		if h.proc != nil {
			select {
			case <-h.proc.exited:
			default:
				h.proc.kill(t)
			}
		}
		if t.Failed() {
			t.Logf("seed %d; server log %s, last lines:\n%s", seed, h.logPath, logTail(h.logPath, 120))
		}
	})

	h.start("first start")
	readyIn := h.waitReady()
	for c := 1; c <= cycles; c++ {
		if !budgetEnd.IsZero() && time.Now().After(budgetEnd) {
			t.Fatalf("ran out of time after %d of %d cycles (%s); rerun with a longer -timeout or fewer -crash.cycles",
				c-1, cycles, time.Since(began).Round(time.Second))
		}
		killAfter := 50*time.Millisecond + time.Duration(rng.Int64N(int64(1450*time.Millisecond)))
		n := h.writePhase(c, seed, killAfter)
		if t.Failed() {
			t.FailNow()
		}
		// Now and then also kill the restarted server during its recovery: at a moment up
		// to a little past the time the last start took to become ready.
		if rng.IntN(4) == 0 {
			early := time.Duration(rng.Int64N(int64(readyIn)*6/5 + 1))
			h.start(fmt.Sprintf("cycle %d, restart to be killed after %s", c, early))
			select {
			case <-time.After(early):
			case <-h.proc.exited:
				t.Fatalf("cycle %d: server exited by itself during recovery: %v", c, h.proc.waitErr)
			}
			h.proc.kill(t)
			t.Logf("cycle %d: also killed a restart after %s", c, early)
		}
		h.start(fmt.Sprintf("cycle %d, restart", c))
		readyIn = h.waitReady()
		h.verify(c, rng)
		t.Logf("cycle %d: %d writes, killed after %s, ready again in %s", c, n, killAfter.Round(time.Millisecond), readyIn.Round(time.Millisecond))
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("crash test passed: %d cycles in %s, seed %d; %d writes: %d acknowledged, %d refused, %d indeterminate (%d found applied, %d not); %d keys verified, %d writes re-sent",
		cycles, time.Since(began).Round(time.Second), seed, len(h.writes), h.acked, h.refused, h.indeterminate, h.applied, h.absent, h.keysVerified, h.resent)
}

func (h *crashHarness) start(what string) {
	h.starts++
	h.proc = startServer(h.t, h.bin, h.logPath, fmt.Sprintf("start %d (%s)", h.starts, what), h.args...)
	// A fresh transport per process: the old one's idle connections went with the old one.
	h.hc = &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 2 * crashWriters, DisableCompression: true},
	}
}

func (h *crashHarness) waitReady() time.Duration {
	return h.proc.waitReady(h.t, h.hc, h.base, 90*time.Second)
}

// writePhase runs the writers until the server is killed after killAfter, and returns how
// many writes were issued.
func (h *crashHarness) writePhase(cycle int, seed uint64, killAfter time.Duration) int {
	t := h.t
	proc := h.proc
	before := len(h.writes)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range crashWriters {
		wrng := rand.New(rand.NewPCG(seed, uint64(cycle)<<16|uint64(g)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil && !proc.killed.Load(); seq++ {
				h.issue(proc, h.newWrite(cycle, g, seq, wrng))
			}
		}()
	}
	timer := time.NewTimer(killAfter)
	defer timer.Stop()
	select {
	case <-timer.C:
		proc.kill(t)
	case <-proc.exited:
		t.Errorf("cycle %d: server exited by itself during the writes: %v", cycle, proc.waitErr)
	}
	cancel()
	wg.Wait()
	h.hc.CloseIdleConnections()
	return len(h.writes) - before
}

func (h *crashHarness) newWrite(cycle, g, seq int, rng *rand.Rand) *crashWrite {
	w := &crashWrite{
		id:    fmt.Sprintf("c%d-g%d-%d", cycle, g, seq),
		key:   fmt.Sprintf("k%02d", rng.IntN(crashKeys)),
		cycle: cycle,
	}
	var body map[string]any
	switch r := rng.IntN(100); {
	case r < 50:
		w.op = "put"
		body = map[string]any{"w": w.id, "k": w.key, "n": seq, "pad": strings.Repeat("x", rng.IntN(120))}
		w.ifNoneMatch = rng.IntN(20) == 0
	case r < 85:
		w.op = "patch"
		body = map[string]any{"w": w.id, "f" + strconv.Itoa(rng.IntN(4)): rng.IntN(1000)}
		if rng.IntN(5) == 0 {
			body["pad"] = nil // remove a field
		}
		if rng.IntN(4) == 0 {
			body["m"] = map[string]any{"a": seq, "b": nil} // nested merge
		}
	default:
		w.op = "delete"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !w.ifNoneMatch && rng.IntN(100) < 15 {
		w.ifMatch = h.known[w.key] // 0 (no condition) when nothing is known yet
	}
	if body != nil {
		var err error
		if w.body, err = json.Marshal(body); err != nil {
			panic(err)
		}
		if err := json.Unmarshal(w.body, &w.doc); err != nil {
			panic(err)
		}
	}
	h.writes = append(h.writes, w)
	h.byID[w.id] = w
	h.byKey[w.key] = append(h.byKey[w.key], w)
	return w
}

type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a apiAnswer) errorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Error.Code
}

func (h *crashHarness) call(method, path string, hdr http.Header, body []byte) (apiAnswer, error) {
	return callAt(h.hc, h.base, method, path, hdr, body)
}

// callAt sends one request to the server at base.
func callAt(hc *http.Client, base, method, path string, hdr http.Header, body []byte) (apiAnswer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hc.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return apiAnswer{}, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return apiAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		return apiAnswer{}, err
	}
	return apiAnswer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// send sends w's request once.
func (h *crashHarness) send(w *crashWrite) (apiAnswer, error) { return sendAt(h.hc, h.base, w) }

// sendAt sends w's request once to the server at base.
func sendAt(hc *http.Client, base string, w *crashWrite) (apiAnswer, error) {
	hdr := http.Header{"Idempotency-Key": {w.id}}
	if w.ifMatch > 0 {
		hdr.Set("If-Match", strconv.Quote(strconv.FormatUint(w.ifMatch, 10)))
	}
	if w.ifNoneMatch {
		hdr.Set("If-None-Match", "*")
	}
	method := map[string]string{"put": http.MethodPut, "patch": http.MethodPatch, "delete": http.MethodDelete}[w.op]
	return callAt(hc, base, method, docPath(crashCollection, w.key), hdr, w.body)
}

// issue sends w until it gets a definite answer, the attempts run out, or the server is
// killed, and records the outcome.
func (h *crashHarness) issue(proc *serverProc, w *crashWrite) {
	h.issueVia(w, h.send, proc.exited, func() bool {
		select {
		case <-proc.exited: // killed, or died by itself: writePhase reports that
			return true
		default:
			return proc.killed.Load()
		}
	})
}

// issueVia is issue with the sending, the end of waiting (gone: stop retrying) and the
// judgment of a missing answer (noAnswerOK: the server was killed or paused) given.
func (h *crashHarness) issueVia(w *crashWrite, send func(*crashWrite) (apiAnswer, error), gone <-chan struct{}, noAnswerOK func() bool) {
	t := h.t
	unknown := false // some attempt may have applied
	out := outRefused
	defer func() {
		if out == outRefused && unknown {
			out = outIndeterminate
		}
		h.mu.Lock()
		w.outcome = out
		if out == outIndeterminate && w.op == "delete" {
			h.pendingDeletes[w.key]++
		}
		h.mu.Unlock()
	}()
	backoff := 5 * time.Millisecond
	for attempt := 1; attempt <= crashAttempts; attempt++ {
		a, err := send(w)
		if err != nil {
			// Even a refused dial is no proof the request was never received: net/http
			// replays a request carrying an Idempotency-Key when its kept-alive connection
			// dies, so the final error may belong to the replay.
			unknown = true
			w.note = "no answer: " + err.Error()
			if !noAnswerOK() {
				t.Errorf("%s: %s, but the server was not killed", w, w.note)
			}
			return
		}
		w.note = fmt.Sprintf("HTTP %d %s", a.status, a.body)
		switch code := a.errorCode(); {
		case a.status == http.StatusOK || a.status == http.StatusCreated:
			var r writeResult
			if err := json.Unmarshal(a.body, &r); err != nil {
				t.Errorf("%s: acknowledged with a body that is not a write result: %v: %s", w, err, a.body)
				return
			}
			if r.Collection != crashCollection || r.ID != w.key || r.Version == 0 || r.TS == "" {
				t.Errorf("%s: acknowledgment does not describe the write: %s", w, a.body)
			}
			if w.ifMatch > 0 && r.Version != w.ifMatch+1 {
				t.Errorf("%s: acknowledged at version %d, want %d", w, r.Version, w.ifMatch+1)
			}
			if w.op != "put" && a.status != http.StatusOK {
				t.Errorf("%s: acknowledged with HTTP %d, want 200", w, a.status)
			}
			h.mu.Lock()
			w.status, w.result = a.status, r
			h.known[w.key] = max(h.known[w.key], r.Version)
			h.mu.Unlock()
			out = outAcked
			return
		case a.status == http.StatusPreconditionFailed && code == "precondition_failed" && (w.ifMatch > 0 || w.ifNoneMatch):
			return
		case a.status == http.StatusNotFound && code == "not_found" && w.op != "put":
			return
		case a.status == http.StatusServiceUnavailable && code == "unavailable":
			// Nothing was proposed: safe to retry.
		case a.status == http.StatusGatewayTimeout && code == "indeterminate":
			unknown = true
		case a.status == http.StatusInternalServerError:
			unknown = true
			t.Errorf("%s: internal error: %s", w, a.body)
			return
		default:
			unknown = true
			t.Errorf("%s: unexpected answer HTTP %d: %s", w, a.status, a.body)
			return
		}
		select {
		case <-time.After(backoff):
		case <-gone:
			return
		}
		backoff *= 2
	}
}

// history fetches a key's history; a key never written may answer 404.
func (h *crashHarness) history(key string) ([]historyEntry, error) {
	a, err := h.call(http.MethodGet, docPath(crashCollection, key)+"/history", nil, nil)
	if err != nil {
		return nil, err
	}
	if a.status == http.StatusNotFound && a.errorCode() == "not_found" {
		return nil, nil
	}
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("GET history of %s: HTTP %d: %s", key, a.status, a.body)
	}
	var hr struct {
		Collection string         `json:"collection"`
		ID         string         `json:"id"`
		Versions   []historyEntry `json:"versions"`
	}
	if err := json.Unmarshal(a.body, &hr); err != nil {
		return nil, fmt.Errorf("GET history of %s: %v: %.300s", key, err, a.body)
	}
	for i := range hr.Versions {
		e := &hr.Versions[i]
		if len(e.Doc) > 0 {
			if err := json.Unmarshal(e.Doc, &e.doc); err != nil {
				return nil, fmt.Errorf("GET history of %s: version %d: %v", key, e.Version, err)
			}
		}
	}
	return hr.Versions, nil
}

func sameEntry(a, b historyEntry) bool {
	return a.Version == b.Version && a.Op == b.Op && a.TS == b.TS && a.Position == b.Position && reflect.DeepEqual(a.doc, b.doc)
}

// keyCheck is what checking one key's history found.
type keyCheck struct {
	problems []string
	byWrite  map[string]historyEntry // request id → the event it produced
	live     bool
}

func (kc *keyCheck) problem(format string, args ...any) {
	kc.problems = append(kc.problems, fmt.Sprintf(format, args...))
}

// checkKey checks one key's history and current document against the model.
func (h *crashHarness) checkKey(key string, hist []historyEntry) *keyCheck {
	kc := &keyCheck{byWrite: map[string]historyEntry{}}
	prev := h.verified[key]
	if len(hist) < len(prev) {
		kc.problem("history shrank from %d to %d versions", len(prev), len(hist))
	}
	for i := 0; i < len(prev) && i < len(hist); i++ {
		if !sameEntry(prev[i], hist[i]) {
			kc.problem("version %d changed after the restart: was %s, now %s", prev[i].Version, entryString(prev[i]), entryString(hist[i]))
		}
	}
	ackedDeletes := map[uint64]*crashWrite{} // version → acknowledged delete
	for _, w := range h.byKey[key] {
		if w.op == "delete" && w.outcome == outAcked {
			ackedDeletes[w.result.Version] = w
		}
	}
	foundDeletes := map[*crashWrite]bool{}
	unexplainedDeletes := 0
	var state any // the document before the entry being checked; nil when absent
	for i, e := range hist {
		if e.Version != uint64(i+1) {
			kc.problem("entry %d has version %d, want %d (versions must be 1..n without gaps)", i, e.Version, i+1)
		}
		if i > 0 {
			p := hist[i-1].Position
			if e.Position.Shard != p.Shard || e.Position.Index <= p.Index {
				kc.problem("version %d at position %v after version %d at %v: want the same shard, a higher index", e.Version, e.Position, hist[i-1].Version, p)
			}
		}
		switch e.Op {
		case "delete":
			if e.doc != nil {
				kc.problem("version %d is a delete with a document: %s", e.Version, e.Doc)
			}
			if w := ackedDeletes[e.Version]; w != nil && w.result.Position == e.Position {
				foundDeletes[w] = true
			} else if i >= len(prev) {
				unexplainedDeletes++
			}
			state = nil
			continue
		case "put", "patch":
		default:
			kc.problem("version %d has op %q", e.Version, e.Op)
			continue
		}
		m, _ := e.doc.(map[string]any)
		wid, _ := m["w"].(string)
		w := h.byID[wid]
		if w == nil || w.key != key || w.op != e.Op {
			kc.problem("version %d (%s) was written by no %s request of this test to %s: %s", e.Version, e.Op, e.Op, key, e.Doc)
			state = e.doc
			continue
		}
		if v, dup := kc.byWrite[wid]; dup {
			kc.problem("APPLIED TWICE: %s is both version %d and version %d", w, v.Version, e.Version)
		}
		kc.byWrite[wid] = e
		want := w.doc
		if w.op == "patch" {
			want = mergePatch(state, w.doc)
		}
		if !reflect.DeepEqual(want, e.doc) {
			wj, _ := json.Marshal(want)
			kc.problem("version %d: document %s, but %s applied to version %d gives %s", e.Version, e.Doc, w, e.Version-1, wj)
		}
		if w.ifMatch > 0 && e.Version != w.ifMatch+1 {
			kc.problem("%s applied as version %d", w, e.Version)
		}
		if w.ifNoneMatch && state != nil {
			kc.problem("%s applied as version %d over a live document", w, e.Version)
		}
		switch w.outcome {
		case outAcked, outApplied:
			if e.Version != w.result.Version || e.Position != w.result.Position {
				kc.problem("%s was answered version %d at %v, but the history has it as version %d at %v", w, w.result.Version, w.result.Position, e.Version, e.Position)
			}
			if w.outcome == outAcked && w.op == "put" {
				if created := state == nil; created != (w.status == http.StatusCreated) {
					kc.problem("%s answered HTTP %d, but the previous version was %s", w, w.status, map[bool]string{true: "absent (want 201)", false: "live (want 200)"}[created])
				}
			}
		case outIndeterminate:
		case outRefused:
			kc.problem("REFUSED WRITE APPLIED: %s is version %d, but was answered %s", w, e.Version, w.note)
		case outAbsent:
			kc.problem("LATE APPLY: %s was not in the history after the restart that followed cycle %d, but is now version %d", w, w.cycle, e.Version)
		default:
			kc.problem("%s is version %d but has outcome %s", w, e.Version, w.outcome)
		}
		state = e.doc
	}
	n := uint64(len(hist))
	for _, w := range h.byKey[key] {
		if w.outcome != outAcked && w.outcome != outApplied {
			continue
		}
		if w.result.Version > n {
			kc.problem("VERSION REGRESSED: %s was answered version %d, the history ends at version %d", w, w.result.Version, n)
		}
		if w.op == "delete" {
			if w.outcome == outAcked && !foundDeletes[w] {
				kc.problem("LOST: %s answered version %d at %v, no such delete in the history", w, w.result.Version, w.result.Position)
			}
		} else if _, ok := kc.byWrite[w.id]; !ok {
			kc.problem("LOST: %s answered version %d at %v, not in the history (%d versions)", w, w.result.Version, w.result.Position, n)
		}
	}
	if unexplainedDeletes > h.pendingDeletes[key] {
		kc.problem("%d delete event(s) since the last restart that no request explains (%d deletes had an unknown outcome)", unexplainedDeletes, h.pendingDeletes[key])
	}
	kc.live = state != nil
	h.checkCurrent(kc, key, hist, state)
	return kc
}

// checkCurrent checks GET of key, linearizable and local, against the last history entry.
// After /readyz every shard has applied its log, so a local read is not stale either.
func (h *crashHarness) checkCurrent(kc *keyCheck, key string, hist []historyEntry, state any) {
	for _, query := range []string{"", "?consistency=local"} {
		h.checkGet(kc, docPath(crashCollection, key)+query, key, hist, state)
	}
}

func (h *crashHarness) checkGet(kc *keyCheck, path, key string, hist []historyEntry, state any) {
	a, err := h.call(http.MethodGet, path, nil, nil)
	if err != nil {
		kc.problem("GET %s: %v", path, err)
		return
	}
	if state == nil {
		if a.status != http.StatusNotFound || a.errorCode() != "not_found" {
			kc.problem("GET %s: want 404 not_found (the history has %d versions, the last a delete or none), got HTTP %d: %s", path, len(hist), a.status, a.body)
		}
		return
	}
	var got struct {
		Collection string `json:"collection"`
		ID         string `json:"id"`
		Version    uint64 `json:"version"`
		TS         string `json:"ts"`
		Doc        any    `json:"doc"`
	}
	if a.status != http.StatusOK {
		kc.problem("GET %s: want 200 at version %d, got HTTP %d: %s", path, len(hist), a.status, a.body)
		return
	}
	if err := json.Unmarshal(a.body, &got); err != nil {
		kc.problem("GET %s: %v: %s", path, err, a.body)
		return
	}
	last := hist[len(hist)-1]
	if got.Version != last.Version || got.TS != last.TS || !reflect.DeepEqual(got.Doc, state) || got.Collection != crashCollection || got.ID != key {
		kc.problem("GET %s: %s, but the history ends with %s", path, a.body, entryString(last))
	}
	if et, want := a.header.Get("ETag"), strconv.Quote(strconv.FormatUint(last.Version, 10)); et != want {
		kc.problem("GET %s: ETag %s, want %s", path, et, want)
	}
}

func entryString(e historyEntry) string {
	return fmt.Sprintf("{version %d %s ts %s at %d/%d doc %s}", e.Version, e.Op, e.TS, e.Position.Shard, e.Position.Index, e.Doc)
}

// verify checks every key after a restart, settles the unknown outcomes of the last
// cycle, checks the collection count and re-sends a sample of writes.
func (h *crashHarness) verify(cycle int, rng *rand.Rand) {
	t := h.t
	for _, w := range h.writes {
		if w.cycle != cycle {
			continue
		}
		switch w.outcome {
		case outAcked:
			h.acked++
		case outRefused:
			h.refused++
		case outIndeterminate:
			h.indeterminate++
		}
	}
	live := 0
	hists := map[string][]historyEntry{}
	applied := map[string]historyEntry{} // request id → event, over all keys
	shown, hidden, badKeys := 0, 0, 0    // problems printed and not, keys with problems
	for k := range crashKeys {
		key := fmt.Sprintf("k%02d", k)
		hist, err := h.history(key)
		if err != nil {
			t.Errorf("cycle %d: %s: %v", cycle, key, err)
			continue
		}
		kc := h.checkKey(key, hist)
		if len(kc.problems) > 0 {
			badKeys++
		}
		for i, p := range kc.problems {
			if i >= 4 || shown >= 30 {
				hidden++
				continue
			}
			shown++
			t.Errorf("cycle %d: %s/%s: %s", cycle, crashCollection, key, p)
		}
		if kc.live {
			live++
		}
		hists[key] = hist
		for id, e := range kc.byWrite {
			applied[id] = e
		}
		h.keysVerified++
	}
	if hidden > 0 {
		t.Errorf("cycle %d: %d more problems not shown; %d of %d keys have problems", cycle, hidden, badKeys, crashKeys)
	}
	if t.Failed() {
		return
	}
	// Settle: a restart has shown whether each unknown-outcome write applied.
	for _, w := range h.writes {
		if w.outcome != outIndeterminate {
			continue
		}
		switch e, ok := applied[w.id]; {
		case w.op == "delete":
			w.outcome = outSettledDelete
		case ok:
			w.outcome = outApplied
			w.result = writeResult{Collection: crashCollection, ID: w.key, Version: e.Version, TS: e.TS, Position: e.Position}
			h.applied++
		default:
			w.outcome = outAbsent
			h.absent++
		}
	}
	clear(h.pendingDeletes)
	h.verified = hists

	h.checkCollections(cycle, live)
	h.resend(cycle, rng)
}

func (h *crashHarness) checkCollections(cycle, live int) {
	a, err := h.call(http.MethodGet, "/v1/collections", nil, nil)
	if err != nil || a.status != http.StatusOK {
		h.t.Errorf("cycle %d: GET /v1/collections: %v HTTP %d %s", cycle, err, a.status, a.body)
		return
	}
	var cr struct {
		Collections []struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		} `json:"collections"`
	}
	if err := json.Unmarshal(a.body, &cr); err != nil {
		h.t.Errorf("cycle %d: GET /v1/collections: %v: %s", cycle, err, a.body)
		return
	}
	count := 0
	for _, c := range cr.Collections {
		if c.Name == crashCollection {
			count = c.Count
		}
	}
	if count != live {
		h.t.Errorf("cycle %d: GET /v1/collections counts %d live documents in %s, the histories show %d", cycle, count, crashCollection, live)
	}
}

// resend re-sends a sample of applied writes with their Idempotency-Key: each must answer
// its first result and append nothing.
func (h *crashHarness) resend(cycle int, rng *rand.Rand) {
	t := h.t
	var acked, applied []*crashWrite
	for _, w := range h.writes {
		switch {
		case w.outcome == outAcked:
			acked = append(acked, w)
		case w.outcome == outApplied && w.cycle == cycle:
			applied = append(applied, w)
		}
	}
	rng.Shuffle(len(acked), func(i, j int) { acked[i], acked[j] = acked[j], acked[i] })
	rng.Shuffle(len(applied), func(i, j int) { applied[i], applied[j] = applied[j], applied[i] })
	sample := append(acked[:min(len(acked), crashResendAcked)], applied[:min(len(applied), crashResendApplied)]...)
	touched := map[string]bool{}
	for _, w := range sample {
		touched[w.key] = true
		a, err := h.send(w)
		h.resent++
		if err != nil {
			t.Errorf("cycle %d: re-send %s: %v", cycle, w, err)
			continue
		}
		var r writeResult
		if a.status/100 != 2 || json.Unmarshal(a.body, &r) != nil {
			t.Errorf("cycle %d: re-send of %s (first answered version %d at %v) got HTTP %d: %s", cycle, w, w.result.Version, w.result.Position, a.status, a.body)
			continue
		}
		if r.Version != w.result.Version || r.Position != w.result.Position || !sameTime(r.TS, w.result.TS) {
			t.Errorf("cycle %d: re-send of %s answered %s, first result was version %d ts %s at %v", cycle, w, a.body, w.result.Version, w.result.TS, w.result.Position)
		}
		if w.outcome == outAcked && a.status != w.status {
			t.Errorf("cycle %d: re-send of %s answered HTTP %d, the first answer was HTTP %d", cycle, w, a.status, w.status)
		}
	}
	keys := make([]string, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		hist, err := h.history(key)
		if err != nil {
			t.Errorf("cycle %d: %v", cycle, err)
			continue
		}
		if len(hist) != len(h.verified[key]) {
			t.Errorf("cycle %d: %s/%s: re-sending writes with their Idempotency-Key changed the history from %d to %d versions; new: %s",
				cycle, crashCollection, key, len(h.verified[key]), len(hist), entryString(hist[len(hist)-1]))
		}
	}
}

func sameTime(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		return a == b
	}
	return ta.Equal(tb)
}

// mergePatch applies an RFC 7396 JSON merge patch to target without modifying either. It
// is deliberately separate from the materializer's: the test's oracle must not share the
// server's bugs.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, _ := target.(map[string]any)
	out := make(map[string]any, len(t)+len(p))
	for k, v := range t {
		out[k] = v
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = mergePatch(out[k], v)
		}
	}
	return out
}

func TestMergePatch(t *testing.T) {
	// The RFC 7396 appendix examples the test's model relies on.
	tests := []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`null`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, tc := range tests {
		var target, patch, want any
		for _, d := range []struct {
			s string
			v *any
		}{{tc.target, &target}, {tc.patch, &patch}, {tc.want, &want}} {
			if err := json.Unmarshal([]byte(d.s), d.v); err != nil {
				t.Fatal(err)
			}
		}
		before, _ := json.Marshal(target)
		if got := mergePatch(target, patch); !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			t.Errorf("merge %s with %s = %s, want %s", tc.target, tc.patch, g, tc.want)
		}
		if after, _ := json.Marshal(target); string(after) != string(before) {
			t.Errorf("merge modified its target: %s became %s", before, after)
		}
	}
}
