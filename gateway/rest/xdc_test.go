package rest_test

import (
	"fmt"
	"testing"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/gateway"
)

func TestPolicyAndConflictsOverHTTP(t *testing.T) {
	c := startNode(t)
	r := c.do("GET", "/v1/collections/orders/policy", "")
	if r.status != 200 || r.body["replicate"] != "all" || r.body["mode"] != "async" || r.body["conflict"] != "lww" {
		t.Fatalf("default policy: %d %s", r.status, r.raw)
	}
	r = c.do("PUT", "/v1/collections/orders/policy", `{"replicate":["dcB"],"mode":"async","conflict":"dc-priority","priority":["dcB","dc1"]}`)
	if r.status != 200 || fmt.Sprint(r.body["replicate"]) != "[dcB]" || r.body["conflict"] != "dc-priority" || fmt.Sprint(r.body["priority"]) != "[dcB dc1]" {
		t.Fatalf("set policy: %d %s", r.status, r.raw)
	}
	if r = c.do("GET", "/v1/collections/orders/policy", ""); r.status != 200 || r.body["conflict"] != "dc-priority" {
		t.Fatalf("read policy: %d %s", r.status, r.raw)
	}
	for _, bad := range []string{`{"mode":"eventually"}`, `{"conflict":"dc-priority"}`, `{"colour":"red"}`, `{"replicate":"all"}`} {
		if r = c.do("PUT", "/v1/collections/orders/policy", bad); r.status != 400 || r.code() != "invalid_argument" {
			t.Errorf("policy %s: %d %s", bad, r.status, r.raw)
		}
	}
	// Sync mode on a node without a replication log: refused, nothing written.
	if r = c.do("PUT", "/v1/collections/ledger/policy", `{"mode":"sync","conflict":"keep-both"}`); r.status != 200 {
		t.Fatalf("sync policy: %d %s", r.status, r.raw)
	}
	if r = c.do("PUT", "/v1/collections/ledger/docs/l1", `{"amount":5}`); r.status != 503 || r.code() != "replication_unavailable" {
		t.Fatalf("sync write: %d %s", r.status, r.raw)
	}
	if r = c.do("GET", "/v1/collections/ledger/docs/l1", ""); r.status != 404 {
		t.Fatalf("refused sync write is readable: %d %s", r.status, r.raw)
	}

	// A document's clock ticks at this datacenter with each write.
	c.do("PUT", "/v1/collections/orders/docs/o1", `{"n":1}`)
	c.do("PATCH", "/v1/collections/orders/docs/o1", `{"n":2}`)
	r = c.do("GET", "/v1/collections/orders/docs/o1/siblings", "")
	if r.status != 200 || fmt.Sprint(r.body["clock"]) != "map[dc1:2]" || fmt.Sprint(r.body["siblings"]) != "[]" {
		t.Fatalf("siblings: %d %s", r.status, r.raw)
	}
	if r = c.do("GET", "/v1/conflicts?collection=orders", ""); r.status != 200 || fmt.Sprint(r.body["conflicts"]) != "[]" {
		t.Fatalf("conflicts: %d %s", r.status, r.raw)
	}
	if r = c.do("GET", "/v1/conflicts", ""); r.status != 400 {
		t.Fatalf("conflicts without a collection: %d %s", r.status, r.raw)
	}
	// Resolves names siblings as dc:counter; anything else is refused before writing.
	if r = c.do("PUT", "/v1/collections/orders/docs/o1", `{"n":3}`, "Resolves", "dc1:2, dcB:1"); r.status != 200 {
		t.Fatalf("write naming siblings that are gone: %d %s", r.status, r.raw)
	}
	if r = c.do("PUT", "/v1/collections/orders/docs/o1", `{"n":4}`, "Resolves", "dc1"); r.status != 400 || r.code() != "invalid_argument" {
		t.Fatalf("bad Resolves: %d %s", r.status, r.raw)
	}
	if r = c.do("POST", "/v1/batch", `{"writes":[{"op":"put","collection":"orders","id":"o1","doc":{"n":5},"resolves":["dc1:3"]}]}`); r.status != 200 {
		t.Fatalf("batch with resolves: %d %s", r.status, r.raw)
	}
	r = c.do("GET", "/v1/admin/digest?scope=content", "")
	d1, _ := r.body["digest"].(string)
	if r.status != 200 || len(d1) != 64 {
		t.Fatalf("content digest: %d %s", r.status, r.raw)
	}
	c.do("PUT", "/v1/collections/orders/docs/o2", `{}`)
	if r = c.do("GET", "/v1/admin/digest?scope=content", ""); r.body["digest"] == d1 {
		t.Fatalf("content digest did not change with a new document: %s", r.raw)
	}
}

// The committed-but-not-shipped error keeps its code whatever the replication log said.
func TestNotShippedMapsToItsCode(t *testing.T) {
	for _, cause := range []error{db.ErrUnavailable, db.ErrReplicationUnavailable, fmt.Errorf("kafka: broker down")} {
		info := gateway.Lookup(fmt.Errorf("write: %w", &db.NotShippedError{Err: cause}))
		if info.Code != "replication_pending" || info.HTTP != 504 {
			t.Errorf("cause %v: %+v", cause, info)
		}
	}
	if info := gateway.Lookup(db.ErrSiblingsUnresolved); info.Code != "siblings_unresolved" || info.HTTP != 409 {
		t.Errorf("siblings: %+v", info)
	}
}
