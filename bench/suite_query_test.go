package bench

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func testQueryWorkload(t *testing.T, p Params) *queryWorkload {
	t.Helper()
	if p.RecordCount == 0 {
		p.RecordCount = 3000
	}
	p.Seed = 42
	p.FieldCount, p.FieldLength = 3, 20
	wl, err := newQueryWorkload(p)
	if err != nil {
		t.Fatal(err)
	}
	return wl.(*queryWorkload)
}

// TestQueryDocuments: every document is valid JSON holding the attributes the workload
// derives for it, and the payload fields verify like a Record's.
func TestQueryDocuments(t *testing.T) {
	w := testQueryWorkload(t, Params{})
	for n := range int64(200) {
		var d struct {
			N        int64  `json:"n"`
			Key      string `json:"key"`
			Status   string `json:"status"`
			Total    int64  `json:"total"`
			Customer string `json:"customer"`
			Address  struct {
				City string `json:"city"`
			} `json:"address"`
			Field0 string `json:"field0"`
			Field2 string `json:"field2"`
		}
		raw := w.AppendDoc(nil, n)
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("doc %d: %v: %s", n, err, raw)
		}
		a := attrsOf(42, n)
		if d.N != n || d.Key != KeyName(n) || d.Status != queryStatusNames[a.status] || d.Total != a.total ||
			d.Customer != customerName(a.customer) || d.Address.City != cityName(a.city) || len(d.Field0) != 20 || len(d.Field2) != 20 {
			t.Fatalf("doc %d = %+v, attrs %+v", n, d, a)
		}
		if a.total < 0 || a.total >= queryTotalMax {
			t.Fatalf("total %d out of range", a.total)
		}
	}
	if got := attrsOf(43, 7); got == attrsOf(42, 7) && attrsOf(43, 8) == attrsOf(42, 8) {
		t.Errorf("attributes do not depend on the seed")
	}
}

// TestQueryExpectedAnswers compares the workload's expected answers with a brute force over
// the documents' attributes.
func TestQueryExpectedAnswers(t *testing.T) {
	w := testQueryWorkload(t, Params{})
	n := int(w.p.RecordCount)
	type doc struct {
		n  int32
		id string
		a  orderAttrs
	}
	docs := make([]doc, n)
	for i := range n {
		docs[i] = doc{int32(i), KeyName(int64(i)), attrsOf(42, int64(i))}
	}
	byID := func(a, b doc) int { return strings.Compare(a.id, b.id) }
	nums := func(ds []doc) []int32 {
		out := []int32{}
		for _, d := range ds {
			out = append(out, d.n)
		}
		return out
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		kind := queryKinds[i%len(queryKinds)]
		q := w.newQuery(kind, ViaIndex, r)
		var want []doc
		var count int64
		for _, d := range docs {
			switch kind {
			case QueryEq:
				if d.a.customer == q.customer {
					want = append(want, d)
				}
			case QueryRange:
				if d.a.total >= q.lo && d.a.total < q.hi {
					want = append(want, d)
				}
			case QueryTopK:
				want = append(want, d)
			case QueryCount:
				if d.a.city == q.city && d.a.status == q.status {
					count++
				}
			}
		}
		if kind == QueryTopK {
			slices.SortFunc(want, func(a, b doc) int { return cmp.Or(-cmp.Compare(a.a.total, b.a.total), byID(a, b)) })
		} else {
			slices.SortFunc(want, byID)
		}
		want = want[:min(len(want), max(q.req.Limit, 0))]
		gotNums, gotCount := w.want(q)
		if kind == QueryCount {
			if gotCount != count || count == 0 {
				t.Fatalf("count %s: got %d, want %d (and the query's own document counts)", q.describe(), gotCount, count)
			}
			continue
		}
		if !slices.Equal(gotNums, nums(want)) || len(want) == 0 {
			t.Fatalf("%s %s: got %v, want %v", kind, q.describe(), gotNums, nums(want))
		}
	}
	if len(w.top) != queryTopK {
		t.Fatalf("top %d", len(w.top))
	}
}

// answerFor builds the answer a correct server gives to q.
func answerFor(w *queryWorkload, q *query) []byte {
	want, count := w.want(q)
	if q.req.Count {
		return []byte(fmt.Sprintf(`{"count":%d}`, count))
	}
	var docs []string
	for _, n := range want {
		docs = append(docs, fmt.Sprintf(`{"collection":"c","id":%q,"version":1,"ts":"x","doc":%s}`, w.ids[n], w.AppendDoc(nil, int64(n))))
	}
	return []byte(`{"docs":[` + strings.Join(docs, ",") + `],"next_cursor":""}`)
}

