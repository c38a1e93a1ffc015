package identitydomain_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"
	"github.com/prometheus/client_golang/prometheus"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/testutil"
)

const (
	testClientID     = "0d7c3e1f9a8b4c2d"
	testClientSecret = "Sup3r-S3cret-Value-4b2e9c"
	domainName       = "src"
)

// emuConfig is an emulated domain with one OAuth client and no rate limits.
func emuConfig() emu.Config {
	return emu.Config{
		Name:    domainName,
		Clients: []emu.Client{{ID: testClientID, Secret: testClientSecret}},
		Tier:    emu.TierUnlimited,
	}
}

// startDomain builds and starts an emulated domain on 127.0.0.1:0, closed
// when the test ends.
func startDomain(t testing.TB, cfg emu.Config, opts ...emu.Option) *emu.Domain {
	t.Helper()
	d, err := emu.New(cfg, opts...)
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("emulator start: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// secretFile writes s to a file and returns a reference to it.
func secretFile(t testing.TB, s string) secret.Ref {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref("file:" + p)
}

// clientConfig is a client config for url with no client-side rate limits
// and fast retries.
func clientConfig(t testing.TB, url string) identitydomain.Config {
	cfg := identitydomain.DefaultConfig()
	cfg.URL = url
	cfg.ClientID = testClientID
	cfg.ClientSecret = secretFile(t, testClientSecret)
	cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	cfg.Timeout = 10 * time.Second
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 6, BaseDelay: 10 * time.Millisecond, MaxDelay: 5 * time.Second}
	return cfg
}

// fixture is a client against an emulated domain, with its registry, logs
// and recorded retry waits.
type fixture struct {
	d      *emu.Domain
	c      *identitydomain.Client
	reg    *prometheus.Registry
	sleeps *testutil.Sleeps
	logs   *testutil.SyncBuffer
}

type fixtureOpt struct {
	emu    func(*emu.Config)
	emuOpt []emu.Option
	cfg    func(*identitydomain.Config)
	opts   []identitydomain.Option
}

func newFixture(t testing.TB, fo fixtureOpt) *fixture {
	t.Helper()
	ec := emuConfig()
	if fo.emu != nil {
		fo.emu(&ec)
	}
	d := startDomain(t, ec, fo.emuOpt...)
	return clientFixture(t, d, d.URL(), fo)
}

// clientFixture is the fixture of a client of d reached at url: d's own, or
// that of a double in front of it. fo's cfg and opts apply.
func clientFixture(t testing.TB, d *emu.Domain, url string, fo fixtureOpt) *fixture {
	t.Helper()
	f := &fixture{d: d, reg: prometheus.NewRegistry(), sleeps: &testutil.Sleeps{}, logs: &testutil.SyncBuffer{}}
	cfg := clientConfig(t, url)
	if fo.cfg != nil {
		fo.cfg(&cfg)
	}
	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := append([]identitydomain.Option{
		identitydomain.WithRegisterer(f.reg),
		identitydomain.WithSleep(f.sleeps.Sleep),
		identitydomain.WithLogger(logger),
	}, fo.opts...)
	c, err := identitydomain.New(context.Background(), domainName, cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	f.c = c
	return f
}

// counter sums the samples of a counter family whose labels include want.
func counter(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	v, _ := testutil.Metric(t, reg, name, want)
	return v
}

// newUser is a minimal user for CreateUser.
func newUser(name string) identitydomains.User {
	return identitydomains.User{
		UserName: common.String(name),
		Name:     &identitydomains.UserName{GivenName: common.String("Test"), FamilyName: common.String("User")},
		Emails: []identitydomains.UserEmails{{Value: common.String(strings.ReplaceAll(name, " ", "_") + "@example.com"),
			Type: identitydomains.UserEmailsTypeWork, Primary: common.Bool(true)}},
	}
}

// newGroup is a group with a description and, if ext is not empty, an externalId.
func newGroup(name, ext string) identitydomains.Group {
	g := identitydomains.Group{
		DisplayName: common.String(name),
		UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup: &identitydomains.ExtensionGroupGroup{
			Description: common.String("group " + name),
		},
	}
	if ext != "" {
		g.ExternalId = common.String(ext)
	}
	return g
}

// mustCreateUser creates a user or fails the test.
func mustCreateUser(t testing.TB, c *identitydomain.Client, name string) identitydomains.User {
	t.Helper()
	u, _, err := c.CreateUser(context.Background(), newUser(name))
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

// mustCreateGroup creates the group newGroup makes, failing the test if
// it cannot.
func mustCreateGroup(t testing.TB, c *identitydomain.Client, displayName, externalID string) identitydomains.Group {
	t.Helper()
	g, _, err := c.CreateGroup(context.Background(), newGroup(displayName, externalID))
	if err != nil {
		t.Fatalf("CreateGroup(%q): %v", displayName, err)
	}
	return g
}

// mustCapabilities reads what the client knows of its domain's features, or
// fails the test.
func mustCapabilities(t testing.TB, c *identitydomain.Client) identitydomain.Capabilities {
	t.Helper()
	caps, err := c.Capabilities(context.Background())
	if err != nil {
		t.Fatalf("Capabilities: %v", err)
	}
	return caps
}

// kindOf returns the Kind of err's *Error, or "" with a test error.
func kindOf(t testing.TB, err error) *identitydomain.Error {
	t.Helper()
	var e *identitydomain.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *identitydomain.Error", err, err)
	}
	return e
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
