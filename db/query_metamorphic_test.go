package db

// A metamorphic test of queries: the same seeded documents live in a collection with
// secondary indexes ("ix") and in one without ("plain"); random filters must give the same
// ordered answer on both, and the same answer as a reference evaluator written here that
// implements CEL's semantics for the filter grammar the test generates. Random writes then
// move documents in and out of the indexed ranges and the filters run again.
//
// Rerun a failure with: go test ./db -run TestQueryMetamorphic -seed N

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/query"
)

var metamorphicSeed = flag.Int64("seed", 0, "seed of TestQueryMetamorphic (default: from the clock)")

// Sizes, tuned to keep the test near 20 s on two cores.
const (
	mmDocs          = 300 // initial documents
	mmFilters       = 220 // filters per round
	mmUpdateRounds  = 2   // rounds of random writes, each followed by a round of filters
	mmUpdatesPerRun = 150 // writes per update round
	mmMaxFailures   = 8
)

// The indexes of the "ix" collection.
var mmIndexes = []struct {
	name   string
	fields []string
}{
	{"by_a", []string{"a"}},
	{"by_n", []string{"n"}},
	{"by_s", []string{"s"}},
	{"by_s_n", []string{"s", "n"}},
	{"by_ob", []string{"o.b"}},
}

func TestQueryMetamorphic(t *testing.T) {
	seed := *metamorphicSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (rerun: go test ./db -run TestQueryMetamorphic -seed %d)", seed, seed)
	start := time.Now()

	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	m := &mm{t: t, seed: seed, rng: rand.New(rand.NewPCG(uint64(seed), 0x5eed)), d: d,
		ctx: context.Background(), model: map[string]map[string]any{}}

	// Half the documents exist before the indexes (backfill), half are written after
	// (maintenance while building or ready).
	var ws []mmWrite
	for i := 0; i < mmDocs; i++ {
		ws = append(ws, mmWrite{op: log.OpPut, id: m.newID(), body: m.genDoc()})
	}
	m.apply(ws[:mmDocs/2])
	for _, ix := range mmIndexes {
		if _, err := d.CreateIndex(m.ctx, "ix", ix.name, ix.fields); err != nil {
			t.Fatalf("seed %d: create index %s: %v", seed, ix.name, err)
		}
	}
	m.apply(ws[mmDocs/2:])
	for _, ix := range mmIndexes {
		waitIndexReady(t, d, "ix", ix.name)
	}
	t.Logf("setup %v", time.Since(start).Round(time.Millisecond))

	for round := 0; round <= mmUpdateRounds; round++ {
		if round > 0 {
			m.apply(m.genUpdates(mmUpdatesPerRun))
		}
		m.checkStored()
		for _, f := range mmFixedFilters() {
			for range 2 {
				m.checkFilter(round, f)
			}
		}
		for i := 0; i < mmFilters; i++ {
			m.checkFilter(round, m.genFilter())
		}
	}
	t.Logf("seed %d: %d filters (%d served by an index, %d by the id order, %d sorted by an index scan), %d paged (%d pages), %d counts, %d documents at the end, %v",
		seed, m.stats.filters, m.stats.indexed, m.stats.byID, m.stats.ordered, m.stats.paged, m.stats.pages, m.stats.counts, len(m.model),
		time.Since(start).Round(time.Millisecond))
	if m.stats.indexed == 0 {
		t.Fatalf("seed %d: no filter used an index", seed)
	}
	if m.stats.indexed < m.stats.filters/5 {
		t.Errorf("seed %d: only %d of %d filters used an index", seed, m.stats.indexed, m.stats.filters)
	}
}

// mm is the state of one metamorphic run: the database and the model of its documents.
type mm struct {
	t     *testing.T
	seed  int64
	rng   *rand.Rand
	d     *DB
	ctx   context.Context
	model map[string]map[string]any // live documents by id, as JSON decodes them
	next  int                       // next new id
	fails int
	stats struct{ filters, indexed, byID, ordered, paged, pages, counts int }
}

func (m *mm) failf(format string, args ...any) {
	m.t.Helper()
	m.fails++
	m.t.Errorf("seed %d: "+format, append([]any{m.seed}, args...)...)
	if m.fails >= mmMaxFailures {
		m.t.Fatalf("seed %d: too many failures", m.seed)
	}
}

// ---- documents ----

