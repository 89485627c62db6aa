package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The query suite loads documents shaped like orders and measures four queries, each as an
// indexed and as a full-scan operation:
//
//	eq     doc.customer == "c01234"                    selective equality (~20 docs of 200k)
//	range  doc.total >= X && doc.total < X+w            selective range (~100 docs)
//	topk   sort total desc, limit 10                    served in index order
//	count  doc.address.city == C && doc.status == S     count; the index serves the city,
//	                                                    the status (5 values) is filtered
//
// With QueryIndex "both" the indexes exist and the full-scan form of each query is one the
// planner cannot serve from them but that has the same answer: the conjuncts written as
// negations (!(doc.customer != "c01234")), and for the top-k a second sort key equal to the
// id (the id breaks ties anyway). Both forms run interleaved in the same measured phase, so
// they see the same machine. Before the run, one query of each operation is explained and
// must have the access path its name says, or the run fails.
//
// The loader knows the data: every attribute of a document is a function of the seed and
// its key number. A sample of answers (VerifyFraction) is compared whole with what the
// data gives (ids, order, every document's body, counts).

// Query suite operation kinds and access paths; an operation is "<kind>/<access>".
const (
	QueryEq       = "eq"
	QueryRange    = "range"
	QueryTopK     = "topk"
	QueryCount    = "count"
	ViaIndex      = "indexed"
	ViaFullScan   = "full_scan"
	QueryIndexAll = "both" // Params.QueryIndex default
)

// Shape of the query suite's data.
const (
	queryStatuses       = 5
	queryCustomers      = 10_000
	queryCities         = 100
	queryTotalMax       = 1_000_000
	queryRangeDocs      = 100 // the range width is chosen so a range holds about this many
	queryTopK           = 10
	queryPageLimit      = 1000 // the server's maximum: eq and range answers fit in one page
	queryMaxRecords     = 10_000_000
	queryDefaultRecords = 200_000
	queryIndexTimeout   = 10 * time.Minute
	// An indexed query is drawn this many times as often as a full scan: it costs a
	// thousandth of the time, and this way both get a useful number of samples.
	queryIndexedWeight = 10
)

var queryKinds = []string{QueryEq, QueryRange, QueryTopK, QueryCount}

var queryStatusNames = [queryStatuses]string{"new", "paid", "shipped", "delivered", "returned"}

// queryIndex is the index that serves each kind of query, and its field.
var queryIndex = map[string]struct{ name, field string }{
	QueryEq:    {"by_customer", "customer"},
	QueryRange: {"by_total", "total"},
	QueryTopK:  {"by_total", "total"},
	QueryCount: {"by_city", "address.city"},
}

func querySuite() Suite {
	return Suite{
		Name: "query",
		Summary: "orders-like documents; selective equality, range, top-k and count queries, each indexed " +
			"and as a full scan (query_index both|indexed|full_scan)",
		RecordCount: queryDefaultRecords,
		New:         newQueryWorkload,
	}
}

// orderAttrs are the queried attributes of one document.
type orderAttrs struct {
	status, customer, city int
	total                  int64
}

// queryWorkload is immutable once Prepare has run, except notes (written by Prepare,
// read by Info, both from the runner's goroutine).
type queryWorkload struct {
	p       Params
	mode    string
	ops     []string
	mix     []Mix
	chooser *opChooser
	width   int64 // of a range query

	// The data, as the loader writes it: ids and attributes by key number, key numbers
	// by customer (in id order) and by (total, id), and the top-k by total desc.
	ids        []string
	attrs      []orderAttrs
	byCustomer [][]int32
	byTotal    []int32
	top        []int32
	counts     [queryCities][queryStatuses]int64

	notes map[string]string
}

