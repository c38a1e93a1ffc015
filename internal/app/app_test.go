package app

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/config"
	"github.com/iamflow/iamflow/internal/telemetry"
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
