package raftnet

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	redials      prometheus.Counter
	dialFailures prometheus.Counter
	badFrames    prometheus.Counter
	dropped      prometheus.Counter
	repeats      prometheus.Counter
}

// metricsFor builds the transport's metrics and registers them with r (when not nil).
func metricsFor(r prometheus.Registerer) *metrics {
	m := &metrics{
		redials: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aerolith_raft_stream_redials_total",
			Help: "Raft message streams opened again because the previous one had ended or a write on it failed.",
		}),
		dialFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aerolith_raft_dial_failures_total",
			Help: "Dials of another node's raft address that failed.",
		}),
		badFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aerolith_raft_bad_frames_total",
			Help: "Raft streams closed because a received frame could not be read.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aerolith_raft_batches_dropped_total",
			Help: "Raft message batches dropped because their node could not be dialled (within the grace period, before sends to it fail).",
		}),
		repeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aerolith_raft_timeout_now_repeats_total",
			Help: "TimeoutNow messages (leadership transfers) sent again within the transfer window.",
		}),
	}
	if r != nil {
		r.MustRegister(m.redials, m.dialFailures, m.badFrames, m.dropped, m.repeats)
	}
	return m
}
