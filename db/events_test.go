package db

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

func TestEventsPagesAndTimeTravel(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	ctx := context.Background()
	write := func(op log.Op, id, body string) Result {
		t.Helper()
		r, err := d.Write(ctx, "anonymous", Write{Op: op, Collection: "acct", ID: id, Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var last Result
	for i := 0; i < 30; i++ {
		last = write(log.OpPut, fmt.Sprintf("a%d", i%10), fmt.Sprintf(`{"bal":%d}`, i))
	}
	// A point in time between two writes, at millisecond resolution.
	middle := time.UnixMilli(time.Now().UnixMilli() + 1)
	for time.Now().Before(middle) {
	}
	tokenBefore := feed.Token{}
	for _, s := range d.shardIDs() {
		tokenBefore[s] = d.hub.Head(s)
	}
	write(log.OpPatch, "a3", `{"bal":1000}`)
	write(log.OpDelete, "a4", ``)

	// Paging through everything: 32 events, each once, chain links intact.
	var all []EventRecord
	cursor := ""
	for {
		page, err := d.Events(ctx, EventsRequest{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Events...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(all) != 32 {
		t.Fatalf("paged %d events, want 32", len(all))
	}
	seen := map[log.Position]bool{}
	prev := map[uint64]string{}
	for _, e := range all {
		if seen[e.Position] {
			t.Fatalf("event %v twice", e.Position)
		}
		seen[e.Position] = true
		if p, ok := prev[e.Position.Shard]; ok && e.PrevHash != p {
			t.Fatalf("chain broken at %v", e.Position)
		}
		prev[e.Position.Shard] = e.Hash
	}
	one, err := d.Events(ctx, EventsRequest{Collection: "acct", ID: "a3", Limit: 100})
	if err != nil || len(one.Events) != 4 || one.Events[3].Op != "patch" {
		t.Fatalf("events of a3: %+v %v", one, err)
	}
	late, err := d.Events(ctx, EventsRequest{FromTime: middle})
	if err != nil || len(late.Events) != 2 {
		t.Fatalf("events from middle: %d %v", len(late.Events), err)
	}
	shard := d.host.ShardOf("acct", "a3")
	rng, err := d.Events(ctx, EventsRequest{Shard: shard, FromIndex: 2, ToIndex: 3})
	if err != nil || len(rng.Events) != 2 || rng.Events[0].Position.Index != 2 {
		t.Fatalf("index range: %+v %v", rng, err)
	}

	// The last write's printed time names exactly the state after it.
	for _, at := range []*AsOf{{Time: last.TS.Time()}, {Token: tokenBefore}} {
		doc, err := d.GetAsOf(ctx, "acct", "a3", at, Linearizable)
		if err != nil || string(doc.Body) != `{"bal":23}` {
			t.Fatalf("a3 as of %+v: %s %v", at, doc.Body, err)
		}
		if _, err := d.GetAsOf(ctx, "acct", "a4", at, Linearizable); err != nil {
			t.Fatalf("a4 existed then: %v", err)
		}
		res, err := d.Query(ctx, QueryRequest{Collection: "acct", Filter: `doc.bal >= 20`, AsOf: at})
		if err != nil || len(res.Docs) != 10 {
			t.Fatalf("query as of: %d %v", len(res.Docs), err)
		}
	}
	if _, err := d.GetAsOf(ctx, "acct", "a4", &AsOf{Time: time.Now().Add(time.Second)}, Linearizable); err == nil {
		t.Fatal("a4 is deleted now")
	}
	res, err := d.Query(ctx, QueryRequest{Collection: "acct", Filter: `doc.bal >= 20`})
	if err != nil || len(res.Docs) != 9 {
		t.Fatalf("query now: %d %v", len(res.Docs), err)
	}
}
