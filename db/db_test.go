package db

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

func openDB(t *testing.T, dir, raft string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Open(ctx, Config{DataDir: dir, NodeID: 1, RaftAddr: raft, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestWriteReadLifecycle(t *testing.T) {
	dir, raft := t.TempDir(), loopback.FreeAddr(t)
	d := openDB(t, dir, raft)
	ctx := context.Background()

	r, err := d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "orders", ID: "a1", Body: []byte(`{"total":5,"status":"open"}`)})
	if err != nil || !r.Created || r.Version != 1 || r.Position.Index == 0 {
		t.Fatalf("put: %+v %v", r, err)
	}
	r2, err := d.Write(ctx, "anonymous", Write{Op: log.OpPatch, Collection: "orders", ID: "a1", Body: []byte(`{"status":"paid","total":null}`), HasIfMatch: true, IfMatch: 1})
	if err != nil || r2.Created || r2.Version != 2 {
		t.Fatalf("patch: %+v %v", r2, err)
	}
	doc, err := d.Get(ctx, "orders", "a1", Linearizable)
	if err != nil || doc.Version != 2 || string(doc.Body) != `{"status":"paid"}` {
		t.Fatalf("get: %+v %s %v", doc, doc.Body, err)
	}
	_, err = d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "orders", ID: "a1", Body: []byte(`{}`), HasIfMatch: true, IfMatch: 1})
	var pe *PreconditionError
	if !errors.As(err, &pe) || pe.Current != 2 {
		t.Fatalf("stale If-Match: %v", err)
	}
	if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "orders", ID: "a1", Body: []byte(`{}`), IfNoneMatch: true}); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("If-None-Match on existing: %v", err)
	}
	if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpDelete, Collection: "orders", ID: "a1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "orders", "a1", Linearizable); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpDelete, Collection: "orders", ID: "a1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	r4, err := d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "orders", ID: "a1", Body: []byte(`{"again":true}`)})
	if err != nil || !r4.Created || r4.Version != 4 {
		t.Fatalf("re-create: %+v %v", r4, err)
	}
	h, err := d.History(ctx, "orders", "a1", Linearizable)
	if err != nil || len(h) != 4 {
		t.Fatalf("history: %v %v", h, err)
	}
	for i, v := range h {
		if v.Version != uint64(i+1) {
			t.Fatalf("history versions: %+v", h)
		}
	}
	if h[2].Op != log.OpDelete || h[2].Body != nil || h[1].Op != log.OpPatch {
		t.Fatalf("history ops: %+v", h)
	}

	// Idempotency: the same key answers the first result and appends nothing.
	w := Write{Op: log.OpPut, Collection: "orders", ID: "k1", Body: []byte(`{"n":1}`), IdempotencyKey: "req-1"}
	first, err := d.Write(ctx, "anonymous", w)
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.Write(ctx, "anonymous", w)
	if err != nil || again != first {
		t.Fatalf("retry: %+v vs %+v (%v)", again, first, err)
	}
	if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "orders", ID: "k2", Body: []byte(`{}`), IdempotencyKey: "req-1"}); !errors.Is(err, ErrIdempotencyKeyReused) || d.Shards() == 0 {
		// k1 and k2 may live in different shards, where the key is unknown: then it applies.
		if err != nil {
			t.Fatalf("reused key: %v", err)
		}
	}

	cols, err := d.Collections(ctx, Linearizable)
	if err != nil || len(cols) != 1 || cols[0].Name != "orders" {
		t.Fatalf("collections: %+v %v", cols, err)
	}
	digest, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: same state, nothing applied twice.
	d = openDB(t, dir, raft)
	defer d.Close()
	doc, err = d.Get(ctx, "orders", "a1", Linearizable)
	if err != nil || doc.Version != 4 {
		t.Fatalf("after restart: %+v %v", doc, err)
	}
	digest2, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if len(digest) != len(digest2) {
		t.Fatal("digest shard count changed")
	}
	for s := range digest {
		if digest[s] != digest2[s] {
			t.Fatalf("shard %d digest changed across restart", s)
		}
	}
	again2, err := d.Write(ctx, "anonymous", w)
	if err != nil || again2 != first {
		t.Fatalf("retry after restart: %+v vs %+v (%v)", again2, first, err)
	}
}

func TestBatchAtomicWithinShard(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	ctx := context.Background()
	// Find two ids in the same shard.
	var a, b string
	for i := 0; b == ""; i++ {
		id := "id" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if log.ShardOf("c", id, d.Shards()) == 1 {
			if a == "" {
				a = id
			} else {
				b = id
			}
		}
	}
	res, err := d.Batch(ctx, "anonymous", []Write{
		{Op: log.OpPut, Collection: "c", ID: a, Body: []byte(`{"x":1}`)},
		{Op: log.OpPatch, Collection: "c", ID: b, Body: []byte(`{"x":2}`)}, // b does not exist
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, ErrAborted) || !errors.Is(res[1].Err, ErrNotFound) {
		t.Fatalf("results: %+v", res)
	}
	if _, err := d.Get(ctx, "c", a, Linearizable); !errors.Is(err, ErrNotFound) {
		t.Fatalf("aborted write applied: %v", err)
	}
	res, err = d.Batch(ctx, "anonymous", []Write{
		{Op: log.OpPut, Collection: "c", ID: a, Body: []byte(`{"x":1}`)},
		{Op: log.OpPut, Collection: "c", ID: b, Body: []byte(`{"x":2}`)},
	}, "batch-1")
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("batch: %+v %v", res, err)
	}
	if res[1].Result.Position.Index != res[0].Result.Position.Index+1 {
		t.Fatalf("positions not consecutive in one shard: %+v", res)
	}
	var body map[string]int
	doc, _ := d.Get(ctx, "c", b, Local)
	if err := json.Unmarshal(doc.Body, &body); err != nil || body["x"] != 2 {
		t.Fatalf("doc b: %s", doc.Body)
	}
}

// TestRefusalIsRemembered: a refused write's idempotency key answers every copy of the
// request with the same refusal, even once the refusal's reason is gone — so a copy of the
// request still in the log (resubmitted after an unknown outcome) can never apply later.
func TestRefusalIsRemembered(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	ctx := context.Background()
	patch := Write{Op: log.OpPatch, Collection: "c", ID: "x", Body: []byte(`{"a":1}`), IdempotencyKey: "p-1"}
	if _, err := d.Write(ctx, "anonymous", patch); !errors.Is(err, ErrNotFound) {
		t.Fatalf("patch of a missing document: %v", err)
	}
	if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: "c", ID: "x", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(ctx, "anonymous", patch); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the same request again: %v (want the first answer, not_found)", err)
	}
	doc, err := d.Get(ctx, "c", "x", Linearizable)
	if err != nil || doc.Version != 1 || string(doc.Body) != `{}` {
		t.Fatalf("the copy applied: %+v %v", doc, err)
	}
}
