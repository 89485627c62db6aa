package bench

import (
	"fmt"
	"time"
)

// xdcSuite measures cross-datacenter replication: the workers insert new documents into
// datacenter A (Addrs) while the subscribers watch the run's collection on datacenter B
// (WatchGRPCAddrs), which receives them through Kafka. It is the changefeed workload with
// the subscribers on the other side, so its deliver latency is the replication lag: from
// A's acknowledgement of a write to its arrival on B's change stream (ship, Kafka, apply,
// B's commit and feed). Every acknowledged write must arrive at every subscriber exactly
// once.
func xdcSuite() Suite {
	return Suite{
		Name: "xdc",
		Summary: "writers insert into datacenter A while subscribers watch datacenter B (--watch-grpc-addr): " +
			"replication lag from A's acknowledgement to B's change stream, every write arriving exactly once",
		New: func(p Params) (Workload, error) {
			if len(p.WatchGRPCAddrs) == 0 {
				return nil, fmt.Errorf("%w: xdc: give the other datacenter's gRPC addresses (--watch-grpc-addr)", ErrInvalidConfig)
			}
			if _, err := grpcTargets(p); err != nil {
				return nil, err
			}
			return &xdcWorkload{&changefeedWorkload{p: p, pad: p.FieldCount * p.FieldLength, acks: NewTracker(), epoch: time.Now()}}, nil
		},
	}
}

// xdcWorkload is the changefeed workload with its own description.
type xdcWorkload struct {
	*changefeedWorkload
}

func (w *xdcWorkload) Info() WorkloadInfo {
	info := w.changefeedWorkload.Info()
	info.Notes = map[string]string{
		OpWrite: fmt.Sprintf("insert (put, if-none-match) of a new document carrying its key number and send time into datacenter A, over %s",
			w.p.Protocol),
		OpDeliver: fmt.Sprintf("replication lag: an event received by a subscriber of datacenter B (ChangeService.Watch on %v), timed from "+
			"A's acknowledgement of the write; one per write per subscriber (%d subscribers)", w.p.WatchGRPCAddrs, w.p.Subscribers),
		OpDeliverFromSend: "the same events timed from the client-side send time in the document",
	}
	return info
}
