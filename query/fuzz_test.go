package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// memSource is a Source over documents held in memory, split over two shards by the
// parity of their position. It implements ReverseScanner too, and serves its indexes from
// the same AppendKey encoding the tiers store: an entry's key is the value key followed by
// the id, and a scan bound compares with the whole entry key.
type memSource struct {
	docs    map[uint64][]RawDoc // by shard, in id order
	indexes []IndexDef
}

func newMemSource(t testing.TB, bodies map[string]string, indexes []IndexDef) *memSource {
	ids := make([]string, 0, len(bodies))
	for id := range bodies {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	s := &memSource{docs: map[uint64][]RawDoc{}, indexes: indexes}
	for i, id := range ids {
		if !json.Valid([]byte(bodies[id])) {
			t.Fatalf("document %s is not JSON: %s", id, bodies[id])
		}
		shard := uint64(i%2 + 1)
		s.docs[shard] = append(s.docs[shard], RawDoc{ID: id, Version: uint64(i + 1),
			TS: time.Unix(1_700_000_000+int64(i), 0), Stamp: uint64(i), Body: []byte(bodies[id])})
	}
	return s
}

func (s *memSource) shards() []uint64 { return []uint64{1, 2} }

func (s *memSource) Indexes(uint64, string) ([]IndexDef, error) { return s.indexes, nil }

func (s *memSource) ScanDocs(ctx context.Context, shard uint64, _ string, lo, hi []byte, fn func(RawDoc) bool) error {
	for _, d := range s.docs[shard] {
		if lo != nil && d.ID < string(lo) {
			continue
		}
		if hi != nil && d.ID >= string(hi) {
			break
		}
		if !fn(d) {
			break
		}
	}
	return ctx.Err()
}

type memEntry struct {
	key []byte
	id  string
}

// entries returns the entries of index name in shard within [lo, hi), in key order.
func (s *memSource) entries(shard uint64, name string, lo, hi []byte) ([]memEntry, error) {
	var def *IndexDef
	for i := range s.indexes {
		if s.indexes[i].Name == name {
			def = &s.indexes[i]
		}
	}
	if def == nil {
		return nil, fmt.Errorf("no index %q", name)
	}
	paths := make([][]string, len(def.Fields))
	for i, f := range def.Fields {
		paths[i] = SplitPath(f)
	}
	var out []memEntry
	for _, d := range s.docs[shard] {
		var body map[string]any
		if err := json.Unmarshal(d.Body, &body); err != nil {
			return nil, err
		}
		k := append(DocKey(body, paths), d.ID...)
		if bytes.Compare(k, lo) >= 0 && (hi == nil || bytes.Compare(k, hi) < 0) {
			out = append(out, memEntry{k, d.ID})
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].key, out[j].key) < 0 })
	return out, nil
}

func (s *memSource) ScanIndex(ctx context.Context, shard uint64, _, name string, lo, hi []byte, fn func(string) bool) error {
	es, err := s.entries(shard, name, lo, hi)
	if err != nil {
		return err
	}
	for _, e := range es {
		if !fn(e.id) {
			break
		}
	}
	return ctx.Err()
}

func (s *memSource) ScanIndexReverse(ctx context.Context, shard uint64, _, name string, lo, hi []byte, fn func(string) bool) error {
	es, err := s.entries(shard, name, lo, hi)
	if err != nil {
		return err
	}
	for i := len(es) - 1; i >= 0; i-- {
		if !fn(es[i].id) {
			break
		}
	}
	return ctx.Err()
}

func (s *memSource) Get(_ context.Context, shard uint64, _, id string) (RawDoc, bool, error) {
	for _, d := range s.docs[shard] {
		if d.ID == id {
			return d, true, nil
		}
	}
	return RawDoc{}, false, nil
}

// fuzzDocs cover every JSON type in the indexed and sorted fields, nested paths, a key
// with a dot, and values that make common filters err.
var fuzzDocs = map[string]string{
	"a1": `{"a":1,"s":"x","o":{"b":2},"l":[1,2,3],"n":null,"t":true}`,
	"a2": `{"a":"str","s":"x\u0000y","o":{"b":"two","c":{"d":[]}},"l":["a","b"],"b":false}`,
	"b1": `{}`,
	"b2": `{"a":-0.5,"s":"","o":null,"l":[],"o.b":3}`,
	"c1": `{"a":[1,{"x":1}],"s":"x","o":{"b":2.5},"l":[{"k":"v"}],"n":1e300}`,
	"c2": `{"a":{"b":1},"s":"y","o":{"b":-7},"t":false,"tags":["vip","new"]}`,
	"d1": `{"a":true,"s":"x","o":"flat","l":[null],"n":-1e-300,"tags":["vip"]}`,
}

var fuzzIndexes = []IndexDef{
	{Name: "by_a", Fields: []string{"a"}},
	{Name: "by_s_a", Fields: []string{"s", "a"}},
	{Name: "by_ob", Fields: []string{"o.b"}},
}

var fuzzSorts = [][]SortField{
	nil,
	{{Field: "a"}},
	{{Field: "a", Desc: true}},
	{{Field: "o.b", Desc: true}},
	{{Field: "s"}, {Field: "a"}},
}

