package query

import (
	"fmt"
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	defs := map[string]IndexDef{
		"by_a":   {Name: "by_a", Fields: []string{"a"}},
		"by_b":   {Name: "by_b", Fields: []string{"b"}},
		"by_a_b": {Name: "by_a_b", Fields: []string{"a", "b"}},
		"by_ob":  {Name: "by_ob", Fields: []string{"o.b"}},
	}
	var in300 []string
	for i := 0; i < 300; i++ {
		in300 = append(in300, fmt.Sprint(i))
	}
	for _, c := range []struct {
		filter  string
		indexes []string
		access  string
		index   string
		spans   int
	}{
		{``, []string{"by_a"}, AccessFullScan, "", 0},
		{`doc.a == 1`, nil, AccessFullScan, "", 0},
		{`doc.a == 1`, []string{"by_a"}, AccessIndex, "by_a", 1},
		{`doc["a"] == 1`, []string{"by_a"}, AccessIndex, "by_a", 1},
		{`1 < doc.a`, []string{"by_a"}, AccessIndex, "by_a", 1},
		{`doc.a == null`, []string{"by_a"}, AccessIndex, "by_a", 1},
		{`doc.a < null`, []string{"by_a"}, AccessFullScan, "", 0}, // an error on every document
		{`doc.a != 1`, []string{"by_a"}, AccessFullScan, "", 0},
		{`doc.a == doc.b`, []string{"by_a"}, AccessFullScan, "", 0},
		{`doc.a in []`, []string{"by_a"}, AccessFullScan, "", 0},
		{`doc.a in [1, doc.b]`, []string{"by_a"}, AccessFullScan, "", 0},
		{`doc.a in [1, 1.0, 2, -0.0, 0]`, []string{"by_a"}, AccessIndex, "by_a", 3},
		{`doc.a in [` + strings.Join(in300, ", ") + `]`, []string{"by_a"}, AccessFullScan, "", 0},
		{`doc.a > 1 && doc.a <= 5`, []string{"by_a"}, AccessIndex, "by_a", 1},
		{`doc.a < 5 && doc.a > "x"`, []string{"by_a"}, AccessIndex, "by_a", 1},
		{`doc.a == 1 && doc.a == 2`, []string{"by_a"}, AccessIndex, "by_a", 1},
		{`has(doc.a) && doc.a == 1`, []string{"by_a"}, AccessIndex, "by_a", 1},
		{`doc.a == 1 || doc.a == 2`, []string{"by_a"}, AccessFullScan, "", 0},
		{`!(doc.a == 1)`, []string{"by_a"}, AccessFullScan, "", 0},
		{`doc.a.exists(x, x == 1)`, []string{"by_a"}, AccessFullScan, "", 0},
		// The most equality fields win, then a range; ties go to the first index by name.
		{`doc.a == 1`, []string{"by_a_b", "by_a"}, AccessIndex, "by_a", 1},
		{`doc.a == 1 && doc.b > 2`, []string{"by_a", "by_b", "by_a_b"}, AccessIndex, "by_a_b", 1},
		{`doc.b == 2 && doc.a == 1`, []string{"by_a", "by_b", "by_a_b"}, AccessIndex, "by_a_b", 1},
		{`doc.a in [1, 2, 3] && doc.b < 5`, []string{"by_a_b"}, AccessIndex, "by_a_b", 3},
		{`doc.a in [1, 2] && doc.b in ["x", "y", "z"]`, []string{"by_a_b"}, AccessIndex, "by_a_b", 6},
		{`doc.b == 1`, []string{"by_a_b"}, AccessFullScan, "", 0},
		{`doc.b > 1 && doc.a > 1`, []string{"by_a_b"}, AccessIndex, "by_a_b", 1},
		// Nested paths; a key that contains a dot is not the nested path.
		{`doc.o.b == 2`, []string{"by_ob"}, AccessIndex, "by_ob", 1},
		{`doc["o"]["b"] == 2`, []string{"by_ob"}, AccessIndex, "by_ob", 1},
		{`doc.o["b"] >= 2`, []string{"by_ob"}, AccessIndex, "by_ob", 1},
		{`doc["o.b"] == 2`, []string{"by_ob"}, AccessFullScan, "", 0},
		{`doc["o.b"] in [1, 2] && doc.o.b == 3`, []string{"by_ob"}, AccessIndex, "by_ob", 1},
		// The id order.
		{`id == "x"`, nil, AccessID, "", 1},
		{`"x" == id`, []string{"by_a"}, AccessID, "", 1},
		{`id in ["x", "y", "x"]`, nil, AccessID, "", 2},
		{`id > "a" && id <= "b"`, nil, AccessID, "", 1},
		{`id == "x" && doc.a == 1`, []string{"by_a"}, AccessID, "", 1},
		{`id >= "m" && doc.a == 1`, []string{"by_a"}, AccessIndex, "by_a", 1},
		{`id != "x"`, nil, AccessFullScan, "", 0},
	} {
		p := mustCompile(t, c.filter)
		var ixs []IndexDef
		for _, n := range c.indexes {
			ixs = append(ixs, defs[n])
		}
		got := plan(p.conjuncts, ixs)
		if got.Access != c.access || got.Index != c.index || len(got.Spans) != c.spans {
			t.Errorf("%s with %v: %s %q %d spans %v, want %s %q %d spans",
				c.filter, c.indexes, got.Access, got.Index, len(got.Spans), got.Ranges, c.access, c.index, c.spans)
		}
	}
}

