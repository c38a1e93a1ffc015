package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

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
	"github.com/iamflow/iamflow/services/expiry"
	"github.com/iamflow/iamflow/services/expiry/access"
	"github.com/iamflow/iamflow/services/replicator"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// The secrets of the stack: none may appear in a page or an API answer.
const (
	adminToken   = "console-admin-token-Zq8v1Lw3Tx"
	webhookPass  = "console-webhook-pass-Pm4k9Rj2"
	clientID     = "iamflow-console-test"
	clientSecret = "console-client-secret-Hd7s2Ny5"
	adminID      = "console-admin"
	adminSecret  = "console-person-secret-Bw6c3Qe8"
	link         = "main"
	tempGroup    = "Temp-Admins"
	dbGroup      = "DB Users"
	dbRole       = "APP_READER"
	database     = "appdb"
	requester    = "rita@example.com" // the access policy's one requester
)

var secrets = []string{adminToken, webhookPass, clientSecret, adminSecret}

// stack is iamflow as `iamflow serve all` builds it (app.New, embedded
// JetStream, the admin token required), with emulated source and target
// domains and an emulated ORDS, for the console to be driven against.
type stack struct {
	t        *testing.T
	src, tgt *emu.Domain
	ords     *emords.Emulator
	admin    *identitydomain.Client // a person at the source's console
	app      *app.App
	base     string // the admin HTTP listener, where the console is
	cancel   func()
	done     chan error
}

func quietLog() *slog.Logger {
	if os.Getenv("IAMFLOW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func writeSecret(t *testing.T, dir, name, v string) secret.Ref {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref("file:" + p)
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Telemetry.LogLevel = "error"
	cfg.NATS.Embedded.StoreDir = filepath.Join(dir, "nats")
	cfg.NATS.Embedded.Port = -1
	cfg.Admin.GRPCAddr, cfg.Admin.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Admin.Token = writeSecret(t, dir, "admin-token", adminToken)
	cfg.Admin.Console.TraceURL = "http://127.0.0.1:16686/trace/{trace_id}"
	cfg.Ingest.Listen = ln.Addr().String()
	cfg.Ingest.Password = writeSecret(t, dir, "webhook", webhookPass)
	webhook := "http://" + ln.Addr().String() + cfg.Ingest.Path

	clients := []emu.Client{{ID: clientID, Secret: clientSecret, Name: "iamflow"}, {ID: adminID, Secret: adminSecret, Name: "admin@example.com"}}
	s.src, err = emu.New(emu.Config{Name: "src", Clients: clients, Tier: emu.TierUnlimited,
		EventsWebhook: emu.EventsWebhook{URL: webhook, Username: cfg.Ingest.Username, Password: webhookPass,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}}, emu.WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	s.tgt, err = emu.New(emu.Config{Name: "tgt", Clients: clients, Tier: emu.TierUnlimited}, emu.WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*emu.Domain{s.src, s.tgt} {
		if err := d.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
	}
	s.ords, err = emords.New(emords.Config{Databases: []emords.Database{{Alias: database, ClientID: clientID, ClientSecret: clientSecret,
		Roles: []emords.Role{{Name: dbRole}}, PoolSize: 8}}}, emords.WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ords.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ords.Close() })

	sec := writeSecret(t, dir, "client", clientSecret)
	for _, d := range []*emu.Domain{s.src, s.tgt} {
		api := identitydomain.DefaultConfig()
		api.URL, api.ClientID, api.ClientSecret = d.URL(), clientID, sec
		api.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
		api.Retry = identitydomain.RetryConfig{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}
		c := d.Config()
		cfg.Domains = append(cfg.Domains, config.Domain{Name: c.Name, OCIName: c.Name, ID: c.DomainID, Config: api})
	}
	fast := func(cc bus.ConsumerConfig) bus.ConsumerConfig {
		cc.Backoff = []time.Duration{20 * time.Millisecond, 50 * time.Millisecond}
		cc.MaxDeliver = 3
		return cc
	}
	l := replicator.Link{Name: link, Source: "src", Targets: []string{"tgt"}}.WithDefaults()
	l.Guard = planner.GuardConfig{MaxDeletions: 1, MaxPercent: 100, Window: time.Hour} // the second deletion is held
	cfg.Replicator.Links = []replicator.Link{l}
	cfg.Replicator.Consumer = fast(cfg.Replicator.Consumer)
	oc := ordsclient.DefaultConfig()
	oc.URL, oc.ClientID, oc.ClientSecret = s.ords.BaseURL(database), clientID, sec
	oc.Retry = ordsclient.RetryConfig{MaxAttempts: 1, BaseDelay: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond}
	cfg.Dbprovisioner.Databases = []dbprovisioner.DatabaseConfig{{Name: database, Domain: "src", ORDS: oc,
		Groups: []dbprovisioner.GroupMapping{{Group: dbGroup, Roles: []string{dbRole}}}}}
	cfg.Dbprovisioner.Consumer = fast(cfg.Dbprovisioner.Consumer)
	cfg.Dbprovisioner.Reconcile = dbprovisioner.ReconcileConfig{} // only the console repairs
	cfg.Capabilities.Domains = []string{"src"}
	cfg.Capabilities.Consumer = fast(cfg.Capabilities.Consumer)
	cfg.Capabilities.JITMaxAttempts = 2
	cfg.Expiry.Groups = []expiry.TemporaryGroup{{Domain: "src", Group: tempGroup, DefaultDuration: time.Hour, MaxDuration: 8 * time.Hour}}
	cfg.Expiry.Consumer = fast(cfg.Expiry.Consumer)
	cfg.Expiry.Access.Policies = []access.Policy{{Domain: "src", Group: tempGroup, Requesters: access.Principals{Users: []string{requester}},
		Approvers: access.Principals{Groups: []string{"Access-Approvers"}}, Justification: true, MaxDuration: 2 * time.Hour}}

	s.app, err = app.New(context.Background(), cfg, []string{"all"}, app.WithIngestListener(ln))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- s.app.Run(ctx) }()
	t.Cleanup(s.stop)
	s.admin = newClient(t, s.src, adminID, adminSecret)
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for _, st := range s.app.Services() {
			if got := s.app.Service(st).Status(context.Background()).GetState().String(); got != "STATE_RUNNING" {
				return fmt.Errorf("%s is %s", st, got)
			}
		}
		return nil
	})
	s.base = "http://" + s.app.Admin().HTTPAddr().String()
	return s
}

