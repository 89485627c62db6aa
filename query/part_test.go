package query

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
)

// remoteParts serves shard 2 as another node would: RunPart there, the part through
// JSON, merged here.
type remoteParts struct{ *memSource }

func (r remoteParts) Part(ctx context.Context, q *Query, shard uint64) (*Part, bool, error) {
	if shard != 2 {
		return nil, false, nil
	}
	p, err := RunPart(ctx, q, r.memSource, shard)
	if err != nil {
		return nil, true, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, true, err
	}
	var back Part
	if err := json.Unmarshal(b, &back); err != nil {
		return nil, true, err
	}
	return &back, true, nil
}

// TestRemotePartsMergeLikeLocalShards pages through every sort with and without shard 2
// served as a remote part, and counts, and expects the same pages and cursors.
func TestRemotePartsMergeLikeLocalShards(t *testing.T) {
	c, err := NewCompiler(Config{})
	if err != nil {
		t.Fatal(err)
	}
	local := newMemSource(t, fuzzDocs, fuzzIndexes)
	remote := remoteParts{local}
	for _, expr := range []string{"true", `doc.s == "x"`, `has(doc.a)`, `id >= "b"`} {
		p, err := c.Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, sortBy := range fuzzSorts {
			page := func(src Source, after *Cursor) ([]string, string) {
				t.Helper()
				res, err := Run(context.Background(), &Query{Collection: "c", Filter: p, Sort: sortBy, Limit: 2,
					After: after, Shards: local.shards(), Fields: []string{"s"}}, src)
				if err != nil {
					t.Fatalf("%q by %+v: %v", expr, sortBy, err)
				}
				var ids []string
				for _, h := range res.Hits {
					ids = append(ids, h.ID+":"+string(h.Doc))
				}
				return ids, res.NextCursor
			}
			var after *Cursor
			total := 0
			for range 10 {
				want, wantNext := page(local, after)
				got, gotNext := page(remote, after)
				if !slices.Equal(got, want) || gotNext != wantNext {
					t.Fatalf("%q by %+v after %+v: remote part gives %v next %q, local %v next %q",
						expr, sortBy, after, got, gotNext, want, wantNext)
				}
				total += len(want)
				if wantNext == "" {
					break
				}
				if after, err = DecodeCursor(wantNext, len(sortBy)); err != nil {
					t.Fatal(err)
				}
			}
			if expr == "true" && total != len(fuzzDocs) {
				t.Fatalf("paging by %+v saw %d documents, want %d", sortBy, total, len(fuzzDocs))
			}
		}
		count := func(src Source) int64 {
			res, err := Run(context.Background(), &Query{Collection: "c", Filter: p, Limit: 1, Count: true, Shards: local.shards()}, src)
			if err != nil {
				t.Fatal(err)
			}
			return res.Count
		}
		if got, want := count(remote), count(local); got != want {
			t.Fatalf("count of %q: remote part %d, local %d", expr, got, want)
		}
	}
}
