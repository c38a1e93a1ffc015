package identitydomain

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/apiclient"
)

// metrics are the client's Prometheus collectors. Several clients (one per
// domain) may register on the same Registerer: they share the collectors,
// told apart by the domain label.
//
//	iamflow_identitydomain_requests_total{domain,op,code}      one per HTTP request sent (code: the status,
//	                                                           or network, timeout), or refused by the breaker (breaker_open)
//	iamflow_identitydomain_request_seconds{domain,op}          duration of each HTTP request, body included
//	iamflow_identitydomain_retries_total{domain,op,reason}     retries, by reason: 429, 5xx, timeout, network, unauthorized
//	iamflow_identitydomain_rate_limit_wait_seconds{domain}     time spent waiting for the client-side rate limit
//	iamflow_identitydomain_breaker_open{domain}                1 while the breaker is open or half-open, else 0
//	iamflow_identitydomain_paging_faults_total{domain,fault}   paging invariants a server broke (paging.go), by fault
type metrics struct {
	apiclient.RequestMetrics
	rateWait     *prometheus.HistogramVec
	breakerOpen  *prometheus.GaugeVec
	pagingFaults *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var err error
	m := &metrics{
		RequestMetrics: apiclient.NewRequestMetrics(reg, &err, apiclient.RequestMetricsOpts{
			Prefix:       "iamflow_identitydomain",
			Label:        "domain",
			RequestsHelp: "HTTP requests to identity domains, by domain, operation and status code (or network, timeout, breaker_open).",
			SecondsHelp:  "Duration of HTTP requests to identity domains, response body included.",
			RetriesHelp:  "Requests to identity domains sent again, by reason (429, 5xx, timeout, network, unauthorized).",
			Buckets:      []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		rateWait: apiclient.Register(reg, &err, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "iamflow_identitydomain_rate_limit_wait_seconds",
			Help:    "Time requests waited for the client-side rate limit of their domain.",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"domain"})),
		breakerOpen: apiclient.Register(reg, &err, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iamflow_identitydomain_breaker_open",
			Help: "1 while the domain's circuit breaker is open or half-open, 0 when closed.",
		}, []string{"domain"})),
		pagingFaults: apiclient.Register(reg, &err, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_identitydomain_paging_faults_total",
			Help: "Paging invariants an identity domain (or SCIM server) broke in a listing, by fault; a fault makes the read incomplete unless a fallback reads the list whole.",
		}, []string{"domain", "fault"})),
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}
