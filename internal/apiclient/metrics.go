package apiclient

import "github.com/prometheus/client_golang/prometheus"

// RequestMetrics are the collectors every outbound client has, each
// labelled by the remote's name (a domain, a database) and the operation:
// the requests sent, by status code or failure; how long each took; and the
// requests sent again, by reason.
type RequestMetrics struct {
	Requests *prometheus.CounterVec   // {remote, op, code}
	Seconds  *prometheus.HistogramVec // {remote, op}
	Retries  *prometheus.CounterVec   // {remote, op, reason}
}

// RequestMetricsOpts names a client's request metrics and says what they
// count: <Prefix>_requests_total, <Prefix>_request_seconds and
// <Prefix>_retries_total, with the remote's label called Label.
type RequestMetricsOpts struct {
	Prefix, Label                          string
	RequestsHelp, SecondsHelp, RetriesHelp string
	Buckets                                []float64 // of the request durations
}

// NewRequestMetrics registers a client's request metrics on reg, sharing
// them with clients that registered them before (see [Register]); the first
// registration error lands in *err.
func NewRequestMetrics(reg prometheus.Registerer, err *error, o RequestMetricsOpts) RequestMetrics {
	return RequestMetrics{
		Requests: Register(reg, err, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: o.Prefix + "_requests_total", Help: o.RequestsHelp,
		}, []string{o.Label, "op", "code"})),
		Seconds: Register(reg, err, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: o.Prefix + "_request_seconds", Help: o.SecondsHelp, Buckets: o.Buckets,
		}, []string{o.Label, "op"})),
		Retries: Register(reg, err, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: o.Prefix + "_retries_total", Help: o.RetriesHelp,
		}, []string{o.Label, "op", "reason"})),
	}
}
