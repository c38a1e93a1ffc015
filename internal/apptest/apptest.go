// Package apptest starts iamflow as `iamflow serve all` builds it (app.New,
// an embedded JetStream, every service) between an emulated source domain
// that posts its events to the real ingest webhook, an emulated target
// domain and an emulated ORDS, for tests that drive the whole app. Only
// tests import it; each test says in Options what its stack differs in.
package apptest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	emords "github.com/iamflow/iamflow/emulator/ords"
	"github.com/iamflow/iamflow/internal/app"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
	ordsclient "github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/dbprovisioner"
	"github.com/iamflow/iamflow/services/replicator"
)

// Options are what a test's stack is made of and differs in.
type Options struct {
	// ClientID and ClientSecret are iamflow's OAuth client, in both
	// domains and in the ORDS database; AdminID and AdminSecret a person's
	// at the source's console.
	ClientID, ClientSecret, AdminID, AdminSecret string
	// WebhookPassword is what the source's events are posted with.
	WebhookPassword string
	// Link names the replicator's link from src to tgt.
	Link string
	// Database is the ORDS database's alias; DBGroup the source group
	// whose members get DBRole in it.
	Database, DBGroup, DBRole string
	// Consumer, when set, changes every service's consumer (faster
	// backoff, fewer deliveries).
	Consumer func(bus.ConsumerConfig) bus.ConsumerConfig
	// Configure, when set, changes the assembled configuration last.
	Configure func(s *Stack, cfg *config.Config)
	// OnSourceEvent and OnTargetEvent, when set, see every event each
	// domain emits.
	OnSourceEvent, OnTargetEvent func([]byte)
	// AppOptions are passed to app.New.
	AppOptions []app.Option
}

// Stack is the running app and the emulators around it.
type Stack struct {
	Src, Tgt *emu.Domain
	ORDS     *emords.Emulator
	// Admin is a person at the source's console.
	Admin *identitydomain.Client
	App   *app.App
	// Webhook is ingest's URL; WebhookUser its Basic auth user.
	Webhook, WebhookUser string
	// Dir is the stack's temporary directory; ClientSecret the file
	// secret of Options.ClientSecret.
	Dir          string
	ClientSecret secret.Ref

	t      *testing.T
	cancel func()
	done   chan error
}

// New starts a stack and stops it when the test ends; it returns once every
// service reports running.
func New(t *testing.T, o Options) *Stack {
	t.Helper()
	s := &Stack{t: t, Dir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Telemetry.LogLevel = "error"
	if os.Getenv("IAMFLOW_TEST_LOG") != "" {
		cfg.Telemetry.LogLevel = "debug"
	}
	cfg.NATS.Embedded.StoreDir = filepath.Join(s.Dir, "nats")
	cfg.NATS.Embedded.Port = -1
	cfg.Admin.GRPCAddr, cfg.Admin.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Ingest.Listen = ln.Addr().String()
	s.Webhook = "http://" + ln.Addr().String() + cfg.Ingest.Path
	s.WebhookUser = cfg.Ingest.Username
	s.startEmulators(o)
	s.ClientSecret = WriteSecret(t, s.Dir, "client", o.ClientSecret)
	s.configure(o, &cfg)

	s.App, err = app.New(context.Background(), cfg, []string{"all"}, append(o.AppOptions, app.WithIngestListener(ln))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- s.App.Run(ctx) }()
	t.Cleanup(s.Stop)
	s.Admin = Client(t, s.Src, o.AdminID, o.AdminSecret)
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for _, name := range s.App.Services() {
			if got := s.App.Service(name).Status(context.Background()).GetState().String(); got != "STATE_RUNNING" {
				return fmt.Errorf("%s is %s", name, got)
			}
		}
		return nil
	})
	return s
}

