package telemetry

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// The helpers below pass the providers explicitly, so the instrumentation
// never falls back to the global OpenTelemetry providers. Metrics come from
// Prometheus (see internal/admin), so the instrumentation's own OpenTelemetry
// metrics go to a no-op meter provider. A nil *Telemetry means Noop().

// HTTPHandler wraps h in an OpenTelemetry server span named operation that
// continues the trace of the incoming W3C traceparent header (and carries its
// baggage). The span's attributes (method, path, peer, user agent, status)
// are computed only when the span records, so a process that exports no
// traces pays for reading the header and making the ids, and nothing else:
// the webhook runs on this path for every event OCI delivers.
func HTTPHandler(h http.Handler, operation string, t *Telemetry) http.Handler {
	t = t.orNoop()
	tracer, prop := t.TracerProvider.Tracer(instrumentationName), t.Propagator
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), httpFields{propagation.HeaderCarrier(r.Header)})
		ctx, span := tracer.Start(ctx, operation, serverSpan)
		defer span.End()
		r = r.WithContext(ctx)
		if !span.IsRecording() {
			h.ServeHTTP(w, r)
			return
		}
		span.SetAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.Path),
			semconv.ServerAddress(r.Host),
			semconv.NetworkPeerAddress(r.RemoteAddr),
			semconv.UserAgentOriginal(r.UserAgent()),
		)
		sw := &StatusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		code := sw.Status()
		span.SetAttributes(semconv.HTTPResponseStatusCode(code))
		if code >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(code))
		}
	})
}

// httpFields reads the W3C fields from request headers by their
// canonical names, made once: propagation.HeaderCarrier canonicalises the
// propagators' lower-case names on every request, an allocation each.
type httpFields struct{ propagation.HeaderCarrier }

// canonicalFields are the W3C trace context and baggage fields by the
// names the propagators ask for.
var canonicalFields = map[string]string{
	"traceparent": http.CanonicalHeaderKey("traceparent"),
	"tracestate":  http.CanonicalHeaderKey("tracestate"),
	"baggage":     http.CanonicalHeaderKey("baggage"),
}

// canonical is key's canonical name when it is a W3C field, else key as
// it came (HeaderCarrier canonicalises it, as it would have).
func (c httpFields) canonical(key string) string {
	if k, ok := canonicalFields[key]; ok {
		return k
	}
	return key
}

// Get returns the first value of key.
func (c httpFields) Get(key string) string {
	return c.HeaderCarrier.Get(c.canonical(key))
}

// Values returns every value of key.
func (c httpFields) Values(key string) []string {
	return c.HeaderCarrier.Values(c.canonical(key))
}

// serverSpan is the kind of HTTPHandler's spans, made once.
var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// instrumentationName names the tracer of HTTPHandler's spans.
const instrumentationName = "github.com/iamflow/iamflow/internal/telemetry"

// StatusWriter is an http.ResponseWriter that remembers the status code a
// handler wrote, for its span and its metrics. It flushes and unwraps
// (http.ResponseController) like the writer it wraps.
type StatusWriter struct {
	http.ResponseWriter
	code int
}

// Status is the code written: 200 if the handler wrote a body without one,
// or nothing at all.
func (w *StatusWriter) Status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// WriteHeader remembers the first code written and writes it.
func (w *StatusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write remembers 200 if no code was written, and writes b.
func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered, where the wrapped writer can.
func (w *StatusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap gives http.ResponseController the wrapped writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