func (m *mm) newID() string {
	id := fmt.Sprintf("d%03d", m.next)
	m.next++
	return id
}

// Pools are small so that equality filters hit documents.
var (
	mmStrings = []string{"", "a", "ab", "abc", "b", "a\x00", "a\x00b", "zz", "10", "-1"}
	mmNumbers = []float64{-1e300, -7, -2.5, -1, -0.5, 0, 0.25, 0.5, 1, 2, 3, 3.5, 7, 10, 100, 1e15 + 0.5, 9007199254740992, 1e300}
)

func (m *mm) pick(p int) bool { return m.rng.IntN(100) < p }

func (m *mm) number() float64 {
	if m.pick(70) {
		return float64(m.rng.IntN(26) - 5) // -5..20: dense, so ranges and equalities overlap
	}
	if m.pick(10) {
		return math.Copysign(0, -1)
	}
	return mmNumbers[m.rng.IntN(len(mmNumbers))]
}

func (m *mm) str() string { return mmStrings[m.rng.IntN(len(mmStrings))] }

// anyValue returns a value of a random JSON type; ok false means the field is missing.
func (m *mm) anyValue(depth int) (any, bool) {
	switch r := m.rng.IntN(100); {
	case r < 10:
		return nil, false
	case r < 20:
		return nil, true
	case r < 45:
		return m.number(), true
	case r < 70:
		return m.str(), true
	case r < 82:
		return m.pick(50), true
	case r < 91:
		if depth > 1 {
			return m.number(), true
		}
		var l []any
		for i := m.rng.IntN(3); i > 0; i-- {
			if v, ok := m.anyValue(depth + 1); ok {
				l = append(l, v)
			}
		}
		if l == nil {
			l = []any{}
		}
		return l, true
	default:
		if depth > 1 {
			return m.str(), true
		}
		o := map[string]any{}
		for i := m.rng.IntN(3); i > 0; i-- {
			if v, ok := m.anyValue(depth + 1); ok {
				o[[]string{"b", "c", "x"}[m.rng.IntN(3)]] = v
			}
		}
		return o, true
	}
}

// typed returns a value of the field's usual type most of the time, anything otherwise.
func (m *mm) typed(usual func() any, p int) (any, bool) {
	if m.pick(p) {
		return usual(), true
	}
	return m.anyValue(0)
}

func (m *mm) field(name string) (any, bool) {
	switch name {
	case "a":
		return m.anyValue(0)
	case "n":
		return m.typed(func() any { return m.number() }, 80)
	case "s":
		return m.typed(func() any { return m.str() }, 70)
	case "b":
		return m.typed(func() any { return m.pick(50) }, 70)
	case "o":
		if m.pick(80) {
			o := map[string]any{}
			if v, ok := m.anyValue(1); ok {
				o["b"] = v
			}
			if m.pick(30) {
				o["c"] = m.number()
			}
			return o, true
		}
		return m.anyValue(1)
	case "o.b": // a top-level key with a dot in its name, not the path o → b
		if m.pick(15) {
			return m.typed(func() any { return m.number() }, 60)
		}
		return nil, false
	case "tags":
		switch r := m.rng.IntN(100); {
		case r < 10:
			return nil, false
		case r < 15:
			return nil, true
		case r < 20:
			return "t1", true
		default:
			var l []any
			for i := m.rng.IntN(4); i > 0; i-- {
				if m.pick(90) {
					l = append(l, fmt.Sprintf("t%d", m.rng.IntN(5)))
				} else {
					l = append(l, float64(m.rng.IntN(3)))
				}
			}
			if l == nil {
				l = []any{}
			}
			return l, true
		}
	}
	panic("unknown field " + name)
}

var mmFields = []string{"a", "n", "s", "b", "o", "o.b", "tags"}

func (m *mm) genDoc() map[string]any {
	doc := map[string]any{}
	for _, f := range mmFields {
		if v, ok := m.field(f); ok {
			doc[f] = v
		}
	}
	return doc
}

// ---- writes ----

type mmWrite struct {
	op   log.Op
	id   string
	body map[string]any // document (put) or merge patch (patch)
}

