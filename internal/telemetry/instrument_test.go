package telemetry

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func newTestTelemetry(t *testing.T) (*Telemetry, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tel, err := Setup(context.Background(), DefaultConfig(), WithLogWriter(io.Discard), WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel, exp
}

// waitSpans waits until the exporter holds n spans and returns them by kind.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, n int) map[trace.SpanKind]tracetest.SpanStub {
	t.Helper()
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if got := len(exp.GetSpans()); got < n {
			return fmt.Errorf("%d spans exported, want %d", got, n)
		}
		return nil
	})
	byKind := map[trace.SpanKind]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byKind[s.SpanKind] = s
	}
	return byKind
}

func TestHTTPPropagation(t *testing.T) {
	tel, exp := newTestTelemetry(t)

	handlerTraceID := make(chan trace.TraceID, 1)
	srv := httptest.NewServer(HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlerTraceID <- trace.SpanContextFromContext(r.Context()).TraceID()
		fmt.Fprint(w, baggage.FromContext(r.Context()).Member("tenant").Value())
	}), "test.server", tel))
	defer srv.Close()

	client := &http.Client{Transport: HTTPTransport(&http.Transport{}, tel)}
	ctx, parent := tel.TracerProvider.Tracer("test").Start(context.Background(), "parent")
	m, _ := baggage.NewMember("tenant", "acme")
	b, _ := baggage.New(m)
	ctx = baggage.ContextWithBaggage(ctx, b)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	parent.End()
	if string(body) != "acme" {
		t.Errorf("baggage not propagated: server saw %q", body)
	}

	spans := waitSpans(t, exp, 3)
	p, c, s := spans[trace.SpanKindInternal], spans[trace.SpanKindClient], spans[trace.SpanKindServer]
	tid := p.SpanContext.TraceID()
	serverTraceID := <-handlerTraceID
	if serverTraceID != tid || c.SpanContext.TraceID() != tid || s.SpanContext.TraceID() != tid {
		t.Fatalf("trace ids differ: parent %s client %s server %s handler %s",
			tid, c.SpanContext.TraceID(), s.SpanContext.TraceID(), serverTraceID)
	}
	if c.Parent.SpanID() != p.SpanContext.SpanID() {
		t.Errorf("client span's parent = %s, want %s", c.Parent.SpanID(), p.SpanContext.SpanID())
	}
	if s.Parent.SpanID() != c.SpanContext.SpanID() || !s.Parent.IsRemote() {
		t.Errorf("server span's parent = %s (remote %v), want client span %s", s.Parent.SpanID(), s.Parent.IsRemote(), c.SpanContext.SpanID())
	}
	if s.Name != "test.server" {
		t.Errorf("server span named %q, want the operation", s.Name)
	}
	attrs := map[string]string{}
	for _, kv := range s.Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["http.request.method"] != "GET" || attrs["url.path"] != "/x" || attrs["http.response.status_code"] != "200" {
		t.Errorf("server span attributes = %v, want GET /x answered 200", attrs)
	}
}

// TestHTTPServerSpanStatus checks that the server span records the status
// a handler wrote, and marks a 5xx an error.
func TestHTTPServerSpanStatus(t *testing.T) {
	for _, tc := range []struct {
		code    int
		wantErr bool
	}{{http.StatusAccepted, false}, {http.StatusBadRequest, false}, {http.StatusServiceUnavailable, true}} {
		tel, exp := newTestTelemetry(t)
		srv := httptest.NewServer(HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
			fmt.Fprint(w, "body")
		}), "op", tel))
		resp, err := http.Post(srv.URL, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		s := waitSpans(t, exp, 1)[trace.SpanKindServer]
		got := ""
		for _, kv := range s.Attributes {
			if kv.Key == "http.response.status_code" {
				got = kv.Value.Emit()
			}
		}
		if got != fmt.Sprint(tc.code) || (s.Status.Code == codes.Error) != tc.wantErr {
			t.Errorf("status %d: span has status code %q and status %v, want the code and error=%v", tc.code, got, s.Status, tc.wantErr)
		}
	}
}

type statusServer struct {
	iamflowv1.UnimplementedStatusServiceServer
}

func (statusServer) GetStatus(context.Context, *iamflowv1.GetStatusRequest) (*iamflowv1.GetStatusResponse, error) {
	return &iamflowv1.GetStatusResponse{}, nil
}

func TestGRPCPropagation(t *testing.T) {
	tel, exp := newTestTelemetry(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(GRPCServerOption(tel))
	iamflowv1.RegisterStatusServiceServer(gs, statusServer{})
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()

	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), GRPCDialOption(tel))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := iamflowv1.NewStatusServiceClient(conn).GetStatus(context.Background(), &iamflowv1.GetStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	spans := waitSpans(t, exp, 2)
	c, s := spans[trace.SpanKindClient], spans[trace.SpanKindServer]
	if !c.SpanContext.IsValid() || s.SpanContext.TraceID() != c.SpanContext.TraceID() || s.Parent.SpanID() != c.SpanContext.SpanID() {
		t.Fatalf("server span %v is not the child of client span %v", s.SpanContext, c.SpanContext)
	}
}

func TestHeaderCarrierRoundTrip(t *testing.T) {
	tel, _ := newTestTelemetry(t)
	ctx, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "publish")
	defer span.End()
	m, _ := baggage.NewMember("domain", "primary")
	b, _ := baggage.New(m)
	ctx = baggage.ContextWithBaggage(ctx, b)

	h := nats.Header{}
	tel.Propagator.Inject(ctx, HeaderCarrier(h))
	if h.Get("traceparent") == "" {
		t.Fatalf("no traceparent header injected: %v", h)
	}
	msg := &nats.Msg{Subject: "iam.event.x", Header: h}

	got := tel.Propagator.Extract(context.Background(), HeaderCarrier(msg.Header))
	sc := trace.SpanContextFromContext(got)
	if !sc.IsRemote() || sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("extracted %v, want remote %v", sc, span.SpanContext())
	}
	if v := baggage.FromContext(got).Member("domain").Value(); v != "primary" {
		t.Errorf("baggage domain = %q, want primary", v)
	}
	// A consumer's span continues the producer's trace.
	_, child := tel.TracerProvider.Tracer("test").Start(got, "consume")
	defer child.End()
	if child.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Error("consumer span started a new trace")
	}
	if ro, ok := child.(sdktrace.ReadOnlySpan); !ok || ro.Parent().SpanID() != span.SpanContext().SpanID() {
		t.Error("consumer span's parent is not the producer span")
	}
}

// A request's traceparent, tracestate and baggage, as a server receives
// them, reach the handler: its span continues the trace with the caller's
// trace state, and the baggage is in its context.
func TestHTTPHandlerReadsW3CFields(t *testing.T) {
	tel, _ := newTestTelemetry(t)
	var sc trace.SpanContext
	var tenant string
	h := HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc = trace.SpanContextFromContext(r.Context())
		tenant = baggage.FromContext(r.Context()).Member("tenant").Value()
	}), "test.server", tel)
	req := httptest.NewRequest(http.MethodPost, "/v1/events", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set("tracestate", "oci=t61rcWkgMzE")
	req.Header.Set("baggage", "tenant=acme")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %s, want the caller's", sc.TraceID())
	}
	if got := sc.TraceState().Get("oci"); got != "t61rcWkgMzE" {
		t.Errorf("trace state oci=%q, want the caller's t61rcWkgMzE", got)
	}
	if tenant != "acme" {
		t.Errorf("baggage tenant=%q, want acme", tenant)
	}
}
