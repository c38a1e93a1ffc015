// Package pipelinetest is what the services' pipeline tests share: an
// emulated Identity Domain with iamflow's client and an administrator's, the
// real ingest webhook publishing to JetStream, the real client, a service run
// for the length of a test, and the audit trail read back. Only tests import
// it; it is the one harness, each service's tests add what is theirs.
package pipelinetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/ingest"
)

// The emulated domains' OAuth clients (iamflow's and an administrator's at
// the console) and the webhook's Basic auth.
const (
	IamflowClientID = "iamflow-service"
	IamflowSecret   = "s3cret-iamflow-4e1f"
	HumanClientID   = "console-admin"
	HumanSecret     = "s3cret-human-9b2c"
	WebhookUser     = "iamflow"
	WebhookPassword = "correct horse battery staple"
)

// Logger logs to the test when IAMFLOW_TEST_LOG is set, else nowhere.
func Logger(t testing.TB) *slog.Logger {
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

// Emulator starts an emulated domain called name with iamflow's client and
// an administrator's, posting its events to webhook (none when empty), its
// configuration changed by edit if given (e.g. its Bulk support); it stops
// when the test ends.
func Emulator(t testing.TB, name string, tier emu.Tier, webhook string, edit ...func(*emu.Config)) *emu.Domain {
	t.Helper()
	cfg := emu.Config{
		Name: name,
		Clients: []emu.Client{
			{ID: IamflowClientID, Secret: IamflowSecret, Name: "iamflow"},
			{ID: HumanClientID, Secret: HumanSecret, Name: "alice@example.com"},
		},
		Tier: tier,
	}
	if webhook != "" {
		cfg.EventsWebhook = emu.EventsWebhook{URL: webhook, Username: WebhookUser, Password: WebhookPassword,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	}
	for _, e := range edit {
		e(&cfg)
	}
	return startEmulator(t, cfg)
}

// startEmulator starts the emulated domain cfg on a random port, closed
// when the test ends.
func startEmulator(t testing.TB, cfg emu.Config) *emu.Domain {
	t.Helper()
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

// ClientConfig is the real client's configuration for the domain at url
// with the OAuth client id and its secret (in a file of the test's): the
// free tier, whose rate limits apply only when limited, and the defaults'
// retries and breaker, which the caller tunes.
func ClientConfig(t testing.TB, url, id, sec string, limited bool) identitydomain.Config {
	t.Helper()
	cfg := identitydomain.DefaultConfig()
	cfg.URL = url
	cfg.ClientID = id
	cfg.ClientSecret = testutil.SecretFile(t, sec)
	cfg.Tier = identitydomain.TierFree
	if !limited {
		cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	}
	return cfg
}

// Client is the real client for the domain called name, closed when the
// test ends.
func Client(t testing.TB, name string, cfg identitydomain.Config) *identitydomain.Client {
	t.Helper()
	c, err := identitydomain.New(context.Background(), name, cfg, identitydomain.WithLogger(Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Webhook starts the real ingest webhook for the named domains (their OCI
// names the same), publishing to b, and returns the URL the domains post
// their events to.
func Webhook(t testing.TB, b *bus.Bus, domains ...string) string {
	t.Helper()
	icfg := ingest.DefaultConfig()
	icfg.Password = "env:UNUSED_IN_TESTS"
	icfg.PublishTimeout = 5 * time.Second
	var ids []ingest.Domain
	for _, n := range domains {
		ids = append(ids, ingest.Domain{Name: n, OCIName: n})
	}
	ing, err := ingest.New(context.Background(), icfg, b, ingest.Webhook{Password: secret.NewValue(WebhookPassword), Domains: ids},
		servicekit.WithLogger(Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(ing.Handler())
	t.Cleanup(hs.Close)
	return hs.URL + icfg.Path
}

// Service is what Run needs of a service.
type Service interface {
	Run(ctx context.Context) error
	Status(ctx context.Context) *iamflowv1.ServiceStatus
}

// Run runs svc until the returned stop is called or the test ends (a Run
// error fails the test), and waits until it reports RUNNING. stop may be
// called more than once.
func Run(t testing.TB, svc Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if st := svc.Status(context.Background()); st.State != iamflowv1.State_STATE_RUNNING {
			return fmt.Errorf("state %v", st.State)
		}
		return nil
	})
	return stop
}

// PublishEvent publishes ev to the events stream as the webhook would (its
// type set from its kind and action when empty, its id the message id, so
// a second publish is a duplicate) and returns its stream sequence.
func PublishEvent(t testing.TB, b *bus.Bus, ev *iamflowv1.IdentityEvent) uint64 {
	t.Helper()
	ack, err := b.Publish(context.Background(), EventMsg(t, ev), ev.Id)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// EventMsg is ev as the webhook publishes it: on its event subject, encoded,
// its type set from its kind and action when empty. Tests that hand an
// event to a handler directly build their bus.Msg from it.
func EventMsg(t testing.TB, ev *iamflowv1.IdentityEvent) *nats.Msg {
	t.Helper()
	if ev.Type == "" {
		ev.Type = event.Type(ev.Kind, ev.Action)
	}
	data, err := event.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := event.Subject(ev.Domain, ev.Kind, ev.Action)
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: subj, Data: data}
}

// AuditRecords returns the audit records of service's action ("*" for
// every action) stored on b so far, oldest first.
func AuditRecords(t testing.TB, b *bus.Bus, service, action string) []*iamflowv1.AuditRecord {
	t.Helper()
	ctx := context.Background()
	s, err := b.JetStream().Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	var out []*iamflowv1.AuditRecord
	subj := bus.AuditSubject(service, action)
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

// LoginDomain starts an emulated domain called name where people sign in:
// iamflow's confidential client (sysID, sysSecret), the CLI's public
// client cliID redirecting to http://127.0.0.1/callback, and seed loaded.
// It is closed when the test ends.
func LoginDomain(t testing.TB, name, sysID, sysSecret, cliID string, seed emu.SeedData) *emu.Domain {
	t.Helper()
	d := startEmulator(t, emu.Config{Name: name, Tier: emu.TierUnlimited, Clients: []emu.Client{
		{ID: sysID, Secret: sysSecret}, {ID: cliID, Public: true, RedirectURIs: []string{"http://127.0.0.1/callback"}}}})
	if err := d.LoadSeed(seed); err != nil {
		t.Fatal(err)
	}
	return d
}
