package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/query"
	"github.com/aerolithsdb/aerolith/tiers"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

// Query limits.
const (
	DefaultQueryLimit = 100
	MaxIndexFields    = 8
	backfillStep      = 1000
)

// QueryRequest is a query as the gateways receive it.
type QueryRequest struct {
	Collection  string
	Filter      string
	Sort        []query.SortField
	Limit       int // 0: DefaultQueryLimit
	Cursor      string
	Fields      []string
	Count       bool
	Explain     bool
	Consistency Consistency
	AsOf        *AsOf // nil: the present
}

// QueryResult is a page of documents, or a count, and the plan when asked.
type QueryResult struct {
	Docs       []Doc
	NextCursor string
	Count      int64
	Plan       []query.ShardExplain
}

// Query runs a filter over a collection on every shard and merges the results.
func (d *DB) Query(ctx context.Context, r QueryRequest) (*QueryResult, error) {
	if !ValidCollection(r.Collection) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidCollection, r.Collection)
	}
	if r.Limit == 0 {
		r.Limit = DefaultQueryLimit
	}
	if r.Limit < 0 || r.Limit > d.cfg.MaxQueryLimit {
		return nil, fmt.Errorf("%w: limit must be in 1..%d", ErrInvalidArgument, d.cfg.MaxQueryLimit)
	}
	for _, s := range r.Sort {
		if err := query.ValidateFieldPath(s.Field); err != nil {
			return nil, err
		}
	}
	for _, f := range r.Fields {
		if err := query.ValidateFieldPath(f); err != nil {
			return nil, err
		}
	}
	prog, err := d.compiler.Compile(r.Filter)
	if err != nil {
		return nil, err
	}
	q := &query.Query{
		Collection: r.Collection, Filter: prog, Sort: r.Sort, Limit: r.Limit,
		Fields: r.Fields, Count: r.Count, Explain: r.Explain, Shards: d.shardIDs(),
	}
	if r.Cursor != "" {
		if q.After, err = query.DecodeCursor(r.Cursor, len(r.Sort)); err != nil {
			return nil, err
		}
	}
	for _, s := range q.Shards {
		if !d.local(s) {
			continue // its part runs on a node that holds it, barrier included
		}
		if err := d.barrier(ctx, s, r.Consistency); err != nil {
			return nil, err
		}
	}
	var local query.Source = source{d}
	if r.AsOf != nil {
		local = asOfSource{d: d, at: r.AsOf}
	}
	src := partsSource{Source: local, remoteParts: remoteParts{d: d, r: r}}
	res, err := query.Run(ctx, q, src)
	if err != nil {
		return nil, err
	}
	out := &QueryResult{NextCursor: res.NextCursor, Count: res.Count, Plan: res.Plan}
	for _, h := range res.Hits {
		out.Docs = append(out.Docs, Doc{Collection: r.Collection, ID: h.ID, Version: h.Version, TS: log.Timestamp(h.Stamp), Body: h.Doc})
	}
	return out, nil
}

// partsSource serves the shards this node holds from its tiers and has the others' parts
// run by nodes that hold them.
type partsSource struct {
	query.Source
	remoteParts
}

// ScanIndexReverse scans backwards through the local source (only a source with indexes
// plans a reverse scan, and only source has indexes).
func (p partsSource) ScanIndexReverse(ctx context.Context, shard uint64, coll, index string, lo, hi []byte, fn func(string) bool) error {
	rev, ok := p.Source.(query.ReverseScanner)
	if !ok {
		return fmt.Errorf("db: shard %d: this source cannot scan an index backwards", shard)
	}
	return rev.ScanIndexReverse(ctx, shard, coll, index, lo, hi, fn)
}

// localShards returns the shards this node holds a replica of.
func (d *DB) localShards() []uint64 {
	var out []uint64
	for _, s := range d.shardIDs() {
		if d.local(s) {
			out = append(out, s)
		}
	}
	return out
}

