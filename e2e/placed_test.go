//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// addNode starts node id beyond the compose file's three, as docs/deploy.md shows: on the
// api network, then on the raft network under its alias raft<id>, joining through node 1.
func (c *cluster) addNode(ctx context.Context, id int) {
	c.t.Helper()
	image := *imageFlag
	out, err := docker(ctx, "create", "--name", fmt.Sprintf("%s_node%d", c.project, id), "--hostname", fmt.Sprintf("node%d", id),
		"--label", "com.docker.compose.project="+c.project, "--network", c.network("api"), image,
		"server", fmt.Sprintf("--node-id=%d", id), fmt.Sprintf("--raft-addr=raft%d:7071", id),
		fmt.Sprintf("--advertise-http=raft%d:7070", id), "--join=raft1:7070")
	if err != nil {
		c.t.Fatal(err)
	}
	c.ids[id] = firstLine(out)
	c.added = append(c.added, c.ids[id])
	c.connect(ctx, id)
	if _, err := docker(ctx, "start", c.ids[id]); err != nil {
		c.t.Fatal(err)
	}
	c.waitReady(ctx, id)
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// heldDigests returns the state digest of each shard a node holds (GET /v1/admin/digest
// covers those).
func heldDigests(ctx context.Context, base string) (map[uint64]string, error) {
	r, err := do(ctx, "GET", base+"/v1/admin/digest", "", nil)
	if err != nil {
		return nil, err
	}
	var d struct {
		Shards []struct {
			Shard  uint64 `json:"shard"`
			Digest string `json:"digest"`
		} `json:"shards"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &d) != nil {
		return nil, fmt.Errorf("digest: %v", r)
	}
	out := map[uint64]string{}
	for _, s := range d.Shards {
		out[s.Shard] = s.Digest
	}
	return out, nil
}

// TestPartitionPlaced cuts a node off a four-node cluster in placed hosting (each of the
// four shards on three nodes, so every node lacks one and serves it through the others):
// the three others keep acknowledging writes to every shard; the cut-off node refuses
// linearizable reads and writes, for the shards it holds (no quorum) and for the one it
// serves through other nodes (none reachable); reconnected, it catches up, every shard's
// holders agree, and it reads every acknowledged write.
func TestPartitionPlaced(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	c, _ := startCluster(t, ctx)
	c.addNode(ctx, 4)
	all := []int{1, 2, 3, 4}
	urls := map[int]string{}
	for _, i := range all {
		urls[i] = c.url(ctx, i)
	}
	if r, err := do(ctx, "PUT", urls[1]+"/v1/cluster/hosting", `{"hosting":"placed"}`, nil); err != nil || r.status >= 300 {
		t.Fatalf("PUT /v1/cluster/hosting: %v %v", r, err)
	}
	held := map[int]map[uint64]string{}
	placed := time.Now()
	if err := poll(ctx, 200*time.Millisecond, func() error {
		for _, i := range all {
			d, err := heldDigests(ctx, urls[i])
			if err != nil {
				return fmt.Errorf("node%d: %w", i, err)
			}
			if len(d) != 3 {
				return fmt.Errorf("node%d holds %d shards, want 3", i, len(d))
			}
			held[i] = d
		}
		return nil
	}); err != nil {
		t.Fatalf("placed hosting did not settle: %v", err)
	}
	t.Logf("MEASURE placed hosting settled (every node holds 3 of 4 shards) %v after the PUT", time.Since(placed).Round(time.Millisecond))

	const before, during = 8, 16
	acked := map[string]stored{}
	shardOf := map[string]uint64{} // from the acknowledgements' positions
	for k := range before {
		id, body := fmt.Sprintf("before-%d", k), fmt.Sprintf(`{"k":%d}`, k)
		w, err := putRetry(ctx, urls[1+k%4], id, body)
		if err != nil {
			t.Fatal(err)
		}
		acked[id], shardOf[id] = stored{w.Version, body}, w.Position.Shard
	}
	var victim int
	var shard uint64
	for _, s := range waitLeaders(t, ctx, urls[1]).Shards {
		if !s.Meta {
			// A replica id is its node's id, above a generation in the high 32 bits.
			victim, shard = int(s.Leader&0xffffffff), s.Shard
			break
		}
	}
	if victim < 1 || victim > 4 {
		t.Fatalf("shard %d's leader is on node %d, not one of the four", shard, victim)
	}
	var missing uint64 // the shard the victim does not hold
	for s := uint64(1); s <= 4; s++ {
		if _, ok := held[victim][s]; !ok {
			missing = s
		}
	}
	majority := slices.DeleteFunc(slices.Clone(all), func(i int) bool { return i == victim })
	t.Logf("cutting off node%d (leader of shard %d, not holding shard %d); majority: %v", victim, shard, missing, majority)
	c.disconnect(ctx, victim)
	cut := time.Now()

	bases := make([]string, 0, len(majority))
	for _, m := range majority {
		bases = append(bases, urls[m])
	}
	acks, perShard := majorityWrites(t, ctx, bases, during, cut)
	for _, a := range acks {
		acked[a.id], shardOf[a.id] = stored{a.w.Version, a.body}, a.w.Position.Shard
	}
	if len(perShard) != 4 {
		t.Fatalf("the majority's writes reached shards %v, want all four", perShard)
	}
	t.Logf("MEASURE majority writes during the partition: all %d acknowledged; slowest per shard after the cut: %v", during, perShard)

	// The cut-off node: a linearizable read and a write of a document in a shard it holds,
	// and of one in the shard it serves through the others.
	var inHeld, inMissing string
	for id := range acked {
		s := shardOf[id]
		if s == missing && inMissing == "" {
			inMissing = id
		}
		if _, ok := held[victim][s]; ok && inHeld == "" {
			inHeld = id
		}
	}
	if inHeld == "" || inMissing == "" {
		t.Fatalf("no acknowledged document in a shard node%d holds (%q) or in shard %d (%q)", victim, inHeld, missing, inMissing)
	}
	for _, id := range []string{inHeld, inMissing} {
		read, err := get(ctx, urls[victim], id, false)
		if err != nil {
			t.Fatalf("linearizable read on the cut-off node: %v", err)
		}
		t.Logf("MEASURE cut-off node, linearizable read of %s (shard %d): %v", id, shardOf[id], read)
		expectRefusal(t, "linearizable read", read)
		write, err := put(ctx, urls[victim], id, `{"k":-1}`)
		if err != nil {
			t.Fatalf("write on the cut-off node: %v", err)
		}
		t.Logf("MEASURE cut-off node, write of %s: %v", id, write)
		expectRefusal(t, "write", write)
		if write.status == 504 { // its outcome is open: it may commit after the heal
			delete(acked, id)
		}
	}

	c.connect(ctx, victim)
	healed := time.Now()
	t.Logf("partition lasted %v", healed.Sub(cut).Round(time.Millisecond))
	if err := poll(ctx, 100*time.Millisecond, func() error {
		bySh := map[uint64][]string{}
		for _, i := range all {
			d, err := heldDigests(ctx, urls[i])
			if err != nil {
				return fmt.Errorf("node%d: %w", i, err)
			}
			for s, dg := range d {
				bySh[s] = append(bySh[s], dg)
			}
		}
		for s, ds := range bySh {
			if len(ds) != 3 || len(slices.Compact(slices.Clone(ds))) != 1 {
				return fmt.Errorf("shard %d: holders' digests %v", s, ds)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("holders did not converge: %v", err)
	}
	t.Logf("MEASURE catch-up after reconnecting: %v to equal digests among every shard's holders", time.Since(healed).Round(time.Millisecond))
	for id, want := range acked {
		expectDoc(t, ctx, urls[victim], id, want)
	}
	t.Logf("all %d acknowledged writes read back through the reconnected node", len(acked))
}
