package materializer_test

import (
	"fmt"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/tiers"
)

// Idempotency records expire; expiry runs at the end of every Apply call. dragonboat hands
// each replica its own batches of entries, so what expiry does must not depend on where
// the batch boundaries fall.

func idemCmd(ms int64, id, reqID string, ttlMillis uint64) []byte {
	return materializer.EncodeCommand(&materializer.Command{
		TS: log.MakeTimestamp(ms, 0), Origin: "dc1", Principal: "p", IdemTTL: ttlMillis,
		Writes: []materializer.Write{{Op: log.OpPut, Collection: "c", ID: id, Body: []byte(`{"v":1}`), RequestID: reqID}},
	})
}

// TestIdemReuseAfterExpiryBatching: a request id reused after its record expired starts a
// new record. Replicas that saw the expiry in different Apply batches must agree, and a
// retry of the second command must be answered, not applied again.
func TestIdemReuseAfterExpiryBatching(t *testing.T) {
	const t0 = 1_700_000_000_000
	second := idemCmd(t0+5, "doc", "r", 10)
	entries := func() []log.Entry {
		return []log.Entry{
			{Index: 1, Cmds: [][]byte{idemCmd(t0, "doc", "r", 1)}},    // record r expires at t0+1
			{Index: 2, Cmds: [][]byte{idemCmd(t0+3, "other", "", 0)}}, // time passes r's expiry
			{Index: 3, Cmds: [][]byte{second}},                        // r reused: a new record, expires t0+15
			{Index: 4, Cmds: [][]byte{second}},                        // the client retries it
		}
	}
	a, b := newNode(t), newNode(t)
	ea, eb := entries(), entries()
	a.apply(t, ea, 3, 1) // entries 1–3 in one batch, the retry in the next
	b.apply(t, eb, 1)    // one entry per batch
	for name, es := range map[string][]log.Entry{"batched": ea, "entry by entry": eb} {
		rs, err := materializer.DecodeResults(es[3].Results[0])
		if err != nil {
			t.Fatal(err)
		}
		if !rs[0].Replayed || rs[0].Version != 2 {
			t.Errorf("%s: the retry was applied again: %+v", name, rs[0])
		}
	}
	if a.digest(t) != b.digest(t) {
		t.Error("replicas diverged: digests differ")
	}
	k := tiers.Key{Shard: testShard, Collection: "c", ID: "doc"}
	da, _ := a.m.Get(k)
	db, _ := b.m.Get(k)
	if da.Version != db.Version {
		t.Errorf("replicas diverged: version %d (batched) vs %d (entry by entry)", da.Version, db.Version)
	}
}

// TestIdemExpiryBatching: many records expiring at once. The per-Apply bound on deletions
// must not make replicas' states (and digests) depend on their batching.
func TestIdemExpiryBatching(t *testing.T) {
	const t0, n = 1_700_000_000_000, 400
	entries := func() []log.Entry {
		out := make([]log.Entry, n)
		for i := range out {
			out[i] = log.Entry{Index: uint64(i + 1), Cmds: [][]byte{idemCmd(t0+int64(2*i), fmt.Sprint(i), fmt.Sprint("req-", i), 1)}}
		}
		return out
	}
	a, b := newNode(t), newNode(t)
	a.apply(t, entries())
	b.apply(t, entries(), 1)
	if a.digest(t) != b.digest(t) {
		t.Fatal("same entries in different batches: digests differ")
	}
}
