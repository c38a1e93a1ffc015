package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	testToken  = "tok-9f3a1c77e2b54d0a" // the admin token of the test servers
	wrongToken = "tok-0000deadbeef0000" // presented by the rejected callers
)

func secretValue(s string) secret.Value { return secret.NewValue(s) }

type testServer struct {
	*admin.Server
	logs *testutil.SyncBuffer
}

// start makes a server on 127.0.0.1:0 that logs at debug level into a buffer
// and, when the test ends, shuts it down and checks that no token reached
// the logs.
func start(t *testing.T, cfg admin.Config, opts ...admin.Option) testServer {
	t.Helper()
	return startWith(t, cfg, nil, opts...)
}

// startWith is start, calling before (when not nil) between New and Start,
// where services register.
func startWith(t *testing.T, cfg admin.Config, before func(*admin.Server), opts ...admin.Option) testServer {
	t.Helper()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	logs := &testutil.SyncBuffer{}
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	s, err := admin.New(cfg, append([]admin.Option{admin.WithLogger(log), admin.WithVersion("v1.2.3")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(s)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		out := logs.String()
		for _, tok := range []string{testToken, wrongToken} {
			if strings.Contains(out, tok) {
				t.Errorf("a token reached the logs:\n%s", out)
			}
		}
	})
	return testServer{Server: s, logs: logs}
}

// secured makes a server whose token comes from the environment.
func secured(t *testing.T, opts ...admin.Option) testServer {
	t.Setenv("IAMFLOW_TEST_ADMIN_TOKEN", testToken)
	cfg := admin.DefaultConfig()
	cfg.Token = "env:IAMFLOW_TEST_ADMIN_TOKEN"
	return start(t, cfg, opts...)
}

func dial(t *testing.T, s testServer, token string) *grpc.ClientConn {
	t.Helper()
	conn, err := admin.Dial(context.Background(), s.GRPCAddr().String(), secret.NewValue(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// get does a GET on the HTTP listener, with "Authorization: <auth>" if auth
// is not empty, and returns the response with its body read.
func get(t *testing.T, s testServer, path, auth string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.HTTPAddr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func addServices(s testServer) {
	s.AddStatus("replicator", admin.StatusFunc(func(context.Context) *iamflowv1.ServiceStatus {
		return &iamflowv1.ServiceStatus{State: iamflowv1.State_STATE_RUNNING, Counters: map[string]int64{"applied": 7}}
	}))
	s.AddStatus("ingest", admin.StatusFunc(func(context.Context) *iamflowv1.ServiceStatus {
		return &iamflowv1.ServiceStatus{Name: "ingest", Version: "v9", State: iamflowv1.State_STATE_DEGRADED, LastError: "jetstream unreachable"}
	}))
}

func names(resp *iamflowv1.GetStatusResponse) []string {
	var out []string
	for _, s := range resp.GetServices() {
		out = append(out, s.GetName())
	}
	return out
}

func TestHealthAndReflection(t *testing.T) {
	s := secured(t)
	conn := dial(t, s, "") // both are open: no token

	hc := healthpb.NewHealthClient(conn)
	resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, want SERVING", resp.GetStatus())
	}
	s.Health().SetServingStatus("ingest", healthpb.HealthCheckResponse_NOT_SERVING)
	if resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "ingest"}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("ingest health = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	var services []string
	for _, sv := range r.GetListServicesResponse().GetService() {
		services = append(services, sv.GetName())
	}
	for _, want := range []string{"iamflow.v1.StatusService", "grpc.health.v1.Health"} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection lists %v, want %s", services, want)
		}
	}
}

func TestSetServing(t *testing.T) {
	s := secured(t)
	hc := healthpb.NewHealthClient(dial(t, s, ""))
	s.SetServing(false)
	if resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after SetServing(false): %v, %v", resp.GetStatus(), err)
	}
	if resp, body := get(t, s, "/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "[-]serving") {
		t.Fatalf("/readyz after SetServing(false) = %d %q", resp.StatusCode, body)
	}
	s.SetServing(true)
	if resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("after SetServing(true): %v, %v", resp.GetStatus(), err)
	}
	if resp, body := get(t, s, "/readyz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after SetServing(true) = %d %q", resp.StatusCode, body)
	}
}