func (m *mm) liveIDs() []string {
	ids := make([]string, 0, len(m.model))
	for id := range m.model {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// genUpdates returns n writes on distinct documents: puts of new and existing documents,
// merge patches that set, replace or remove fields (moving documents across index ranges)
// and deletes.
func (m *mm) genUpdates(n int) []mmWrite {
	ids := m.liveIDs()
	m.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var ws []mmWrite
	for i := 0; i < n; i++ {
		r := m.rng.IntN(100)
		if r < 15 || len(ids) == 0 {
			ws = append(ws, mmWrite{op: log.OpPut, id: m.newID(), body: m.genDoc()})
			continue
		}
		id := ids[0]
		ids = ids[1:]
		switch {
		case r < 30:
			ws = append(ws, mmWrite{op: log.OpPut, id: id, body: m.genDoc()})
		case r < 85:
			patch := map[string]any{}
			for _, f := range mmFields {
				if !m.pick(35) {
					continue
				}
				if f == "o" && m.pick(60) {
					v, ok := m.anyValue(1)
					if !ok {
						v = nil // removes o.b
					}
					patch["o"] = map[string]any{"b": v}
					continue
				}
				v, ok := m.field(f)
				if !ok {
					v = nil // removes the field
				}
				patch[f] = v
			}
			ws = append(ws, mmWrite{op: log.OpPatch, id: id, body: patch})
		default:
			ws = append(ws, mmWrite{op: log.OpDelete, id: id})
		}
	}
	return ws
}

// mergePatch applies an RFC 7396 merge patch.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = v
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = mergePatch(out[k], v)
	}
	return out
}

// roundTrip returns v as encoding/json decodes its encoding (numbers become float64).
func roundTrip(t *testing.T, v any) ([]byte, map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return b, out
}

// apply writes ws to both collections and to the model.
func (m *mm) apply(ws []mmWrite) {
	m.t.Helper()
	for len(ws) > 0 {
		chunk := ws[:min(len(ws), MaxBatch/2)]
		ws = ws[len(chunk):]
		var batch []Write
		for _, w := range chunk {
			body, decoded := roundTrip(m.t, w.body)
			if w.op == log.OpDelete {
				body = nil
			}
			for _, coll := range []string{"ix", "plain"} {
				batch = append(batch, Write{Op: w.op, Collection: coll, ID: w.id, Body: body})
			}
			switch w.op {
			case log.OpPut:
				m.model[w.id] = decoded
			case log.OpPatch:
				_, m.model[w.id] = roundTrip(m.t, mergePatch(m.model[w.id], decoded))
			case log.OpDelete:
				delete(m.model, w.id)
			}
		}
		res, err := m.d.Batch(m.ctx, "anonymous", batch, "")
		if err != nil {
			m.t.Fatalf("seed %d: batch: %v", m.seed, err)
		}
		for i, r := range res {
			if r.Err != nil {
				m.t.Fatalf("seed %d: write %s %s/%s: %v", m.seed, batch[i].Op, batch[i].Collection, batch[i].ID, r.Err)
			}
		}
	}
}

// checkStored compares both collections, read through an unfiltered query, with the
// model, and each index's entry count with the number of documents.
func (m *mm) checkStored() {
	m.t.Helper()
	for _, coll := range []string{"ix", "plain"} {
		res, err := m.d.Query(m.ctx, QueryRequest{Collection: coll, Limit: 1000})
		if err != nil {
			m.t.Fatalf("seed %d: read %s: %v", m.seed, coll, err)
		}
		if len(res.Docs) != len(m.model) {
			m.t.Fatalf("seed %d: %s holds %d documents, the model %d", m.seed, coll, len(res.Docs), len(m.model))
		}
		for _, doc := range res.Docs {
			var got map[string]any
			if err := json.Unmarshal(doc.Body, &got); err != nil || !reflect.DeepEqual(got, m.model[doc.ID]) {
				m.t.Fatalf("seed %d: %s/%s is %s, the model has %v", m.seed, coll, doc.ID, doc.Body, m.model[doc.ID])
			}
		}
	}
	ixs, err := m.d.Indexes(m.ctx, "ix", Linearizable)
	if err != nil {
		m.t.Fatal(err)
	}
	for _, ix := range ixs {
		if ix.State != "ready" || ix.Entries != int64(len(m.model)) {
			m.t.Fatalf("seed %d: index %+v, want ready with %d entries", m.seed, ix, len(m.model))
		}
	}
}

// ---- filters and their reference semantics ----

// tri is the value of a boolean CEL expression on one document: false, true or an error.
type tri uint8

