package replicator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/services/replicator/planner"
)

// metrics are the service's Prometheus metrics.
type metrics struct {
	actions  *prometheus.CounterVec
	events   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "iamflow", Subsystem: "replicator", Name: "actions_total",
			Help: "Actions planned for events, by link, target and kind (skip included).",
		}, []string{"link", "target", "kind"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "iamflow", Subsystem: "replicator", Name: "events_total",
			Help: "Events handled, by link, target and result (ok, error).",
		}, []string{"link", "target", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "iamflow", Subsystem: "replicator", Name: "event_duration_seconds",
			Help:    "Time to reconcile one event's entity (reads, plan, writes).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"target"}),
	}
	if r != nil {
		r.MustRegister(m.actions, m.events, m.duration)
	}
	return m
}

// observe records one handled event.
func (m *metrics) observe(d *direction, p planner.Plan, err error, took time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.events.WithLabelValues(d.link.Name, d.target, result).Inc()
	m.duration.WithLabelValues(d.target).Observe(took.Seconds())
	for _, a := range p.Actions {
		m.actions.WithLabelValues(d.link.Name, d.target, string(a.Kind)).Inc()
	}
}
