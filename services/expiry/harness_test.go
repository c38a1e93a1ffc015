package expiry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
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
	iamflowClientID = "iamflow-expiry"
	iamflowSecret   = "s3cret-iamflow-e1f2a3"
	humanClientID   = "console-admin"
	humanSecret     = "s3cret-human-4b5c6d"
	webhookUser     = "iamflow"
	webhookPassword = "correct horse battery staple"
	domainShort     = "prod"
	tempGroup       = "OCI-Temp-Admins"
)

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

func startEmulator(t testing.TB, webhook string) *emu.Domain {
	t.Helper()
	cfg := emu.Config{
		Name: domainShort,
		Clients: []emu.Client{
			{ID: iamflowClientID, Secret: iamflowSecret, Name: "iamflow"},
			{ID: humanClientID, Secret: humanSecret, Name: "alice@example.com"},
		},
		Tier: emu.TierUnlimited,
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

func newClient(t testing.TB, d *emu.Domain, id, sec string) *identitydomain.Client {
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
	cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 2, BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond}
	// An outage opens the breaker; its cooldown bounds how soon revocations
	// resume after the domain is back (default 30 s, longer than the tests wait).
	cfg.Breaker.Cooldown = time.Second
	c, err := identitydomain.New(context.Background(), domainShort, cfg, identitydomain.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfig has one temporary group: default 2s, max 5s (for the tests).
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Groups = []TemporaryGroup{{Domain: domainShort, Group: tempGroup, MaxDuration: 5 * time.Second, DefaultDuration: 2 * time.Second}}
	cfg.ScanInterval = 500 * time.Millisecond
	return cfg
}

// pipeline: the emulated domain posts events to the real ingest webhook,
// which publishes to a real JetStream that the service consumes; the
// service reads and writes the emulated domain through the real client.
type pipeline struct {
	t       testing.TB
	srv     *bustest.Server
	bus     *bus.Bus
	domain  *emu.Domain
	client  *identitydomain.Client
	human   *identitydomain.Client
	cfg     Config
	groupID string
	// timersLost says the test removes deadline timers on purpose; any other
	// test fails when a grant had to be expired by the safety scan.
	timersLost bool
	// natsBack is when the test's NATS server was back after a restart
	// (zero: never restarted); see expectExpiry.
	natsBack time.Time

	mu   sync.Mutex
	svcs []*Service
}

func newPipeline(t testing.TB, cfg Config) *pipeline {
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
	p := &pipeline{t: t, srv: srv, bus: b, cfg: cfg}
	p.domain = startEmulator(t, hs.URL+icfg.Path)
	p.client = newClient(t, p.domain, iamflowClientID, iamflowSecret)
	p.human = newClient(t, p.domain, humanClientID, humanSecret)
	name := tempGroup
	g, _, err := p.human.CreateGroup(context.Background(), identitydomains.Group{DisplayName: &name})
	if err != nil {
		t.Fatal(err)
	}
	p.groupID = *g.Id
	return p
}

// start runs a new Service (a replica, or a restart) on the pipeline's bus
// until the returned stop is called or the test ends.
func (p *pipeline) start(opts ...servicekit.Option) (*Service, func()) {
	p.t.Helper()
	opts = append([]servicekit.Option{servicekit.WithLogger(testLogger(p.t))}, opts...)
	svc, err := New(context.Background(), p.cfg, p.bus, map[string]Domain{domainShort: p.client}, opts...)
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				p.t.Errorf("Run: %v", err)
			}
		})
	}
	p.t.Cleanup(stop)
	p.t.Cleanup(func() {
		if n := svc.counters.timersMissed.Load(); n > 0 && !p.timersLost {
			p.t.Errorf("%d grant(s) expired by the safety scan: their deadline timers did not end them", n)
		}
	})
	testutil.CheckFor(p.t, 10*time.Second, 5*time.Millisecond, func() error {
		if st := svc.Status(context.Background()); st.State != iamflowv1.State_STATE_RUNNING {
			return fmt.Errorf("state %v", st.State)
		}
		return nil
	})
	return svc, stop
}

func (p *pipeline) createUser(name string) string {
	p.t.Helper()
	u := identitydomains.User{
		UserName: &name,
		Name:     &identitydomains.UserName{GivenName: ptr("Test"), FamilyName: &name},
		Emails:   []identitydomains.UserEmails{{Value: ptr(name + "@example.com"), Type: identitydomains.UserEmailsTypeWork, Primary: ptrB(true)}},
	}
	created, _, err := p.human.CreateUser(context.Background(), u)
	if err != nil {
		p.t.Fatal(err)
	}
	return *created.Id
}

func ptr(s string) *string { return &s }
func ptrB(b bool) *bool    { return &b }

// isMember reads the emulator directly.
func (p *pipeline) isMember(userID string) bool {
	ms, _ := p.domain.Members(p.groupID)
	return slices.ContainsFunc(ms, func(m emu.Member) bool { return m.UserID == userID })
}

// waitGone waits until the user is no longer a member and returns when
// that was first seen.
func (p *pipeline) waitGone(userID string, within time.Duration) time.Time {
	p.t.Helper()
	var at time.Time
	testutil.CheckFor(p.t, within, 2*time.Millisecond, func() error {
		if p.isMember(userID) {
			return errors.New("still a member")
		}
		at = time.Now()
		return nil
	})
	return at
}

// auditRecords returns the service's audit records for action.
func auditRecords(t testing.TB, b *bus.Bus, action string) []*iamflowv1.AuditRecord {
	t.Helper()
	ctx := context.Background()
	s, err := b.JetStream().Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	var out []*iamflowv1.AuditRecord
	subj := bus.AuditSubject(Name, action)
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

// lateness collects revocation lateness and logs p50/max.
type lateness []time.Duration

func (l lateness) report(t testing.TB) {
	t.Helper()
	s := slices.Clone(l)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return
	}
	t.Logf("revocation lateness (deadline → membership gone): n=%d p50=%v max=%v", len(s), s[len(s)/2], s[len(s)-1])
}

func groupNamed(name string) identitydomains.Group { return identitydomains.Group{DisplayName: &name} }
