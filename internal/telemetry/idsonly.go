package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// idsOnly is the tracer provider of a process that exports no spans (the
// exporter is none). Its spans record nothing, yet each has ids: a span
// continues the trace of its parent with the parent's flags, or starts a
// trace of its own, marked not sampled. So logs still carry trace_id and
// span_id, and the trace context still travels in HTTP, gRPC and NATS
// headers.
//
// A trace it starts is not sampled because nothing was recorded, which is
// what the W3C flag says. The flag also costs: a NATS server reads every
// header of a message whose traceparent is sampled (for its own message
// tracing), on every event the webhook publishes. A process downstream
// that exports spans and samples by its parent (the SDK's default) records
// these traces only where they start in a process that exports too; a
// caller's sampled trace is continued sampled.
//
// The SDK's provider without an exporter recorded every span (attributes,
// events, status) only to drop it at End, on every webhook request and
// every publish. OTEL_TRACES_SAMPLER is not read here: sampling matters
// only where spans are exported.
type idsOnly struct{ embedded.TracerProvider }

// Tracer returns the one tracer of the provider.
func (idsOnly) Tracer(string, ...trace.TracerOption) trace.Tracer { return idsOnlyTracer{} }

type idsOnlyTracer struct{ embedded.Tracer }

// Start returns ctx with a non-recording span of fresh ids as its span.
func (idsOnlyTracer) Start(ctx context.Context, _ string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx)
	if len(opts) > 0 {
		if cfg := trace.NewSpanStartConfig(opts...); cfg.NewRoot() {
			parent = trace.SpanContext{}
		}
	}
	sc := trace.SpanContextConfig{TraceID: parent.TraceID(), TraceFlags: parent.TraceFlags(), TraceState: parent.TraceState()}
	if !parent.IsValid() {
		sc = trace.SpanContextConfig{TraceID: newTraceID()} // not sampled: nothing is recorded
	}
	sc.SpanID = newSpanID()
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(sc))
	return ctx, trace.SpanFromContext(ctx)
}

// newTraceID and newSpanID are random and never zero (a zero id is
// invalid). They identify; they guard nothing, so math/rand is enough.
func newTraceID() (id trace.TraceID) {
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() (id trace.SpanID) {
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}
