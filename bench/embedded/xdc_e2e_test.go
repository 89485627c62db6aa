package embedded_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/bench"
	"github.com/aerolithsdb/aerolith/node"
	"github.com/aerolithsdb/aerolith/replication"
)

// TestXDCSuiteBetweenTwoDatacenters runs a tiny xdc suite: writes to one node, its
// subscribers on a node of another datacenter that receives them through Kafka (kfake).
// Every acknowledged write must reach every subscriber exactly once.
func TestXDCSuiteBetweenTwoDatacenters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k, err := replication.StartDevKafka("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	start := func(dc string) *node.Node {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		raft := l.Addr().String()
		l.Close()
		n, err := node.Start(ctx, node.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: raft, Shards: 2, DC: dc,
			Replication: replication.Config{Brokers: []string{k.Addr()}, DiscoverInterval: 300 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	east, west := start("east"), start("west")
	p := bench.Params{
		Suite: "xdc", Protocol: bench.ProtocolGRPC,
		Addrs: []string{east.HTTPAddr()}, GRPCAddrs: []string{east.GRPCAddr()}, WatchGRPCAddrs: []string{west.GRPCAddr()},
		Clients: 4, Ops: 200, Warmup: 100 * time.Millisecond, FieldCount: 4, FieldLength: 32,
		VerifyFraction: 1, VerifySample: 40, Subscribers: 2, Seed: 7,
	}
	res, err := bench.Run(ctx, bench.Config{Params: p}, bench.DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Ops != 200 || res.Run.Errors != 0 || res.Verify.Mismatches != 0 {
		t.Fatalf("run: ops %d errors %d mismatches %d; warnings %v", res.Run.Ops, res.Run.Errors, res.Verify.Mismatches, res.Warnings)
	}
	counts := map[string]int64{}
	for _, o := range res.Run.ByOp {
		counts[o.Op] = o.Count
	}
	if counts["write"] != 200 || counts["deliver"] != 400 {
		t.Fatalf("counts %v, want 200 writes delivered to 2 subscribers", counts)
	}
	st := res.Run.Streams
	if st == nil || !st.Settled || len(st.BySubscriber) != 2 || st.WritesAcked < 200 {
		t.Fatalf("streams %+v", st)
	}
	for i, s := range st.BySubscriber {
		if s.Expected != st.WritesAcked || s.Delivered != s.Expected || s.Missing+s.Duplicates+s.Unexpected+s.Unacked != 0 {
			t.Fatalf("subscriber %d: %+v", i, s)
		}
	}
}
