package ingest

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counters are the numbers ingest reports in its status.
type counters struct {
	requests, received, published, duplicates, unknownType, unknownDomain,
	rejected, unauthorized, unavailable, confirmed, confirmManual atomic.Int64
}

func (c *counters) snapshot() map[string]int64 {
	return map[string]int64{
		"requests":             c.requests.Load(),
		"received":             c.received.Load(),
		"published":            c.published.Load(),
		"duplicates":           c.duplicates.Load(),
		"unknown_type":         c.unknownType.Load(),
		"unknown_domain":       c.unknownDomain.Load(),
		"rejected":             c.rejected.Load(),
		"unauthorized":         c.unauthorized.Load(),
		"unavailable":          c.unavailable.Load(),
		"confirmed":            c.confirmed.Load(),
		"confirmation_pending": c.confirmManual.Load(),
	}
}

type metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	latency  prometheus.Histogram

	// The children every accepted event touches, looked up once.
	accepted, published, duplicate prometheus.Counter
}

// request is the requests counter of an HTTP status code.
func (m *metrics) request(code int) prometheus.Counter {
	if code == http.StatusAccepted {
		return m.accepted
	}
	return m.requests.WithLabelValues(strconv.Itoa(code))
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_ingest_requests_total",
			Help: "Webhook requests by HTTP status code.",
		}, []string{"code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_ingest_events_total",
			Help: "Events received by outcome: published, duplicate, unknown_type, unknown_domain.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "iamflow_ingest_request_seconds",
			Help:    "Webhook request latency, including the JetStream acknowledgement.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	m.accepted = m.requests.WithLabelValues(strconv.Itoa(http.StatusAccepted))
	m.published = m.events.WithLabelValues("published")
	m.duplicate = m.events.WithLabelValues("duplicate")
	if r != nil {
		r.MustRegister(m.requests, m.events, m.latency)
	}
	return m
}
