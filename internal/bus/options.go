package bus

import (
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Option changes how [Open] builds a [Bus].
type Option func(*options)

type options struct {
	logger     *slog.Logger
	tracer     trace.TracerProvider
	propagator propagation.TextMapPropagator
	registerer prometheus.Registerer
	natsOpts   []nats.Option
}

func defaultOptions() options {
	return options{
		logger:     slog.New(slog.DiscardHandler),
		tracer:     noop.NewTracerProvider(),
		propagator: propagation.TraceContext{},
		registerer: prometheus.NewRegistry(), // metrics kept, not exported
	}
}

// WithLogger sets the logger for connection events, the embedded server and
// consumer results. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { setUnlessNil(&o.logger, l) }
}

// WithTracerProvider sets where producer and consumer spans go. The default records nothing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { setUnlessNil(&o.tracer, tp) }
}

// WithPropagator sets how trace context is written to and read from message
// headers. The default is W3C Trace Context (traceparent, tracestate).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(o *options) { setUnlessNil(&o.propagator, p) }
}

// WithRegisterer sets where the bus registers its Prometheus metrics. The
// default is a private registry, so metrics are kept but not exported.
// Several buses may share one registerer: they share the collectors.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) { setUnlessNil(&o.registerer, r) }
}

// WithNATSOptions appends options to the NATS connection, after the bus's
// own (so they win): reconnect timing in tests, custom dialers, and so on.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) { o.natsOpts = append(o.natsOpts, opts...) }
}

// setUnlessNil sets *dst to v unless v is nil, so that an option given nil
// keeps the default.
func setUnlessNil[T comparable](dst *T, v T) {
	var none T
	if v != none {
		*dst = v
	}
}
