package replication

import "github.com/prometheus/client_golang/prometheus"

// collector exposes Status as Prometheus metrics at scrape time, so the metrics and
// GET /v1/replication always agree.
type collector struct{ r *Replicator }

var (
	linkLabels  = []string{"direction", "topic"}
	descEvents  = prometheus.NewDesc("aerolith_replication_events_total", "Records shipped and acknowledged by Kafka (ship) or remote events applied (apply), per link.", linkLabels, nil)
	descSkipped = prometheus.NewDesc("aerolith_replication_skipped_events_total", "Events not shipped or not applied because of a collection policy, or undecodable records, per link.", linkLabels, nil)
	descErrors  = prometheus.NewDesc("aerolith_replication_errors_total", "Errors met by the link (each followed by a retry).", linkLabels, nil)
	descLag     = prometheus.NewDesc("aerolith_replication_lag_events", "Events committed but not yet shipped (ship) or in Kafka but not yet applied (apply).", linkLabels, nil)
	descLagSec  = prometheus.NewDesc("aerolith_replication_lag_seconds", "Age of the oldest event not yet shipped or applied; 0 when caught up.", linkLabels, nil)
	descDelay   = prometheus.NewDesc("aerolith_replication_apply_delay_seconds", "For the last applied batch, the time from its commit at the origin to its apply here.", linkLabels, nil)
	descUp      = prometheus.NewDesc("aerolith_replication_link_up", "1 when the link is working (shipping, applying or idle), else 0.", linkLabels, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvents, descSkipped, descErrors, descLag, descLagSec, descDelay, descUp} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.r.Status().Links {
		if l.Topic == "" {
			continue
		}
		lv := []string{l.Direction, l.Topic}
		up := 0.0
		switch l.State {
		case "shipping", "applying", "idle":
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(l.Events), lv...)
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(l.Skipped), lv...)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(l.Errors), lv...)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(l.LagEvents), lv...)
		ch <- prometheus.MustNewConstMetric(descLagSec, prometheus.GaugeValue, l.LagSeconds, lv...)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, lv...)
		if l.Direction == "apply" {
			ch <- prometheus.MustNewConstMetric(descDelay, prometheus.GaugeValue, l.LastDelaySeconds, lv...)
		}
	}
}
