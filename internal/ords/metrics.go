package ords

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/apiclient"
)

// metrics are the client's Prometheus collectors. Clients of several
// databases may share one Registerer; they share the collectors, told apart
// by the database label.
//
//	iamflow_ords_requests_total{database,op,code}       HTTP requests sent (code: status, network, timeout)
//	iamflow_ords_request_seconds{database,op}           duration of each HTTP request, body included
//	iamflow_ords_retries_total{database,op,reason}      requests sent again (reason: http_NNN, ora_NNNNN, network, unauthorized)
//	iamflow_ords_statement_errors_total{database,ora}   statements ORDS reported failed, by ORA code
//	iamflow_ords_in_flight{database}                    requests holding one of the max_concurrency slots
//	iamflow_ords_slot_wait_seconds{database}            time spent waiting for a slot
type metrics struct {
	apiclient.RequestMetrics
	sqlErrors *prometheus.CounterVec
	inFlight  *prometheus.GaugeVec
	slotWait  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var err error
	m := &metrics{
		RequestMetrics: apiclient.NewRequestMetrics(reg, &err, apiclient.RequestMetricsOpts{
			Prefix:       "iamflow_ords",
			Label:        "database",
			RequestsHelp: "HTTP requests to ORDS, by database, operation and status code (or network, timeout).",
			SecondsHelp:  "Duration of HTTP requests to ORDS, response body included.",
			RetriesHelp:  "Requests to ORDS sent again, by reason.",
			Buckets:      []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		sqlErrors: apiclient.Register(reg, &err, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_ords_statement_errors_total",
			Help: "Statements ORDS reported as failed, by Oracle error code.",
		}, []string{"database", "ora"})),
		inFlight: apiclient.Register(reg, &err, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iamflow_ords_in_flight",
			Help: "Requests to ORDS in flight (bounded by max_concurrency).",
		}, []string{"database"})),
		slotWait: apiclient.Register(reg, &err, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "iamflow_ords_slot_wait_seconds",
			Help:    "Time requests waited for one of the database's max_concurrency slots.",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"database"})),
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}
