package query

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// RawDoc is a stored document as a Source returns it.
type RawDoc struct {
	ID      string
	Version uint64
	TS      time.Time
	Stamp   uint64 // the storage's own timestamp, passed through to the Hit
	Body    []byte
}

// Source is what a query needs from storage. Implementations are safe for concurrent use
// across shards. Scan callbacks return false to stop.
type Source interface {
	// Indexes returns the indexes of collection that are ready on shard.
	Indexes(shard uint64, collection string) ([]IndexDef, error)
	// ScanDocs visits the live documents of collection in shard with lo <= id < hi in id
	// order (nil bounds are open).
	ScanDocs(ctx context.Context, shard uint64, collection string, lo, hi []byte, fn func(RawDoc) bool) error
	// ScanIndex visits the ids whose index key (the AppendKey encoding of the index's
	// fields) lies in [lo, hi), in key order.
	ScanIndex(ctx context.Context, shard uint64, collection, index string, lo, hi []byte, fn func(id string) bool) error
	// Get returns a live document, or ok false.
	Get(ctx context.Context, shard uint64, collection, id string) (RawDoc, bool, error)
}

// ReverseScanner is implemented by sources that can also scan an index backwards, which
// lets an index serve a descending sort.
type ReverseScanner interface {
	ScanIndexReverse(ctx context.Context, shard uint64, collection, index string, lo, hi []byte, fn func(id string) bool) error
}

// SortField orders results by a document field.
type SortField struct {
	Field string // dotted path under doc
	Desc  bool
}

// Query is one request against a collection.
type Query struct {
	Collection string
	Filter     *Program
	Sort       []SortField
	Limit      int
	After      *Cursor  // from DecodeCursor; nil for the first page
	Fields     []string // projection: dotted paths; empty for the whole document
	Count      bool     // count matches instead of returning them
	Explain    bool
	Shards     []uint64
}

// Hit is one result document.
type Hit struct {
	ID      string          `json:"id"`
	Version uint64          `json:"version"`
	Stamp   uint64          `json:"stamp"`
	Doc     json.RawMessage `json:"doc,omitempty"`
}

// ShardExplain is what one shard did.
type ShardExplain struct {
	Shard      uint64        `json:"shard"`
	Access     string        `json:"access"`
	Index      string        `json:"index,omitempty"`
	Ordered    bool          `json:"sort_from_index,omitempty"`
	Ranges     []string      `json:"ranges,omitempty"`
	Examined   int64         `json:"docs_examined"`
	Matched    int64         `json:"docs_matched"`
	EvalErrors int64         `json:"eval_errors"`
	Duration   time.Duration `json:"-"`
	Millis     float64       `json:"time_ms"`
}

// Result is a page of results, or a count.
type Result struct {
	Hits       []Hit
	NextCursor string
	Count      int64
	Plan       []ShardExplain
}

// candidate is a matched document with its sort key.
type candidate struct {
	hit     Hit
	values  []any
	present []bool
}

// order returns the paths of q's sort fields and the order of its results.
func order(q *Query) ([][]string, func(a, b *candidate) bool, error) {
	if q.Limit <= 0 {
		return nil, nil, fmt.Errorf("%w: limit must be positive", ErrInvalid)
	}
	sortPaths := make([][]string, len(q.Sort))
	for i, s := range q.Sort {
		sortPaths[i] = SplitPath(s.Field)
	}
	less := func(a, b *candidate) bool {
		return compareKeys(q.Sort, a.values, a.present, a.hit.ID, b.values, b.present, b.hit.ID) < 0
	}
	return sortPaths, less, nil
}

// Run runs q on every shard in parallel and merges the shards' results.
func Run(ctx context.Context, q *Query, src Source) (*Result, error) {
	sortPaths, less, err := order(q)
	if err != nil {
		return nil, err
	}

	type shardOut struct {
		cands   []*candidate
		count   int64
		explain ShardExplain
		err     error
	}
	outs := make([]shardOut, len(q.Shards))
	parts, _ := src.(PartSource)
	var wg sync.WaitGroup
	for i, shard := range q.Shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &outs[i]
			if parts != nil {
				p, ok, err := parts.Part(ctx, q, shard)
				if err != nil || ok {
					o.err = err
					if ok {
						o.cands, o.count, o.explain = p.candidates(), p.Count, p.Explain
					}
					return
				}
			}
			o.cands, o.count, o.explain, o.err = runShard(ctx, q, src, shard, sortPaths, less)
		}()
	}
	wg.Wait()
	res := &Result{}
	var all []*candidate
	for _, o := range outs {
		if o.err != nil {
			return nil, o.err
		}
		res.Count += o.count
		all = append(all, o.cands...)
		if q.Explain {
			res.Plan = append(res.Plan, o.explain)
		}
	}
	if q.Count {
		return res, nil
	}
	sort.Slice(all, func(i, j int) bool { return less(all[i], all[j]) })
	if len(all) > q.Limit {
		all = all[:q.Limit]
	}
	for _, c := range all {
		res.Hits = append(res.Hits, c.hit)
	}
	if len(all) == q.Limit {
		last := all[len(all)-1]
		res.NextCursor = Cursor{Values: last.values, Present: last.present, ID: last.hit.ID}.Encode()
	}
	return res, nil
}

