package ws

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections   *prometheus.GaugeVec
	subscriptions prometheus.Gauge
	eventsSent    *prometheus.CounterVec
	lag           prometheus.Histogram
	queued        prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, queued func() float64) *metrics {
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aerolith_changes_connections", Help: "Open change-stream connections by protocol (ws, sse).",
		}, []string{"protocol"}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aerolith_changes_subscriptions", Help: "Active change subscriptions and live queries.",
		}),
		eventsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerolith_changes_events_sent_total", Help: "Change events written to clients, by protocol.",
		}, []string{"protocol"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aerolith_changes_lag_events", Help: "Events a subscription is behind the heads, sampled at most once a second per subscription.",
			Buckets: []float64{0, 1, 10, 100, 1000, 10000, 100000, 1000000},
		}),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "aerolith_changes_queued_messages", Help: "Messages waiting in WebSocket connections' bounded send queues.",
		}, queued),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.subscriptions, m.eventsSent, m.lag, m.queued)
	}
	return m
}
