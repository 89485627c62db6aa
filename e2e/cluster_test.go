//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// TestClusterServes: the three containers form a cluster, and a write on any node is
// readable (linearizably) on every node.
func TestClusterServes(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c, ready := startCluster(t, ctx)
	t.Logf("MEASURE start-to-ready: %v (docker-compose up -d to /readyz 200 on all three)", ready.Round(time.Millisecond))
	urls := c.urls(ctx)

	for i := 1; i <= nodes; i++ {
		if v := waitLeaders(t, ctx, urls[i]); len(v.Nodes) != nodes {
			t.Fatalf("node%d sees %d nodes, want %d: %+v", i, len(v.Nodes), nodes, v)
		}
	}
	for i := 1; i <= nodes; i++ {
		id := fmt.Sprintf("from-node%d", i)
		body := fmt.Sprintf(`{"by":%d}`, i)
		w, err := putRetry(ctx, urls[i], id, body)
		if err != nil {
			t.Fatalf("write on node%d: %v", i, err)
		}
		for j := 1; j <= nodes; j++ {
			expectDoc(t, ctx, urls[j], id, stored{w.Version, body})
		}
	}
	d := converge(t, ctx, c, urls)
	t.Logf("state digest of all three: %s", d)
}

// TestPartition cuts a shard leader off its peers: the two others keep taking writes and
// linearizable reads, the cut-off node refuses both but still answers local reads, and
// once reconnected it catches up with everything written without it.
func TestPartition(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	c, _ := startCluster(t, ctx)
	urls := c.urls(ctx)

	const before, during = 8, 12
	seeded := make(map[string]stored)
	for k := range before {
		id, body := fmt.Sprintf("before-%d", k), fmt.Sprintf(`{"k":%d}`, k)
		w, err := putRetry(ctx, urls[1], id, body)
		if err != nil {
			t.Fatal(err)
		}
		seeded[id] = stored{w.Version, body}
	}
	victim, shard := leaderOfAShard(t, ctx, urls[1])
	majority := others(victim)
	t.Logf("cutting off node%d (leader of shard %d); majority: node%d, node%d", victim, shard, majority[0], majority[1])
	// The victim has applied the seed (a linearizable read on it says so), so its local
	// reads must answer them during the partition.
	for id, want := range seeded {
		expectDoc(t, ctx, urls[victim], id, want)
	}

	c.disconnect(ctx, victim)
	cut := time.Now()

	// The majority keeps serving: every write is acknowledged (retrying while the shards
	// the victim led elect a new leader), then readable on both majority nodes.
	acks, perShard := majorityWrites(t, ctx, []string{urls[majority[0]], urls[majority[1]]}, during, cut)
	t.Logf("MEASURE majority writes during the partition: all %d acknowledged; slowest per shard after the cut: %v", during, perShard)
	for _, a := range acks {
		for _, m := range majority {
			expectDoc(t, ctx, urls[m], a.id, stored{a.w.Version, a.body})
		}
	}

	// The minority refuses linearizable reads and writes, with a retryable error.
	read, err := get(ctx, urls[victim], "before-0", false)
	if err != nil {
		t.Fatalf("linearizable read on the cut-off node: %v", err)
	}
	t.Logf("MEASURE cut-off node, linearizable read: %v", read)
	expectRefusal(t, "linearizable read", read)
	write, err := put(ctx, urls[victim], "minority-0", `{"k":-1}`)
	if err != nil {
		t.Fatalf("write on the cut-off node: %v", err)
	}
	t.Logf("MEASURE cut-off node, write: %v", write)
	expectRefusal(t, "write", write)
	if v, err := getCluster(ctx, urls[victim]); err == nil {
		t.Logf("cut-off node's view: %+v", v.Shards)
	}
	// Local reads answer from its replica: the seed, and not what it could not receive.
	local, err := get(ctx, urls[victim], "before-0", true)
	var d0 document
	if err != nil || local.status != 200 || json.Unmarshal(local.body, &d0) != nil ||
		d0.Version != seeded["before-0"].version || !jsonEqual(d0.Doc, seeded["before-0"].body) {
		t.Fatalf("local read of before-0 on the cut-off node: want %+v, got %v %v", seeded["before-0"], local, err)
	}
	t.Logf("MEASURE cut-off node, local read: %v", local)
	if r, err := get(ctx, urls[victim], "during-0", true); err != nil || r.status != 404 {
		t.Fatalf("local read of during-0 on the cut-off node: want 404, got %v %v", r, err)
	}

	if left := *holdFlag - time.Since(cut); left > 0 {
		select { // the fault's length, chosen by the caller: nothing to poll for
		case <-time.After(left):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	c.connect(ctx, victim)
	healed := time.Now()
	t.Logf("partition lasted %v", healed.Sub(cut).Round(time.Millisecond))
	d := converge(t, ctx, c, urls)
	t.Logf("MEASURE catch-up after reconnecting: %v to equal state digests (%s)", time.Since(healed).Round(time.Millisecond), d)
	for _, a := range acks {
		expectDoc(t, ctx, urls[victim], a.id, stored{a.w.Version, a.body})
	}

	// The refused write: 503 promises it was never proposed, so it must be nowhere. 504
	// leaves its outcome open; either way every node must agree on it.
	present := agree(t, ctx, urls, "minority-0", `{"k":-1}`, write.status == 503)
	t.Logf("MEASURE the write refused with %d on the cut-off node: applied by the time all nodes agreed: %v", write.status, present)
	if present {
		converge(t, ctx, c, urls)
	}
}

// ack is one acknowledged write of majorityWrites.
type ack struct {
	id    string
	w     written
	body  string
	after time.Duration // from the cut to the acknowledgement
}

// majorityWrites writes the documents during-0..during-(n-1) at once, in turn through
// bases, each retried for up to 30 s, and fails the test unless every one is acknowledged.
// It returns them and, per shard, the longest time from the cut to an acknowledgement.
func majorityWrites(t *testing.T, ctx context.Context, bases []string, n int, cut time.Time) ([]ack, map[uint64]time.Duration) {
	t.Helper()
	acks := make([]ack, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			id, body := fmt.Sprintf("during-%d", k), fmt.Sprintf(`{"k":%d}`, k)
			w, err := putRetry(wctx, bases[k%len(bases)], id, body)
			acks[k], errs[k] = ack{id: id, w: w, body: body, after: time.Since(cut)}, err
		}()
	}
	wg.Wait()
	perShard := map[uint64]time.Duration{}
	for k, a := range acks {
		if errs[k] != nil {
			t.Fatalf("majority write %s not acknowledged: %v", a.id, errs[k])
		}
		perShard[a.w.Position.Shard] = max(perShard[a.w.Position.Shard], a.after)
	}
	return acks, perShard
}

// agree polls linearizable reads of id on every node until they agree: all 404, or all
// the same version of body. With absent set, only "all 404" will do. It reports whether
// the document exists.
func agree(t *testing.T, ctx context.Context, urls [nodes + 1]string, id, body string, absent bool) bool {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var present bool
	err := poll(actx, 100*time.Millisecond, func() error {
		var seen []string
		for i := 1; i <= nodes; i++ {
			r, err := get(actx, urls[i], id, false)
			if err != nil {
				return err
			}
			switch r.status {
			case 404:
				seen = append(seen, "absent")
			case 200:
				var d document
				if json.Unmarshal(r.body, &d) != nil || !jsonEqual(d.Doc, body) {
					return fmt.Errorf("node%d: %s is %v, want %s", i, id, r, body)
				}
				seen = append(seen, fmt.Sprintf("version %d", d.Version))
			default:
				return fmt.Errorf("node%d: read %s: %v", i, id, r)
			}
		}
		if len(slices.Compact(slices.Clone(seen))) != 1 {
			return fmt.Errorf("nodes disagree on %s: %v", id, seen)
		}
		if absent && seen[0] != "absent" {
			return fmt.Errorf("%s exists on every node (%v), but its write was refused as never proposed", id, seen)
		}
		present = seen[0] != "absent"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return present
}

// TestKillNode kills a shard leader's container with SIGKILL while clients write to the
// two others: those keep acknowledging writes; the restarted node catches up and serves
// every acknowledged write.
func TestKillNode(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	c, _ := startCluster(t, ctx)
	urls := c.urls(ctx)
	victim, shard := leaderOfAShard(t, ctx, urls[1])
	survivors := others(victim)

	shards := docShards(waitLeaders(t, ctx, urls[1]))

	// Four writers, each one write at a time, against the survivors.
	const writers, maxWrites = 4, 4000
	var (
		mu        sync.Mutex
		acked     = map[string]stored{}
		killAt    time.Time
		afterKill = map[uint64]int{}           // per shard: writes begun after the kill and acknowledged
		slowest   = map[uint64]time.Duration{} // per shard: the slowest write acknowledged after the kill
		failed    error
	)
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < maxWrites/writers && wctx.Err() == nil; n++ {
				id := fmt.Sprintf("w%d-%d", g, n)
				start := time.Now()
				pctx, cancel := context.WithTimeout(wctx, 30*time.Second)
				body := fmt.Sprintf(`{"g":%d,"n":%d}`, g, n)
				w, err := putRetry(pctx, urls[survivors[(g+n)%2]], id, body)
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					acked[id] = stored{w.Version, body}
					if !killAt.IsZero() {
						slowest[w.Position.Shard] = max(slowest[w.Position.Shard], time.Since(start))
						if start.After(killAt) {
							afterKill[w.Position.Shard]++
						}
					}
				case wctx.Err() == nil:
					failed = fmt.Errorf("write %s: %w", id, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	// wait polls cond (under mu) until it holds; a failed writer fails the test.
	wait := func(cond func() error) {
		t.Helper()
		err := poll(ctx, 20*time.Millisecond, func() error {
			mu.Lock()
			defer mu.Unlock()
			if failed != nil {
				return failed
			}
			return cond()
		})
		if err != nil {
			stopWriters()
			wg.Wait()
			t.Fatal(err)
		}
	}

	wait(func() error {
		if len(acked) < 20 {
			return fmt.Errorf("%d writes acknowledged", len(acked))
		}
		return nil
	})
	if _, err := docker(ctx, "kill", "--signal", "KILL", c.ids[victim]); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	killAt = time.Now()
	atKill := len(acked)
	mu.Unlock()
	t.Logf("killed node%d (leader of shard %d) after %d acknowledged writes", victim, shard, atKill)
	// The survivors keep acknowledging writes on every shard, for a while after the kill.
	wait(func() error {
		if since := time.Since(killAt); since < 3*time.Second {
			return fmt.Errorf("only %v since the kill", since)
		}
		for _, s := range shards {
			if afterKill[s] < 5 {
				return fmt.Errorf("shard %d: %d writes acknowledged after the kill", s, afterKill[s])
			}
		}
		return nil
	})
	stopWriters()
	wg.Wait()
	mu.Lock()
	t.Logf("MEASURE writes with node%d dead: %d acknowledged in %v by %d writers (per shard %v); slowest write per shard after the kill %v",
		victim, len(acked)-atKill, time.Since(killAt).Round(time.Millisecond), writers, afterKill, slowest)
	mu.Unlock()

	start := time.Now()
	if _, err := docker(ctx, "start", c.ids[victim]); err != nil {
		t.Fatal(err)
	}
	c.waitReady(ctx, victim)
	t.Logf("MEASURE restart of the killed node: ready %v after docker start", time.Since(start).Round(time.Millisecond))
	urls[victim] = c.url(ctx, victim)
	d := converge(t, ctx, c, urls)
	t.Logf("MEASURE restart to equal state digests: %v (%s)", time.Since(start).Round(time.Millisecond), d)

	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		expectDoc(t, ctx, urls[victim], id, acked[id])
	}
	t.Logf("all %d acknowledged writes read back from the restarted node", len(ids))
}

// urls returns every node's REST base URL, indexed by node id.
func (c *cluster) urls(ctx context.Context) [nodes + 1]string {
	var u [nodes + 1]string
	for i := 1; i <= nodes; i++ {
		u[i] = c.url(ctx, i)
	}
	return u
}

func others(i int) [2]int {
	var o [2]int
	k := 0
	for j := 1; j <= nodes; j++ {
		if j != i {
			o[k] = j
			k++
		}
	}
	return o
}

// waitLeaders polls a node's cluster view until every shard has a leader.
func waitLeaders(t *testing.T, ctx context.Context, base string) clusterView {
	t.Helper()
	var v clusterView
	err := poll(ctx, 100*time.Millisecond, func() error {
		var err error
		if v, err = getCluster(ctx, base); err != nil {
			return err
		}
		if len(v.Shards) == 0 {
			return fmt.Errorf("no shards: %+v", v)
		}
		for _, s := range v.Shards {
			if s.Leader == 0 {
				return fmt.Errorf("shard %d has no leader", s.Shard)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// leaderOfAShard returns a node that leads a document shard, and the shard.
func leaderOfAShard(t *testing.T, ctx context.Context, base string) (int, uint64) {
	t.Helper()
	for _, s := range waitLeaders(t, ctx, base).Shards {
		if s.Meta {
			continue
		}
		if s.Leader < 1 || s.Leader > nodes {
			t.Fatalf("shard %d: leader %d is not a node of the compose file", s.Shard, s.Leader)
		}
		return int(s.Leader), s.Shard
	}
	t.Fatal("no document shards")
	return 0, 0
}

// docShards returns the document shards (the ones writes go to).
func docShards(v clusterView) []uint64 {
	var out []uint64
	for _, s := range v.Shards {
		if !s.Meta {
			out = append(out, s.Shard)
		}
	}
	return out
}

// converge polls the state digests of every node until they are equal and returns it.
func converge(t *testing.T, ctx context.Context, c *cluster, urls [nodes + 1]string) string {
	t.Helper()
	var last []string
	err := poll(ctx, 50*time.Millisecond, func() error {
		last = last[:0]
		for i := 1; i <= nodes; i++ {
			d, err := getDigest(ctx, urls[i])
			if err != nil {
				return fmt.Errorf("node%d: %w", i, err)
			}
			last = append(last, d.Digest)
		}
		if slices.Contains(last, "") || len(slices.Compact(slices.Clone(last))) != 1 {
			return fmt.Errorf("digests differ: %v", last)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("state digests did not converge: %v", err)
	}
	return last[0]
}

// stored is what a read of a document must return.
type stored struct {
	version uint64
	body    string
}

// expectDoc reads id linearizably on a node (retrying briefly while the node answers 503)
// and checks its version and body.
func expectDoc(t *testing.T, ctx context.Context, base, id string, want stored) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var r reply
	err := poll(rctx, 100*time.Millisecond, func() error {
		var err error
		if r, err = get(rctx, base, id, false); err != nil {
			return err
		}
		if r.status == 503 {
			return fmt.Errorf("read %s: %v", id, r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s on %s: %v", id, base, err)
	}
	var d document
	if r.status != 200 || json.Unmarshal(r.body, &d) != nil {
		t.Fatalf("read %s on %s: %v", id, base, r)
	}
	if d.Version != want.version || !jsonEqual(d.Doc, want.body) {
		t.Fatalf("read %s on %s: version %d body %s, want version %d body %s", id, base, d.Version, d.Doc, want.version, want.body)
	}
}

// expectRefusal checks that a cut-off node refused an operation with a retryable error.
func expectRefusal(t *testing.T, op string, r reply) {
	t.Helper()
	switch {
	case r.status == 503 && r.code == "unavailable":
	case r.status == 504 && r.code == "indeterminate":
	default:
		t.Fatalf("cut-off node, %s: want 503 unavailable or 504 indeterminate, got %v", op, r)
	}
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
