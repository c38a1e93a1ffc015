package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/testutil"
)

// TestTraceContinuesAcrossNATS posts an event carrying a W3C traceparent and
// checks that the consumer on the other side of JetStream handles it inside
// the same trace, under the webhook's spans.
func TestTraceContinuesAcrossNATS(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	tel, err := telemetry.Setup(context.Background(), telemetry.DefaultConfig(),
		telemetry.WithSpanExporter(spans), telemetry.WithLogWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })

	srv := bustest.RunServer(t)
	b := srv.Open(t, bus.WithTracerProvider(tel.TracerProvider), bus.WithPropagator(tel.Propagator))
	cfg := DefaultConfig()
	cfg.Password = "env:UNUSED"
	svc, err := New(context.Background(), cfg, b, Webhook{Password: secret.NewValue(testPassword),
		Domains: []Domain{{Name: "hub", OCIName: "Default"}}}, servicekit.WithTelemetry(tel))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(svc.Handler())
	defer ts.Close()

	got := make(chan trace.SpanContext, 1)
	c, err := b.Consumer(context.Background(), bus.ConsumerConfig{Durable: "trace-test", FilterSubjects: []string{event.AllSubjects}},
		func(ctx context.Context, m *bus.Msg) bus.Result {
			got <- trace.SpanContextFromContext(ctx)
			return bus.Done()
		})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, c.Run)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/events", strings.NewReader(addUserToGroup("ev-trace", "Default")))
	req.SetBasicAuth("iamflow", testPassword)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if code, _, _ := doRaw(t, req); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	var sc trace.SpanContext
	select {
	case sc = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer never received the event")
	}
	if sc.TraceID().String() != traceID {
		t.Fatalf("consumer trace id = %s, want the webhook's %s", sc.TraceID(), traceID)
	}
	// The exported spans of that trace include the webhook's server span and
	// the consumer's span.
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		kinds := map[trace.SpanKind]bool{}
		for _, s := range spans.GetSpans() {
			if s.SpanContext.TraceID().String() == traceID {
				kinds[s.SpanKind] = true
			}
		}
		for _, k := range []trace.SpanKind{trace.SpanKindServer, trace.SpanKindProducer, trace.SpanKindConsumer} {
			if !kinds[k] {
				return io.ErrUnexpectedEOF
			}
		}
		return nil
	})
}