func TestGetStatusGRPC(t *testing.T) {
	s := secured(t)
	addServices(s)
	client := iamflowv1.NewStatusServiceClient(dial(t, s, testToken))

	all, err := client.GetStatus(context.Background(), &iamflowv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(all); !slices.Equal(got, []string{"ingest", "replicator"}) {
		t.Fatalf("services = %v, want [ingest replicator] (sorted)", got)
	}
	rep := all.GetServices()[1]
	if rep.GetVersion() != "v1.2.3" || rep.GetUptime() == nil || rep.GetCounters()["applied"] != 7 || rep.GetState() != iamflowv1.State_STATE_RUNNING {
		t.Errorf("replicator = %v, want version, uptime filled and the provider's fields kept", rep)
	}
	if v := all.GetServices()[0].GetVersion(); v != "v9" {
		t.Errorf("ingest version = %q, want the provider's v9", v)
	}

	one, err := client.GetStatus(context.Background(), &iamflowv1.GetStatusRequest{Service: "ingest"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(one); !slices.Equal(got, []string{"ingest"}) || one.GetServices()[0].GetLastError() != "jetstream unreachable" {
		t.Fatalf("GetStatus(ingest) = %v", one)
	}

	_, err = client.GetStatus(context.Background(), &iamflowv1.GetStatusRequest{Service: "expiry"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `"expiry"`) || !strings.Contains(err.Error(), "ingest, replicator") {
		t.Fatalf("GetStatus(expiry) = %v, want NotFound naming the known services", err)
	}
}

func TestGetStatusREST(t *testing.T) {
	s := secured(t)
	addServices(s)
	bearer := "Bearer " + testToken

	decode := func(body string) *iamflowv1.GetStatusResponse {
		t.Helper()
		var resp iamflowv1.GetStatusResponse
		if err := protojson.Unmarshal([]byte(body), &resp); err != nil {
			t.Fatalf("decoding %q: %v", body, err)
		}
		return &resp
	}
	resp, body := get(t, s, "/v1/status", bearer)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/status = %d %s", resp.StatusCode, body)
	}
	if got := names(decode(body)); !slices.Equal(got, []string{"ingest", "replicator"}) {
		t.Fatalf("services = %v", got)
	}
	resp, body = get(t, s, "/v1/status/replicator", bearer)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/status/replicator = %d %s", resp.StatusCode, body)
	}
	if got := decode(body); !slices.Equal(names(got), []string{"replicator"}) || got.GetServices()[0].GetCounters()["applied"] != 7 {
		t.Fatalf("GET /v1/status/replicator = %s", body)
	}
	resp, body = get(t, s, "/v1/status/expiry", bearer)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "ingest, replicator") {
		t.Fatalf("GET /v1/status/expiry = %d %s, want 404 naming the known services", resp.StatusCode, body)
	}
}

func TestAuthGRPC(t *testing.T) {
	s := secured(t)
	addServices(s)
	for _, tt := range []struct {
		name  string
		token string
		want  codes.Code
	}{
		{"missing", "", codes.Unauthenticated},
		{"wrong", wrongToken, codes.Unauthenticated},
		{"prefix of the right one", testToken[:len(testToken)-1], codes.Unauthenticated},
		{"right", testToken, codes.OK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := iamflowv1.NewStatusServiceClient(dial(t, s, tt.token))
			var header metadata.MD
			_, err := client.GetStatus(context.Background(), &iamflowv1.GetStatusRequest{}, grpc.Header(&header))
			if status.Code(err) != tt.want {
				t.Fatalf("GetStatus = %v, want %v", err, tt.want)
			}
			if err != nil {
				if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), wrongToken) {
					t.Errorf("error reveals a token: %v", err)
				}
				if v := header.Get("www-authenticate"); len(v) == 0 || v[0] != "Bearer" {
					t.Errorf("www-authenticate = %v, want Bearer", v)
				}
			}
		})
	}
	if !strings.Contains(s.logs.String(), "rejected gRPC call") {
		t.Errorf("rejections were not logged (so the no-token-in-logs check proves little):\n%s", s.logs.String())
	}
	// The raw metadata form, with a lower-case scheme.
	conn := dial(t, s, "")
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "bearer "+testToken)
	if _, err := iamflowv1.NewStatusServiceClient(conn).GetStatus(ctx, &iamflowv1.GetStatusRequest{}); err != nil {
		t.Errorf("bearer in lower case: %v", err)
	}
}

