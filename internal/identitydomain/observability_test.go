package identitydomain_test

import (
	"context"
	"io"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/telemetry"
)

// TestSpansAndMetrics: a span per call with the operation, domain, status
// and attempts; a client span per HTTP request under it; the metrics.
func TestSpansAndMetrics(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), telemetry.DefaultConfig(),
		telemetry.WithLogWriter(io.Discard), telemetry.WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOpt{
		emu:  func(c *emu.Config) { c.Faults = emu.Faults{Rate429: 0.5, Seed: 1} },
		cfg:  func(c *identitydomain.Config) { c.Retry.MaxAttempts = 20 },
		opts: []identitydomain.Option{identitydomain.WithTelemetry(tel)},
	})
	ctx := context.Background()
	u := mustCreateUser(t, f.c, "quinn")
	if _, err := f.c.GetUser(ctx, *u.Id); err != nil {
		t.Fatal(err)
	}

	var call *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		if spans[i].Name == "identitydomain.GetUser" {
			call = &spans[i]
		}
	}
	if call == nil {
		t.Fatalf("no identitydomain.GetUser span among %d", len(spans))
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range call.Attributes {
		attrs[kv.Key] = kv.Value
	}
	if attrs["iamflow.domain"].AsString() != domainName || attrs["iamflow.identitydomain.op"].AsString() != "GetUser" ||
		attrs["http.response.status_code"].AsInt64() != 200 || attrs["iamflow.identitydomain.attempts"].AsInt64() < 1 ||
		attrs["iamflow.identitydomain.request_id"].AsString() == "" {
		t.Errorf("call span attributes = %v", attrs)
	}
	children := 0
	for _, s := range spans {
		if s.Parent.SpanID() == call.SpanContext.SpanID() {
			children++
		}
	}
	if want := attrs["iamflow.identitydomain.attempts"].AsInt64(); int64(children) != want {
		t.Errorf("%d HTTP spans under the call, want one per attempt (%d)", children, want)
	}

	ok := counter(t, f.reg, "iamflow_identitydomain_requests_total", map[string]string{"domain": domainName, "op": "GetUser", "code": "200"})
	limited := counter(t, f.reg, "iamflow_identitydomain_requests_total", map[string]string{"code": "429"})
	retried := counter(t, f.reg, "iamflow_identitydomain_retries_total", map[string]string{"reason": "429"})
	seconds := counter(t, f.reg, "iamflow_identitydomain_request_seconds", map[string]string{"domain": domainName})
	total := counter(t, f.reg, "iamflow_identitydomain_requests_total", nil)
	if ok != 1 || limited != retried || seconds != total || counter(t, f.reg, "iamflow_identitydomain_rate_limit_wait_seconds", nil) == 0 {
		t.Errorf("metrics: 200s %v, 429s %v, retries %v, durations %v of %v requests", ok, limited, retried, seconds, total)
	}
	if float64(f.d.Stats().Faults) != limited {
		t.Errorf("%v 429s counted, %d injected", limited, f.d.Stats().Faults)
	}

	// A second client on the same registerer shares the collectors.
	if _, err := identitydomain.New(ctx, "other", clientConfig(t, f.d.URL()), identitydomain.WithRegisterer(f.reg)); err != nil {
		t.Errorf("second client on the same registerer: %v", err)
	}
}
