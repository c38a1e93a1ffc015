// Package telemetry sets up what every iamflow service reports about itself:
// OpenTelemetry traces configured by the standard OTEL_* environment
// variables, W3C trace context propagation (HTTP, gRPC and NATS headers), and
// slog logs that carry the trace and span ids and never print secrets.
//
// Nothing here touches global state: the providers are returned in a
// Telemetry and handed explicitly to whatever needs them.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/iamflow/iamflow/internal/validate"
)

// Telemetry holds a process's tracer provider, propagator and logger. Make
// one with Setup (or Noop in tests and tools) and pass it to what needs it.
type Telemetry struct {
	// TracerProvider makes the tracers; spans are exported as OTEL_* says.
	TracerProvider trace.TracerProvider
	// Propagator reads and writes W3C TraceContext and Baggage.
	Propagator propagation.TextMapPropagator
	// Logger writes JSON or text logs with trace_id/span_id and redaction.
	Logger *slog.Logger

	// exporter names the span exporter chosen: "none", "otlp", "console",
	// another registered name, or "custom" (WithSpanExporter).
	exporter string
	shutdown func(context.Context) error
}

// Option changes how Setup builds the Telemetry.
type Option func(*options)

type options struct {
	logWriter io.Writer
	exporter  sdktrace.SpanExporter
}

// WithLogWriter sends the logs to w instead of os.Stderr.
func WithLogWriter(w io.Writer) Option {
	return func(o *options) { o.logWriter = w }
}

// WithSpanExporter exports spans to e, ignoring OTEL_TRACES_EXPORTER. Spans
// are exported synchronously as each one ends (no batching), which is what
// tests want (e.g. with tracetest.NewInMemoryExporter).
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) { o.exporter = e }
}

// Environment variables read by Setup besides those the OpenTelemetry SDK and
// exporters read themselves (OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_BSP_*, ...).
const (
	envTracesExporter     = "OTEL_TRACES_EXPORTER"
	envOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envSDKDisabled        = "OTEL_SDK_DISABLED"
	envOTLPProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envOTLPTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// Setup builds the process's telemetry from cfg and the environment.
//
// Traces go where OTEL_TRACES_EXPORTER says: otlp (protocol from
// OTEL_EXPORTER_OTLP_PROTOCOL, grpc or http/protobuf, endpoint from
// OTEL_EXPORTER_OTLP_ENDPOINT and friends), console (stdout) or none. When
// OTEL_TRACES_EXPORTER is unset, the exporter is otlp if an
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set and
// none otherwise, so a run on a laptop does not log failed exports.
// OTEL_SDK_DISABLED=true also means none. With none, spans still get ids
// (so logs and propagated headers carry them) but record nothing (idsOnly).
//
// The resource has service.name from cfg.ServiceName, overridden by
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
//
// Call Shutdown to flush the spans not yet exported.
func Setup(ctx context.Context, cfg Config, opts ...Option) (*Telemetry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, validate.Prefix("telemetry.", err)
	}
	o := options{logWriter: os.Stderr}
	for _, opt := range opts {
		opt(&o)
	}
	logger, err := newLogger(cfg, o.logWriter)
	if err != nil {
		return nil, err
	}

	name := cfg.ServiceName
	if name == "" {
		name = DefaultConfig().ServiceName
	}
	res, err := sdkresource.New(ctx,
		sdkresource.WithTelemetrySDK(),
		sdkresource.WithAttributes(attribute.String("service.name", name)),
		sdkresource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME win
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource from OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME: %w", err)
	}

	exporter, exporterName := o.exporter, "custom"
	if exporter == nil {
		exporter, exporterName, err = exporterFromEnv(ctx)
		if err != nil {
			return nil, err
		}
	}

	tel := &Telemetry{
		TracerProvider: idsOnly{},
		Propagator:     newPropagator(),
		Logger:         logger,
		exporter:       exporterName,
	}
	if exporterName == "none" {
		return tel, nil
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if o.exporter != nil {
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exporter))
	} else {
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exporter))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	tel.TracerProvider = tp
	tel.shutdown = func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("telemetry: flushing spans: %w", err)
		}
		return nil
	}
	return tel, nil
}

// exporterFromEnv picks the span exporter from the OTEL_* variables through
// contrib's autoexport, with iamflow's default when OTEL_TRACES_EXPORTER is
// unset.
func exporterFromEnv(ctx context.Context) (sdktrace.SpanExporter, string, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(envSDKDisabled)), "true") {
		return nil, "none", nil
	}
	name := strings.TrimSpace(os.Getenv(envTracesExporter))
	if name == "" {
		if os.Getenv(envOTLPEndpoint) == "" && os.Getenv(envOTLPTracesEndpoint) == "" {
			return nil, "none", nil
		}
		name = "otlp"
	}
	if name == "none" {
		return nil, "none", nil
	}
	if name == "otlp" {
		for _, k := range []string{envOTLPTracesProtocol, envOTLPProtocol} {
			switch p := os.Getenv(k); p {
			case "", "grpc", "http/protobuf":
				continue
			default:
				return nil, "", fmt.Errorf("telemetry: %s=%q: use grpc or http/protobuf", k, p)
			}
		}
	}
	// autoexport reads OTEL_TRACES_EXPORTER itself, or falls back to otlp
	// when it is unset, which is the case handled above.
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		hint := ""
		if name != "otlp" {
			hint = " (use otlp, console or none)"
		}
		return nil, "", fmt.Errorf("telemetry: %s=%q: %w%s", envTracesExporter, name, err, hint)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return nil, "none", nil
	}
	return exp, name, nil
}

func newPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// NewLogger returns the logger Setup gives a process, writing to w in
// cfg's format and level: trace ids on records made inside a trace,
// sensitive attributes redacted, durations as Go duration strings. Commands
// that run no service (the emulators) log through it too, so a process
// writes one format.
func NewLogger(cfg Config, w io.Writer) (*slog.Logger, error) {
	return newLogger(cfg, w)
}

func newLogger(cfg Config, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, validate.Prefix("telemetry.", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var inner slog.Handler
	switch strings.ToLower(cfg.LogFormat) {
	case "", LogFormatAuto:
		if isTerminal(w) {
			inner = slog.NewTextHandler(w, hopts)
		} else {
			inner = slog.NewJSONHandler(w, hopts)
		}
	case LogFormatJSON:
		inner = slog.NewJSONHandler(w, hopts)
	case LogFormatText:
		inner = slog.NewTextHandler(w, hopts)
	default:
		return nil, fmt.Errorf("telemetry.log_format: %q is not a log format: use auto, json or text", cfg.LogFormat)
	}
	return slog.New(NewLogHandler(inner)), nil
}

// isTerminal reports whether w is a character device (a terminal), as
// os.Stderr is when a person runs iamflow by hand and is not under a
// container runtime, systemd or a pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Shutdown flushes the spans not yet exported and stops the exporter. It
// returns when done or when ctx ends. It is safe to call on Noop.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Noop returns telemetry for tests and tools: a tracer provider that records
// nothing (incoming trace context still passes through), the W3C propagator,
// and a logger that discards everything.
func Noop() *Telemetry {
	return &Telemetry{
		TracerProvider: tracenoop.NewTracerProvider(),
		Propagator:     newPropagator(),
		Logger:         slog.New(slog.DiscardHandler),
		exporter:       "none",
	}
}

// orNoop lets the helpers accept a nil *Telemetry.
func (t *Telemetry) orNoop() *Telemetry {
	if t == nil {
		return Noop()
	}
	return t
}