func TestAuthREST(t *testing.T) {
	s := secured(t)
	addServices(s)
	for _, tt := range []struct {
		name, auth string
		want       int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong", "Bearer " + wrongToken, http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"no scheme", testToken, http.StatusUnauthorized},
		{"right", "Bearer " + testToken, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, s, "/v1/status", tt.auth)
			if resp.StatusCode != tt.want {
				t.Fatalf("GET /v1/status = %d %s, want %d", resp.StatusCode, body, tt.want)
			}
			if tt.want != http.StatusUnauthorized {
				return
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != int(codes.Unauthenticated) || e.Message == "" {
				t.Errorf("body = %s (%v), want a JSON error with code 16", body, err)
			}
			if strings.Contains(body, testToken) || strings.Contains(body, wrongToken) {
				t.Errorf("body reveals a token: %s", body)
			}
		})
	}
	if !strings.Contains(s.logs.String(), "rejected HTTP request") {
		t.Errorf("rejections were not logged (so the no-token-in-logs check proves little):\n%s", s.logs.String())
	}
	// Probes and metrics are open.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, body := get(t, s, path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token = %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestInsecureMode(t *testing.T) {
	s := start(t, admin.Config{Insecure: true, Token: "env:IGNORED_IN_DEV_MODE"})
	addServices(s)
	if resp, body := get(t, s, "/v1/status", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("REST without a token in dev mode = %d %s", resp.StatusCode, body)
	}
	if _, err := iamflowv1.NewStatusServiceClient(dial(t, s, "")).GetStatus(context.Background(), &iamflowv1.GetStatusRequest{}); err != nil {
		t.Fatalf("gRPC without a token in dev mode: %v", err)
	}
	if n := strings.Count(s.logs.String(), "unauthenticated"); n != 1 {
		t.Errorf("dev mode logged 'unauthenticated' %d times, want once:\n%s", n, s.logs.String())
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "iamflow_test_events_total", Help: "Test events."})
	reg.MustRegister(c)
	c.Add(3)
	s := secured(t, admin.WithRegistry(reg))
	if s.Registry() != reg {
		t.Fatal("Registry() is not the registry given")
	}
	resp, body := get(t, s, "/metrics", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "iamflow_test_events_total 3") {
		t.Fatalf("/metrics = %d:\n%s", resp.StatusCode, body)
	}

	def := secured(t)
	if _, body := get(t, def, "/metrics", ""); !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Errorf("default registry lacks the Go and process collectors:\n%.500s", body)
	}
}

func TestReadyz(t *testing.T) {
	s := secured(t)
	var natsUp atomic.Bool
	s.AddReadinessCheck("nats", func(context.Context) error {
		if !natsUp.Load() {
			return errors.New("not connected to nats://127.0.0.1:4222")
		}
		return nil
	})
	s.AddReadinessCheck("other", func(context.Context) error { return nil })

	resp, body := get(t, s, "/readyz", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "[-]nats: not connected to nats://127.0.0.1:4222") || !strings.Contains(body, "[+]other ok") {
		t.Fatalf("/readyz = %d %q, want 503 naming the failing check and its error", resp.StatusCode, body)
	}
	if resp, _ := get(t, s, "/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz = %d while not ready, want 200", resp.StatusCode)
	}

	go natsUp.Store(true) // becomes ready some time later
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if resp, body := get(t, s, "/readyz", ""); resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz = %d %q", resp.StatusCode, body)
		}
		return nil
	})
}

