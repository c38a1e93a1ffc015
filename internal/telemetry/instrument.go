package telemetry

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
)

// The helpers below pass the providers explicitly, so the instrumentation
// never falls back to the global OpenTelemetry providers. Metrics come from
// Prometheus (see internal/admin), so the instrumentation's own OpenTelemetry
// metrics go to a no-op meter provider. A nil *Telemetry means Noop().

// HTTPHandler wraps h in an OpenTelemetry server span named operation that
// continues the trace of the incoming W3C traceparent header.
func HTTPHandler(h http.Handler, operation string, t *Telemetry) http.Handler {
	t = t.orNoop()
	return otelhttp.NewHandler(h, operation,
		otelhttp.WithTracerProvider(t.TracerProvider),
		otelhttp.WithPropagators(t.Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
	)
}

// HTTPTransport wraps base (http.DefaultTransport when nil) so that every
// request gets a client span and carries the trace in W3C headers.
func HTTPTransport(base http.RoundTripper, t *Telemetry) http.RoundTripper {
	t = t.orNoop()
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(t.TracerProvider),
		otelhttp.WithPropagators(t.Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
	)
}

// GRPCServerOption instruments a gRPC server: each call gets a server span
// continuing the caller's trace. grpc.health.v1 calls are not traced (probes
// would drown the real traffic).
func GRPCServerOption(t *Telemetry) grpc.ServerOption {
	t = t.orNoop()
	return grpc.StatsHandler(otelgrpc.NewServerHandler(
		append(t.grpcOptions(), otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))...,
	))
}

// GRPCDialOption instruments a gRPC client: each call gets a client span and
// carries the trace in its metadata.
func GRPCDialOption(t *Telemetry) grpc.DialOption {
	t = t.orNoop()
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(t.grpcOptions()...))
}

// grpcOptions are what both sides of a gRPC call are traced with: t's
// tracer and propagator, and no OpenTelemetry metrics (the services count
// calls in Prometheus).
func (t *Telemetry) grpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(t.TracerProvider),
		otelgrpc.WithPropagators(t.Propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}