func (d *DB) shardIDs() []uint64 {
	out := make([]uint64, d.host.Shards())
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// source serves queries from the local tiers.
type source struct{ d *DB }

func (s source) Indexes(shard uint64, coll string) ([]query.IndexDef, error) {
	defs, err := s.d.store.IndexDefs(shard)
	if err != nil {
		return nil, err
	}
	var out []query.IndexDef
	for _, def := range defs {
		if def.Collection == coll && def.State == l2.IndexReady {
			out = append(out, query.IndexDef{Name: def.Name, Fields: def.Fields})
		}
	}
	return out, nil
}

func rawDoc(id string, d tiers.Doc) query.RawDoc {
	return query.RawDoc{ID: id, Version: d.Version, TS: d.TS.Time(), Stamp: uint64(d.TS), Body: d.Body}
}

func (s source) ScanDocs(ctx context.Context, shard uint64, coll string, lo, hi []byte, fn func(query.RawDoc) bool) error {
	return s.d.store.ScanDocs(ctx, shard, coll, lo, hi, func(id string, d tiers.Doc) bool { return fn(rawDoc(id, d)) })
}

func (s source) ScanIndex(ctx context.Context, shard uint64, coll, index string, lo, hi []byte, fn func(string) bool) error {
	return s.d.store.ScanIndex(ctx, shard, coll, index, lo, hi, false, fn)
}

func (s source) ScanIndexReverse(ctx context.Context, shard uint64, coll, index string, lo, hi []byte, fn func(string) bool) error {
	return s.d.store.ScanIndex(ctx, shard, coll, index, lo, hi, true, fn)
}

func (s source) Get(_ context.Context, shard uint64, coll, id string) (query.RawDoc, bool, error) {
	d, err := s.d.mat.Get(tiers.Key{Shard: shard, Collection: coll, ID: id})
	if errors.Is(err, tiers.ErrNotFound) || err == nil && d.Deleted {
		return query.RawDoc{}, false, nil
	}
	if err != nil {
		return query.RawDoc{}, false, err
	}
	return rawDoc(id, d), true, nil
}

// Index is a secondary index across the node's shards.
type Index struct {
	Collection string
	Name       string
	Fields     []string
	State      string // "building" until every shard has backfilled it, then "ready"
	Entries    int64
}

func validateIndex(coll, name string, fields []string) error {
	if !ValidCollection(coll) {
		return fmt.Errorf("%w: %q", ErrInvalidCollection, coll)
	}
	if !ValidCollection(name) {
		return fmt.Errorf("%w: index name %q must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", ErrInvalidArgument, name)
	}
	if len(fields) == 0 || len(fields) > MaxIndexFields {
		return fmt.Errorf("%w: an index has 1 to %d fields", ErrInvalidArgument, MaxIndexFields)
	}
	for i, f := range fields {
		if err := query.ValidateFieldPath(f); err != nil {
			return err
		}
		if slices.Contains(fields[:i], f) {
			return fmt.Errorf("%w: field %q appears twice", ErrInvalidArgument, f)
		}
	}
	return nil
}

// proposeAll proposes one index operation to every shard and returns each result.
func (d *DB) proposeAll(ctx context.Context, op materializer.IndexOp) ([]materializer.WriteResult, error) {
	shards := d.shardIDs()
	out := make([]materializer.WriteResult, len(shards))
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := op
			cmd := d.command(ProposerPrincipal, nil)
			cmd.Index = &o
			rs, err := d.propose(ctx, s, cmd)
			if err == nil {
				out[i] = rs[0]
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// ProposerPrincipal is the principal of commands the node proposes itself.
const ProposerPrincipal = "system"

// CreateIndex defines an index on every shard; each shard backfills it in the background
// without blocking writes. It reports whether the index is new. Creating an existing index
// with the same fields succeeds; with other fields it fails with ErrIndexExists.
func (d *DB) CreateIndex(ctx context.Context, coll, name string, fields []string) (bool, error) {
	if err := validateIndex(coll, name, fields); err != nil {
		return false, err
	}
	rs, err := d.proposeAll(ctx, materializer.IndexOp{Kind: materializer.IndexCreate, Collection: coll, Name: name, Fields: fields})
	if err != nil {
		return false, err
	}
	created := false
	for _, r := range rs {
		switch r.Status {
		case materializer.StatusConflict:
			return false, fmt.Errorf("%w: %q has other fields", ErrIndexExists, name)
		case materializer.StatusCreated:
			created = true
		}
	}
	d.kickBackfill()
	d.cfg.Logger.Info("index defined", "collection", coll, "index", name, "fields", fields, "new", created)
	return created, nil
}

// DropIndex removes an index and its entries from every shard.
func (d *DB) DropIndex(ctx context.Context, coll, name string) error {
	if !ValidCollection(coll) {
		return fmt.Errorf("%w: %q", ErrInvalidCollection, coll)
	}
	rs, err := d.proposeAll(ctx, materializer.IndexOp{Kind: materializer.IndexDrop, Collection: coll, Name: name})
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Status == materializer.StatusOK {
			return nil
		}
	}
	return fmt.Errorf("%w: no index %q on %q", ErrNotFound, name, coll)
}

// shardIndex is one shard's definition of an index, with its entry count there.
type shardIndex struct {
	l2.IndexDef
	Entries int64 `json:"entries"`
}

// shardIndexes returns the definitions of coll's indexes in shard, from this node's
// replica.
func (d *DB) shardIndexes(s uint64, coll string) ([]shardIndex, error) {
	defs, err := d.store.IndexDefs(s)
	if err != nil {
		return nil, err
	}
	var out []shardIndex
	for _, def := range defs {
		if def.Collection != coll {
			continue
		}
		n, err := d.store.CountIndex(s, coll, def.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, shardIndex{IndexDef: def, Entries: n})
	}
	return out, nil
}

// Indexes lists a collection's indexes with their state and entry counts.
func (d *DB) Indexes(ctx context.Context, coll string, c Consistency) ([]Index, error) {
	if !ValidCollection(coll) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidCollection, coll)
	}
	byName := map[string]*Index{}
	shards := d.shardIDs()
	seen := map[string]int{}
	for _, s := range shards {
		var defs []shardIndex
		var err error
		if d.local(s) {
			if err := d.barrier(ctx, s, c); err != nil {
				return nil, err
			}
			defs, err = d.shardIndexes(s, coll)
		} else {
			err = d.peerCall(ctx, s, "indexes", peerIndexes{Shard: s, Collection: coll, Consistency: c}, &defs)
		}
		if err != nil {
			return nil, err
		}
		for _, def := range defs {
			ix, ok := byName[def.Name]
			if !ok {
				ix = &Index{Collection: coll, Name: def.Name, Fields: def.Fields, State: "ready"}
				byName[def.Name] = ix
			}
			seen[def.Name]++
			if def.State != l2.IndexReady {
				ix.State = "building"
			}
			ix.Entries += def.Entries
		}
	}
	out := make([]Index, 0, len(byName))
	for name, ix := range byName {
		if seen[name] < len(shards) {
			ix.State = "building" // not yet defined on every shard
		}
		out = append(out, *ix)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// kickBackfill wakes the backfill loop.
func (d *DB) kickBackfill() {
	select {
	case d.backfillKick <- struct{}{}:
	default:
	}
}

// backfillLoop proposes backfill steps for every building index until it is ready. Each
// step is a small command, so writes interleave with it; a step proposed from a stale
// position is refused by the state machine and the loop reads the position again.
func (d *DB) backfillLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		progressed := d.backfillOnce(ctx)
		if progressed {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.backfillKick:
		}
	}
}

func (d *DB) backfillOnce(ctx context.Context) bool {
	progressed := false
	for _, s := range d.localShards() {
		defs, err := d.store.IndexDefs(s)
		if err != nil {
			d.cfg.Logger.Warn("backfill: read index definitions", "shard", s, "err", err)
			continue
		}
		for _, def := range defs {
			if def.State != l2.IndexBuilding || ctx.Err() != nil {
				continue
			}
			cmd := d.command(ProposerPrincipal, nil)
			cmd.Index = &materializer.IndexOp{Kind: materializer.IndexBackfill, Collection: def.Collection, Name: def.Name,
				After: def.Backfilled, Limit: backfillStep}
			rs, err := d.propose(ctx, s, cmd)
			if err != nil {
				if ctx.Err() == nil {
					d.cfg.Logger.Warn("backfill step failed", "shard", s, "index", def.Name, "err", err)
				}
				continue
			}
			if rs[0].Status == materializer.StatusOK {
				progressed = true
			}
		}
	}
	return progressed
}
