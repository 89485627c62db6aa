package materializer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events       prometheus.Counter
	applySeconds prometheus.Histogram
	reads        *prometheus.CounterVec
	readSeconds  *prometheus.HistogramVec
	replicated   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aerolith_materializer_events_applied_total", Help: "Events appended to the event store by apply.",
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aerolith_materializer_apply_seconds", Help: "Time to apply one batch of raft entries.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerolith_tier_reads_total", Help: "Document reads served, by tier and result (hit, miss).",
		}, []string{"tier", "result"}),
		readSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aerolith_tier_read_seconds", Help: "Document read latency by the tier that answered.",
			Buckets: prometheus.ExponentialBuckets(0.000001, 4, 12),
		}, []string{"tier"}),
		replicated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerolith_replicated_events_total",
			Help: "Events of other datacenters decided by apply, by outcome: applied (dominated the document), conflict (concurrent, merged by the rule), seen (dropped as already applied or dominated).",
		}, []string{"outcome"}),
	}
	for _, o := range remoteOutcomes {
		m.replicated.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.events, m.applySeconds, m.reads, m.readSeconds, m.replicated)
	}
	return m
}

func (m *metrics) observeRead(tier, result string, start time.Time) {
	m.reads.WithLabelValues(tier, result).Inc()
	m.readSeconds.WithLabelValues(tier).Observe(time.Since(start).Seconds())
}
