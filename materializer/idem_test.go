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

func retryCmd(ms int64, token string, ttlMillis uint64, ws ...materializer.Write) []byte {
	return materializer.EncodeCommand(&materializer.Command{
		TS: log.MakeTimestamp(ms, 0), Origin: "dc1", Principal: "p", Writes: ws, Retry: token, RetryTTL: ttlMillis,
	})
}

// TestRetryToken: a command with a retry token is decided once. A copy committed later
// (a resubmission, or the original after its resubmission) gets the first copy's results,
// a refusal included, until the token's record expires.
func TestRetryToken(t *testing.T) {
	const t0 = 1_700_000_000_000
	put := func(id, body string) materializer.Write {
		return materializer.Write{Op: log.OpPut, Collection: "c", ID: id, Body: []byte(body)}
	}
	created := retryCmd(t0, "T1", 1000, put("a", `{"v":1}`), put("b", `{"v":1}`))
	refused := retryCmd(t0+1, "T2", 1000, materializer.Write{
		Op: log.OpPut, Collection: "c", ID: "a", Body: []byte(`{"v":2}`), HasIfMatch: true, IfMatch: 2,
	})
	entries := []log.Entry{
		{Index: 1, Cmds: [][]byte{created}},
		{Index: 2, Cmds: [][]byte{created, refused}},                                // the first a copy, the second refused: a is at version 1
		{Index: 3, Cmds: [][]byte{retryCmd(t0+2, "T3", 1000, put("a", `{"v":3}`))}}, // a is at version 2 now
		{Index: 4, Cmds: [][]byte{refused}},                                         // the refusal's copy: refused still, though If-Match 2 holds now
		{Index: 5, Cmds: [][]byte{retryCmd(t0+5000, "", 0, put("z", `{}`))}},        // time passes T1's expiry
		{Index: 6, Cmds: [][]byte{created}},                                         // a copy after the record expired applies again
	}
	n := newNode(t)
	n.apply(t, entries, 1, 2, 3)
	results := func(e, c int) []materializer.WriteResult {
		t.Helper()
		rs, err := materializer.DecodeResults(entries[e].Results[c])
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	first, copied := results(0, 0), results(1, 0)
	if len(copied) != 2 || copied[0] != first[0] || copied[1] != first[1] {
		t.Errorf("copy of a committed command: %+v, want the first copy's %+v", copied, first)
	}
	if r := results(1, 1); r[0].Status != materializer.StatusPrecondition || r[0].Current != 1 {
		t.Errorf("conditional write: %+v, want a refusal with current version 1", r[0])
	}
	if r := results(3, 0); r[0].Status != materializer.StatusPrecondition || r[0].Current != 1 {
		t.Errorf("copy of a refused command: %+v, want the first copy's refusal", r[0])
	}
	doc, err := n.m.Get(tiers.Key{Shard: testShard, Collection: "c", ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Version != 3 || string(doc.Body) != `{"v":1}` {
		t.Errorf("document a: version %d body %s; want version 3 (put, put, put after expiry) body {\"v\":1}", doc.Version, doc.Body)
	}
	if r := results(5, 0); r[0].Version != 3 || r[0].Position.Index <= first[1].Position.Index {
		t.Errorf("copy after the record expired: %+v, want it applied as version 3", r[0])
	}
}
