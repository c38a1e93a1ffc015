package capabilities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/ingest"
)

const (
	iamflowClientID = "iamflow-capabilities"
	iamflowSecret   = "s3cret-iamflow-b7f1e0"
	humanClientID   = "console-admin"
	humanSecret     = "s3cret-human-7a9c2d"
	webhookUser     = "iamflow"
	webhookPassword = "correct horse battery staple"
	domainShort     = "prod"
)

// testLogger logs to the test when IAMFLOW_TEST_LOG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("IAMFLOW_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startEmulator starts an emulated domain with the iamflow client and a
// "human" client (an administrator at the console).
func startEmulator(t testing.TB, tier emu.Tier, webhook string) *emu.Domain {
	t.Helper()
	cfg := emu.Config{
		Name: domainShort,
		Clients: []emu.Client{
			{ID: iamflowClientID, Secret: iamflowSecret, Name: "iamflow"},
			{ID: humanClientID, Secret: humanSecret, Name: "alice@example.com"},
		},
		Tier: tier,
	}
	if webhook != "" {
		cfg.EventsWebhook = emu.EventsWebhook{URL: webhook, Username: webhookUser, Password: webhookPassword,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	}
	d, err := emu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// newClient is the real Identity Domains client for the emulator; limited
// says whether it applies the free tier's rate limits (else none).
func newClient(t testing.TB, d *emu.Domain, id, sec string, limited bool) *identitydomain.Client {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(sec), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := identitydomain.DefaultConfig()
	cfg.URL = d.URL()
	cfg.ClientID = id
	cfg.ClientSecret = secret.Ref("file:" + p)
	cfg.Tier = identitydomain.TierFree
	if !limited {
		cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	}
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 4, BaseDelay: 20 * time.Millisecond, MaxDelay: 2 * time.Second}
	c, err := identitydomain.New(context.Background(), domainShort, cfg, identitydomain.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// pipeline is the whole path: the emulated domain posts its events to the
// real ingest webhook, which publishes to a real JetStream, which the
// capabilities service consumes, reading and writing the emulated domain
// through the real client.
type pipeline struct {
	t      testing.TB
	bus    *bus.Bus
	domain *emu.Domain
	client *identitydomain.Client // iamflow's
	human  *identitydomain.Client // an administrator's
	svc    *Service
}

// newPipeline starts the pipeline; wrap, if given, wraps the service's directory.
func newPipeline(t *testing.T, cfg Config, wrap ...func(Directory) Directory) *pipeline {
	t.Helper()
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	icfg := ingest.DefaultConfig()
	icfg.Password = "env:UNUSED_IN_TESTS"
	icfg.PublishTimeout = 5 * time.Second
	ing, err := ingest.New(context.Background(), icfg, b, ingest.Webhook{Password: secret.NewValue(webhookPassword), Domains: []ingest.Domain{ingest.Domain{Name: domainShort, OCIName: domainShort}}},
		servicekit.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(ing.Handler())
	t.Cleanup(hs.Close)

	p := &pipeline{t: t, bus: b}
	p.domain = startEmulator(t, emu.TierUnlimited, hs.URL+icfg.Path)
	p.client = newClient(t, p.domain, iamflowClientID, iamflowSecret, false)
	p.human = newClient(t, p.domain, humanClientID, humanSecret, false)
	dir := NewDirectory(p.client)
	for _, w := range wrap {
		dir = w(dir)
	}
	p.svc, err = New(context.Background(), cfg, b, map[string]Directory{domainShort: dir},
		servicekit.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if st := p.svc.Status(context.Background()); st.State != iamflowv1.State_STATE_RUNNING {
			return fmt.Errorf("state %v", st.State)
		}
		return nil
	})
	return p
}

// settled waits until every event the domain emitted was delivered to ingest
// and every message was handled and acknowledged. Handlers write before they
// acknowledge, and the domain queues the event of a write before answering
// it, so nothing is in flight when the domain has emitted nothing new and
// delivered everything around a moment the consumer has nothing pending.
func (p *pipeline) settled() {
	p.t.Helper()
	testutil.CheckFor(p.t, 20*time.Second, 10*time.Millisecond, func() error {
		before := p.domain.EventStats()
		st := p.svc.Status(context.Background())
		after := p.domain.EventStats()
		if before.Pending != 0 || after.Pending != 0 || before.Emitted != after.Emitted {
			return fmt.Errorf("events: %d pending, %d emitted", after.Pending, after.Emitted)
		}
		if len(st.Consumers) != 1 {
			return errors.New("no consumer status")
		}
		if c := st.Consumers[0]; c.Pending != 0 || c.AckPending != 0 {
			return fmt.Errorf("consumer: %d pending, %d ack pending", c.Pending, c.AckPending)
		}
		return nil
	})
}

// auditRecords returns the service's audit records so far.
func auditRecords(t testing.TB, b *bus.Bus) []*iamflowv1.AuditRecord {
	t.Helper()
	ctx := context.Background()
	s, err := b.JetStream().Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	var out []*iamflowv1.AuditRecord
	subj := bus.AuditSubject(Name, actionSetCapabilities)
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		r, err := audit.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
		seq = m.Sequence + 1
	}
}

// createUser creates a user through the human's client.
func (p *pipeline) createUser(name string, federated bool) string {
	p.t.Helper()
	u := identitydomains.User{
		UserName: &name,
		Name:     &identitydomains.UserName{GivenName: ptrS("Test"), FamilyName: &name},
		Emails:   []identitydomains.UserEmails{{Value: ptrS(name + "@example.com"), Type: identitydomains.UserEmailsTypeWork, Primary: ptr(true)}},
	}
	if federated {
		u.UrnIetfParamsScimSchemasOracleIdcsExtensionUserUser = &identitydomains.ExtensionUserUser{IsFederatedUser: ptr(true)}
	}
	created, _, err := p.human.CreateUser(context.Background(), u)
	if err != nil {
		p.t.Fatal(err)
	}
	return *created.Id
}

func ptrS(s string) *string { return &s }

// caps returns the emulated user's flags.
func caps(t testing.TB, d *emu.Domain, id string) map[string]bool {
	t.Helper()
	u, ok := d.User(id)
	if !ok {
		t.Fatalf("no user %s", id)
	}
	return u.Capabilities
}

// hasFlags reports, as an error, how the emulated user's flags differ from want.
func hasFlags(d *emu.Domain, id string, want Flags) error {
	u, ok := d.User(id)
	if !ok {
		return fmt.Errorf("no user %s", id)
	}
	var diffs []string
	for _, def := range flagDefs {
		w := *def.field(&want)
		if w != nil && u.Capabilities[def.attr] != *w {
			diffs = append(diffs, fmt.Sprintf("%s=%v", def.attr, u.Capabilities[def.attr]))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("user %s has %s", u.UserName, strings.Join(diffs, ", "))
	}
	return nil
}
