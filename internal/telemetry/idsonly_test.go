package telemetry

import (
	"context"
	"io"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TestIDsOnly checks the spans of a process that exports none: they record
// nothing, yet have ids and carry the trace; a trace they start is not
// sampled, a caller's keeps its flags.
func TestIDsOnly(t *testing.T) {
	clearOTelEnv(t)
	tel, err := Setup(context.Background(), DefaultConfig(), WithLogWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	tr := tel.TracerProvider.Tracer("t")

	ctx, root := tr.Start(context.Background(), "root")
	rsc := root.SpanContext()
	if root.IsRecording() || !rsc.IsValid() || rsc.IsSampled() {
		t.Fatalf("root span: recording %v, context %v; want not recording, valid ids, not sampled", root.IsRecording(), rsc)
	}
	_, child := tr.Start(ctx, "child")
	if c := child.SpanContext(); c.TraceID() != rsc.TraceID() || c.SpanID() == rsc.SpanID() || c.IsSampled() {
		t.Errorf("child %v of %v: want the same trace, a span id of its own, not sampled", c, rsc)
	}
	_, other := tr.Start(context.Background(), "other")
	if other.SpanContext().TraceID() == rsc.TraceID() {
		t.Error("two roots share a trace id")
	}
	_, fresh := tr.Start(ctx, "fresh", trace.WithNewRoot())
	if fresh.SpanContext().TraceID() == rsc.TraceID() {
		t.Error("WithNewRoot continued the parent's trace")
	}

	// A caller's trace, unsampled, with a tracestate: continued as it came.
	hdr := http.Header{}
	hdr.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	hdr.Set("tracestate", "vendor=x")
	in := tel.Propagator.Extract(context.Background(), propagation.HeaderCarrier(hdr))
	ctx, span := tr.Start(in, "server")
	sc := span.SpanContext()
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.IsSampled() || sc.TraceState().Get("vendor") != "x" ||
		sc.SpanID().String() == "00f067aa0ba902b7" {
		t.Errorf("continued span %v: want the caller's trace, unsampled, its tracestate, a span id of its own", sc)
	}
	out := http.Header{}
	tel.Propagator.Inject(ctx, propagation.HeaderCarrier(out))
	if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + sc.SpanID().String() + "-00"; out.Get("traceparent") != want {
		t.Errorf("traceparent sent on = %q, want %q", out.Get("traceparent"), want)
	}
	span.End()

	// A caller's sampled trace stays sampled, for the processes after this
	// one that export spans.
	hdr.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	in = tel.Propagator.Extract(context.Background(), propagation.HeaderCarrier(hdr))
	if _, s := tr.Start(in, "server"); !s.SpanContext().IsSampled() {
		t.Errorf("continued span %v: want the caller's sampled flag", s.SpanContext())
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
