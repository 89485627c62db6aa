package embedded_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/bench"
	"github.com/aerolithsdb/aerolith/bench/embedded"
)

// TestTinySuitesAgainstEmbeddedNode runs small suites against a real node and checks
// what lands in results.json.
func TestTinySuitesAgainstEmbeddedNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := embedded.Start(ctx, embedded.Config{ParentDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := n.Dir()
	defer func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("data dir %s left behind", dir)
		}
	}()

	for _, suite := range []string{"ycsb-a", "ycsb-e", "write-batch"} {
		t.Run(suite, func(t *testing.T) {
			p := bench.Params{
				Suite:          suite,
				Addrs:          []string{n.Addr()},
				Embedded:       true,
				Clients:        4,
				Ops:            300,
				Warmup:         200 * time.Millisecond,
				RecordCount:    200,
				FieldCount:     5,
				FieldLength:    40,
				BatchSize:      20,
				ScanLength:     5,
				LoadBatchSize:  50,
				VerifyFraction: 1,
				VerifySample:   50,
				Seed:           7,
			}
			res, err := bench.Run(ctx, bench.Config{Params: p, ProbeDir: n.Dir()}, bench.DefaultRegistry())
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			if err := res.WriteDir(out); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(out, "results.json"))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Schema int `json:"schema"`
				Suite  struct {
					Name       string            `json:"name"`
					Emulations map[string]string `json:"emulations"`
				} `json:"suite"`
				Shape struct {
					Target       string `json:"target"`
					NodeCount    int    `json:"node_count"`
					Fsync        bool   `json:"fsync"`
					Cores        int    `json:"cores"`
					CPUModel     string `json:"cpu_model"`
					GoVersion    string `json:"go_version"`
					PayloadBytes int    `json:"payload_bytes"`
					DiskFsync    *struct {
						Writes int `json:"writes"`
					} `json:"disk_fsync"`
				} `json:"shape"`
				Params struct {
					Suite    string `json:"suite"`
					Duration string `json:"duration"`
					Seed     uint64 `json:"seed"`
				} `json:"params"`
				Run struct {
					Ops       int64   `json:"ops"`
					Errors    int64   `json:"errors"`
					OpsPerSec float64 `json:"ops_per_sec"`
					ByOp      []struct {
						Op      string `json:"op"`
						Count   int64  `json:"count"`
						Errors  int64  `json:"errors"`
						Latency struct {
							P50, P99, Max int64
						} `json:"latency_us"`
						HDR string `json:"hdr"`
					} `json:"by_op"`
					Timeline []json.RawMessage `json:"timeline"`
				} `json:"run"`
				Verify struct {
					CheckedInRun   int64 `json:"checked_in_run"`
					CheckedPostRun int64 `json:"checked_post_run"`
					Mismatches     int64 `json:"mismatches"`
				} `json:"verify"`
				Warnings []string `json:"warnings"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.Schema != bench.SchemaVersion || got.Suite.Name != suite || got.Params.Suite != suite || got.Params.Seed != 7 {
				t.Fatalf("header: %+v %+v", got.Suite, got.Params)
			}
			if got.Shape.Target != "embedded" || got.Shape.NodeCount != 1 || !got.Shape.Fsync || got.Shape.Cores < 1 ||
				got.Shape.CPUModel == "" || got.Shape.GoVersion == "" || got.Shape.PayloadBytes != 200 {
				t.Fatalf("shape: %+v", got.Shape)
			}
			if got.Shape.DiskFsync == nil || got.Shape.DiskFsync.Writes == 0 {
				t.Fatalf("no fsync probe in the shape")
			}
			if got.Run.Ops != 300 || got.Run.Errors != 0 || got.Run.OpsPerSec <= 0 || len(got.Run.Timeline) == 0 {
				t.Fatalf("run: ops %d errors %d ops/s %v timeline %d; warnings %v", got.Run.Ops, got.Run.Errors, got.Run.OpsPerSec, len(got.Run.Timeline), got.Warnings)
			}
			for _, o := range got.Run.ByOp {
				if o.Count == 0 || o.Errors != 0 || o.Latency.P50 <= 0 || o.Latency.P50 > o.Latency.P99 || o.Latency.P99 > o.Latency.Max || o.HDR == "" {
					t.Fatalf("op %+v", o)
				}
			}
			if got.Verify.Mismatches != 0 || got.Verify.CheckedPostRun != 50 {
				t.Fatalf("verify %+v; warnings %v", got.Verify, got.Warnings)
			}
			if strings.HasPrefix(suite, "ycsb") && got.Verify.CheckedInRun == 0 {
				t.Fatalf("no reads verified during the run")
			}
			if suite == "ycsb-e" && got.Suite.Emulations["scan"] == "" {
				t.Fatalf("scan not labelled as emulated")
			}
			html, err := os.ReadFile(filepath.Join(out, "report.html"))
			if err != nil || !strings.Contains(string(html), "<svg") {
				t.Fatalf("report.html: %v", err)
			}
		})
	}
}
