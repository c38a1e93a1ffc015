package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	idemu "github.com/iamflow/iamflow/emulator/identitydomain"
	ordsemu "github.com/iamflow/iamflow/emulator/ords"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/dbprovisioner"
)

// dbprovisionerConfig is testConfig plus an emulated domain "src" with API
// access and an emulated ORDS database "hr" mapped onto it.
func dbprovisionerConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := testConfig(t)
	dom := startDomain(t, "src")
	db := startHRDatabase(t)
	t.Setenv("IAMFLOW_TEST_DOMAIN_SECRET", "domain-secret")
	t.Setenv("IAMFLOW_TEST_ORDS_SECRET", "ords-secret")
	api := identitydomain.DefaultConfig()
	api.URL, api.ClientID, api.ClientSecret, api.Tier = dom.URL(), "iamflow", "env:IAMFLOW_TEST_DOMAIN_SECRET", identitydomain.TierPremium
	cfg.Domains = append(cfg.Domains, config.Domain{Name: "src", OCIName: "src", Config: api})
	oc := ords.DefaultConfig()
	oc.URL, oc.ClientID, oc.ClientSecret = db.BaseURL("hr"), "ords-client", "env:IAMFLOW_TEST_ORDS_SECRET"
	cfg.Dbprovisioner.Databases = []dbprovisioner.DatabaseConfig{{
		Name: "hr", Domain: "src", ORDS: oc,
		Groups: []dbprovisioner.GroupMapping{{Group: "DB Users", Roles: []string{"APP_READER"}}},
	}}
	return cfg
}

func TestDbprovisionerIsWiredWithItsAPI(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, dbprovisionerConfig(t), []string{"all"}, WithTelemetry(telemetry.Noop()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(a.Services(), dbprovisioner.Name) {
		t.Fatalf("services = %v, want dbprovisioner among them", a.Services())
	}
	defer runApp(t, ctx, cancel, a)()
	var body string
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		addr := a.Admin().HTTPAddr()
		if addr == nil {
			return errors.New("admin not listening yet")
		}
		resp, err := http.Get("http://" + addr.String() + "/v1/dbprovisioner/databases/hr")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status + " " + string(b))
		}
		if body = string(b); !strings.Contains(body, `"reconciles_completed":"1"`) {
			return errors.New("the reconcile at start has not ended yet: " + body)
		}
		return nil
	})
	// The reconcile at start ran through both clients: the group is looked up
	// in the domain and the database answered.
	for _, want := range []string{`"name":"hr"`, `"domain":"src"`, `"groups":["DB Users"]`, `"reconciles_completed":"1"`, `no such group in domain src`} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /v1/dbprovisioner/databases/hr = %s; want it to contain %s", body, want)
		}
	}
}

func TestDbprovisionerNotConfigured(t *testing.T) {
	a, err := New(context.Background(), testConfig(t), []string{"all"}, WithTelemetry(telemetry.Noop()))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if slices.Contains(a.Services(), dbprovisioner.Name) {
		t.Fatalf("services = %v: dbprovisioner started without a database", a.Services())
	}
	_, err = New(context.Background(), testConfig(t), []string{dbprovisioner.Name}, WithTelemetry(telemetry.Noop()))
	if err == nil || !strings.Contains(err.Error(), "dbprovisioner.databases") {
		t.Fatalf("New(dbprovisioner) = %v, want an error naming dbprovisioner.databases", err)
	}
}

// The ORDS credentials are resolved at start, through the process's
// resolver: a vault: reference needs secrets.vault, and a vault that cannot
// be reached is reported naming secrets.vault, never the secret.
func TestDbprovisionerSecrets(t *testing.T) {
	cfg := dbprovisionerConfig(t)
	cfg.Dbprovisioner.Databases[0].ORDS.ClientSecret = "env:IAMFLOW_TEST_UNSET_SECRET"
	_, err := New(context.Background(), cfg, []string{dbprovisioner.Name}, WithTelemetry(telemetry.Noop()))
	if err == nil || !strings.Contains(err.Error(), "IAMFLOW_TEST_UNSET_SECRET") {
		t.Fatalf("unset client secret: New = %v", err)
	}
	cfg.Dbprovisioner.Databases[0].ORDS.ClientSecret = "vault:ocid1.vaultsecret.oc1..aaaa"
	_, err = New(context.Background(), cfg, []string{dbprovisioner.Name}, WithTelemetry(telemetry.Noop()))
	if err == nil || !strings.Contains(err.Error(), "needs secrets.vault") {
		t.Fatalf("vault: without secrets.vault: New = %v", err)
	}
	cfg.Secrets.Vault = secret.VaultConfig{Auth: secret.VaultAuthConfigFile, ConfigPath: t.TempDir() + "/no-oci-config", Region: "eu-frankfurt-1"}
	_, err = New(context.Background(), cfg, []string{dbprovisioner.Name}, WithTelemetry(telemetry.Noop()))
	if err == nil || !strings.Contains(err.Error(), "secrets.vault") {
		t.Fatalf("unreadable OCI config: New = %v", err)
	}
}

// startDomain starts an emulated domain called name with iamflow's client
// (secret "domain-secret"), closed when the test ends.
func startDomain(t *testing.T, name string) *idemu.Domain {
	t.Helper()
	d, err := idemu.New(idemu.Config{Name: name, Clients: []idemu.Client{{ID: "iamflow", Secret: "domain-secret"}}, Tier: idemu.TierUnlimited})
	return started(t, d, err)
}

// startHRDatabase starts an emulated ORDS with the database "hr" (client
// "ords-client", secret "ords-secret", role APP_READER), closed when the
// test ends.
func startHRDatabase(t *testing.T) *ordsemu.Emulator {
	t.Helper()
	db, err := ordsemu.New(ordsemu.Config{Databases: []ordsemu.Database{{
		Alias: "hr", ClientID: "ords-client", ClientSecret: "ords-secret", Roles: []ordsemu.Role{{Name: "APP_READER"}},
	}}})
	return started(t, db, err)
}

// started fails the test on err, or starts e on a loopback port and closes
// it when the test ends.
func started[E interface {
	Start(addr string) error
	Close() error
}](t *testing.T, e E, err error) E {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return e
}
