package bus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/telemetry"
)

// Outcomes of a publish, the outcome label of iamflow_bus_published_messages_total.
const (
	outcomeStored    = "stored"
	outcomeDuplicate = "duplicate"
	outcomeError     = "error"
)

// Results of handling a message, the result label of iamflow_bus_handled_messages_total.
const (
	resultDone         = "done"
	resultRetry        = "retry"
	resultTerminal     = "terminal"
	resultDeadLettered = "dead_lettered"
)

type metrics struct {
	published *prometheus.CounterVec
	handled   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	failover  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_bus_published_messages_total",
			Help: "Messages published to JetStream, by stream and outcome (stored, duplicate, error).",
		}, []string{"stream", "outcome"}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_bus_handled_messages_total",
			Help: "Messages settled by a consumer, by consumer and result (done, retry, terminal, dead_lettered).",
		}, []string{"consumer", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "iamflow_bus_handler_duration_seconds",
			Help:    "Time a consumer's handler took for one message (or one coalesced group).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms .. ~4.4min
		}, []string{"consumer"}),
		failover: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_bus_failover_checks_total",
			Help: "Times JetStream kept failing on the connected NATS server for nats.failover_after, by result: " +
				"reconnected (another server answered, the bus moved to it) or stayed (no other server answered either).",
		}, []string{"result"}),
	}
	var err error
	if m.published, err = telemetry.Register(reg, m.published); err != nil {
		return nil, err
	}
	if m.handled, err = telemetry.Register(reg, m.handled); err != nil {
		return nil, err
	}
	if m.duration, err = telemetry.Register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.failover, err = telemetry.Register(reg, m.failover); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) publishedOne(subject string, ack bool, duplicate bool) {
	outcome := outcomeError
	switch {
	case ack && duplicate:
		outcome = outcomeDuplicate
	case ack:
		outcome = outcomeStored
	}
	m.published.WithLabelValues(streamOf(subject), outcome).Inc()
}
