package ws

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/aerolithsdb/aerolith/db"
)

// apply is what a client does with deltas.
func apply(list []db.Doc, ds []Delta) []db.Doc {
	list = slices.Clone(list)
	del := func(id string) {
		list = slices.DeleteFunc(list, func(d db.Doc) bool { return d.ID == id })
	}
	for _, d := range ds {
		switch d.Op {
		case OpRemove:
			del(d.Doc.ID)
		case OpChange:
			del(d.Doc.ID)
			list = slices.Insert(list, d.Index, d.Doc)
		case OpAdd:
			list = slices.Insert(list, d.Index, d.Doc)
		}
	}
	return list
}

func docs(spec ...string) []db.Doc {
	var out []db.Doc
	for _, s := range spec {
		var id string
		var v uint64
		fmt.Sscanf(s, "%1s%d", &id, &v)
		out = append(out, db.Doc{ID: id, Version: v})
	}
	return out
}

func same(a, b []db.Doc) bool {
	return slices.EqualFunc(a, b, func(x, y db.Doc) bool { return x.ID == y.ID && x.Version == y.Version })
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name     string
		old, new []db.Doc
		ops      string
	}{
		{"empty", nil, nil, ""},
		{"initial", nil, docs("a1", "b1"), "add0 add1"},
		{"all gone", docs("a1", "b1"), nil, "remove remove"},
		{"unchanged", docs("a1", "b2"), docs("a1", "b2"), ""},
		{"update in place", docs("a1", "b1", "c1"), docs("a1", "b2", "c1"), "change1"},
		{"update moves to front", docs("a1", "b1", "c1"), docs("c2", "a1", "b1"), "change0"},
		{"remove and add", docs("a1", "b1", "c1"), docs("a1", "c1", "d1"), "remove add2"},
		// A pending change sits before the insertion point: indexes are where the client's
		// list stands, not where the document ends up.
		{"insert past a pending change", docs("a1", "b1"), docs("b1", "x1", "a2"), "add2 change2"},
		{"same version moved", docs("a1", "b1", "c1"), docs("c1", "a1", "b1"), "change2 change2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := Diff(tt.old, tt.new)
			var ops []string
			for _, d := range ds {
				if d.Op == OpRemove {
					ops = append(ops, d.Op)
				} else {
					ops = append(ops, fmt.Sprintf("%s%d", d.Op, d.Index))
				}
			}
			if got := fmt.Sprint(ops); got != fmt.Sprint(strings.Fields(tt.ops)) {
				t.Errorf("ops %v, want %v", got, tt.ops)
			}
			if got := apply(tt.old, ds); !same(got, tt.new) {
				t.Errorf("applied: %v, want %v", got, tt.new)
			}
		})
	}
}

// TestDiffRandom checks, on random pairs of results, that applying Diff's deltas to the old
// result gives exactly the new one, and that documents that did not change are not sent.
func TestDiffRandom(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	gen := func(vers map[string]uint64) []db.Doc {
		ids := []string{}
		for id := range vers {
			if rng.IntN(3) > 0 {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		out := make([]db.Doc, len(ids))
		for i, id := range ids {
			out[i] = db.Doc{ID: id, Version: vers[id]}
		}
		return out
	}
	for n := 0; n < 2000; n++ {
		vers := map[string]uint64{}
		for i := 0; i < rng.IntN(12); i++ {
			vers[fmt.Sprint("d", i)] = 1
		}
		old := gen(vers)
		for id := range vers {
			if rng.IntN(3) == 0 {
				vers[id]++
			}
		}
		// Mostly keep the order of what did not change, like a query with a total order.
		var next []db.Doc
		if rng.IntN(2) == 0 {
			next = gen(vers)
		} else {
			for _, d := range old {
				if rng.IntN(4) > 0 {
					next = append(next, db.Doc{ID: d.ID, Version: vers[d.ID]})
				}
			}
			for id, v := range vers {
				if !slices.ContainsFunc(next, func(d db.Doc) bool { return d.ID == id }) && rng.IntN(3) == 0 {
					next = slices.Insert(next, rng.IntN(len(next)+1), db.Doc{ID: id, Version: v})
				}
			}
		}
		ds := Diff(old, next)
		if got := apply(old, ds); !same(got, next) {
			t.Fatalf("old %v new %v: deltas %v give %v", old, next, ds, got)
		}
		if len(ds) > len(old)+len(next) {
			t.Fatalf("%d deltas for %d → %d documents", len(ds), len(old), len(next))
		}
	}
}
