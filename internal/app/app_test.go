package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/testutil"
)

// testConfig is a dev-mode configuration on a real NATS server with one
// ingest-only domain, on loopback ports chosen by the kernel.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	srv := bustest.RunServer(t)
	cfg := config.Default()
	cfg.Dev = true
	cfg.NATS = srv.Config()
	cfg.Admin.GRPCAddr, cfg.Admin.HTTPAddr, cfg.Ingest.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Ingest.Password = "env:IAMFLOW_TEST_WEBHOOK_PASSWORD"
	t.Setenv("IAMFLOW_TEST_WEBHOOK_PASSWORD", "app-test-webhook-password")
	cfg.Domains = []config.Domain{{Name: "hub", OCIName: "Default"}}
	return cfg
}

func TestAllSkipsServicesWithNothingToDo(t *testing.T) {
	a, err := New(context.Background(), testConfig(t), []string{"all"}, WithTelemetry(telemetry.Noop()))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := a.Services(); !slices.Equal(got, []string{"ingest"}) {
		t.Fatalf("services = %v, want only ingest (no domain has API access)", got)
	}
}

func TestNamedServiceWithNothingToDoFails(t *testing.T) {
	_, err := New(context.Background(), testConfig(t), []string{"capabilities"}, WithTelemetry(telemetry.Noop()))
	if err == nil || !strings.Contains(err.Error(), "no domain has API access") {
		t.Fatalf("New(capabilities) = %v, want an error saying no domain has API access", err)
	}
}

func TestUnknownServiceNamesTheKnownOnes(t *testing.T) {
	_, err := New(context.Background(), testConfig(t), []string{"replicatorr"}, WithTelemetry(telemetry.Noop()))
	if err == nil || !strings.Contains(err.Error(), "capabilities, dbprovisioner, expiry, ingest, replicator") {
		t.Fatalf("New(replicatorr) = %v", err)
	}
}

func TestInvalidConfigurationIsRefusedBeforeAnythingStarts(t *testing.T) {
	cfg := testConfig(t)
	cfg.Domains[0].Name = "Bad Name"
	_, err := New(context.Background(), cfg, []string{"all"}, WithTelemetry(telemetry.Noop()))
	if err == nil || !strings.Contains(err.Error(), "domains[0].name") {
		t.Fatalf("New = %v, want the validation error", err)
	}
}

// TestReadinessIncludesIngest: /readyz asks ingest too (it fails while
// JetStream has no room for events), not only whether NATS answers.
func TestReadinessIncludesIngest(t *testing.T) {
	a, err := New(context.Background(), testConfig(t), []string{"all"}, WithTelemetry(telemetry.Noop()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer runApp(t, ctx, cancel, a)()
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get("http://" + a.Admin().HTTPAddr().String() + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "[+]ingest ok") || !strings.Contains(string(b), "[+]nats ok") {
			return fmt.Errorf("/readyz: %d %s", resp.StatusCode, b)
		}
		return nil
	})
}

// runApp runs a until ctx ends and returns what waits for that, for the
// test to defer: it cancels ctx and fails the test if Run failed.
func runApp(t *testing.T, ctx context.Context, cancel context.CancelFunc, a *App) func() {
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}
