package embedded_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/bench"
	"github.com/aerolithsdb/aerolith/bench/embedded"
)

// TestQuerySuiteAgainstEmbeddedNode runs the query suite on a small data set against a
// real node: indexes are built and used, the full-scan forms are not served by them, and
// every answer checked matches the loaded data.
func TestQuerySuiteAgainstEmbeddedNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := embedded.Start(ctx, embedded.Config{ParentDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()

	// Each run has its own seed, so its own collection (the name derives from the seed).
	tests := []struct {
		mode  string
		seed  uint64
		kinds []string
		ops   []string
	}{
		{"", 11, nil, []string{"eq/indexed", "eq/full_scan", "range/indexed", "range/full_scan", "topk/indexed", "topk/full_scan", "count/indexed", "count/full_scan"}},
		{"full_scan", 12, []string{"eq", "topk"}, []string{"eq/full_scan", "topk/full_scan"}},
	}
	for _, tc := range tests {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			p := bench.Params{
				Suite:          "query",
				Addrs:          []string{n.Addr()},
				Embedded:       true,
				Clients:        2,
				Ops:            240,
				RecordCount:    1500,
				FieldCount:     4,
				FieldLength:    40,
				LoadBatchSize:  250,
				VerifyFraction: 1,
				VerifySample:   40,
				Seed:           tc.seed,
				QueryIndex:     tc.mode,
				QueryKinds:     tc.kinds,
			}
			res, err := bench.Run(ctx, bench.Config{Params: p}, bench.DefaultRegistry())
			if err != nil {
				t.Fatal(err)
			}
			if res.Load == nil || res.Load.Errors != 0 || res.Load.ByOp[0].Items != 1500 {
				t.Fatalf("load %+v", res.Load)
			}
			if res.Run.Ops != 240 || res.Run.Errors != 0 {
				t.Fatalf("run: %d ops, %d errors; warnings %v", res.Run.Ops, res.Run.Errors, res.Warnings)
			}
			var ops []string
			for _, o := range res.Run.ByOp {
				ops = append(ops, o.Op)
				if o.Count == 0 || o.Errors != 0 || o.Latency.P50Us <= 0 {
					t.Errorf("op %s: %d ok, %d errors, p50 %dµs", o.Op, o.Count, o.Errors, o.Latency.P50Us)
				}
			}
			if !slices.Equal(ops, tc.ops) {
				t.Errorf("ops %v, want %v", ops, tc.ops)
			}
			// Every step's answer was checked (fraction 1), plus one explained query per
			// operation before the run.
			v := res.Verify
			if v.Mismatches != 0 || v.CheckedInRun != 240+int64(len(tc.ops)) || v.CheckedPostRun != 40 || v.PostRun == nil || v.PostRun.Errors != 0 {
				t.Fatalf("verify %+v; warnings %v", v, res.Warnings)
			}
			notes := res.Suite.Notes
			for _, op := range tc.ops {
				plan := notes["plan "+op]
				want := "full_scan on"
				if strings.HasSuffix(op, "/indexed") {
					want = "index by_"
				}
				if !strings.Contains(plan, want) {
					t.Errorf("plan of %s: %q, want %q", op, plan, want)
				}
			}
			if built := strings.Contains(notes["index_build"], "by_customer, by_total, by_city"); built != (tc.mode != "full_scan") {
				t.Errorf("index_build note %q with mode %q", notes["index_build"], tc.mode)
			}
			if res.Shape.DocBytes <= res.Shape.PayloadBytes || res.Shape.PayloadBytes != 160 {
				t.Errorf("shape: payload %d, document %d", res.Shape.PayloadBytes, res.Shape.DocBytes)
			}
		})
	}
}
