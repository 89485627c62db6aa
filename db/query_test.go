package db

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/query"
)

func waitIndexReady(t *testing.T, d *DB, coll, name string) Index {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ixs, err := d.Indexes(context.Background(), coll, Linearizable)
		if err != nil {
			t.Fatal(err)
		}
		for _, ix := range ixs {
			if ix.Name == name && ix.State == "ready" {
				return ix
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("index %s not ready: %+v", name, ixs)
		}
		d.kickBackfill()
		<-time.After(20 * time.Millisecond)
	}
}

func TestQueryWithAndWithoutIndex(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	ctx := context.Background()
	var ws []Write
	for i := 0; i < 300; i++ {
		status := []string{"open", "paid", "void"}[i%3]
		ws = append(ws, Write{Op: log.OpPut, Collection: "orders", ID: fmt.Sprintf("o%03d", i),
			Body: []byte(fmt.Sprintf(`{"status":%q,"total":%d,"tags":["t%d"]}`, status, i, i%5))})
	}
	if res, err := d.Batch(ctx, "anonymous", ws[:150], ""); err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	run := func(r QueryRequest) *QueryResult {
		t.Helper()
		r.Collection = "orders"
		res, err := d.Query(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	filter := `doc.status == "open" && doc.total >= 30 && doc.total < 200`
	before := run(QueryRequest{Filter: filter, Sort: []query.SortField{{Field: "total", Desc: true}}, Limit: 1000, Explain: true})
	if before.Plan[0].Access != query.AccessFullScan {
		t.Fatalf("plan before index: %+v", before.Plan[0])
	}
	if _, err := d.CreateIndex(ctx, "orders", "by_status_total", []string{"status", "total"}); err != nil {
		t.Fatal(err)
	}
	// Writes during and after the backfill are indexed too.
	if res, err := d.Batch(ctx, "anonymous", ws[150:], ""); err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	ix := waitIndexReady(t, d, "orders", "by_status_total")
	if ix.Entries != 300 {
		t.Fatalf("entries = %d", ix.Entries)
	}
	after := run(QueryRequest{Filter: filter, Sort: []query.SortField{{Field: "total", Desc: true}}, Limit: 1000, Explain: true})
	if after.Plan[0].Access != query.AccessIndex {
		t.Fatalf("plan with index: %+v", after.Plan)
	}
	full := run(QueryRequest{Filter: filter + ` && true`, Sort: []query.SortField{{Field: "total", Desc: true}}, Limit: 1000})
	var want []string
	for i := 199; i >= 30; i-- {
		if i%3 == 0 {
			want = append(want, fmt.Sprintf("o%03d", i))
		}
	}
	check := func(name string, res *QueryResult) {
		t.Helper()
		if len(res.Docs) != len(want) {
			t.Fatalf("%s: %d docs, want %d", name, len(res.Docs), len(want))
		}
		for i, doc := range res.Docs {
			if doc.ID != want[i] {
				t.Fatalf("%s: docs[%d] = %s, want %s", name, i, doc.ID, want[i])
			}
		}
	}
	check("index", after)
	check("full scan", full)
	if len(before.Docs) != 40 { // only the first 150 existed then: 30..147 step 3
		t.Fatalf("before: %d docs", len(before.Docs))
	}

	// Pages of 7 with a cursor cover the answer once each, in order.
	var paged []string
	cursor := ""
	for {
		res := run(QueryRequest{Filter: filter, Sort: []query.SortField{{Field: "total", Desc: true}}, Limit: 7, Cursor: cursor})
		for _, doc := range res.Docs {
			paged = append(paged, doc.ID)
		}
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	if fmt.Sprint(paged) != fmt.Sprint(want) {
		t.Fatalf("paged %v\nwant  %v", paged, want)
	}

	count := run(QueryRequest{Filter: `doc.tags.exists(t, t == "t1")`, Count: true})
	if count.Count != 60 {
		t.Fatalf("count = %d", count.Count)
	}
	proj := run(QueryRequest{Filter: `id == "o005"`, Fields: []string{"total"}, Explain: true})
	if len(proj.Docs) != 1 || string(proj.Docs[0].Body) != `{"total":5}` || proj.Plan[0].Access != query.AccessID {
		t.Fatalf("projection: %+v %+v", proj.Plan, proj.Docs)
	}

	if _, err := d.Query(ctx, QueryRequest{Collection: "orders", Filter: `doc.total >`}); !errors.Is(err, query.ErrCompile) {
		t.Fatalf("bad filter: %v", err)
	}
	if _, err := d.Query(ctx, QueryRequest{Collection: "orders", Filter: `doc.a.exists(x, doc.b.exists(y, doc.c.exists(z, x == y && y == z)))`}); !errors.Is(err, query.ErrTooExpensive) {
		t.Fatalf("expensive filter: %v", err)
	}
	if _, err := d.CreateIndex(ctx, "orders", "by_status_total", []string{"total"}); !errors.Is(err, ErrIndexExists) {
		t.Fatalf("conflicting index: %v", err)
	}
	if err := d.DropIndex(ctx, "orders", "by_status_total"); err != nil {
		t.Fatal(err)
	}
	if ixs, _ := d.Indexes(ctx, "orders", Linearizable); len(ixs) != 0 {
		t.Fatalf("after drop: %+v", ixs)
	}
}

func TestSortServedFromIndex(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	ctx := context.Background()
	var ws []Write
	for i := 0; i < 500; i++ {
		body := fmt.Sprintf(`{"score":%d}`, (i*37)%101)
		switch i % 50 {
		case 7:
			body = `{}` // missing
		case 8:
			body = `{"score":"text"}`
		case 9:
			body = `{"score":[1,2]}`
		}
		ws = append(ws, Write{Op: log.OpPut, Collection: "s", ID: fmt.Sprintf("d%03d", i), Body: []byte(body)})
	}
	if _, err := d.Batch(ctx, "anonymous", ws, ""); err != nil {
		t.Fatal(err)
	}
	reference := map[bool][]string{}
	for _, desc := range []bool{false, true} {
		res, err := d.Query(ctx, QueryRequest{Collection: "s", Sort: []query.SortField{{Field: "score", Desc: desc}}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range res.Docs {
			reference[desc] = append(reference[desc], doc.ID)
		}
	}
	if _, err := d.CreateIndex(ctx, "s", "by_score", []string{"score"}); err != nil {
		t.Fatal(err)
	}
	waitIndexReady(t, d, "s", "by_score")
	for _, desc := range []bool{false, true} {
		for _, limit := range []int{1, 5, 33} {
			var got []string
			cursor := ""
			for {
				res, err := d.Query(ctx, QueryRequest{Collection: "s", Sort: []query.SortField{{Field: "score", Desc: desc}}, Limit: limit, Cursor: cursor, Explain: true})
				if err != nil {
					t.Fatal(err)
				}
				if !res.Plan[0].Ordered {
					t.Fatalf("sort not served from the index: %+v", res.Plan[0])
				}
				for _, doc := range res.Docs {
					got = append(got, doc.ID)
				}
				if res.NextCursor == "" {
					break
				}
				cursor = res.NextCursor
			}
			if fmt.Sprint(got) != fmt.Sprint(reference[desc]) {
				t.Fatalf("desc=%v limit=%d:\n got %v\nwant %v", desc, limit, got, reference[desc])
			}
		}
	}
	res, err := d.Query(ctx, QueryRequest{Collection: "s", Sort: []query.SortField{{Field: "score", Desc: true}}, Limit: 3, Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	var examined int64
	for _, p := range res.Plan {
		examined += p.Examined
	}
	if examined > 200 {
		t.Fatalf("top-3 from the index examined %d documents", examined)
	}
}