// TestQueryCheckCatchesWrongAnswers: a right answer passes; answers with a document
// missing, out of order, altered, from another document, or a wrong count do not.
func TestQueryCheckCatchesWrongAnswers(t *testing.T) {
	w := testQueryWorkload(t, Params{})
	r := rand.New(rand.NewPCG(3, 4))
	wrong := func(t *testing.T, q *query, body []byte, what string) {
		t.Helper()
		_, err := w.check(q, body)
		var ve *VerifyError
		if !errors.As(err, &ve) || (ve.Kind != VerifyWrongAnswer && ve.Kind != VerifyBadJSON) {
			t.Errorf("%s: %s passed the check (err %v)", q.op, what, err)
		}
	}
	for _, kind := range queryKinds {
		q := w.newQuery(kind, ViaFullScan, r)
		right := answerFor(w, q)
		if _, err := w.check(q, right); err != nil {
			t.Fatalf("%s: the right answer fails: %v", q.op, err)
		}
		var ans map[string]any
		if err := json.Unmarshal(right, &ans); err != nil {
			t.Fatal(err)
		}
		mutate := func(f func(map[string]any)) []byte {
			var a map[string]any
			_ = json.Unmarshal(right, &a)
			f(a)
			b, _ := json.Marshal(a)
			return b
		}
		wrong(t, q, []byte(`{"docs":`), "a truncated body")
		if kind == QueryCount {
			wrong(t, q, mutate(func(a map[string]any) { a["count"] = a["count"].(float64) + 1 }), "a count off by one")
			wrong(t, q, []byte(`{"docs":[]}`), "no count")
			continue
		}
		docs := ans["docs"].([]any)
		if len(docs) == 0 {
			t.Fatalf("%s: empty answer", q.op)
		}
		wrong(t, q, mutate(func(a map[string]any) { a["docs"] = a["docs"].([]any)[1:] }), "a missing document")
		wrong(t, q, mutate(func(a map[string]any) {
			d := a["docs"].([]any)[0].(map[string]any)["doc"].(map[string]any)
			d["total"] = d["total"].(float64) + 1
		}), "an altered document")
		wrong(t, q, mutate(func(a map[string]any) {
			a["docs"].([]any)[0].(map[string]any)["doc"] = json.RawMessage(w.AppendDoc(nil, int64((w.top[0]+1)%int32(len(w.ids)))))
		}), "another document's body")
		wrong(t, q, mutate(func(a map[string]any) {
			a["docs"] = append(a["docs"].([]any), a["docs"].([]any)[0])
		}), "a repeated document")
		if len(docs) > 1 {
			wrong(t, q, mutate(func(a map[string]any) {
				d := a["docs"].([]any)
				d[0], d[1] = d[1], d[0]
			}), "documents out of order")
		}
	}
}

func TestQueryPlanCheck(t *testing.T) {
	w := testQueryWorkload(t, Params{})
	r := rand.New(rand.NewPCG(5, 6))
	ok := map[string]ShardPlan{
		"eq/indexed":      {Access: "index", Index: "by_customer"},
		"range/indexed":   {Access: "index", Index: "by_total"},
		"topk/indexed":    {Access: "index", Index: "by_total", SortFromIndex: true},
		"count/indexed":   {Access: "index", Index: "by_city"},
		"eq/full_scan":    {Access: "full_scan"},
		"range/full_scan": {Access: "full_scan"},
		"topk/full_scan":  {Access: "full_scan"},
		"count/full_scan": {Access: "full_scan"},
	}
	for op, good := range ok {
		kind, via, _ := strings.Cut(op, "/")
		q := w.newQuery(kind, via, r)
		if err := planIs(q, []ShardPlan{good, good}); err != nil {
			t.Errorf("%s: %v", op, err)
		}
		bad := []ShardPlan{good, {Access: "full_scan"}}
		if via == ViaFullScan {
			bad[1] = ShardPlan{Access: "index", Index: "by_total"}
		}
		if err := planIs(q, bad); err == nil {
			t.Errorf("%s: a shard served another way passed", op)
		}
	}
	q := w.newQuery(QueryTopK, ViaIndex, r)
	if err := planIs(q, []ShardPlan{{Access: "index", Index: "by_total"}}); err == nil {
		t.Errorf("a top-k not sorted from the index passed")
	}
}

func TestQueryWorkloadParams(t *testing.T) {
	for _, p := range []Params{
		{RecordCount: 100, QueryIndex: "sometimes"},
		{RecordCount: 100, QueryKinds: []string{"eq", "join"}},
		{RecordCount: 100, Distribution: DistZipfian},
		{RecordCount: queryMaxRecords + 1},
	} {
		if _, err := newQueryWorkload(p); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: err %v, want ErrInvalidConfig", p, err)
		}
	}
	tests := []struct {
		mode  string
		kinds []string
		ops   []string
	}{
		{"", nil, []string{"eq/indexed", "eq/full_scan", "range/indexed", "range/full_scan", "topk/indexed", "topk/full_scan", "count/indexed", "count/full_scan"}},
		{"indexed", []string{"count", "eq"}, []string{"eq/indexed", "count/indexed"}},
		{"full_scan", []string{"eq"}, []string{"eq/full_scan"}},
		{"both", []string{"range"}, []string{"range/indexed", "range/full_scan"}},
	}
	for _, tc := range tests {
		w := testQueryWorkload(t, Params{QueryIndex: tc.mode, QueryKinds: tc.kinds})
		info := w.Info()
		if !slices.Equal(info.Ops, tc.ops) || info.LoadRecords != 3000 {
			t.Errorf("%s %v: ops %v", tc.mode, tc.kinds, info.Ops)
		}
		var sum float64
		for _, m := range info.Mix {
			sum += m.Proportion
			if tc.mode == "" || tc.mode == "both" {
				want := 1.0
				if strings.HasSuffix(m.Op, ViaIndex) {
					want = queryIndexedWeight
				}
				if got := m.Proportion * float64(len(tc.ops)/2) * (queryIndexedWeight + 1); math.Abs(got-want) > 1e-9 {
					t.Errorf("%s: weight %v, want %v", m.Op, got, want)
				}
			}
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("%s %v: mix sums to %v", tc.mode, tc.kinds, sum)
		}
		for k := range info.Notes {
			if op := strings.TrimPrefix(k, "plan "); strings.Contains(op, "/") && !slices.Contains(tc.ops, op) {
				t.Errorf("%s %v: a note on %s, which does not run", tc.mode, tc.kinds, k)
			}
		}
	}
}