func newQueryWorkload(p Params) (Workload, error) {
	mode := p.QueryIndex
	if mode == "" {
		mode = QueryIndexAll
	}
	var errs []error
	switch mode {
	case QueryIndexAll, ViaIndex, ViaFullScan:
	default:
		errs = append(errs, fmt.Errorf("%w: query index %q: want %s, %s or %s", ErrInvalidConfig, mode, QueryIndexAll, ViaIndex, ViaFullScan))
	}
	if p.RecordCount > queryMaxRecords {
		errs = append(errs, fmt.Errorf("%w: the query suite keeps its data's attributes in memory: record count %d is over %d", ErrInvalidConfig, p.RecordCount, queryMaxRecords))
	}
	if p.Distribution != "" && p.Distribution != DistUniform {
		errs = append(errs, fmt.Errorf("%w: the query suite draws its parameters uniformly (distribution %q)", ErrInvalidConfig, p.Distribution))
	}
	kinds := p.QueryKinds
	if len(kinds) == 0 {
		kinds = queryKinds
	}
	for _, k := range kinds {
		if !slices.Contains(queryKinds, k) {
			errs = append(errs, fmt.Errorf("%w: query kind %q: want some of %s", ErrInvalidConfig, k, strings.Join(queryKinds, ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w := &queryWorkload{p: p, mode: mode, notes: map[string]string{}}
	w.width = max(1, queryTotalMax*queryRangeDocs/p.RecordCount)
	weight := map[string]float64{ViaIndex: queryIndexedWeight, ViaFullScan: 1}
	if mode != QueryIndexAll {
		weight[mode] = 1
	}
	var total float64
	for _, kind := range queryKinds {
		if !slices.Contains(kinds, kind) {
			continue
		}
		for _, via := range []string{ViaIndex, ViaFullScan} {
			if mode == QueryIndexAll || mode == via {
				w.ops = append(w.ops, kind+"/"+via)
				w.mix = append(w.mix, Mix{kind + "/" + via, weight[via]})
				total += weight[via]
			}
		}
	}
	for i := range w.mix {
		w.mix[i].Proportion /= total
	}
	w.chooser = newOpChooser(w.mix)
	w.build()
	return w, nil
}

// attrsOf derives the attributes of key number n from the seed.
func attrsOf(seed uint64, n int64) orderAttrs {
	h := splitmix(seed ^ splitmix(uint64(n)^0x0de5))
	return orderAttrs{
		status:   int(splitmix(h^1) % queryStatuses),
		customer: int(splitmix(h^2) % queryCustomers),
		city:     int(splitmix(h^3) % queryCities),
		total:    int64(splitmix(h^4) % queryTotalMax),
	}
}

func customerName(c int) string { return fmt.Sprintf("c%05d", c) }
func cityName(c int) string     { return fmt.Sprintf("city%03d", c) }

// build computes what the loader writes and the answers it implies.
func (w *queryWorkload) build() {
	n := int(w.p.RecordCount)
	w.ids = make([]string, n)
	w.attrs = make([]orderAttrs, n)
	w.byCustomer = make([][]int32, queryCustomers)
	w.byTotal = make([]int32, n)
	for i := range n {
		w.ids[i] = KeyName(int64(i))
		a := attrsOf(w.p.Seed, int64(i))
		w.attrs[i] = a
		w.byCustomer[a.customer] = append(w.byCustomer[a.customer], int32(i))
		w.byTotal[i] = int32(i)
		w.counts[a.city][a.status]++
	}
	byID := func(a, b int32) int { return strings.Compare(w.ids[a], w.ids[b]) }
	for _, l := range w.byCustomer {
		slices.SortFunc(l, byID)
	}
	slices.SortFunc(w.byTotal, func(a, b int32) int {
		return cmp.Or(cmp.Compare(w.attrs[a].total, w.attrs[b].total), byID(a, b))
	})
	// The top k by total descending, ties by id ascending (the server's tie-break).
	for i := n - 1; i >= 0 && len(w.top) < queryTopK; {
		j := i
		for j > 0 && w.attrs[w.byTotal[j-1]].total == w.attrs[w.byTotal[i]].total {
			j--
		}
		for k := j; k <= i && len(w.top) < queryTopK; k++ { // equal totals: ascending ids
			w.top = append(w.top, w.byTotal[k])
		}
		i = j - 1
	}
}

// AppendDoc appends the document of key number n: its attributes, its id again as "key"
// (see the top-k's full-scan form), and FieldCount × FieldLength bytes of self-verifying
// payload like a Record's.
func (w *queryWorkload) AppendDoc(buf []byte, n int64) []byte {
	a := attrsOf(w.p.Seed, n)
	id := KeyName(n)
	buf = append(buf, `{"n":`...)
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, `,"key":"`...)
	buf = append(buf, id...)
	buf = append(buf, `","status":"`...)
	buf = append(buf, queryStatusNames[a.status]...)
	buf = append(buf, `","total":`...)
	buf = strconv.AppendInt(buf, a.total, 10)
	buf = append(buf, `,"customer":"`...)
	buf = append(buf, customerName(a.customer)...)
	buf = append(buf, `","address":{"city":"`...)
	buf = append(buf, cityName(a.city)...)
	buf = append(buf, `","zip":"`...)
	buf = strconv.AppendInt(buf, 10000+n%90000, 10)
	buf = append(buf, `"}`...)
	r := Records{FieldCount: w.p.FieldCount, FieldLength: w.p.FieldLength}
	for f := range r.FieldCount {
		buf = append(buf, ',')
		buf = appendFieldName(buf, f)
		buf = append(buf, ':', '"')
		buf = r.appendValue(buf, id, f, uint64(n)+1)
		buf = append(buf, '"')
	}
	return append(buf, '}')
}

func (w *queryWorkload) Info() WorkloadInfo {
	notes := map[string]string{
		QueryEq + "/" + ViaIndex:       `filter doc.customer == "cNNNNN" (customer of a random document), limit 1000; index by_customer`,
		QueryRange + "/" + ViaIndex:    fmt.Sprintf("filter doc.total >= X && doc.total < X+%d (X the total of a random document), limit 1000; index by_total", w.width),
		QueryTopK + "/" + ViaIndex:     fmt.Sprintf("no filter, sort total desc, limit %d; served in the order of index by_total", queryTopK),
		QueryCount + "/" + ViaIndex:    `count of doc.address.city == C && doc.status == S (of a random document); index by_city serves the city, the status is filtered`,
		QueryEq + "/" + ViaFullScan:    `filter !(doc.customer != "cNNNNN"): the same answer, but no conjunct the planner can serve`,
		QueryRange + "/" + ViaFullScan: fmt.Sprintf("filter !(doc.total < X) && !(doc.total >= X+%d)", w.width),
		QueryTopK + "/" + ViaFullScan:  "sort total desc, key asc, limit 10 (key is the id: the same order as the id tie-break; two sort keys are not served from an index)",
		QueryCount + "/" + ViaFullScan: `count of !(doc.address.city != C) && doc.status == S`,
		"items":                        "items are answers (one per query), not documents",
		"verify":                       "a sampled answer is compared whole with what the loaded data gives: ids in order, every document's body, counts (verify_wrong_answer)",
	}
	if w.mode == ViaFullScan {
		for _, kind := range queryKinds {
			notes[kind+"/"+ViaFullScan] = notes[kind+"/"+ViaIndex] + " (no index is built)"
		}
	}
	for k := range notes { // notes of operations this run does not have
		op := strings.TrimPrefix(k, "plan ")
		if strings.Contains(op, "/") && !slices.Contains(w.ops, op) {
			delete(notes, k)
		}
	}
	if w.mode == QueryIndexAll {
		notes["mix"] = fmt.Sprintf("an indexed query is drawn %d times as often as a full scan (both kinds interleaved in one measured phase)", queryIndexedWeight)
	}
	for k, v := range w.notes {
		notes[k] = v
	}
	return WorkloadInfo{
		Mix:          w.mix,
		Distribution: DistUniform,
		LoadRecords:  w.p.RecordCount,
		Ops:          w.ops,
		Notes:        notes,
	}
}

func (w *queryWorkload) NewWorker(env *WorkerEnv) Worker {
	return &queryWorker{w: w, env: env}
}

// query is one query with its parameters, from which its expected answer follows.
type query struct {
	op, kind, via string
	req           QueryRequest
	customer      int
	lo, hi        int64 // range: [lo, hi)
	city, status  int
}

// newQuery builds a query of kind served via, with parameters taken from a random
// document (so answers are never empty, whatever the record count).
func (w *queryWorkload) newQuery(kind, via string, r *rand.Rand) *query {
	a := w.attrs[r.IntN(len(w.attrs))]
	q := &query{op: kind + "/" + via, kind: kind, via: via, customer: a.customer, lo: a.total, hi: a.total + w.width, city: a.city, status: a.status}
	q.req.Consistency = w.p.ReadConsistency
	// Opaque: the full-scan form when indexes exist.
	opaque := via == ViaFullScan && w.mode != ViaFullScan
	switch kind {
	case QueryEq:
		q.req.Limit = queryPageLimit
		if opaque {
			q.req.Filter = fmt.Sprintf(`!(doc.customer != %q)`, customerName(a.customer))
		} else {
			q.req.Filter = fmt.Sprintf(`doc.customer == %q`, customerName(a.customer))
		}
	case QueryRange:
		q.req.Limit = queryPageLimit
		if opaque {
			q.req.Filter = fmt.Sprintf(`!(doc.total < %d) && !(doc.total >= %d)`, q.lo, q.hi)
		} else {
			q.req.Filter = fmt.Sprintf(`doc.total >= %d && doc.total < %d`, q.lo, q.hi)
		}
	case QueryTopK:
		q.req.Limit = queryTopK
		q.req.Sort = []SortField{{Field: "total", Desc: true}}
		if opaque {
			q.req.Sort = append(q.req.Sort, SortField{Field: "key"})
		}
	case QueryCount:
		q.req.Count = true
		if opaque {
			q.req.Filter = fmt.Sprintf(`!(doc.address.city != %q) && doc.status == %q`, cityName(a.city), queryStatusNames[a.status])
		} else {
			q.req.Filter = fmt.Sprintf(`doc.address.city == %q && doc.status == %q`, cityName(a.city), queryStatusNames[a.status])
		}
	}
	return q
}

// want returns the key numbers of the expected page, in order, or the expected count.
func (w *queryWorkload) want(q *query) ([]int32, int64) {
	var ns []int32
	switch q.kind {
	case QueryEq:
		ns = w.byCustomer[q.customer]
	case QueryRange:
		lo, _ := slices.BinarySearchFunc(w.byTotal, q.lo, func(n int32, t int64) int { return cmp.Compare(w.attrs[n].total, t) })
		hi, _ := slices.BinarySearchFunc(w.byTotal, q.hi, func(n int32, t int64) int { return cmp.Compare(w.attrs[n].total, t) })
		ns = slices.Clone(w.byTotal[lo:hi])
		slices.SortFunc(ns, func(a, b int32) int { return strings.Compare(w.ids[a], w.ids[b]) })
	case QueryTopK:
		ns = w.top
	case QueryCount:
		return nil, w.counts[q.city][q.status]
	}
	return ns[:min(len(ns), q.req.Limit)], 0
}

// check compares an answer with what the data gives.
func (w *queryWorkload) check(q *query, body []byte) (*QueryAnswer, error) {
	var ans QueryAnswer
	bad := func(format string, a ...any) error {
		return &VerifyError{Kind: VerifyWrongAnswer, ID: q.op + " " + q.describe(), Detail: fmt.Sprintf(format, a...)}
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, &VerifyError{Kind: VerifyBadJSON, ID: q.op + " " + q.describe(), Detail: err.Error()}
	}
	want, count := w.want(q)
	if q.req.Count {
		if ans.Count == nil || *ans.Count != count {
			got := "none"
			if ans.Count != nil {
				got = strconv.FormatInt(*ans.Count, 10)
			}
			return &ans, bad("count %s, want %d", got, count)
		}
		return &ans, nil
	}
	if len(ans.Docs) != len(want) {
		return &ans, bad("%d documents, want %d", len(ans.Docs), len(want))
	}
	var expect []byte
	for i, d := range ans.Docs {
		n := int64(want[i])
		if d.ID != w.ids[n] {
			return &ans, bad("document %d is %s, want %s", i, d.ID, w.ids[n])
		}
		expect = w.AppendDoc(expect[:0], n)
		if eq, err := sameJSON(d.Doc, expect); err != nil || !eq {
			return &ans, bad("document %s differs from what was written", d.ID)
		}
	}
	return &ans, nil
}

func (q *query) describe() string {
	var b strings.Builder
	b.WriteString(q.req.Filter)
	for _, s := range q.req.Sort {
		fmt.Fprintf(&b, " sort %s desc=%t", s.Field, s.Desc)
	}
	return strings.TrimSpace(b.String())
}

// sameJSON reports whether two JSON values are equal as values (key order aside).
func sameJSON(a, b []byte) (bool, error) {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return false, err
	}
	return reflect.DeepEqual(x, y), nil
}

type queryWorker struct {
	w   *queryWorkload
	env *WorkerEnv
}

func (qw *queryWorker) Step(ctx context.Context, start time.Time) error {
	e := qw.env
	op := qw.w.chooser.Next(e.Rand)
	kind, via, _ := strings.Cut(op, "/")
	q := qw.w.newQuery(kind, via, e.Rand)
	verify := e.sampleVerify()
	qc, err := clientForQueries(e)
	var body []byte
	if err == nil {
		body, err = qc.Query(ctx, e.Collection, &q.req)
	}
	lat := time.Since(start) // the answer is in: checking it is not the query's latency
	if err == nil && verify {
		e.verify.checkedInRun.Add(1)
		_, err = qw.w.check(q, body)
		e.verify.noteErr(err)
	}
	e.ObserveLatency(op, lat, one(err), err)
	return err
}

// errNoQueries: the client has no query calls (a protocol without them).
var errNoQueries = fmt.Errorf("%w: the query suite needs a client with the query and index calls", ErrProtocolUnsupported)

func clientForQueries(e *WorkerEnv) (queryClient, error) {
	qc, ok := e.Client.(queryClient)
	if !ok {
		return nil, errNoQueries
	}
	return qc, nil
}

// Prepare builds the indexes (unless QueryIndex is full_scan), waits until they are ready,
// and explains one query of each operation: its access path must be the one its name
// says, on every shard, and its answer must be right.
func (w *queryWorkload) Prepare(ctx context.Context, env *WorkerEnv) error {
	qc, err := clientForQueries(env)
	if err != nil {
		return err
	}
	if w.mode != ViaFullScan {
		var names []string // only those the run's queries use
		for _, op := range w.ops {
			kind, _, _ := strings.Cut(op, "/")
			ix := queryIndex[kind]
			if slices.Contains(names, ix.name) {
				continue
			}
			if err := qc.CreateIndex(ctx, env.Collection, ix.name, []string{ix.field}); err != nil {
				return fmt.Errorf("bench: query: create index %s: %w", ix.name, err)
			}
			names = append(names, ix.name)
		}
		wctx, cancel := context.WithTimeout(ctx, queryIndexTimeout)
		took, err := waitIndexes(wctx, qc, env.Collection, names)
		cancel()
		if err != nil {
			return err
		}
		w.notes["index_build"] = fmt.Sprintf("indexes %s created after the load of %d documents; ready (backfilled) %.1f s later",
			strings.Join(names, ", "), w.p.RecordCount, took.Seconds())
	}
	for _, op := range w.ops {
		kind, via, _ := strings.Cut(op, "/")
		q := w.newQuery(kind, via, env.Rand)
		q.req.Explain = true
		qctx, cancel := context.WithTimeout(ctx, env.Params.OpTimeout)
		body, err := qc.Query(qctx, env.Collection, &q.req)
		cancel()
		if err != nil {
			return fmt.Errorf("bench: query: explain %s (%s): %w", op, q.describe(), err)
		}
		env.verify.checkedInRun.Add(1)
		ans, err := w.check(q, body)
		env.verify.noteErr(err)
		if ans == nil || ans.Plan == nil || len(ans.Plan.Shards) == 0 {
			return fmt.Errorf("%w: query: %s: no plan in the explained answer %.200q", ErrBadResponse, op, body)
		}
		if err := planIs(q, ans.Plan.Shards); err != nil {
			return err
		}
		w.notes["plan "+op] = planNote(ans.Plan.Shards)
	}
	return nil
}

// planIs checks that every shard served q the way its operation's name says.
func planIs(q *query, shards []ShardPlan) error {
	for _, s := range shards {
		ok := s.Access == "full_scan"
		if q.via == ViaIndex {
			want := queryIndex[q.kind].name
			ok = s.Access == "index" && s.Index == want && (q.kind != QueryTopK || s.SortFromIndex)
		}
		if !ok {
			return fmt.Errorf("bench: query: %s (%s) was served by %s %s on shard %d (sort from index %t): its measurements would be mislabelled",
				q.op, q.describe(), s.Access, s.Index, s.Shard, s.SortFromIndex)
		}
	}
	return nil
}

func planNote(shards []ShardPlan) string {
	var ex, match int64
	for _, s := range shards {
		ex += s.Examined
		match += s.Matched
	}
	s := shards[0]
	access := s.Access
	if s.Index != "" {
		access += " " + s.Index
	}
	if s.SortFromIndex {
		access += " (sort from index)"
	}
	return fmt.Sprintf("one explained query before the run: %s on %d shards, %d documents examined, %d matched", access, len(shards), ex, match)
}

// ReadBack reads key number n and compares it whole with what the loader wrote.
func (w *queryWorkload) ReadBack(ctx context.Context, env *WorkerEnv, n int64) error {
	id := KeyName(n)
	err := func() error {
		qc, err := clientForQueries(env)
		if err != nil {
			return err
		}
		body, err := qc.GetRaw(ctx, env.Collection, id)
		if err != nil {
			if api := (*APIError)(nil); errors.As(err, &api) && api.Code == "not_found" && env.Tracker.Version(n) > 0 {
				return &VerifyError{Kind: VerifyMissing, ID: id, Detail: "not found, its write was acknowledged"}
			}
			return err
		}
		var d struct {
			ID  string          `json:"id"`
			Doc json.RawMessage `json:"doc"`
		}
		if err := json.Unmarshal(body, &d); err != nil {
			return &VerifyError{Kind: VerifyBadJSON, ID: id, Detail: err.Error()}
		}
		if d.ID != id {
			return &VerifyError{Kind: VerifyWrongID, ID: id, Detail: "answer is for " + d.ID}
		}
		if eq, err := sameJSON(d.Doc, w.AppendDoc(nil, n)); err != nil || !eq {
			return &VerifyError{Kind: VerifyValueMismatch, ID: id, Detail: "document differs from what was written"}
		}
		return nil
	}()
	if env.postRun {
		env.verify.checkedPostRun.Add(1)
	} else {
		env.verify.checkedInRun.Add(1)
	}
	env.verify.noteErr(err)
	return err
}

// Check that the workload is what the runner expects of it.
var _ DataSet = (*queryWorkload)(nil)
