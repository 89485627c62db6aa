package ws_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/gateway/ws"
)

// TestLiveQueryTracksQuery writes random bursts (creates, replaces, patches, deletes, and
// writes to another collection) and checks after each burst that the result the client
// maintains from the result and delta messages equals a fresh run of the query, in order.
func TestLiveQueryTracksQuery(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	n := startNode(t, nodeConfig(t, ws.Limits{}))
	defer n.Close()
	api := rest{t: t, base: "http://" + n.HTTPAddr()}
	for i := 0; i < 20; i++ {
		api.must("PUT", fmt.Sprintf("/v1/collections/orders/docs/o%d", i), fmt.Sprintf(`{"total":%d}`, rng.IntN(100)))
	}
	q := map[string]any{"collection": "orders", "filter": "doc.total > 50", "sort": []map[string]any{{"field": "total", "desc": true}}, "limit": 8}
	c := connect(t, n.HTTPAddr())
	c.send(map[string]any{"type": "subscribe", "id": "q1", "query": q})
	m := c.until(5*time.Second, typ("result"))
	list := m.Docs
	fresh := func() []doc {
		body, _ := json.Marshal(map[string]any{"filter": q["filter"], "sort": q["sort"], "limit": q["limit"]})
		var res struct{ Docs []doc }
		if err := json.Unmarshal([]byte(api.must("POST", "/v1/collections/orders/query", string(body))), &res); err != nil {
			t.Fatal(err)
		}
		return res.Docs
	}
	deltas := 0
	for burst := 0; burst < 25; burst++ {
		for range 1 + rng.IntN(12) {
			path := fmt.Sprintf("/v1/collections/orders/docs/o%d", rng.IntN(40))
			switch rng.IntN(5) {
			case 0:
				_, _, _ = api.do("DELETE", path, "")
			case 1:
				_, _, _ = api.do("PATCH", path, fmt.Sprintf(`{"total":%d}`, rng.IntN(100)))
			case 2:
				api.must("PUT", fmt.Sprintf("/v1/collections/other/docs/x%d", rng.IntN(10)), `{"total":99}`)
			default:
				api.must("PUT", path, fmt.Sprintf(`{"total":%d,"b":%d}`, rng.IntN(100), burst))
			}
		}
		want := fresh()
		deadline := time.Now().Add(10 * time.Second)
		for !sameDocs(list, want) {
			if time.Now().After(deadline) {
				t.Fatalf("burst %d: client has %v, query gives %v", burst, ids(list), ids(want))
			}
			m := c.next(time.Until(deadline))
			switch {
			case m.Type != "delta" || m.Sub != "q1":
				t.Fatalf("unexpected message %+v", m)
			case m.Op == "remove":
				list = slices.DeleteFunc(list, func(d doc) bool { return d.ID == m.Doc.ID })
			case m.Op == "change":
				list = slices.DeleteFunc(list, func(d doc) bool { return d.ID == m.Doc.ID })
				list = slices.Insert(list, *m.Index, m.Doc)
			case m.Op == "add":
				list = slices.Insert(list, *m.Index, m.Doc)
			default:
				t.Fatalf("unknown delta %+v", m)
			}
			deltas++
		}
	}
	t.Logf("%d deltas", deltas)
	if deltas == 0 {
		t.Fatal("no deltas at all")
	}
}

func sameDocs(a, b []doc) bool {
	return slices.EqualFunc(a, b, func(x, y doc) bool {
		var cx, cy bytes.Buffer
		_ = json.Compact(&cx, x.Doc)
		_ = json.Compact(&cy, y.Doc)
		return x.ID == y.ID && x.Version == y.Version && bytes.Equal(cx.Bytes(), cy.Bytes())
	})
}

func ids(ds []doc) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%s@%d", d.ID, d.Version)
	}
	return out
}