// TestPlanSort: a single-field sort is served from the index order when the field follows
// the plan's equality prefix in a one-span index scan, or leads an index when the plan is
// a full scan; descending only where the source scans backwards.
func TestPlanSort(t *testing.T) {
	byA := IndexDef{Name: "by_a", Fields: []string{"a"}}
	byAB := IndexDef{Name: "by_a_b", Fields: []string{"a", "b"}}
	for _, c := range []struct {
		filter   string
		indexes  []IndexDef
		sort     []SortField
		reverse  bool // the source can scan backwards
		access   string
		index    string
		ordered  bool
		backward bool
	}{
		{``, []IndexDef{byA}, []SortField{{Field: "a"}}, false, AccessIndex, "by_a", true, false},
		{``, []IndexDef{byA}, []SortField{{Field: "a", Desc: true}}, true, AccessIndex, "by_a", true, true},
		{``, []IndexDef{byA}, []SortField{{Field: "a", Desc: true}}, false, AccessFullScan, "", false, false},
		{``, []IndexDef{byA}, []SortField{{Field: "b"}}, true, AccessFullScan, "", false, false},
		{``, []IndexDef{byA}, []SortField{{Field: "a"}, {Field: "b"}}, true, AccessFullScan, "", false, false},
		{`doc.a > 1`, []IndexDef{byA}, []SortField{{Field: "a"}}, true, AccessIndex, "by_a", true, false},
		{`doc.a == 1`, []IndexDef{byAB}, []SortField{{Field: "b", Desc: true}}, true, AccessIndex, "by_a_b", true, true},
		{`doc.a == 1`, []IndexDef{byAB}, []SortField{{Field: "a"}}, true, AccessIndex, "by_a_b", false, false},
		{`doc.a in [1, 2]`, []IndexDef{byAB}, []SortField{{Field: "b"}}, true, AccessIndex, "by_a_b", false, false},
		{`id == "x"`, []IndexDef{byA}, []SortField{{Field: "a"}}, true, AccessID, "", false, false},
	} {
		p := mustCompile(t, c.filter)
		got := planSort(plan(p.conjuncts, c.indexes), c.sort, c.indexes, c.reverse)
		if got.Access != c.access || got.Index != c.index || got.Ordered != c.ordered || got.Reverse != c.backward {
			t.Errorf("%s sorted by %+v (reverse scans %v): %s %q ordered %v reverse %v, want %s %q ordered %v reverse %v",
				c.filter, c.sort, c.reverse, got.Access, got.Index, got.Ordered, got.Reverse, c.access, c.index, c.ordered, c.backward)
		}
	}
}

func mustCompile(t *testing.T, filter string) *Program {
	t.Helper()
	c, err := NewCompiler(Config{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Compile(filter)
	if err != nil {
		t.Fatalf("%s: %v", filter, err)
	}
	return p
}
