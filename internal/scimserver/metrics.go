package scimserver

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	events   *prometheus.CounterVec
}

// newMetrics creates the metrics and registers them with r (nil: kept, not
// exported).
func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_scim_requests_total", Help: "SCIM requests answered for pushed sources, by source, method and status.",
		}, []string{"source", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "iamflow_scim_request_duration_seconds", Help: "Time to answer a SCIM request, the JetStream writes and publish included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"source"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_scim_events_total", Help: "Identity events of pushed sources sent to JetStream: published, duplicate or unavailable.",
		}, []string{"source", "outcome"}),
	}
	if r != nil {
		r.MustRegister(m.requests, m.latency, m.events)
	}
	return m
}