func TestReadyzTimeout(t *testing.T) {
	s := secured(t)
	admin.SetReadinessTimeout(s.Server, 50*time.Millisecond)
	release := make(chan struct{})
	defer close(release)
	s.AddReadinessCheck("stuck", func(context.Context) error { <-release; return nil }) // ignores ctx
	s.AddReadinessCheck("polite", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	resp, body := get(t, s, "/readyz", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "[-]stuck: no answer within 50ms") || !strings.Contains(body, "[-]polite") {
		t.Fatalf("/readyz = %d %q, want 503 naming both checks", resp.StatusCode, body)
	}
}

func TestRegisterGateway(t *testing.T) {
	t.Setenv("IAMFLOW_TEST_ADMIN_TOKEN", testToken)
	cfg := admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Token: "env:IAMFLOW_TEST_ADMIN_TOKEN"}
	s, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = s.RegisterGateway(func(_ context.Context, mux *runtime.ServeMux) error {
		return mux.HandlePath(http.MethodGet, "/v1/echo/{word}", func(w http.ResponseWriter, _ *http.Request, p map[string]string) {
			fmt.Fprint(w, p["word"])
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterGateway(func(context.Context, *runtime.ServeMux) error { return errors.New("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("RegisterGateway's error = %v, want boom", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	ts := testServer{Server: s}
	if resp, body := get(t, ts, "/v1/echo/hi", "Bearer "+testToken); resp.StatusCode != http.StatusOK || body != "hi" {
		t.Errorf("GET /v1/echo/hi = %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, ts, "/v1/echo/hi", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a service's REST handler is open: %d", resp.StatusCode)
	}
	if err := s.RegisterGateway(func(context.Context, *runtime.ServeMux) error { return nil }); err == nil {
		t.Error("RegisterGateway after Start succeeded")
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestRunAndShutdown(t *testing.T) {
	s, err := admin.New(admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if strings.HasSuffix(s.HTTPAddr().String(), ":0") {
			return errors.New("not bound yet")
		}
		return nil
	})
	if resp, _ := get(t, testServer{Server: s}, "/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz = %d", resp.StatusCode)
	}
	addr := s.HTTPAddr().String()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after cancel, want nil", err)
	}
	if _, err := (&http.Client{Transport: &http.Transport{}}).Get("http://" + addr + "/healthz"); err == nil {
		t.Error("HTTP still served after Run returned")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}

	// A port in use fails Start, naming the key.
	holder := start(t, admin.Config{Insecure: true})
	busy := admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: holder.HTTPAddr().String(), Insecure: true}
	s2, err := admin.New(busy)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "admin.http_addr") {
		t.Errorf("Start on a busy port = %v", err)
	}
	_ = s2.Shutdown(context.Background())
}

func TestTelemetry(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), telemetry.DefaultConfig(), telemetry.WithLogWriter(io.Discard), telemetry.WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	s := secured(t, admin.WithTelemetry(tel))
	addServices(s)
	if _, err := iamflowv1.NewStatusServiceClient(dial(t, s, testToken)).GetStatus(context.Background(), &iamflowv1.GetStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, s, "/v1/status", "Bearer "+testToken); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		var server int
		for _, sp := range exp.GetSpans() {
			if sp.SpanKind == trace.SpanKindServer {
				server++
			}
		}
		if server < 2 {
			return fmt.Errorf("%d server spans, want one for gRPC and one for REST", server)
		}
		return nil
	})
}

// The web console is served at / beside the API (internal/console), and
// not at all when admin.console.disabled.
func TestConsoleRoute(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		cfg := admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}
		cfg.Console.Disabled = disabled
		s, err := admin.New(cfg, admin.WithToken(secret.NewValue("console-route-token-0123456789")))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Get("http://" + s.HTTPAddr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch {
		case !disabled && (resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin"):
			t.Errorf("GET /: %d %s, want the console's sign-in", resp.StatusCode, resp.Header.Get("Location"))
		case disabled && resp.StatusCode != http.StatusNotFound:
			t.Errorf("GET / with the console disabled: %d, want 404", resp.StatusCode)
		}
		// The API's own authentication is unchanged: no cookie opens it.
		resp, err = client.Get("http://" + s.HTTPAddr().String() + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /v1/status without a token: %d", resp.StatusCode)
		}
		_ = s.Shutdown(context.Background())
	}
}