// Part is one shard's share of a query: its first Limit matches in the query's order,
// each with its sort key, or its count. A node that holds no replica of a shard gets the
// shard's part from one that does (PartSource), and Run merges it like a local shard's.
type Part struct {
	Hits    []PartHit    `json:"hits,omitempty"`
	Count   int64        `json:"count,omitempty"`
	Explain ShardExplain `json:"explain"`
}

// PartHit is a matched document with the sort values it was ordered by.
type PartHit struct {
	Hit
	Values  []any  `json:"values,omitempty"`
	Present []bool `json:"present,omitempty"`
}

// PartSource is a Source that has some shards' parts run elsewhere: Part returns ok
// false for a shard the Source serves itself.
type PartSource interface {
	Part(ctx context.Context, q *Query, shard uint64) (p *Part, ok bool, err error)
}

// RunPart runs q on one shard of src and returns the shard's part (q.Shards is not used).
func RunPart(ctx context.Context, q *Query, src Source, shard uint64) (*Part, error) {
	sortPaths, less, err := order(q)
	if err != nil {
		return nil, err
	}
	cands, count, ex, err := runShard(ctx, q, src, shard, sortPaths, less)
	if err != nil {
		return nil, err
	}
	p := &Part{Count: count, Explain: ex}
	for _, c := range cands {
		p.Hits = append(p.Hits, PartHit{Hit: c.hit, Values: c.values, Present: c.present})
	}
	return p, nil
}

// candidates returns p's hits as Run merges them. A part that crossed the network
// carries its sort values in their JSON form, which Compare orders like the originals.
func (p *Part) candidates() []*candidate {
	out := make([]*candidate, len(p.Hits))
	for i, h := range p.Hits {
		out[i] = &candidate{hit: h.Hit, values: h.Values, present: h.Present}
	}
	return out
}

func runShard(ctx context.Context, q *Query, src Source, shard uint64, sortPaths [][]string,
	less func(a, b *candidate) bool) ([]*candidate, int64, ShardExplain, error) {
	start := time.Now()
	indexes, err := src.Indexes(shard, q.Collection)
	if err != nil {
		return nil, 0, ShardExplain{}, err
	}
	rev, canReverse := src.(ReverseScanner)
	p := plan(q.Filter.conjuncts, indexes)
	if !q.Count {
		p = planSort(p, q.Sort, indexes, canReverse)
	}
	ex := ShardExplain{Shard: shard, Access: p.Access, Index: p.Index, Ranges: p.Ranges, Ordered: p.Ordered}
	top := &topK{less: less, limit: q.Limit}
	var count int64
	var runErr error
	// In id order with no sort, the first Limit matches after the cursor are the answer.
	idOrdered := len(q.Sort) == 0 && p.Access != AccessIndex

	visit := func(raw RawDoc) bool {
		ex.Examined++
		var body map[string]any
		if err := json.Unmarshal(raw.Body, &body); err != nil {
			runErr = fmt.Errorf("query: document %q: %w", raw.ID, err)
			return false
		}
		if p.Ordered && top.Len() >= q.Limit && pastPage(q.Sort[0], body, sortPaths[0], top.worst()) {
			return false // the index order guarantees nothing later makes the page
		}
		d := &Doc{ID: raw.ID, Version: raw.Version, TS: raw.TS, Body: body}
		ok, evalErr, err := q.Filter.match(d)
		if err != nil {
			runErr = err
			return false
		}
		if evalErr {
			ex.EvalErrors++
		}
		if !ok {
			return true
		}
		c := &candidate{values: make([]any, len(sortPaths)), present: make([]bool, len(sortPaths))}
		for i, sp := range sortPaths {
			c.values[i], c.present[i] = Lookup(body, sp)
		}
		c.hit = Hit{ID: raw.ID, Version: raw.Version, Stamp: raw.Stamp}
		if q.After != nil && compareKeys(q.Sort, c.values, c.present, c.hit.ID, q.After.Values, q.After.Present, q.After.ID) <= 0 {
			return true
		}
		ex.Matched++
		if q.Count {
			count++
			return ctx.Err() == nil
		}
		if !top.admits(c) {
			return ctx.Err() == nil
		}
		c.hit.Doc = project(raw.Body, body, q.Fields)
		top.add(c)
		if idOrdered && top.Len() >= q.Limit {
			return false
		}
		return ctx.Err() == nil
	}

	switch p.Access {
	case AccessIndex:
		scan := src.ScanIndex
		if p.Reverse {
			scan = rev.ScanIndexReverse
		}
		for _, sp := range p.Spans {
			err = scan(ctx, shard, q.Collection, p.Index, sp.Lo, sp.Hi, func(id string) bool {
				raw, ok, gerr := src.Get(ctx, shard, q.Collection, id)
				if gerr != nil {
					runErr = gerr
					return false
				}
				if !ok {
					return true // deleted between the index read and the document read
				}
				return visit(raw)
			})
			if err != nil || runErr != nil {
				break
			}
		}
	default:
		spans := p.Spans
		if p.Access == AccessFullScan {
			spans = []Span{{}}
		}
		for _, sp := range spans {
			lo := sp.Lo
			if idOrdered && q.After != nil && (lo == nil || string(lo) <= q.After.ID) {
				lo = append([]byte(q.After.ID), 0)
			}
			if sp.Hi != nil && lo != nil && string(lo) >= string(sp.Hi) {
				continue
			}
			err = src.ScanDocs(ctx, shard, q.Collection, lo, sp.Hi, visit)
			if err != nil || runErr != nil || (idOrdered && top.Len() >= q.Limit) {
				break
			}
		}
	}
	if err == nil {
		err = runErr
	}
	if err == nil {
		err = ctx.Err()
	}
	ex.Duration = time.Since(start)
	ex.Millis = float64(ex.Duration.Microseconds()) / 1000
	return top.sorted(), count, ex, err
}

