package main

// TestLinearizability checks from outside that a three-node cluster of the real binary is
// linearizable for single-document reads and writes while nodes crash and stall. Clients
// (linClients, closed loop) pick a random node that is up for every request and a random
// document of a small set chosen to cover every shard, and issue a random mix of
//
//   - GET (the default, linearizable consistency),
//   - PUT of a value no other write uses,
//   - PUT with If-Match on the version the client saw last for that document,
//
// recording each operation's call and return on the monotonic clock and what it was told.
// Meanwhile every cycle SIGKILLs a node (half of the time one that leads a shard), restarts
// it once the others have taken over, and later SIGSTOPs a random node for up to 2 s, then
// SIGCONTs it. At the end every node reads every document once more, and the history is
// checked with porcupine against the register model (linearizability_model_test.go).
//
// Writes carry an Idempotency-Key. Two in three are re-sent with it (to any node) after no
// answer, 503 or 504, at most linAttempts times in all; the others are sent once. A write
// without a definite answer is indeterminate. A write that only ever got 503 unavailable
// was not written (docs/api.md) and leaves the history, as do failed reads. Before the
// check, the indeterminate writes that no document history (GET …/history at the end)
// shows are left out too (pruneUnapplied says why that is sound).
//
// On a failure the HTML timeline of the failing partition (porcupine's visualization, with
// the faults marked) and the whole history as text (history.txt: every operation with the
// nodes it went to, and the faults, in order of their start) are written to the test's
// directory, which is kept, and their paths reported.
//
// TestLinearizabilityPlaced runs the same check (runLinearizability) on four nodes in
// placed hosting, where about a quarter of the operations go through a node holding no
// replica of the document's shard.
//
// Run longer: go test ./cmd/aerolith -run TestLinearizability -v -timeout 30m -lin.cycles=30
//             go test ./cmd/aerolith -run TestLinearizabilityPlaced -v -timeout 30m -lin.placedcycles=30
// Reproduce:  ... -lin.seed=N (the seed is logged; thread scheduling still varies).

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/anishathalye/porcupine"
)

var (
	linCycles       = flag.Int("lin.cycles", 4, "fault cycles (a kill and a pause each) of TestLinearizability")
	linSeed         = flag.Uint64("lin.seed", 0, "seed of TestLinearizability and TestLinearizabilityPlaced (default from the clock)")
	linCheckTimeout = flag.Duration("lin.check-timeout", 2*time.Minute, "bound on porcupine's check in TestLinearizability and TestLinearizabilityPlaced")
	linPlacedCycles = flag.Int("lin.placedcycles", 4, "fault cycles of TestLinearizabilityPlaced (4 take about 45 s on 2 cores)")
	linConsistency  = flag.String("lin.consistency", "", "consistency of the reads of TestLinearizability and TestLinearizabilityPlaced; \"local\" (stale reads on a lagging replica) shows the check failing")
)

const (
	linCollection = "lin"
	linKeys       = 5
	linClients    = 8
	// A write is sent at most this many times (same Idempotency-Key); one write in three
	// is sent only once, so some stay indeterminate.
	linAttempts = 3
	// Bound on one request: shorter than most pauses and than the server's 10 s write
	// timeout, so requests to a stalled node end without an answer.
	linRequestTimeout = 1500 * time.Millisecond
)

// linRun is one run of the test: the cluster, the clients' history and the faults.
type linRun struct {
	*clusterHarness
	keys    []string
	clients *http.Client // the clients' (linRequestTimeout)
	epoch   time.Time    // the history's clock: operations record time.Since(epoch)
	done    chan struct{}

	clientIDs atomic.Int64

	mu     sync.Mutex
	ops    []porcupine.Operation
	faults []porcupine.Annotation
	// Counts for the summary; remote*: operations through a node holding no replica of
	// the document's shard (placed hosting).
	reads, readsFailed, writes, casRefused, unknown, refused int
	remoteReads, remoteWrites, remoteUnknown                 int

	answers map[string]int // answers other than 2xx and 404, by request and kind
}

func TestLinearizability(t *testing.T) {
	if testing.Short() {
		t.Skip("linearizability test: builds the binary and runs three nodes; skipped with -short")
	}
	runLinearizability(t, linConfig{nodes: clusterNodes, stream: 0x11, cycles: *linCycles, cyclesFlag: "-lin.cycles"})
}

