package ingest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/testutil"
)

// TestReadinessFollowsAFullStore fills a JetStream server whose storage is
// limited until ingest answers 503, and checks that /readyz then says ingest
// cannot accept work, and is ready again once storage is freed.
func TestReadinessFollowsAFullStore(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), JetStreamMaxStore: 256 << 10, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	bcfg := bus.DefaultConfig()
	bcfg.URLs = []string{srv.ClientURL()}
	ctx := context.Background()
	b, err := bus.Open(ctx, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	cfg := DefaultConfig()
	cfg.PublishTimeout = 2 * time.Second
	svc, err := New(ctx, cfg, b, Webhook{Password: secret.NewValue(testPassword), Domains: []Domain{{Name: "hub", OCIName: "Default"}}})
	if err != nil {
		t.Fatal(err)
	}
	adm, err := admin.New(admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	adm.AddReadinessCheck("nats", b.Ready)
	adm.AddReadinessCheck("ingest", svc.Ready)
	if err := adm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Shutdown(ctx) })
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + adm.HTTPAddr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz before: %d %s", code, body)
	}
	post := func(batch int) int {
		entries := make([]string, batch)
		for i := range entries {
			entries[i] = addUserToGroup(fmt.Sprintf("ev-%d-%d", time.Now().UnixNano(), i), "Default")
		}
		req, _ := http.NewRequest(http.MethodPost, "/v1/events", strings.NewReader("["+strings.Join(entries, ",")+"]"))
		req.SetBasicAuth("iamflow", testPassword)
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	testutil.CheckFor(t, 60*time.Second, time.Millisecond, func() error {
		if code := post(200); code != http.StatusServiceUnavailable {
			return fmt.Errorf("still %d", code)
		}
		return nil
	})
	code, body := readyz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]ingest: JetStream has no room for events") || !strings.Contains(body, "[+]nats ok") {
		t.Fatalf("/readyz with a full store: %d\n%s", code, body)
	}
	// Storage freed (messages aged out, or an operator purged): ready again
	// without waiting for a delivery.
	s, err := b.JetStream().Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if code, body := readyz(); code != http.StatusOK {
			return fmt.Errorf("/readyz after the purge: %d %s", code, body)
		}
		return nil
	})
	if code := post(1); code != http.StatusAccepted {
		t.Fatalf("delivery after the purge: %d", code)
	}
}

// TestReadinessTriesAgainAfterRetryAfter: a limit raised on the server is
// not visible to a client, so readiness comes back after
// ingest.retry_after and lets the next delivery find out.
func TestReadinessTriesAgainAfterRetryAfter(t *testing.T) {
	h := newHarness(t, nil)
	h.svc.store.full(time.Now(), fmt.Errorf("nats: API error: code=503 err_code=10023 description=insufficient resources"))
	if err := h.svc.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "insufficient resources") {
		t.Fatalf("Ready just after a full store = %v", err)
	}
	h.svc.store.mu.Lock()
	h.svc.store.since = time.Now().Add(-h.svc.cfg.RetryAfter)
	h.svc.store.mu.Unlock()
	if err := h.svc.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after retry_after = %v, want ready so a delivery tests the store", err)
	}
	// A successful publish clears it at once.
	h.svc.store.full(time.Now(), fmt.Errorf("full"))
	if code, out, _ := h.post(addUserToGroup("ev-after-full", "Default")); code != http.StatusAccepted {
		t.Fatalf("post: %d %v", code, out)
	}
	if err := h.svc.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after a stored delivery = %v", err)
	}
}