const (
	triFalse tri = iota
	triTrue
	triErr
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// node is a filter expression: its CEL text and its reference evaluation.
type node interface {
	text() string
	eval(doc map[string]any, id string) tri
}

// fieldRef is a path under doc and the CEL syntax that names it.
type fieldRef struct {
	path []string
	src  string
}

// lookup follows the path as CEL selection does: a missing key or selecting into a
// non-map is an error (ok false).
func (f fieldRef) lookup(doc map[string]any) (any, bool) {
	var cur any = doc
	for _, p := range f.path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// numeric returns a JSON number or an int literal as a double, as CEL compares them.
func numeric(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// celEqual is CEL's heterogeneous equality for a document value and a scalar literal:
// values of different types are unequal, numbers compare numerically.
func celEqual(v, lit any) bool {
	switch x := v.(type) {
	case nil:
		return lit == nil
	case bool:
		l, ok := lit.(bool)
		return ok && l == x
	case float64:
		l, ok := numeric(lit)
		return ok && l == x
	case string:
		l, ok := lit.(string)
		return ok && l == x
	}
	return false // lists and maps never equal a scalar
}

// celOrder compares v with lit for <, <=, >, >=: numbers with numbers, strings with
// strings (bytewise), bools with bools; anything else is an error (ok false).
func celOrder(v, lit any) (int, bool) {
	if x, ok := numeric(v); ok {
		y, ok := numeric(lit)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	}
	switch x := v.(type) {
	case string:
		y, ok := lit.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case bool:
		y, ok := lit.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		}
		return 1, true
	}
	return 0, false
}

func applyOp(op string, v, lit any) tri {
	switch op {
	case "==":
		return triOf(celEqual(v, lit))
	case "!=":
		return triOf(!celEqual(v, lit))
	}
	c, ok := celOrder(v, lit)
	if !ok {
		return triErr
	}
	switch op {
	case "<":
		return triOf(c < 0)
	case "<=":
		return triOf(c <= 0)
	case ">":
		return triOf(c > 0)
	case ">=":
		return triOf(c >= 0)
	}
	panic("unknown op " + op)
}

var mirrored = map[string]string{"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// litText renders a literal in CEL syntax: int64 as an int, float64 as a double.
func litText(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		return s
	case string:
		return strconv.Quote(x) // ASCII only: Go's escapes are CEL's
	}
	panic(fmt.Sprintf("literal %T", v))
}

func listText(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = litText(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// cmpNode is FIELD OP LIT, or LIT OP' FIELD when flip.
type cmpNode struct {
	f    fieldRef
	op   string
	lit  any
	flip bool
}

func (n cmpNode) text() string {
	if n.flip {
		return litText(n.lit) + " " + mirrored[n.op] + " " + n.f.src
	}
	return n.f.src + " " + n.op + " " + litText(n.lit)
}

func (n cmpNode) eval(doc map[string]any, _ string) tri {
	v, ok := n.f.lookup(doc)
	if !ok {
		return triErr
	}
	return applyOp(n.op, v, n.lit)
}

// inNode is FIELD in [LIT, ...].
type inNode struct {
	f    fieldRef
	lits []any
}

func (n inNode) text() string { return n.f.src + " in " + listText(n.lits) }

func (n inNode) eval(doc map[string]any, _ string) tri {
	if len(n.lits) == 0 {
		return triFalse // cel-go's optimizer folds x in [] to false without evaluating x
	}
	v, ok := n.f.lookup(doc)
	if !ok {
		return triErr
	}
	for _, l := range n.lits {
		if celEqual(v, l) {
			return triTrue
		}
	}
	return triFalse
}

// hasNode is has(doc.PATH): whether the last key is present in the map that the rest of
// the path selects; an error when the rest cannot be selected. On a value that is not a
// map cel-go answers false for null, bools, numbers and strings, and errs for a list
// (it tries to index the list with a string).
type hasNode struct{ path []string }

func (n hasNode) text() string { return "has(doc." + strings.Join(n.path, ".") + ")" }

func (n hasNode) eval(doc map[string]any, _ string) tri {
	parent, ok := fieldRef{path: n.path[:len(n.path)-1]}.lookup(doc)
	if !ok {
		return triErr
	}
	switch parent.(type) {
	case []any:
		return triErr
	case map[string]any:
	default:
		return triFalse
	}
	_, present := parent.(map[string]any)[n.path[len(n.path)-1]]
	return triOf(present)
}

// tagNode is LIT in doc.tags: membership in a list, an error for a missing field or a
// value that is not a list.
type tagNode struct{ lit any }

func (n tagNode) text() string { return litText(n.lit) + " in doc.tags" }

func (n tagNode) eval(doc map[string]any, _ string) tri {
	v, ok := doc["tags"]
	if !ok {
		return triErr
	}
	l, ok := v.([]any)
	if !ok {
		return triErr
	}
	for _, e := range l {
		if celEqual(e, n.lit) {
			return triTrue
		}
	}
	return triFalse
}

// idNode is id OP "x" (or flipped), or id in [...].
type idNode struct {
	op   string
	lits []string
	flip bool
}

func (n idNode) text() string {
	if n.op == "in" {
		vs := make([]any, len(n.lits))
		for i, s := range n.lits {
			vs[i] = s
		}
		return "id in " + listText(vs)
	}
	if n.flip {
		return litText(n.lits[0]) + " " + mirrored[n.op] + " id"
	}
	return "id " + n.op + " " + litText(n.lits[0])
}

func (n idNode) eval(_ map[string]any, id string) tri {
	if n.op == "in" {
		return triOf(slices.Contains(n.lits, id))
	}
	return applyOp(n.op, id, n.lits[0])
}

type andNode struct{ l, r node }

func (n andNode) text() string { return "(" + n.l.text() + ") && (" + n.r.text() + ")" }

func (n andNode) eval(doc map[string]any, id string) tri {
	l, r := n.l.eval(doc, id), n.r.eval(doc, id)
	switch {
	case l == triFalse || r == triFalse:
		return triFalse
	case l == triErr || r == triErr:
		return triErr
	}
	return triTrue
}

type orNode struct{ l, r node }

func (n orNode) text() string { return "(" + n.l.text() + ") || (" + n.r.text() + ")" }

func (n orNode) eval(doc map[string]any, id string) tri {
	l, r := n.l.eval(doc, id), n.r.eval(doc, id)
	switch {
	case l == triTrue || r == triTrue:
		return triTrue
	case l == triErr || r == triErr:
		return triErr
	}
	return triFalse
}

type notNode struct{ x node }

func (n notNode) text() string { return "!(" + n.x.text() + ")" }

func (n notNode) eval(doc map[string]any, id string) tri {
	switch n.x.eval(doc, id) {
	case triFalse:
		return triTrue
	case triTrue:
		return triFalse
	}
	return triErr
}

// ---- filter generation ----

// The ways to name each filtered field; "o.b" with brackets is the top-level key with a
// dot, which no index covers.
var mmRefs = map[string][]fieldRef{
	"a":    {{[]string{"a"}, "doc.a"}, {[]string{"a"}, `doc["a"]`}},
	"n":    {{[]string{"n"}, "doc.n"}, {[]string{"n"}, `doc["n"]`}},
	"s":    {{[]string{"s"}, "doc.s"}, {[]string{"s"}, `doc["s"]`}},
	"b":    {{[]string{"b"}, "doc.b"}},
	"o.b":  {{[]string{"o", "b"}, "doc.o.b"}, {[]string{"o", "b"}, `doc["o"]["b"]`}, {[]string{"o", "b"}, `doc.o["b"]`}},
	"'o.b": {{[]string{"o.b"}, `doc["o.b"]`}},
}

func (m *mm) ref(name string) fieldRef {
	rs := mmRefs[name]
	return rs[m.rng.IntN(len(rs))]
}

// lit returns a literal, usually of the type the field usually holds.
func (m *mm) lit(field string) any {
	if m.pick(25) {
		switch m.rng.IntN(5) {
		case 0:
			return nil
		case 1:
			return m.pick(50)
		case 2:
			return int64(m.rng.IntN(26) - 5)
		case 3:
			return m.number()
		default:
			return m.str()
		}
	}
	switch field {
	case "s":
		return m.str()
	case "b":
		return m.pick(50)
	case "n", "o.b", "'o.b":
		if m.pick(50) {
			return int64(m.rng.IntN(26) - 5)
		}
		return m.number()
	}
	v, ok := m.anyValue(2) // a: anything scalar
	if !ok {
		return nil
	}
	return v
}

var mmOps = []string{"==", "==", "==", "!=", "<", "<=", ">", ">=", "<", ">="}

// atom is a comparison or an in list on a (mostly indexed) field.
func (m *mm) atom() node {
	names := []string{"a", "n", "s", "o.b", "n", "s", "b", "'o.b"}
	name := names[m.rng.IntN(len(names))]
	f := m.ref(name)
	if m.pick(20) {
		var lits []any
		for i := m.rng.IntN(4); i >= 0; i-- {
			lits = append(lits, m.lit(name))
		}
		if m.pick(3) {
			lits = nil
		}
		return inNode{f: f, lits: lits}
	}
	return cmpNode{f: f, op: mmOps[m.rng.IntN(len(mmOps))], lit: m.lit(name), flip: m.pick(20)}
}

func (m *mm) idAtom() node {
	ids := m.liveIDs()
	pickID := func() string {
		if m.pick(15) || len(ids) == 0 {
			return []string{"d", "d1", "e", "c", "d05", "d0500"}[m.rng.IntN(6)]
		}
		return ids[m.rng.IntN(len(ids))]
	}
	if m.pick(30) {
		var lits []string
		for i := m.rng.IntN(5); i >= 0; i-- {
			lits = append(lits, pickID())
		}
		return idNode{op: "in", lits: lits}
	}
	ops := []string{"==", ">=", ">", "<", "<=", "!="}
	return idNode{op: ops[m.rng.IntN(len(ops))], lits: []string{pickID()}, flip: m.pick(20)}
}

func (m *mm) conj(k int) node {
	var n node = m.atom()
	for i := 1; i < k; i++ {
		n = andNode{n, m.atom()}
	}
	return n
}

func (m *mm) hasAtom() node {
	paths := [][]string{{"a"}, {"o"}, {"o", "b"}, {"n"}, {"tags"}}
	return hasNode{path: paths[m.rng.IntN(len(paths))]}
}

func (m *mm) genFilter() node {
	switch r := m.rng.IntN(100); {
	case r < 55:
		return m.conj(1 + m.rng.IntN(3))
	case r < 65:
		if m.pick(50) {
			return m.idAtom()
		}
		return andNode{m.idAtom(), m.conj(1 + m.rng.IntN(2))}
	case r < 73:
		return orNode{m.conj(1 + m.rng.IntN(2)), m.conj(1)}
	case r < 80:
		return andNode{notNode{m.atom()}, m.conj(1)}
	case r < 88:
		return andNode{m.hasAtom(), m.conj(1)}
	case r < 94:
		return andNode{tagNode{lit: m.lit("s")}, m.conj(1)}
	default:
		atoms := []func() node{m.atom, m.idAtom, m.hasAtom, func() node { return tagNode{lit: "t1"} }}
		var n node = atoms[m.rng.IntN(len(atoms))]()
		for i := m.rng.IntN(3); i > 0; i-- {
			x := atoms[m.rng.IntN(len(atoms))]()
			switch m.rng.IntN(3) {
			case 0:
				n = andNode{n, x}
			case 1:
				n = orNode{x, n}
			default:
				n = notNode{andNode{n, x}}
			}
		}
		return n
	}
}

// mmFixedFilters are edge cases every round checks besides the random ones: empty and
// one-point ranges, a range on the second field of the compound index, a key with a dot,
// an int literal that a double cannot hold exactly, id bounds.
func mmFixedFilters() []node {
	n := fieldRef{[]string{"n"}, "doc.n"}
	s := fieldRef{[]string{"s"}, "doc.s"}
	ob := fieldRef{[]string{"o", "b"}, "doc.o.b"}
	dotted := fieldRef{[]string{"o.b"}, `doc["o.b"]`}
	return []node{
		andNode{cmpNode{f: n, op: ">", lit: 5.0}, cmpNode{f: n, op: "<", lit: int64(3)}},
		andNode{cmpNode{f: n, op: ">=", lit: int64(3)}, cmpNode{f: n, op: "<=", lit: 3.0}},
		andNode{cmpNode{f: s, op: ">", lit: "b"}, cmpNode{f: s, op: "<", lit: "a"}},
		andNode{cmpNode{f: s, op: ">=", lit: "a"}, cmpNode{f: s, op: "<", lit: "a\x00"}},
		andNode{cmpNode{f: s, op: "==", lit: "a"}, cmpNode{f: n, op: ">", lit: int64(2)}},
		andNode{inNode{f: s, lits: []any{"a", "ab", "a\x00"}}, cmpNode{f: n, op: "<=", lit: 0.5}},
		cmpNode{f: dotted, op: "==", lit: int64(6)},
		andNode{cmpNode{f: dotted, op: ">", lit: int64(0)}, cmpNode{f: ob, op: ">", lit: int64(0)}},
		cmpNode{f: ob, op: ">=", lit: ""},
		cmpNode{f: n, op: "<", lit: int64(9007199254740993)},
		cmpNode{f: n, op: ">=", lit: math.Copysign(0, -1)},
		andNode{idNode{op: ">=", lits: []string{"d1"}}, idNode{op: "<", lits: []string{"d"}}},
		andNode{idNode{op: "<", lits: []string{"d050"}}, cmpNode{f: n, op: "!=", lit: nil}},
	}
}

// ---- checking ----

var mmSorts = [][]query.SortField{
	nil,
	{{Field: "n"}},
	{{Field: "n", Desc: true}},
	{{Field: "a"}},
	{{Field: "o.b", Desc: true}},
	{{Field: "s"}, {Field: "n", Desc: true}},
}

// refRank and refCompare are the documented result order, written independently of
// query.Compare: missing < null < booleans < numbers < strings < lists < objects, lists
// and objects by their JSON text.
func refRank(v any, ok bool) int {
	if !ok {
		return 0
	}
	switch v.(type) {
	case nil:
		return 1
	case bool:
		return 2
	case float64:
		return 3
	case string:
		return 4
	case []any:
		return 5
	}
	return 6
}

func refCompare(a any, aok bool, b any, bok bool) int {
	ra, rb := refRank(a, aok), refRank(b, bok)
	if ra != rb {
		return ra - rb
	}
	switch ra {
	case 2, 3, 4:
		c, _ := celOrder(a, b)
		return c
	case 5, 6:
		x, _ := json.Marshal(a)
		y, _ := json.Marshal(b)
		return strings.Compare(string(x), string(y))
	}
	return 0
}

// reference returns the ids of the matching documents in the sort order, and how many
// documents the filter errs on.
func (m *mm) reference(f node, sortBy []query.SortField) (ids []string, errs int) {
	for _, id := range m.liveIDs() {
		switch f.eval(m.model[id], id) {
		case triTrue:
			ids = append(ids, id)
		case triErr:
			errs++
		}
	}
	slices.SortStableFunc(ids, func(x, y string) int {
		for _, s := range sortBy {
			p := query.SplitPath(s.Field)
			xv, xok := fieldRef{path: p}.lookup(m.model[x])
			yv, yok := fieldRef{path: p}.lookup(m.model[y])
			c := refCompare(xv, xok, yv, yok)
			if s.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return strings.Compare(x, y)
	})
	return ids, errs
}

func (m *mm) run(r QueryRequest) (*QueryResult, error) {
	ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
	defer cancel()
	return m.d.Query(ctx, r)
}

func docIDs(docs []Doc) []string {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids
}

// describe explains a difference between two answers: the first position where they
// differ and the documents involved.
func (m *mm) describe(got, want []string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d results, want %d; first difference at %d", len(got), len(want), i)
	missing, extra := setDiff(want, got), setDiff(got, want)
	show := func(label string, ids []string) {
		if len(ids) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n  %s %d:", label, len(ids))
		for _, id := range ids[:min(len(ids), 4)] {
			body, _ := json.Marshal(m.model[id])
			fmt.Fprintf(&b, "\n    %s %s", id, body)
		}
	}
	show("missing", missing)
	show("extra", extra)
	if len(missing) == 0 && len(extra) == 0 {
		fmt.Fprintf(&b, "\n  same documents in another order:\n    got  %v\n    want %v", got[i:min(len(got), i+5)], want[i:min(len(want), i+5)])
	}
	return b.String()
}

func setDiff(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

func planText(p []query.ShardExplain) string {
	var parts []string
	for _, s := range p {
		parts = append(parts, fmt.Sprintf("shard %d: %s %s %v", s.Shard, s.Access, s.Index, s.Ranges))
	}
	return strings.Join(parts, "; ")
}

// checkFilter compares the indexed and plain answers of one filter with the reference,
// in full, counted and (sometimes) paged.
func (m *mm) checkFilter(round int, f node) {
	m.t.Helper()
	m.stats.filters++
	filter := f.text()
	sortBy := mmSorts[m.rng.IntN(len(mmSorts))]
	want, wantErrs := m.reference(f, sortBy)
	where := fmt.Sprintf("round %d, filter %s, sort %+v", round, filter, sortBy)

	ix, err := m.run(QueryRequest{Collection: "ix", Filter: filter, Sort: sortBy, Limit: 1000, Explain: true})
	if err != nil {
		m.failf("%s: ix: %v", where, err)
		return
	}
	plain, err := m.run(QueryRequest{Collection: "plain", Filter: filter, Sort: sortBy, Limit: 1000, Explain: true})
	if err != nil {
		m.failf("%s: plain: %v", where, err)
		return
	}
	// An index serves the filter when its scan has ranges from the filter, not only the
	// sort order ("order by f").
	usedIndex, byID, ordered, allFull := false, false, false, true
	for _, s := range ix.Plan {
		usedIndex = usedIndex || s.Access == query.AccessIndex && !(len(s.Ranges) == 1 && strings.HasPrefix(s.Ranges[0], "order by "))
		byID = byID || s.Access == query.AccessID
		ordered = ordered || s.Ordered
	}
	if byID {
		m.stats.byID++
	}
	if ordered {
		m.stats.ordered++
	}
	for _, s := range plain.Plan {
		if s.Access == query.AccessIndex {
			m.failf("%s: plain used an index: %s", where, planText(plain.Plan))
		}
		allFull = allFull && s.Access == query.AccessFullScan
	}
	if usedIndex {
		m.stats.indexed++
	}
	if got := docIDs(ix.Docs); !slices.Equal(got, want) {
		m.failf("%s: ix (%s): %s", where, planText(ix.Plan), m.describe(got, want))
	}
	if got := docIDs(plain.Docs); !slices.Equal(got, want) {
		m.failf("%s: plain (%s): %s", where, planText(plain.Plan), m.describe(got, want))
	}
	for _, doc := range ix.Docs {
		var body map[string]any
		if err := json.Unmarshal(doc.Body, &body); err != nil || !reflect.DeepEqual(body, m.model[doc.ID]) {
			m.failf("%s: ix returned %s as %s, the model has %v", where, doc.ID, doc.Body, m.model[doc.ID])
			break
		}
	}
	if allFull {
		var evalErrs int64
		for _, s := range plain.Plan {
			evalErrs += s.EvalErrors
		}
		if evalErrs != int64(wantErrs) {
			m.failf("%s: plain full scan counted %d evaluation errors, the reference %d", where, evalErrs, wantErrs)
		}
	}

	if m.pick(35) {
		m.stats.counts++
		for _, coll := range []string{"ix", "plain"} {
			res, err := m.run(QueryRequest{Collection: coll, Filter: filter, Count: true})
			if err != nil {
				m.failf("%s: %s count: %v", where, coll, err)
			} else if res.Count != int64(len(want)) || len(res.Docs) != 0 {
				m.failf("%s: %s count = %d (%d docs), want %d", where, coll, res.Count, len(res.Docs), len(want))
			}
		}
	}
	if m.pick(35) {
		m.stats.paged++
		limit := []int{1, 2, 3, 5, 8, 13}[m.rng.IntN(6)]
		if len(want)/limit > 25 {
			limit = len(want)/25 + 1
		}
		m.page(where, []string{"ix", "plain"}[m.rng.IntN(2)], filter, sortBy, limit, want)
	}
}

// page reads the answer in pages of limit and checks that they concatenate to want: no
// skip, no repeat, and a cursor exactly when the page is full.
func (m *mm) page(where, coll, filter string, sortBy []query.SortField, limit int, want []string) {
	m.t.Helper()
	var got []string
	cursor := ""
	for n := 0; ; n++ {
		if n > len(want)+2 {
			m.failf("%s: %s paging by %d does not end: %v", where, coll, limit, got)
			return
		}
		m.stats.pages++
		res, err := m.run(QueryRequest{Collection: coll, Filter: filter, Sort: sortBy, Limit: limit, Cursor: cursor})
		if err != nil {
			m.failf("%s: %s page %d by %d: %v", where, coll, n, limit, err)
			return
		}
		got = append(got, docIDs(res.Docs)...)
		if (res.NextCursor != "") != (len(res.Docs) == limit) {
			m.failf("%s: %s page %d by %d: %d docs with cursor %q", where, coll, n, limit, len(res.Docs), res.NextCursor)
			return
		}
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	if !slices.Equal(got, want) {
		m.failf("%s: %s pages by %d: %s", where, coll, limit, m.describe(got, want))
	}
}
