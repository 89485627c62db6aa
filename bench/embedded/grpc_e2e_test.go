package embedded_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/bench"
	"github.com/aerolithsdb/aerolith/bench/embedded"
)

// TestSuitesOverGRPC runs tiny suites over gRPC against a real node and checks what lands
// in results.json: the protocol, no errors, reads verified, and for the changefeed suite
// every write delivered exactly once to every subscriber.
func TestSuitesOverGRPC(t *testing.T) {
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
	if n.GRPCAddr() == "" || n.Shards() < 1 {
		t.Fatalf("embedded node: grpc %q, %d shards", n.GRPCAddr(), n.Shards())
	}

	tests := []struct {
		suite, protocol string
		subscribers     int
		ops             []string
	}{
		{"ycsb-a", bench.ProtocolGRPC, 0, []string{"read", "update"}},
		{"write-batch", bench.ProtocolGRPC, 0, []string{"batch"}},
		{"changefeed", bench.ProtocolGRPC, 3, []string{"write", "deliver", "deliver_from_send"}},
		{"changefeed", bench.ProtocolREST, 1, []string{"write", "deliver", "deliver_from_send"}},
	}
	for i, tc := range tests {
		t.Run(tc.suite+"/"+tc.protocol, func(t *testing.T) {
			p := bench.Params{
				Suite:          tc.suite,
				Protocol:       tc.protocol,
				Addrs:          []string{n.Addr()},
				GRPCAddrs:      []string{n.GRPCAddr()},
				Embedded:       true,
				Clients:        4,
				Ops:            200,
				Warmup:         100 * time.Millisecond,
				RecordCount:    200,
				FieldCount:     4,
				FieldLength:    32,
				BatchSize:      10,
				LoadBatchSize:  50,
				VerifyFraction: 1,
				VerifySample:   40,
				Subscribers:    tc.subscribers,
				Seed:           uint64(100 + i),
			}
			res, err := bench.Run(ctx, bench.Config{Params: p, Shards: n.Shards()}, bench.DefaultRegistry())
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
				Shape struct {
					Protocol    string `json:"protocol"`
					Shards      int    `json:"shards"`
					Subscribers int    `json:"subscribers"`
				} `json:"shape"`
				Run struct {
					Ops    int64 `json:"ops"`
					Errors int64 `json:"errors"`
					ByOp   []struct {
						Op      string `json:"op"`
						Count   int64  `json:"count"`
						Errors  int64  `json:"errors"`
						Latency struct {
							P50, P99, Max int64
						} `json:"latency_us"`
					} `json:"by_op"`
					Streams *bench.StreamStats `json:"streams"`
				} `json:"run"`
				Verify struct {
					CheckedPostRun int64 `json:"checked_post_run"`
					Mismatches     int64 `json:"mismatches"`
				} `json:"verify"`
				Warnings []string `json:"warnings"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.Shape.Protocol != tc.protocol || got.Shape.Shards != n.Shards() || got.Shape.Subscribers != tc.subscribers {
				t.Fatalf("shape %+v", got.Shape)
			}
			if got.Run.Ops != 200 || got.Run.Errors != 0 {
				t.Fatalf("run: ops %d errors %d; warnings %v", got.Run.Ops, got.Run.Errors, got.Warnings)
			}
			counts := map[string]int64{}
			for _, o := range got.Run.ByOp {
				if o.Errors != 0 || o.Count == 0 || o.Latency.P50 > o.Latency.P99 || o.Latency.P99 > o.Latency.Max {
					t.Fatalf("op %+v; warnings %v", o, got.Warnings)
				}
				counts[o.Op] = o.Count
			}
			for _, op := range tc.ops {
				if counts[op] == 0 {
					t.Fatalf("no %s in %v", op, counts)
				}
			}
			if got.Verify.Mismatches != 0 || got.Verify.CheckedPostRun != 40 {
				t.Fatalf("verify %+v; warnings %v", got.Verify, got.Warnings)
			}
			if tc.suite != "changefeed" {
				return
			}
			// Every measured write is delivered to every subscriber, timed both ways.
			if counts["deliver"] != 200*int64(tc.subscribers) || counts["deliver_from_send"] != counts["deliver"] {
				t.Fatalf("deliveries %v for 200 writes and %d subscribers", counts, tc.subscribers)
			}
			st := got.Run.Streams
			if st == nil || !st.Settled || st.Subscribers != tc.subscribers || len(st.BySubscriber) != tc.subscribers || st.WritesAcked < 200 {
				t.Fatalf("streams %+v", st)
			}
			for i, s := range st.BySubscriber {
				if s.Expected != st.WritesAcked || s.Delivered != s.Expected || s.Missing+s.Duplicates+s.Unexpected+s.Unacked != 0 {
					t.Fatalf("subscriber %d: %+v", i, s)
				}
			}
		})
	}
}