// TestLinearizabilityPlaced is the same check on four nodes in placed hosting
// (clusterHarness.enterPlaced): each data shard on three of them, so about a quarter of
// the operations reach a node holding no replica of the document's shard, which serves a
// read by a call to a node that does (ReadIndex there) and a write by a proposal sent to
// one (the peer protocol). Their metadata in the timeline and history names such a node
// with "no replica of shard N", and the summary counts them.
func TestLinearizabilityPlaced(t *testing.T) {
	if testing.Short() {
		t.Skip("placed-hosting linearizability test: builds the binary and runs four nodes; skipped with -short")
	}
	runLinearizability(t, linConfig{nodes: placedNodes, stream: 0x12, cycles: *linPlacedCycles, cyclesFlag: "-lin.placedcycles",
		setup: (*clusterHarness).enterPlaced})
}

// linConfig is what sets the runs of the linearizability check apart.
type linConfig struct {
	nodes      int
	stream     uint64 // tells the runs' random streams apart under one seed
	cycles     int
	cyclesFlag string // the flag that sets cycles, for the log
	// setup, when set, runs once every node is ready, before the clients start.
	setup func(h *clusterHarness)
}

// runLinearizability runs the check of TestLinearizability on a cluster of cfg.nodes
// nodes: the clients and the fault cycles, the final reads, porcupine.
func runLinearizability(t *testing.T, cfg linConfig) {
	cycles, seed := cfg.cycles, *linSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("%s: %d nodes, %d cycles (%s), seed %d (rerun with -lin.seed=%d)", t.Name(), cfg.nodes, cycles, cfg.cyclesFlag, seed, seed)
	began := time.Now()

	// Not t.TempDir: a failing run keeps its node logs, data, timeline and history.
	dir, err := os.MkdirTemp("", "aerolith-lin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept %s (node logs, data directories, timeline, history)", dir)
			return
		}
		os.RemoveAll(dir)
	})

	h := &clusterHarness{
		crashHarness: &crashHarness{t: t, bin: buildBinary(t, dir)},
		size:         cfg.nodes,
		rng:          rand.New(rand.NewPCG(seed, cfg.stream)),
		hc:           &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableCompression: true}},
	}
	h.crashHarness.hc = h.hc
	h.layout(dir, seed)
	r := &linRun{
		clusterHarness: h,
		keys:           linKeySet(linKeys, crashShards),
		clients: &http.Client{Timeout: linRequestTimeout, Transport: &http.Transport{
			MaxIdleConnsPerHost: linClients, DisableCompression: true,
		}},
		done: make(chan struct{}),
	}
	for _, n := range h.nodes {
		h.start(n, "first start")
	}
	for _, n := range h.nodes {
		h.waitReady(n)
	}
	if cfg.setup != nil {
		cfg.setup(h)
	}

	r.epoch = time.Now()
	var wg sync.WaitGroup
	for g := range linClients {
		rng := rand.New(rand.NewPCG(seed, uint64(g)+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(rng)
		}()
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(r.done)
			wg.Wait()
		}
	}
	defer stop() // on t.Fatal: the clients must be gone before the nodes are killed

	for c := 1; c <= cycles; c++ {
		h.waitFor(time.Duration(300+h.rng.IntN(700)) * time.Millisecond)
		n, led := h.pickVictim()
		at := r.now()
		n.up.Store(false)
		n.proc.kill(t)
		r.clients.CloseIdleConnections()
		h.waitFor(time.Duration(500+h.rng.IntN(1500)) * time.Millisecond)
		h.start(n, fmt.Sprintf("cycle %d, restart", c))
		readyIn := h.waitReady(n)
		r.fault(fmt.Sprintf("kill node %d", n.id), fmt.Sprintf("SIGKILL node %d (leader of %d shards), restart, ready after %s", n.id, led, readyIn.Round(time.Millisecond)), at)

		h.waitFor(time.Duration(300+h.rng.IntN(700)) * time.Millisecond)
		p := h.nodes[h.rng.IntN(len(h.nodes))]
		d := time.Duration(500+h.rng.IntN(1500)) * time.Millisecond
		at = r.now()
		p.proc.cmd.Process.Signal(syscall.SIGSTOP)
		h.waitFor(d)
		p.proc.cmd.Process.Signal(syscall.SIGCONT)
		r.fault(fmt.Sprintf("pause node %d", p.id), fmt.Sprintf("SIGSTOP node %d for %s", p.id, d.Round(time.Millisecond)), at)
		t.Logf("cycle %d: killed node %d (leader of %d shards), ready again in %s; paused node %d for %s",
			c, n.id, led, readyIn.Round(time.Millisecond), p.id, d.Round(time.Millisecond))
	}
	h.waitFor(500 * time.Millisecond)
	stop()
	r.finalReads()
	if h.placed {
		r.checkHostsKept()
	}

	ops := r.history()
	ops, notApplied := pruneUnapplied(ops, r.appliedValues())
	checkStart := time.Now()
	res, path := checkLinearizable(t, ops, r.faults, dir, *linCheckTimeout)
	checkTime := time.Since(checkStart)
	t.Logf("%s: %d cycles in %s, seed %d; checked %d operations (%d reads, %d writes of which %d indeterminate, %d conditional writes refused) over %d documents in %s: %s; "+
		"left out %d failed reads, %d writes refused as unavailable and %d indeterminate writes no history shows",
		t.Name(), cycles, time.Since(began).Round(time.Second), seed, len(ops), r.reads, r.writes-notApplied, r.unknown-notApplied, r.casRefused, len(r.keys), checkTime.Round(time.Millisecond), res,
		r.readsFailed, r.refused, notApplied)
	if h.placed {
		t.Logf("through a node holding no replica of the document's shard: %d of %d reads, %d of %d writes (%d of the %d indeterminate; a write counts when any of its attempts went to such a node), before leaving out any",
			r.remoteReads, r.reads, r.remoteWrites, r.writes, r.remoteUnknown, r.unknown)
	}
	t.Logf("requests not answered 2xx or 404: %s", r.answerSummary())
	if res != porcupine.Ok {
		hist := r.writeHistory(dir)
		t.Errorf("history is not linearizable (porcupine: %s); timeline: %s; history: %s", res, path, hist)
	}
}