// compareKeys orders two documents by the sort fields, then by id.
func compareKeys(sf []SortField, av []any, ap []bool, aid string, bv []any, bp []bool, bid string) int {
	for i, f := range sf {
		c := Compare(av[i], ap[i], bv[i], bp[i])
		if f.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return strings.Compare(aid, bid)
}

// topK keeps the Limit smallest candidates: a max-heap on the order.
type topK struct {
	items []*candidate
	less  func(a, b *candidate) bool
	limit int
}

func (t *topK) Len() int           { return len(t.items) }
func (t *topK) Less(i, j int) bool { return t.less(t.items[j], t.items[i]) }
func (t *topK) Swap(i, j int)      { t.items[i], t.items[j] = t.items[j], t.items[i] }
func (t *topK) Push(x any)         { t.items = append(t.items, x.(*candidate)) }
func (t *topK) Pop() any {
	x := t.items[len(t.items)-1]
	t.items = t.items[:len(t.items)-1]
	return x
}

// worst returns the candidate the next admission would evict.
func (t *topK) worst() *candidate { return t.items[0] }

// pastPage reports whether a document with body, met in index order of the sort field,
// sorts strictly after the page's worst candidate and so does everything after it. Lists
// and objects are not ordered by the index among themselves, so they never end a scan.
func pastPage(sf SortField, body map[string]any, path []string, worst *candidate) bool {
	v, ok := Lookup(body, path)
	if r := rank(v, ok); r == rankList || r == rankObject {
		return false
	}
	c := Compare(v, ok, worst.values[0], worst.present[0])
	if sf.Desc {
		c = -c
	}
	return c > 0
}

// admits reports whether c would enter the top k.
func (t *topK) admits(c *candidate) bool {
	return len(t.items) < t.limit || t.less(c, t.items[0])
}

func (t *topK) add(c *candidate) {
	heap.Push(t, c)
	if len(t.items) > t.limit {
		heap.Pop(t)
	}
}

func (t *topK) sorted() []*candidate {
	out := append([]*candidate(nil), t.items...)
	sort.Slice(out, func(i, j int) bool { return t.less(out[i], out[j]) })
	return out
}

// project returns the document restricted to fields (dotted paths), or raw when fields
// is empty.
func project(raw []byte, body map[string]any, fields []string) json.RawMessage {
	if len(fields) == 0 {
		return append(json.RawMessage(nil), raw...)
	}
	out := map[string]any{}
	for _, f := range fields {
		path := SplitPath(f)
		v, ok := Lookup(body, path)
		if !ok {
			continue
		}
		m := out
		for _, p := range path[:len(path)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[path[len(path)-1]] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}

// ValidateFieldPath reports whether p is a usable dotted path.
func ValidateFieldPath(p string) error {
	if p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
		return fmt.Errorf("%w: field path %q", ErrInvalid, p)
	}
	return nil
}