// startEmulators starts the source domain (posting its events to the
// webhook), the target domain and ORDS, closed when the test ends.
func (s *Stack) startEmulators(o Options) {
	t := s.t
	clients := []emu.Client{{ID: o.ClientID, Secret: o.ClientSecret, Name: "iamflow"}, {ID: o.AdminID, Secret: o.AdminSecret, Name: "admin@example.com"}}
	var err error
	s.Src, err = emu.New(emu.Config{Name: "src", Clients: clients, Tier: emu.TierUnlimited,
		EventsWebhook: emu.EventsWebhook{URL: s.Webhook, Username: s.WebhookUser, Password: o.WebhookPassword,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}}, emu.WithLogger(QuietLog()))
	if err != nil {
		t.Fatal(err)
	}
	s.Tgt, err = emu.New(emu.Config{Name: "tgt", Clients: clients, Tier: emu.TierUnlimited}, emu.WithLogger(QuietLog()))
	if err != nil {
		t.Fatal(err)
	}
	if o.OnSourceEvent != nil {
		s.Src.OnEvent(o.OnSourceEvent)
	}
	if o.OnTargetEvent != nil {
		s.Tgt.OnEvent(o.OnTargetEvent)
	}
	for _, d := range []*emu.Domain{s.Src, s.Tgt} {
		if err := d.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
	}
	s.ORDS, err = emords.New(emords.Config{Databases: []emords.Database{{Alias: o.Database, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Roles: []emords.Role{{Name: o.DBRole}}, PoolSize: 8}}}, emords.WithLogger(QuietLog()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ORDS.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ORDS.Close() })
}

// configure points cfg at the emulators: both domains, the link from src to
// tgt, the ORDS database and its group (no periodic reconcile: only events
// and the admin API change it), capabilities on src; then applies
// the test's Consumer and Configure.
func (s *Stack) configure(o Options, cfg *config.Config) {
	for _, d := range []*emu.Domain{s.Src, s.Tgt} {
		api := identitydomain.DefaultConfig()
		api.URL, api.ClientID, api.ClientSecret = d.URL(), o.ClientID, s.ClientSecret
		api.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
		api.Retry = identitydomain.RetryConfig{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}
		c := d.Config()
		cfg.Domains = append(cfg.Domains, config.Domain{Name: c.Name, OCIName: c.Name, ID: c.DomainID, Config: api})
	}
	cfg.Replicator.Links = []replicator.Link{replicator.Link{Name: o.Link, Source: "src", Targets: []string{"tgt"}}.WithDefaults()}
	oc := ordsclient.DefaultConfig()
	oc.URL, oc.ClientID, oc.ClientSecret = s.ORDS.BaseURL(o.Database), o.ClientID, s.ClientSecret
	cfg.Dbprovisioner.Databases = []dbprovisioner.DatabaseConfig{{Name: o.Database, Domain: "src", ORDS: oc,
		Groups: []dbprovisioner.GroupMapping{{Group: o.DBGroup, Roles: []string{o.DBRole}}}}}
	cfg.Dbprovisioner.Reconcile = dbprovisioner.ReconcileConfig{}
	cfg.Capabilities.Domains = []string{"src"}
	if o.Consumer != nil {
		cfg.Replicator.Consumer = o.Consumer(cfg.Replicator.Consumer)
		cfg.Dbprovisioner.Consumer = o.Consumer(cfg.Dbprovisioner.Consumer)
		cfg.Capabilities.Consumer = o.Consumer(cfg.Capabilities.Consumer)
		cfg.Expiry.Consumer = o.Consumer(cfg.Expiry.Consumer)
	}
	if o.Configure != nil {
		o.Configure(s, cfg)
	}
}

// Stop stops the app and reports an error it ended with; the test's end
// calls it too.
func (s *Stack) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		s.t.Errorf("app.Run: %v", err)
	}
}

// Client is a client of domain d with the OAuth client id and secret, not
// rate-limited, closed when the test ends.
func Client(t *testing.T, d *emu.Domain, id, sec string) *identitydomain.Client {
	t.Helper()
	cfg := identitydomain.DefaultConfig()
	cfg.URL, cfg.ClientID = d.URL(), id
	cfg.ClientSecret = WriteSecret(t, t.TempDir(), "secret", sec)
	cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	c, err := identitydomain.New(context.Background(), "admin-"+d.Config().Name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// WriteSecret writes v to the file name in dir and returns its reference.
func WriteSecret(t *testing.T, dir, name, v string) secret.Ref {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref("file:" + p)
}

// QuietLog discards logs, unless IAMFLOW_TEST_LOG is set.
func QuietLog() *slog.Logger {
	if os.Getenv("IAMFLOW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}
