package query

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// IndexDef is a secondary index as the planner sees it: ready to serve.
type IndexDef struct {
	Name   string
	Fields []string // dotted paths, in key order
}

// Span is a half-open key range [Lo, Hi) over an index's value encoding (AppendKey of each
// field), or over document ids for the id access path.
type Span struct {
	Lo, Hi []byte
}

// Access paths.
const (
	AccessFullScan = "full_scan"
	AccessID       = "id_range"
	AccessIndex    = "index"
)

// Plan is how one shard finds candidate documents.
type Plan struct {
	Access string
	Index  string
	Spans  []Span
	Ranges []string // human-readable spans, for explain
	// Ordered: the index yields documents in the order of the (single) sort field, so the
	// scan can stop once it has a full page and passes the page's last value. Reverse
	// scans the index backwards (a descending sort).
	Ordered  bool
	Reverse  bool
	eqFields int // equality-constrained leading fields of the index
}

// maxSpans bounds the spans of one plan (products of "in" lists).
const maxSpans = 256

// plan picks the access path for the predicates given the ready indexes.
func plan(preds []Predicate, indexes []IndexDef) Plan {
	best, bestScore := Plan{Access: AccessFullScan}, 0
	if p, score := planID(preds); score > 0 {
		best, bestScore = p, score
	}
	sorted := append([]IndexDef(nil), indexes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, ix := range sorted {
		if p, score := planIndex(preds, ix); score > bestScore {
			best, bestScore = p, score
		}
	}
	return best
}

// samePath reports whether the filter path a names the index field b. It compares the
// keys one by one: doc["o.b"] (one key with a dot) is not the index field "o.b" (o, then b).
func samePath(a []string, b string) bool { return slices.Equal(a, SplitPath(b)) }

// planIndex builds spans from equality/in conjuncts on a prefix of the index's fields and
// range conjuncts on the next one. Score: 2 per equality field, 1 for a range.
func planIndex(preds []Predicate, ix IndexDef) (Plan, int) {
	prefixes := [][]byte{{}}
	var desc []string
	score := 0
	for _, f := range ix.Fields {
		var eq *Predicate
		for i := range preds {
			p := &preds[i]
			if !p.onID() && samePath(p.Field, f) && (p.Op == "==" || p.Op == "in") {
				eq = p
				break
			}
		}
		if eq != nil {
			if len(prefixes)*len(eq.Values) > maxSpans {
				break
			}
			var next [][]byte
			for _, pre := range prefixes {
				for _, v := range eq.Values {
					next = append(next, AppendKey(append([]byte(nil), pre...), v, true))
				}
			}
			prefixes = dedupe(next)
			desc = append(desc, fmt.Sprintf("%s %s %v", f, eq.Op, valuesText(eq.Values)))
			score += 2
			continue
		}
		// A range on this field ends the prefix.
		var rng []Predicate
		for _, p := range preds {
			if !p.onID() && samePath(p.Field, f) && p.Op != "==" && p.Op != "in" {
				rng = append(rng, p)
			}
		}
		if len(rng) > 0 {
			spans := make([]Span, 0, len(prefixes))
			for _, pre := range prefixes {
				spans = append(spans, rangeSpan(pre, rng))
			}
			for _, p := range rng {
				if rank(p.Values[0], true) == rank(rng[0].Values[0], true) {
					desc = append(desc, fmt.Sprintf("%s %s %s", f, p.Op, valueText(p.Values[0])))
				}
			}
			return Plan{Access: AccessIndex, Index: ix.Name, Spans: spans, Ranges: desc, eqFields: score / 2}, score + 1
		}
		break
	}
	if score == 0 {
		return Plan{}, 0
	}
	spans := make([]Span, 0, len(prefixes))
	for _, pre := range prefixes {
		spans = append(spans, Span{Lo: pre, Hi: prefixEnd(pre)})
	}
	return Plan{Access: AccessIndex, Index: ix.Name, Spans: spans, Ranges: desc, eqFields: score / 2}, score
}

// planSort lets an index serve a single-field sort: when the chosen index scan has one
// span and the sort field is the index field right after its equality prefix, or when the
// plan is a full scan and an index leads with the sort field. reverse tells whether the
// source can scan an index backwards (needed for descending sorts).
func planSort(p Plan, sort []SortField, indexes []IndexDef, reverse bool) Plan {
	if len(sort) != 1 || (sort[0].Desc && !reverse) {
		return p
	}
	f := sort[0].Field
	switch p.Access {
	case AccessIndex:
		for _, ix := range indexes {
			if ix.Name == p.Index && len(p.Spans) == 1 && p.eqFields < len(ix.Fields) && ix.Fields[p.eqFields] == f {
				p.Ordered, p.Reverse = true, sort[0].Desc
			}
		}
	case AccessFullScan:
		for _, ix := range indexes {
			if ix.Fields[0] == f {
				return Plan{Access: AccessIndex, Index: ix.Name, Spans: []Span{{}}, Ranges: []string{"order by " + f},
					Ordered: true, Reverse: sort[0].Desc}
			}
		}
	}
	return p
}

// rangeSpan bounds one field after prefix pre by the range predicates of the first
// predicate's type; predicates on other types cannot match together with it and are left
// to the filter.
func rangeSpan(pre []byte, rng []Predicate) Span {
	r := rank(rng[0].Values[0], true)
	lo := append(append([]byte(nil), pre...), r)
	hi := append(append([]byte(nil), pre...), r+1)
	for _, p := range rng {
		v := p.Values[0]
		if rank(v, true) != r {
			continue
		}
		k := AppendKey(append([]byte(nil), pre...), v, true)
		switch p.Op {
		case ">":
			lo = maxBytes(lo, prefixEnd(k))
		case ">=":
			lo = maxBytes(lo, k)
		case "<":
			hi = minBytes(hi, k)
		case "<=":
			hi = minBytes(hi, prefixEnd(k))
		}
	}
	return Span{Lo: lo, Hi: hi}
}

// planID serves conjuncts on id from the document key order.
func planID(preds []Predicate) (Plan, int) {
	for _, p := range preds {
		if p.onID() && (p.Op == "==" || p.Op == "in") {
			var spans []Span
			for _, v := range p.Values {
				s, ok := v.(string)
				if !ok {
					continue // never equal to a string id
				}
				spans = append(spans, Span{Lo: []byte(s), Hi: append([]byte(s), 0)})
			}
			if len(spans) > maxSpans {
				continue
			}
			return Plan{Access: AccessID, Spans: dedupeSpans(spans), Ranges: []string{"id " + p.Op + " " + valuesText(p.Values)}}, 100
		}
	}
	var lo, hi []byte
	var desc []string
	for _, p := range preds {
		s, ok := p.Values[0].(string)
		if !p.onID() || !ok {
			continue
		}
		k := []byte(s)
		switch p.Op {
		case ">":
			lo = maxBytes(lo, append(k, 0))
		case ">=":
			lo = maxBytes(lo, k)
		case "<":
			hi = minNil(hi, k)
		case "<=":
			hi = minNil(hi, append(k, 0))
		default:
			continue
		}
		desc = append(desc, "id "+p.Op+" "+valueText(s))
	}
	if desc == nil {
		return Plan{}, 0
	}
	return Plan{Access: AccessID, Spans: []Span{{Lo: lo, Hi: hi}}, Ranges: desc}, 1
}

func dedupe(keys [][]byte) [][]byte {
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	out := keys[:0]
	for i, k := range keys {
		if i == 0 || !bytes.Equal(k, keys[i-1]) {
			out = append(out, k)
		}
	}
	return out
}

func dedupeSpans(spans []Span) []Span {
	sort.Slice(spans, func(i, j int) bool { return bytes.Compare(spans[i].Lo, spans[j].Lo) < 0 })
	out := spans[:0]
	for i, s := range spans {
		if i == 0 || !bytes.Equal(s.Lo, spans[i-1].Lo) {
			out = append(out, s)
		}
	}
	return out
}

func maxBytes(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}

func minBytes(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

// minNil treats nil as +infinity.
func minNil(a, b []byte) []byte {
	if a == nil {
		return b
	}
	return minBytes(a, b)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func valueText(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	if v == nil {
		return "null"
	}
	return fmt.Sprint(v)
}

func valuesText(vs []any) string {
	if len(vs) == 1 {
		return valueText(vs[0])
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = valueText(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