// FuzzCompile checks that Compile neither panics nor takes long on any input, refuses
// inputs over MaxExprLen, and that a compiled filter runs on a few documents without
// panicking, fails only with ErrTooExpensive, matches exactly the documents on which it
// evaluates to true, and gives the same answer with and without indexes.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"", "true", "false", "doc.a == 1", `doc.s == "x" && doc.a > 0`, `doc["o.b"] > 2`,
		`doc.o.b in [2, "two", null]`, `has(doc.o.b) && doc.o.b >= -7`, `id in ["a1", "c2"]`,
		`id >= "b" && id < "c"`, `doc.a != null || !(doc.s < "y")`, `doc.l.exists(x, x > 1)`,
		`doc.s.startsWith("x")`, `doc.tags.exists(t, t == "vip")`, `"vip" in doc.tags`,
		`size(doc) > 2`, `version > 1u && ts > timestamp("2020-01-01T00:00:00Z")`,
		`math.greatest(1, 2) == 2`, `doc.l.map(x, x * 2).size() > 1`, `1 / 0 == 1`,
		`doc.a.exists(x, doc.b.exists(y, doc.c.exists(z, x == y && y == z)))`,
		`"x".repeat(100) == doc.s`, `doc.s.matches("^x+$")`, `doc.a < true`, `doc.a == -0.0`,
		`doc.a >`, `)(`, `doc.a = 1`, `"a" + 1 == "a1"`, `doc.a ? 1 : 2`, `1`, `doc.a.b.c.d.e`,
		`dyn(doc.a) == 1u`, `[1, 2, 3].all(x, x > 0)`, `{"k": 1}.k == 1`,
		strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300),
		strings.Repeat("doc.a == 1 && ", 400) + "true",
	} {
		f.Add(s, uint8(0))
	}
	c, err := NewCompiler(Config{})
	if err != nil {
		f.Fatal(err)
	}
	plain := newMemSource(f, fuzzDocs, nil)
	indexed := newMemSource(f, fuzzDocs, fuzzIndexes)
	f.Fuzz(func(t *testing.T, expr string, sel uint8) {
		start := time.Now()
		p, err := c.Compile(expr)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("Compile(%q) took %v", expr, took)
		}
		if len(expr) > DefaultMaxExprLen && err == nil {
			t.Fatalf("Compile accepted %d bytes, over the limit", len(expr))
		}
		if err != nil {
			if !errors.Is(err, ErrCompile) && !errors.Is(err, ErrTooExpensive) {
				t.Fatalf("Compile(%q): unexpected error %v", expr, err)
			}
			return
		}
		if again, err := c.Compile(expr); err != nil || again != p {
			t.Fatalf("Compile(%q) again: %p %v, want the cached %p", expr, again, err, p)
		}

		// What each document does on its own.
		var want []string
		tooExpensive := false
		for _, shard := range plain.shards() {
			for _, raw := range plain.docs[shard] {
				var body map[string]any
				if err := json.Unmarshal(raw.Body, &body); err != nil {
					t.Fatal(err)
				}
				ok, _, err := p.match(&Doc{ID: raw.ID, Version: raw.Version, TS: raw.TS, Body: body})
				switch {
				case errors.Is(err, ErrTooExpensive):
					tooExpensive = true
				case err != nil:
					t.Fatalf("match(%q) on %s: %v", expr, raw.ID, err)
				case ok:
					want = append(want, raw.ID)
				}
			}
		}
		slices.Sort(want)

		sortBy := fuzzSorts[int(sel)%len(fuzzSorts)]
		run := func(src *memSource) ([]string, error) {
			res, err := Run(context.Background(), &Query{Collection: "c", Filter: p, Sort: sortBy, Limit: 100,
				Shards: src.shards(), Explain: true}, src)
			if err != nil {
				if !errors.Is(err, ErrTooExpensive) {
					t.Fatalf("Run(%q): unexpected error %v", expr, err)
				}
				return nil, err
			}
			var ids []string
			for _, h := range res.Hits {
				ids = append(ids, h.ID)
			}
			return ids, nil
		}
		gotPlain, errPlain := run(plain)
		if (errPlain != nil) != tooExpensive {
			t.Fatalf("Run(%q) on a full scan: %v; documents alone too expensive: %v", expr, errPlain, tooExpensive)
		}
		gotIndexed, errIndexed := run(indexed)
		if errPlain != nil || errIndexed != nil {
			return // an index may skip the expensive document
		}
		if sorted := slices.Sorted(slices.Values(gotPlain)); !slices.Equal(sorted, want) {
			t.Fatalf("Run(%q) matched %v, the documents alone %v", expr, gotPlain, want)
		}
		if !slices.Equal(gotPlain, gotIndexed) {
			t.Fatalf("Run(%q) sorted by %+v: full scan %v, with indexes %v", expr, sortBy, gotPlain, gotIndexed)
		}
	})
}

// FuzzDecodeCursor checks that any client-supplied cursor is refused with ErrInvalid or
// decodes to a cursor that encodes and decodes to itself.
func FuzzDecodeCursor(f *testing.F) {
	f.Add("", 0)
	f.Add("!!", 1)
	f.Add(Cursor{Values: []any{1.5, "x", nil}, Present: []bool{true, true, false}, ID: "a"}.Encode(), 3)
	f.Add(Cursor{ID: "a"}.Encode(), 0)
	f.Fuzz(func(t *testing.T, s string, n int) {
		c, err := DecodeCursor(s, n)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeCursor(%q): %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if len(c.Values) != n || len(c.Present) != n {
			t.Fatalf("DecodeCursor(%q, %d) = %+v", s, n, c)
		}
		again, err := DecodeCursor(c.Encode(), n)
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", c, err)
		}
		if again.Encode() != c.Encode() || again.ID != c.ID {
			t.Fatalf("round trip of %q: %#v, then %#v", s, c, again)
		}
	})
}