// linKeySet returns n document ids that cover all shards (n >= shards).
func linKeySet(n, shards int) []string {
	var keys []string
	seen := map[uint64]bool{}
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("d%d", i)
		s := log.ShardOf(linCollection, k, shards)
		if len(seen) < shards && seen[s] {
			continue
		}
		seen[s] = true
		keys = append(keys, k)
	}
	return keys
}

// now is the history's clock.
func (r *linRun) now() int64 { return time.Since(r.epoch).Nanoseconds() }

// fault marks a fault from at until now on the timeline.
func (r *linRun) fault(tag, what string, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, porcupine.Annotation{Tag: "faults", Start: at, End: r.now(), Description: tag, Details: what})
}

// holds reports whether node n holds a replica of key's shard: always in hosting all, and
// in placed hosting when n is one of the shard's hosts as they were when the clients started.
func (r *linRun) holds(n *clusterNode, key string) bool {
	hosts, ok := r.hosts[log.ShardOf(linCollection, key, crashShards)]
	return !ok || slices.Contains(hosts, uint64(n.id))
}

// via names node n in an operation's metadata, and says so when it holds no replica of
// key's shard (it served the request through a node that does).
func (r *linRun) via(n *clusterNode, key string) string {
	if r.holds(n, key) {
		return fmt.Sprintf("node %d", n.id)
	}
	return fmt.Sprintf("node %d (no replica of shard %d)", n.id, log.ShardOf(linCollection, key, crashShards))
}

// pick returns a random node that is up.
func (r *linRun) pick(rng *rand.Rand) *clusterNode {
	var up []*clusterNode
	for _, n := range r.nodes {
		if n.up.Load() {
			up = append(up, n)
		}
	}
	return up[rng.IntN(len(up))]
}

