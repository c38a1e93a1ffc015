package apiclient

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/iamflow/iamflow/internal/telemetry"
)

// Options are what every outbound client's With... functions set in
// common; a client's own options embed them.
type Options struct {
	Logger     *slog.Logger
	Telemetry  *telemetry.Telemetry
	Registerer prometheus.Registerer
	Transport  http.RoundTripper
	Sleep      SleepFunc
}

// Defaults fills in what is not set: the telemetry's logger (else a logger
// that discards), a private registry (metrics kept, not exported), and
// [Sleep].
func (o *Options) Defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
		if o.Telemetry != nil && o.Telemetry.Logger != nil {
			o.Logger = o.Telemetry.Logger
		}
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Sleep == nil {
		o.Sleep = Sleep
	}
}

// HTTPClient is the client's HTTP client: on o.Transport (else the one
// transport makes), traced when telemetry is set, and following no
// redirect (a client answers a redirect itself, or refuses it).
func (o Options) HTTPClient(transport func() http.RoundTripper) *http.Client {
	rt := o.Transport
	if rt == nil {
		rt = transport()
	}
	if o.Telemetry != nil {
		rt = telemetry.HTTPTransport(rt, o.Telemetry)
	}
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Tracer is the client's tracer, called name: the telemetry's, else one
// that records nothing.
func (o Options) Tracer(name string) trace.Tracer {
	if o.Telemetry != nil && o.Telemetry.TracerProvider != nil {
		return o.Telemetry.TracerProvider.Tracer(name)
	}
	return telemetry.Noop().TracerProvider.Tracer(name)
}

// The setters below are what the clients' With... options do with the
// common options: a nil argument keeps the default.

// SetLogger sets the logger unless l is nil.
func (o *Options) SetLogger(l *slog.Logger) {
	if l != nil {
		o.Logger = l
	}
}

// SetRegisterer sets the metrics' registerer unless r is nil.
func (o *Options) SetRegisterer(r prometheus.Registerer) {
	if r != nil {
		o.Registerer = r
	}
}

// SetTransport sets the HTTP transport unless rt is nil.
func (o *Options) SetTransport(rt http.RoundTripper) {
	if rt != nil {
		o.Transport = rt
	}
}

// SetSleep sets how to wait between retries unless f is nil.
func (o *Options) SetSleep(f SleepFunc) {
	if f != nil {
		o.Sleep = f
	}
}
