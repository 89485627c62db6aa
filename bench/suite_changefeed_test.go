package bench

import (
	"context"
	"testing"
	"time"

	pb "github.com/aerolithsdb/aerolith/gateway/grpc/aerolithv1"
)

// TestChangefeedAccounting feeds a subscriber events by hand: an acknowledged write
// received once, one received twice, one never received, one received before its
// acknowledgement, one whose write failed, and one the run did not write. Each must land
// in its own count and the failures under their codes.
func TestChangefeedAccounting(t *testing.T) {
	p := Params{Addrs: []string{"127.0.0.1:7070"}, Suite: "changefeed", FieldCount: 2, FieldLength: 16, Collection: "c", Subscribers: 1}.withDefaults()
	wl, err := changefeedSuite().New(p)
	if err != nil {
		t.Fatal(err)
	}
	w := wl.(*changefeedWorkload)
	rec := newRecorder(1)
	env := &WorkerEnv{Collection: "c", Params: p, shard: rec.shard(0), verify: newVerifyCounters(), Tracker: NewTracker()}
	s := &subscriber{env: env, w: w}
	w.subs = []*subscriber{s}
	w.cancel = func() {}

	ack := func(n int64) {
		w.acks.Acked(n, int64(time.Since(w.epoch))*2+1)
		w.acked.Add(1)
	}
	event := func(n int64, coll string) {
		body := w.appendDoc(nil, n, time.Now().Add(-time.Millisecond).UnixNano())
		s.event(&pb.ChangeEvent{EventId: "e", Op: pb.ChangeOp_CHANGE_OP_CREATE, Collection: coll, Id: KeyName(n), AfterJson: body}, time.Now())
	}
	w.next.Store(5)
	ack(0)
	event(0, "c") // delivered
	ack(1)
	event(1, "c")
	event(1, "c") // duplicate
	ack(2)        // never delivered: missing
	event(3, "c") // before its ack
	ack(3)
	event(4, "c")     // its write failed: never acknowledged
	event(9, "other") // not ours

	st := w.Finish(context.Background(), 10*time.Millisecond)
	if st.Settled || st.WritesAcked != 4 || len(st.BySubscriber) != 1 {
		t.Fatalf("streams %+v", st)
	}
	want := SubscriberStats{Expected: 4, Delivered: 3, Missing: 1, Duplicates: 1, Unexpected: 1, Unacked: 1, BeforeAck: 1}
	if got := st.BySubscriber[0]; got != want {
		t.Fatalf("subscriber %+v, want %+v", got, want)
	}
	agg := newAggregator()
	agg.drain(rec, time.Second, true)
	for _, o := range agg.results(nil, 1) {
		switch o.Op {
		case OpDeliver:
			if o.Count != 3 || o.ErrorsByCode["verify_missing_event"] != 1 || o.ErrorsByCode["verify_duplicate_event"] != 1 || o.ErrorsByCode["verify_unexpected_event"] != 1 {
				t.Fatalf("deliver %+v", o)
			}
		case OpDeliverFromSend:
			if o.Count != 3 || o.Latency.MinUs < 900 {
				t.Fatalf("deliver from send %+v", o)
			}
		}
	}
	if v := env.verify.stats(true); v.Mismatches != 3 {
		t.Fatalf("verify %+v", v)
	}
}