// client issues operations until r.done is closed. After an indeterminate write it goes on
// under a new client id: porcupine's timeline draws each client's operations in one lane,
// and the indeterminate one stays open to the end.
func (r *linRun) client(rng *rand.Rand) {
	id := int(r.clientIDs.Add(1) - 1)
	known := map[string]uint64{} // the version last seen per document, for If-Match
	for seq := 0; ; seq++ {
		select {
		case <-r.done:
			return
		default:
		}
		key := r.keys[rng.IntN(len(r.keys))]
		var out regOutput
		var ok bool
		switch p := rng.IntN(100); {
		case p < 50:
			out, ok = r.read(id, r.pick(rng), key)
		case p < 80:
			out, ok = r.write(id, rng, regInput{key: key, op: regWrite, value: fmt.Sprintf("c%d.%d", id, seq)})
		default:
			out, ok = r.write(id, rng, regInput{key: key, op: regCAS, value: fmt.Sprintf("c%d.%d", id, seq), ifMatch: known[key]})
		}
		if !ok {
			continue
		}
		if out.unknown {
			id = int(r.clientIDs.Add(1) - 1)
			continue
		}
		known[key] = out.version
	}
}

func (r *linRun) record(op porcupine.Operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

// read GETs key from node n and records the answer; ok is false when the read failed (it
// is left out of the history).
func (r *linRun) read(id int, n *clusterNode, key string) (regOutput, bool) {
	in := regInput{key: key, op: regRead}
	call := r.now()
	path := docPath(linCollection, key)
	if *linConsistency != "" {
		path += "?consistency=" + *linConsistency
	}
	a, err := callAt(r.clients, n.base, http.MethodGet, path, nil, nil)
	ret := r.now()
	r.tally("GET", a, err)
	var out regOutput
	switch {
	case err != nil || a.status == http.StatusServiceUnavailable && a.errorCode() == "unavailable":
		r.mu.Lock()
		r.readsFailed++
		r.mu.Unlock()
		return out, false
	case a.status == http.StatusOK:
		var d struct {
			ID      string `json:"id"`
			Version uint64 `json:"version"`
			Doc     struct {
				V string `json:"v"`
			} `json:"doc"`
		}
		if err := json.Unmarshal(a.body, &d); err != nil || d.ID != key || d.Version == 0 || d.Doc.V == "" {
			r.t.Errorf("GET %s on node %d: answer is not the document: %v: %s", key, n.id, err, a.body)
			return out, false
		}
		out = regOutput{version: d.Version, value: d.Doc.V}
	case a.status == http.StatusNotFound && a.errorCode() == "not_found":
		// Absent: version 0.
	default:
		r.t.Errorf("GET %s on node %d: unexpected answer HTTP %d: %s", key, n.id, a.status, a.body)
		return out, false
	}
	r.record(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret, Metadata: r.via(n, key)})
	r.mu.Lock()
	r.reads++
	if !r.holds(n, key) {
		r.remoteReads++
	}
	r.mu.Unlock()
	return out, true
}

