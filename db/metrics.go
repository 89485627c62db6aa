package db

import (
	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/prometheus/client_golang/prometheus"
)

// tierCollector exports each tier's own statistics at scrape time.
type tierCollector struct {
	d                          *DB
	items, bytes, hits, misses *prometheus.Desc
}

func newTierCollector(d *DB) *tierCollector {
	l := []string{"tier"}
	return &tierCollector{
		d:      d,
		items:  prometheus.NewDesc("aerolith_tier_items", "Records held by a tier (where it counts them).", l, nil),
		bytes:  prometheus.NewDesc("aerolith_tier_bytes", "Bytes held by a tier.", l, nil),
		hits:   prometheus.NewDesc("aerolith_tier_hits_total", "Document lookups a tier answered.", l, nil),
		misses: prometheus.NewDesc("aerolith_tier_misses_total", "Document lookups a tier could not answer.", l, nil),
	}
}

func (c *tierCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.items
	ch <- c.bytes
	ch <- c.hits
	ch <- c.misses
}

func (c *tierCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range []tiers.Stats{c.d.cache.Stats(), c.d.store.Stats(), c.d.archive.Stats()} {
		ch <- prometheus.MustNewConstMetric(c.items, prometheus.GaugeValue, float64(st.Items), st.Tier)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes), st.Tier)
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(st.Hits), st.Tier)
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(st.Misses), st.Tier)
	}
}
