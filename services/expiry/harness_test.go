package expiry

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

const (
	domainShort = "prod"
	tempGroup   = "OCI-Temp-Admins"
)

func newClient(t testing.TB, d *emu.Domain, id, sec string) *identitydomain.Client {
	t.Helper()
	cfg := pipelinetest.ClientConfig(t, d.URL(), id, sec, false)
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 2, BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond}
	// An outage opens the breaker; its cooldown bounds how soon revocations
	// resume after the domain is back (default 30 s, longer than the tests wait).
	cfg.Breaker.Cooldown = time.Second
	return pipelinetest.Client(t, domainShort, cfg)
}

// testConfig has one temporary group: default 2s, max 5s (for the tests).
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Groups = []TemporaryGroup{{Domain: domainShort, Group: tempGroup, MaxDuration: 5 * time.Second, DefaultDuration: 2 * time.Second}}
	cfg.ScanInterval = 500 * time.Millisecond
	// The event path is what most tests watch: a reconcile at start (on by
	// default) would race it for memberships added right after the start.
	// TestReconcileOnStart turns it on.
	cfg.ReconcileOnStart = false
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
	webhook := pipelinetest.Webhook(t, b, domainShort)
	p := &pipeline{t: t, srv: srv, bus: b, cfg: cfg}
	p.domain = pipelinetest.Emulator(t, domainShort, emu.TierUnlimited, webhook)
	p.client = newClient(t, p.domain, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret)
	p.human = newClient(t, p.domain, pipelinetest.HumanClientID, pipelinetest.HumanSecret)
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
	return p.startWith(nil, opts...)
}

// startWith is start with setup called on the Service before it runs.
func (p *pipeline) startWith(setup func(*Service), opts ...servicekit.Option) (*Service, func()) {
	p.t.Helper()
	opts = append([]servicekit.Option{servicekit.WithLogger(pipelinetest.Logger(p.t))}, opts...)
	svc, err := New(context.Background(), p.cfg, p.bus, map[string]Domain{domainShort: p.client}, opts...)
	if err != nil {
		p.t.Fatal(err)
	}
	if setup != nil {
		setup(svc)
	}
	stop := pipelinetest.Run(p.t, svc)
	p.t.Cleanup(func() {
		if n := svc.counters.timersMissed.Load(); n > 0 && !p.timersLost {
			p.t.Errorf("%d grant(s) expired by the safety scan: their deadline timers did not end them", n)
		}
	})
	return svc, stop
}

func (p *pipeline) createUser(name string) string {
	p.t.Helper()
	return pipelinetest.CreateUser(p.t, p.human, name)
}

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
	return pipelinetest.AuditRecords(t, b, Name, action)
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