// write PUTs in.value under in.key (with If-Match for regCAS), two times in three re-sending
// it with the same Idempotency-Key while the answer is no answer, 503 or 504, and records
// the outcome; ok
// is false when the write was refused as unavailable every time (left out of the history).
func (r *linRun) write(id int, rng *rand.Rand, in regInput) (regOutput, bool) {
	body, err := json.Marshal(map[string]string{"v": in.value})
	if err != nil {
		panic(err)
	}
	hdr := http.Header{"Idempotency-Key": {in.value}}
	if in.op == regCAS {
		hdr.Set("If-Match", fmt.Sprintf(`"%d"`, in.ifMatch))
	}
	call := r.now()
	unknown := false // some attempt may have applied
	remote := false  // some attempt went to a node holding no replica of the shard
	var notes []string
	var out regOutput
	answered := false
	backoff := 20 * time.Millisecond
	attempts := linAttempts
	if rng.IntN(3) == 0 {
		attempts = 1
	}
send:
	for attempt := 1; attempt <= attempts; attempt++ {
		n := r.pick(rng)
		remote = remote || !r.holds(n, in.key)
		a, err := callAt(r.clients, n.base, http.MethodPut, docPath(linCollection, in.key), hdr, body)
		r.tally("PUT", a, err)
		if err != nil {
			// Even a refused dial is no proof the request was never received: net/http
			// replays a request with an Idempotency-Key when its kept-alive connection dies.
			unknown = true
			notes = append(notes, r.via(n, in.key)+": no answer")
		} else {
			notes = append(notes, fmt.Sprintf("%s: HTTP %d", r.via(n, in.key), a.status))
			switch code := a.errorCode(); {
			case a.status == http.StatusOK || a.status == http.StatusCreated:
				var w writeResult
				if err := json.Unmarshal(a.body, &w); err != nil || w.ID != in.key || w.Version == 0 {
					r.t.Errorf("PUT %s (%s): acknowledged with a body that is not a write result: %v: %s", in.key, in.value, err, a.body)
					return out, false
				}
				out, answered = regOutput{version: w.Version}, true
				break send
			case a.status == http.StatusPreconditionFailed && code == "precondition_failed" && in.op == regCAS:
				var e struct {
					Error struct {
						CurrentVersion *uint64 `json:"current_version"`
					} `json:"error"`
				}
				if err := json.Unmarshal(a.body, &e); err != nil || e.Error.CurrentVersion == nil {
					r.t.Errorf("PUT %s (%s): 412 without current_version: %s", in.key, in.value, a.body)
					return out, false
				}
				out, answered = regOutput{refused: true, version: *e.Error.CurrentVersion}, true
				break send
			case a.status == http.StatusServiceUnavailable && code == "unavailable":
				// Nothing was proposed: safe to re-send.
			case a.status == http.StatusGatewayTimeout && code == "indeterminate":
				unknown = true
			default:
				r.t.Errorf("PUT %s (%s) on node %d: unexpected answer HTTP %d: %s", in.key, in.value, n.id, a.status, a.body)
				unknown = true
				break send
			}
		}
		if attempt < attempts {
			select {
			case <-time.After(backoff):
			case <-r.done:
				break send
			}
			backoff *= 2
		}
	}
	ret := r.now()
	switch {
	case answered:
	case unknown:
		out = regOutput{unknown: true}
		ret = regUnknownReturn
	default:
		r.mu.Lock()
		r.refused++
		r.mu.Unlock()
		return out, false
	}
	r.record(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret, Metadata: strings.Join(notes, "; ")})
	r.mu.Lock()
	r.writes++
	if out.unknown {
		r.unknown++
	}
	if remote {
		r.remoteWrites++
		if out.unknown {
			r.remoteUnknown++
		}
	}
	if out.refused {
		r.casRefused++
	}
	r.mu.Unlock()
	return out, true
}

// tally counts an answer that is neither 2xx nor 404.
func (r *linRun) tally(method string, a apiAnswer, err error) {
	var kind string
	switch {
	case errors.Is(err, context.DeadlineExceeded) || err != nil && strings.Contains(err.Error(), "Client.Timeout"):
		kind = "no answer within the deadline"
	case err != nil:
		kind = "no answer (connection refused or reset)"
	case a.status/100 == 2 || a.status == http.StatusNotFound:
		return
	default:
		kind = fmt.Sprintf("HTTP %d %s", a.status, a.errorCode())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answers == nil {
		r.answers = map[string]int{}
	}
	r.answers[method+": "+kind]++
}

// answerSummary lists the tallied answers.
func (r *linRun) answerSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for k, n := range r.answers {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, n))
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// finalReads reads every document on every node once the faults are over, so the end
// state of each is in the history too.
func (r *linRun) finalReads() {
	for _, n := range r.nodes {
		id := int(r.clientIDs.Add(1) - 1)
		for _, key := range r.keys {
			deadline := time.Now().Add(15 * time.Second)
			for {
				if _, ok := r.read(id, n, key); ok {
					break
				}
				if time.Now().After(deadline) {
					r.t.Errorf("node %d: no linearizable read of %s within 15s after the faults", n.id, key)
					break
				}
				r.waitFor(50 * time.Millisecond)
			}
		}
	}
}

// appliedValues returns, per document, the values its history (GET …/history) shows were
// ever written; nil for a document whose history could not be read.
func (r *linRun) appliedValues() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, key := range r.keys {
		n := r.nodes[0]
		a, err := callAt(r.hc, n.base, http.MethodGet, docPath(linCollection, key)+"/history", nil, nil)
		if err == nil && a.status == http.StatusNotFound && a.errorCode() == "not_found" {
			out[key] = map[string]bool{} // never written
			continue
		}
		var hist struct {
			Versions []struct {
				Version uint64 `json:"version"`
				Doc     struct {
					V string `json:"v"`
				} `json:"doc"`
			} `json:"versions"`
		}
		if err != nil || a.status != http.StatusOK || json.Unmarshal(a.body, &hist) != nil {
			r.t.Logf("history of %s on node %d: %v HTTP %d; its indeterminate writes stay in", key, n.id, err, a.status)
			continue
		}
		vals := map[string]bool{}
		for i, v := range hist.Versions {
			if v.Version != uint64(i+1) {
				r.t.Errorf("history of %s: version %d at position %d", key, v.Version, i+1)
			}
			vals[v.Doc.V] = true
		}
		out[key] = vals
	}
	return out
}