func (s *stack) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		s.t.Errorf("app.Run: %v", err)
	}
}

func newClient(t *testing.T, d *emu.Domain, id, sec string) *identitydomain.Client {
	t.Helper()
	cfg := identitydomain.DefaultConfig()
	cfg.URL, cfg.ClientID = d.URL(), id
	cfg.ClientSecret = writeSecret(t, t.TempDir(), "secret", sec)
	cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	c, err := identitydomain.New(context.Background(), "admin-"+d.Config().Name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func sp(s string) *string { return &s }

func (s *stack) createUser(name string) string {
	s.t.Helper()
	u, _, err := s.admin.CreateUser(context.Background(), identitydomains.User{UserName: sp(name),
		Name: &identitydomains.UserName{GivenName: sp("Test"), FamilyName: sp("User")}})
	if err != nil {
		s.t.Fatal(err)
	}
	return *u.Id
}

func (s *stack) createGroup(name string) string {
	s.t.Helper()
	g, _, err := s.admin.CreateGroup(context.Background(), identitydomains.Group{DisplayName: sp(name)})
	if err != nil {
		s.t.Fatal(err)
	}
	return *g.Id
}

// api calls the admin REST API as the CLI does, with the admin token.
func (s *stack) api(method, path, body string, out any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// settled waits until no consumer has anything pending.
func (s *stack) settled() {
	s.t.Helper()
	testutil.CheckFor(s.t, 30*time.Second, 20*time.Millisecond, func() error {
		if st := s.src.EventStats(); st.Pending != 0 {
			return fmt.Errorf("src has %d events to deliver", st.Pending)
		}
		for _, name := range s.app.Services() {
			for _, c := range s.app.Service(name).Status(context.Background()).GetConsumers() {
				if c.GetPending() != 0 || c.GetAckPending() != 0 {
					return fmt.Errorf("%s: %d pending, %d in flight", c.GetName(), c.GetPending(), c.GetAckPending())
				}
			}
		}
		return nil
	})
}
