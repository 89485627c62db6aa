package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/meta"
	"github.com/aerolithsdb/aerolith/query"
	"github.com/aerolithsdb/aerolith/tiers/archive"
	dto "github.com/prometheus/client_model/go"
)

// TestShardServedFromOtherNodes places node 3 of a three-node cluster (replication
// factor 1) outside shards 1 and 2 and checks the L3 tier: node 3 drops those shards'
// replicas and data, and still serves them through the other nodes — writes, linearizable
// reads, history, a paged sorted query, collection counts, index listings and a change
// stream agree with a node that holds the shards. Placed back in shard 1, node 3 gets a
// new replica that catches up to the same state digest.
// segmentFiles lists d's archive files of shard.
func segmentFiles(t *testing.T, d *DB, shard uint64) []string {
	t.Helper()
	names, err := archive.Dir{Path: d.cfg.ArchiveDir}.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, fmt.Sprintf("s%06d-", shard)) {
			out = append(out, n)
		}
	}
	return out
}

func TestShardServedFromOtherNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three raft nodes")
	}
	const shards = 4
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newServedCluster(t, 3, 0, shards)
	c.retain = 4
	c.open(ctx, ids(3)...)
	dbs := c.dbs
	d1, d3 := dbs[1], dbs[3]
	ids := map[uint64][]string{} // shard → document ids written
	write := func(on *DB, id string, n int) {
		t.Helper()
		if _, err := on.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: id, Body: fmt.Appendf(nil, `{"n":%d}`, n)}); err != nil {
			t.Fatalf("write %s on node %d: %v", id, on.cfg.NodeID, err)
		}
		s := log.ShardOf("c", id, shards)
		if !slices.Contains(ids[s], id) {
			ids[s] = append(ids[s], id)
		}
	}
	for i := range 40 {
		write(d1, fmt.Sprintf("k%02d", i), i)
	}
	if _, err := d1.CreateIndex(ctx, "c", "by_n", []string{"n"}); err != nil {
		t.Fatal(err)
	}

	// Node 3 archives old events and signs checkpoints of every shard; a dropped shard's
	// must go with it (an archive segment may hold bodies redacted later).
	for s := uint64(1); s <= shards; s++ {
		if err := d3.barrier(ctx, s, Linearizable); err != nil {
			t.Fatal(err)
		}
	}
	d3.localMu.Lock()
	_, err := d3.archiveOnce(ctx)
	for s := uint64(1); s <= shards && err == nil; s++ {
		_, err = d3.checkpoint(s)
	}
	d3.localMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []uint64{1, 2} {
		if d3.archive.Archived(s) == 0 || len(segmentFiles(t, d3, s)) == 0 || len(must(d3.Checkpoints(s, 0, math.MaxUint64))) == 0 {
			t.Fatalf("node 3 archived nothing of shard %d, or signed no checkpoint: the checks below would prove nothing", s)
		}
	}

	if err := d1.SetReplicationFactor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, s := range []uint64{1, 2} {
		if err := d1.PlaceShard(ctx, s, 3, true); err != nil {
			t.Fatalf("place node 3 outside shard %d: %v", s, err)
		}
	}
	// Leaving a shard with fewer nodes than its voters is refused.
	if err := d1.SetReplicationFactor(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := d1.PlaceShard(ctx, 3, 3, true); err == nil {
		t.Fatal("placing node 3 outside shard 3 with replication factor 3 was accepted")
	}
	if err := d1.SetReplicationFactor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	poll := func(what string, ok func() bool) {
		t.Helper()
		until(t, ctx, 100*time.Millisecond, what, ok, func() string {
			return fmt.Sprintf("cluster %+v", d1.Cluster(context.Background()).Shards)
		})
	}
	placed := time.Now()
	// A drop ends with the node's checkpoints of the shard (db.dropData); the replica goes
	// first, so the node stops serving the shard from it before its data is gone.
	dropped := func(s uint64) bool { return !d3.local(s) && len(must(d3.Checkpoints(s, 0, math.MaxUint64))) == 0 }
	poll("node 3 drops shards 1 and 2", func() bool { return dropped(1) && dropped(2) && d3.local(3) && d3.local(4) })
	t.Logf("node 3 dropped shards 1 and 2 %s after it was placed outside them", time.Since(placed).Round(time.Millisecond))
	for _, s := range []uint64{1, 2} {
		if n, err := d3.store.Counts(s); err != nil || len(n) != 0 {
			t.Fatalf("node 3 still holds counts of shard %d: %v %v", s, n, err)
		}
		if _, ok := must(d3.Digest())[s]; ok {
			t.Fatalf("node 3 reports a digest of shard %d it does not hold", s)
		}
		if a, files, cps := d3.archive.Archived(s), segmentFiles(t, d3, s), must(d3.Checkpoints(s, 0, math.MaxUint64)); a != 0 || len(files) != 0 || len(cps) != 0 {
			t.Fatalf("node 3 keeps of dropped shard %d: archive up to %d, segment files %v, %d checkpoints", s, a, files, len(cps))
		}
	}
	if d3.archive.Archived(3) == 0 || len(must(d3.Checkpoints(3, 0, math.MaxUint64))) == 0 {
		t.Fatal("node 3 lost the archive or the checkpoints of shard 3, which it holds")
	}
	// A drop that a crash cut short is finished when the node opens again: here a segment
	// and a checkpoint of dropped shard 2 are left as if the crash came before their removal.
	if err := d3.archive.Put(ctx, 2, 1, [][]byte{[]byte("left behind")}); err != nil {
		t.Fatal(err)
	}
	if err := d3.store.PutCheckpoint(2, 1, []byte(`{"shard":2,"index":1}`)); err != nil {
		t.Fatal(err)
	}
	c.close(3)
	c.open(ctx, 3)
	d3 = c.db(3)
	if a, files, cps := d3.archive.Archived(2), segmentFiles(t, d3, 2), must(d3.Checkpoints(2, 0, math.MaxUint64)); a != 0 || len(files) != 0 || len(cps) != 0 {
		t.Fatalf("reopened, node 3 keeps of dropped shard 2: archive up to %d, segment files %v, %d checkpoints", a, files, len(cps))
	}

	// Writes through node 3 land in every shard; reads agree on both nodes.
	for i := 40; i < 80; i++ {
		write(d3, fmt.Sprintf("k%02d", i), i)
	}
	for s := uint64(1); s <= 2; s++ {
		if len(ids[s]) == 0 {
			t.Fatalf("no document of shard %d was written", s)
		}
	}
	for _, list := range ids {
		for _, id := range list {
			a, err := d3.Get(ctx, "c", id, Linearizable)
			if err != nil {
				t.Fatalf("get %s on node 3: %v", id, err)
			}
			b, err := d1.Get(ctx, "c", id, Linearizable)
			if err != nil {
				t.Fatal(err)
			}
			if string(a.Body) != string(b.Body) || a.Version != b.Version || a.Position != b.Position {
				t.Fatalf("%s: node 3 reads %+v, node 1 %+v", id, a, b)
			}
		}
	}
	if _, err := d3.Get(ctx, "c", "nope", Linearizable); err == nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("a missing document through the L3 tier: %v, want not found", err)
	}
	remote := ids[1][0]
	write(d1, remote, 1000)
	h, err := d3.History(ctx, "c", remote, Linearizable)
	if err != nil || len(h) != 2 || h[1].Version != 2 {
		t.Fatalf("history of %s on node 3: %+v %v", remote, h, err)
	}

	c3clock, _, err := d3.DocClock(ctx, "c", remote, Linearizable)
	if err != nil {
		t.Fatal(err)
	}
	c1clock, _, err := d1.DocClock(ctx, "c", remote, Linearizable)
	if err != nil || fmt.Sprint(c3clock) != fmt.Sprint(c1clock) || len(c1clock) == 0 {
		t.Fatalf("clock of %s: node 3 %v, node 1 %v (%v)", remote, c3clock, c1clock, err)
	}
	if cs, err := d3.Conflicts(ctx, "c", 10, Linearizable); err != nil || len(cs) != 0 {
		t.Fatalf("conflicts on node 3: %+v %v", cs, err)
	}

	// A sorted, paged query and the counts agree.
	page := func(d *DB) []string {
		var out []string
		cursor := ""
		for {
			res, err := d.Query(ctx, QueryRequest{Collection: "c", Filter: "doc.n >= 10", Sort: []query.SortField{{Field: "n", Desc: true}},
				Limit: 7, Cursor: cursor, Consistency: Linearizable})
			if err != nil {
				t.Fatalf("query on node %d: %v", d.cfg.NodeID, err)
			}
			for _, doc := range res.Docs {
				out = append(out, doc.ID+string(doc.Body))
			}
			if cursor = res.NextCursor; cursor == "" {
				return out
			}
		}
	}
	if a, b := page(d3), page(d1); !slices.Equal(a, b) || len(a) != 71 { // k10..k79, and the document rewritten to 1000
		t.Fatalf("query: node 3 gives %d results, node 1 %d\n%v\n%v", len(a), len(b), a, b)
	}
	c3, err := d3.Collections(ctx, Linearizable)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := d1.Collections(ctx, Linearizable)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c3, c1) || len(c1) != 1 || c1[0].Count != 80 {
		t.Fatalf("collections: node 3 %+v, node 1 %+v", c3, c1)
	}
	x3, err := d3.Indexes(ctx, "c", Linearizable)
	if err != nil {
		t.Fatal(err)
	}
	x1, err := d1.Indexes(ctx, "c", Linearizable)
	if err != nil {
		t.Fatal(err)
	}
	if len(x3) != 1 || len(x1) != 1 || x3[0].Entries != x1[0].Entries || x3[0].State != x1[0].State {
		t.Fatalf("indexes: node 3 %+v, node 1 %+v", x3, x1)
	}

	// A change stream on node 3 that starts now sees what node 1 writes to a shard node 3
	// does not hold after it started, and nothing acknowledged before.
	write(d1, ids[2][1], 1500)
	sub, err := d3.Subscribe(SubscribeRequest{Collections: []string{"c"}, From: "now"})
	if err != nil {
		t.Fatal(err)
	}
	write(d1, ids[2][0], 2000)
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	for {
		m, err := sub.Next(sctx)
		if err != nil {
			t.Fatalf("change stream on node 3: %v", err)
		}
		if m.Kind != feed.KindEvent || m.Raw == nil {
			continue
		}
		if m.Raw.ID != ids[2][0] {
			t.Fatalf("a change stream started after %s was written delivers %s", ids[2][1], m.Raw.ID)
		}
		break
	}
	// History from the beginning reads every event of every shard.
	all, err := d3.Subscribe(SubscribeRequest{Collections: []string{"c"}, From: "beginning"})
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for events < 83 {
		m, err := all.Next(sctx)
		if err != nil {
			t.Fatalf("replay on node 3 after %d events: %v", events, err)
		}
		if m.Kind == feed.KindEvent {
			events++
		}
	}

	// Placed back in shard 1, node 3 catches up to the same state.
	if err := d1.PlaceShard(ctx, 1, 3, false); err != nil {
		t.Fatal(err)
	}
	poll("node 3 holds shard 1 again", func() bool { return d3.local(1) && d3.host.Hosts(1) })
	poll("node 3's shard 1 matches node 1's", func() bool {
		if err := d3.barrier(ctx, 1, Linearizable); err != nil {
			return false
		}
		return must(d3.Digest())[1] == must(d1.Digest())[1]
	})
	if _, ok := d3.meta.State().Replicas[1][3]; !ok {
		t.Fatalf("node 3 came back to shard 1 without a new replica id: %+v", d3.meta.State().Replicas)
	}

	// An adopted replica is served from only once it has caught up; until then the node
	// serves the shard through the others and answers other nodes not_hosted. Here node 3's
	// change feed is made to announce a head of shard 3 far past its replica's.
	d3.adopting.start(3)
	d3.hub.Advance(3, d3.hub.Head(3)+1_000_000)
	if d3.local(3) {
		t.Fatal("node 3 serves shard 3 from a replica behind the head it announced")
	}
	proposals := func() float64 {
		var m dto.Metric
		if err := d3.peers.calls.WithLabelValues("propose", "ok").Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	before := proposals()
	id := ""
	for i := 0; id == ""; i++ {
		if k := fmt.Sprintf("catching-up-%d", i); log.ShardOf("c", k, shards) == 3 {
			id = k
		}
	}
	write(d3, id, 1)
	if got := must(d1.Get(ctx, "c", id, Linearizable)); string(got.Body) != `{"n":1}` {
		t.Fatalf("the write through node 3 reads back %s on node 1", got.Body)
	}
	if proposals() != before+1 {
		t.Fatalf("node 3 made %v proposals through other nodes for the write, want 1", proposals()-before)
	}
	call := fmt.Appendf(nil, `{"shard":3,"collection":"c","id":%q}`, id)
	var pe *PeerError
	if _, err := d3.ServePeer(ctx, "get", call); !errors.As(err, &pe) || pe.Kind != "not_hosted" {
		t.Fatalf("node 3 answered a peer read of a shard it catches up on with %v, want not_hosted", err)
	}
	d3.adopting.forget(3)
	if !d3.local(3) {
		t.Fatal("node 3 does not serve shard 3 from its replica once it no longer catches up")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestPlacedHostingSpreadsReplicas switches a three-node cluster (replication factor 3,
// four shards) to placed hosting and joins a fourth node: replicas move to it (added as
// non-voting, caught up, promoted, the old replica removed and its data dropped) until
// each node holds three of the four shards. Writes go on through every node meanwhile;
// afterwards every node, including the new one, reads every document, and each shard's
// replicas have equal state digests. Then: back to every node holding every shard and to
// placed again; a node lost for longer than DeadAfter has its shards placed on the
// others; a fifth node joins and gets its share; a decommissioned node's shards move
// away before it is removed.
func TestPlacedHostingSpreadsReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four raft nodes")
	}
	const shards = 4
	c := newServedCluster(t, 3, 2, shards)
	c.deadAfter = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c.open(ctx, 1, 2, 3)
	dbs := c.dbs // written only while no other goroutine of the test reads it
	for i := range 60 {
		if _, err := dbs[uint64(i%3+1)].Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: fmt.Sprintf("k%d", i),
			Body: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dbs[2].SetHosting(ctx, "sideways"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("an unknown hosting mode: %v, want invalid argument", err)
	}
	if err := dbs[2].SetHosting(ctx, "placed"); err != nil {
		t.Fatal(err)
	}
	c.join(ctx, 1, 4)
	joined := time.Now()

	stopWriters := c.writeLoad(ctx, ids(4))
	all := []uint64{1, 2, 3, 4}
	// placedOn: every shard settled on three of the live nodes, which hold per shards
	// each, run exactly those replicas, and vote in them with no other replica.
	placedOn := func(live []uint64, per int) func() bool {
		return func() bool {
			st := dbs[live[0]].meta.State()
			count := map[uint64]int{}
			for s := uint64(1); s <= shards; s++ {
				if len(st.Hosts[s]) != 3 {
					return false
				}
				for _, id := range st.Hosts[s] {
					if !slices.Contains(live, id) {
						return false
					}
					count[id]++
				}
			}
			for _, id := range live {
				held := 0
				for s := uint64(1); s <= shards; s++ {
					if dbs[id].local(s) != st.Holds(s, id) || st.Holds(s, id) && !dbs[id].host.Hosts(s) {
						return false
					}
					if dbs[id].local(s) {
						held++
					}
				}
				if count[id] != per || held != per {
					return false
				}
			}
			for _, sh := range dbs[live[0]].Cluster(ctx).Shards {
				if sh.Shard != log.MetaShard && (len(sh.NonVoting) != 0 || len(sh.Replicas) != 3) {
					return false
				}
			}
			return true
		}
	}
	spread := placedOn(all, 3)
	until(t, ctx, 200*time.Millisecond, "replicas spread", spread, func() string {
		return fmt.Sprintf("meta %+v; cluster %+v", dbs[1].meta.State(), dbs[1].Cluster(context.Background()).Shards)
	})
	written, failed := stopWriters()
	t.Logf("replicas spread over 4 nodes %s after the join; %d writes meanwhile, %d failed", time.Since(joined).Round(time.Millisecond), written, failed)

	await := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		until(t, ctx, 200*time.Millisecond, what, ok, func() string {
			var nodes []string
			for _, id := range ids(5) {
				if d := c.db(id); d != nil {
					var held []string
					for s := uint64(1); s <= shards; s++ {
						held = append(held, fmt.Sprintf("%d:local=%v,admitted=%v,replica=%d", s, d.local(s), d.host.Hosts(s), d.host.ReplicaOf(s)))
					}
					nodes = append(nodes, fmt.Sprintf("node %d %v", id, held))
				}
			}
			return fmt.Sprintf("meta %+v; %s; cluster %+v", dbs[1].meta.State(), strings.Join(nodes, "; "), dbs[1].Cluster(context.Background()).Shards)
		})
		t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
	}
	// check: every live node reads every document and counts them all, and each shard's
	// replicas have equal state digests.
	check := func(live []uint64, wantW int64) {
		t.Helper()
		for _, on := range live {
			for i := range 60 {
				doc, err := dbs[on].Get(ctx, "c", fmt.Sprintf("k%d", i), Linearizable)
				if err != nil || string(doc.Body) != fmt.Sprintf(`{"n":%d}`, i) {
					t.Fatalf("node %d reads k%d: %s %v", on, i, doc.Body, err)
				}
			}
			cs, err := dbs[on].Collections(ctx, Linearizable)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 2 || cs[0].Count != 60 || cs[1].Count != wantW {
				t.Fatalf("node %d counts %+v; want c 60 and w %d", on, cs, wantW)
			}
		}
		for s := uint64(1); s <= shards; s++ {
			var want log.Hash
			holders := 0
			for _, id := range live {
				if !dbs[id].local(s) {
					continue
				}
				if err := dbs[id].barrier(ctx, s, Linearizable); err != nil {
					t.Fatal(err)
				}
				h := must(dbs[id].Digest())[s]
				if holders == 0 {
					want = h
				} else if h != want {
					t.Fatalf("shard %d: node %d digest %x differs", s, id, h)
				}
				holders++
			}
			if holders < 3 {
				t.Fatalf("shard %d is held by %d live nodes", s, holders)
			}
		}
	}
	check(all, written)

	// Back to every node holding every shard: the nodes adopt the shards they dropped.
	if err := dbs[3].SetHosting(ctx, "all"); err != nil {
		t.Fatal(err)
	}
	await("every node holds every shard", func() bool {
		for _, id := range all {
			for s := uint64(1); s <= shards; s++ {
				if !dbs[id].local(s) || !dbs[id].host.Hosts(s) {
					return false
				}
			}
		}
		return true
	})
	check(all, written)

	// Placed again, then node 2 is lost: the shards it held are placed on the others.
	if err := dbs[3].SetHosting(ctx, "placed"); err != nil {
		t.Fatal(err)
	}
	await("replicas spread again", spread)
	c.close(2)
	live := []uint64{1, 3, 4}
	await("node 2's shards placed on the others", placedOn(live, 4))
	for i := range 20 {
		if _, err := dbs[live[i%3]].Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "w", ID: fmt.Sprintf("late%d", i), Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	check(live, written+20)

	// A fifth node joins and takes its share; node 4 is decommissioned: its shards move to
	// the others before it is removed.
	c.join(ctx, 1, 5)
	live = []uint64{1, 3, 4, 5}
	await("replicas spread over the new node", placedOn(live, 3))
	if _, err := dbs[1].Decommission(ctx, 4); err != nil {
		t.Fatal(err)
	}
	live = []uint64{1, 3, 5}
	await("node 4 decommissioned, its shards moved", func() bool {
		n, _ := dbs[1].meta.State().Node(4)
		return n.State == meta.Removed && placedOn(live, 4)()
	})
	check(live, written+20)
}

// TestAdoptedReplicaGetsArchivedEventsFromOthers: a replica that catches up by snapshot
// after the shard's other holders archived old events (they left L2, so the snapshot does
// not carry them) reads those events from the nodes that archived them, and its archiver
// fills its own archive from them before archiving its own L2.
func TestAdoptedReplicaGetsArchivedEventsFromOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three raft nodes")
	}
	const shards = 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newServedCluster(t, 3, 0, shards)
	c.retain, c.snapshotEntries = 8, 20
	c.open(ctx, ids(3)...)
	d1, d2, d3 := c.dbs[1], c.dbs[2], c.dbs[3]
	poll := func(what string, ok func() bool) {
		t.Helper()
		until(t, ctx, 50*time.Millisecond, what, ok, nil)
	}
	if err := d1.SetReplicationFactor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Refused until nodes 1 and 2 are registered: only active nodes count as holders.
	poll("node 3 placed outside shard 1", func() bool { return d1.PlaceShard(ctx, 1, 3, true) == nil })
	poll("node 3 drops shard 1", func() bool { return !d3.local(1) })

	written := 0
	for written < 120 {
		id := fmt.Sprintf("a%03d", written)
		if log.ShardOf("c", id, shards) != 1 {
			id += "x"
		}
		if _, err := d1.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: id, Body: fmt.Appendf(nil, `{"n":%d}`, written)}); err != nil {
			t.Fatal(err)
		}
		written++
	}
	for _, d := range []*DB{d1, d2} { // the holders archive, and drop what they archived from L2
		if err := d.barrier(ctx, 1, Linearizable); err != nil {
			t.Fatal(err)
		}
		d.localMu.Lock()
		_, err := d.archiveOnce(ctx)
		d.localMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	if d1.archive.Archived(1) == 0 {
		t.Fatal("node 1 archived nothing of shard 1")
	}

	if err := d1.PlaceShard(ctx, 1, 3, false); err != nil {
		t.Fatal(err)
	}
	poll("node 3 serves shard 1 again", func() bool { return d3.local(1) })
	first := must(d3.store.FirstEvent(1))
	if first <= 1 {
		t.Fatalf("node 3's replica starts at event %d: it caught up by replaying the log, and this test proves nothing", first)
	}
	if d3.archive.Archived(1) != 0 {
		t.Fatalf("node 3's archive of shard 1 reaches %d before it archived anything", d3.archive.Archived(1))
	}
	head := d1.hub.Head(1)
	want := must(d1.events(ctx, 1, 1, int(head)))
	check := func(when string) {
		t.Helper()
		got, err := d3.events(ctx, 1, 1, int(head))
		if err != nil {
			t.Fatalf("%s: node 3 reads shard 1's events from the first: %v", when, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: node 3 reads %d events of shard 1, node 1 %d", when, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: event %d differs between node 3 and node 1", when, i+1)
			}
		}
	}
	check(fmt.Sprintf("L2 from event %d, nothing archived", first))
	d3.localMu.Lock()
	_, err := d3.archiveOnce(ctx)
	d3.localMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if a := d3.archive.Archived(1); a < first-1 {
		t.Fatalf("node 3's archive of shard 1 reaches %d, below its L2's first event %d", a, first)
	}
	check("after node 3 archived")
	t.Logf("node 3 caught up by snapshot (L2 from event %d of %d) and read the %d events before it from the others", first, head, first-1)
}