// pruneUnapplied leaves out the indeterminate writes whose value is not among the values
// applied holds for their document (documents without an entry keep theirs). The check
// stays sound: an indeterminate write may linearize after every other operation, where it
// changes nothing anyone saw, so leaving one out only takes possible linearizations away;
// and if a history missed a write that did apply, the reads and versions that saw it fail
// the check. It keeps the search small: an indeterminate write that never applied stays a
// candidate at every step to the end, and porcupine's search grows exponentially with
// their number per document.
func pruneUnapplied(ops []porcupine.Operation, applied map[string]map[string]bool) ([]porcupine.Operation, int) {
	kept := ops[:0:0]
	for _, op := range ops {
		in, out := op.Input.(regInput), op.Output.(regOutput)
		if vals, ok := applied[in.key]; ok && out.unknown && !vals[in.value] {
			continue
		}
		kept = append(kept, op)
	}
	return kept, len(ops) - len(kept)
}

// checkHostsKept logs when a data shard's hosts at the end differ from those the
// clients started with: the counts of operations through non-holders are then off (the
// check itself does not depend on them).
func (r *linRun) checkHostsKept() {
	st, err := r.status(r.nodes[0])
	if err != nil {
		r.t.Logf("hosts at the end: %v", err)
		return
	}
	for _, s := range st.Shards {
		if !s.Meta && !slices.Equal(s.Hosts, r.hosts[s.Shard]) {
			r.t.Logf("shard %d: hosts %v at the end, %v when the clients started; the counts through non-holders are approximate", s.Shard, s.Hosts, r.hosts[s.Shard])
		}
	}
}

// writeHistory writes every recorded operation (before pruneUnapplied) and fault to
// dir/history.txt, one a line in the order of their start, and returns its path: easier
// to search than the timeline. Times are in milliseconds since the clients started.
func (r *linRun) writeHistory(dir string) string {
	type line struct {
		at   int64
		text string
	}
	ms := func(ns int64) string {
		if ns == regUnknownReturn {
			return "never"
		}
		return fmt.Sprintf("%.3f", float64(ns)/1e6)
	}
	var lines []line
	for _, op := range r.history() {
		lines = append(lines, line{op.Call, fmt.Sprintf("%s..%s client %d: %s [%v]",
			ms(op.Call), ms(op.Return), op.ClientId, regModel.DescribeOperation(op.Input, op.Output), op.Metadata)})
	}
	r.mu.Lock()
	for _, f := range r.faults {
		lines = append(lines, line{f.Start, fmt.Sprintf("%s..%s fault: %s", ms(f.Start), ms(f.End), f.Details)})
	}
	r.mu.Unlock()
	slices.SortStableFunc(lines, func(a, b line) int { return cmp.Compare(a.at, b.at) })
	var b strings.Builder
	fmt.Fprintf(&b, "# hosts of each data shard (placed hosting; empty: every node): %v\n", r.hosts)
	for _, l := range lines {
		b.WriteString(l.text + "\n")
	}
	path := filepath.Join(dir, "history.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		r.t.Errorf("write the history: %v", err)
		return ""
	}
	return path
}

// history returns the recorded operations.
func (r *linRun) history() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// checkLinearizable checks ops against the register model within timeout. Unless the
// answer is Ok it writes porcupine's timeline (with annotations) to dir and returns its path.
func checkLinearizable(t *testing.T, ops []porcupine.Operation, annotations []porcupine.Annotation, dir string, timeout time.Duration) (porcupine.CheckResult, string) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(regModel, ops, timeout)
	if res == porcupine.Ok {
		return res, ""
	}
	info.AddAnnotations(annotations)
	path := filepath.Join(dir, "linearizability.html")
	if err := porcupine.VisualizePath(regModel, info, path); err != nil {
		t.Errorf("write the timeline: %v", err)
		return res, ""
	}
	return res, path
}
