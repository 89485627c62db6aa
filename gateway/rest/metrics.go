package rest

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerolith_http_requests_total", Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aerolith_http_request_seconds", Help: "HTTP request latency by method and route.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"method", "route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds)
	}
	return m
}

// observe records every request's latency and outcome and logs it at debug level.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		_ = s.app.ErrorHandler(c, err)
	}
	route := c.Route().Path
	code := c.Response().StatusCode()
	elapsed := time.Since(start)
	s.metrics.requests.WithLabelValues(c.Method(), route, strconv.Itoa(code)).Inc()
	s.metrics.seconds.WithLabelValues(c.Method(), route).Observe(elapsed.Seconds())
	s.log.Debug("request", "method", c.Method(), "path", c.Path(), "status", code, "duration", elapsed)
	return nil
}
