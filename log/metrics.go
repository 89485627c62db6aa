package log

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	proposals      prometheus.Counter
	commands       prometheus.Histogram
	proposeSeconds prometheus.Histogram
	proposeErrors  *prometheus.CounterVec
	readBarrier    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		proposals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aerolith_log_proposals_total", Help: "Raft proposals committed (each holds one or more commands).",
		}),
		commands: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aerolith_log_proposal_commands", Help: "Commands coalesced into one proposal by group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		proposeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aerolith_log_propose_seconds", Help: "Time from proposal to applied result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		proposeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerolith_log_propose_errors_total", Help: "Proposal attempts that failed, by kind (retry: dropped and retried; indeterminate: outcome unknown).",
		}, []string{"kind"}),
		readBarrier: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aerolith_log_read_barrier_seconds", Help: "Time for a linearizable read barrier (ReadIndex).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.proposals, m.commands, m.proposeSeconds, m.proposeErrors, m.readBarrier)
	}
	return m
}
