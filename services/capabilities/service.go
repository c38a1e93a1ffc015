// Package capabilities enforces a least-privilege capability policy on the
// users of OCI IAM Identity Domains. OCI lets a new, federated or
// just-in-time provisioned user hold every kind of credential (API keys,
// auth tokens, console password, SMTP credentials, customer secret keys,
// OAuth 2.0 client credentials, DB credentials); the only way to change that
// is PUT /admin/v1/UserCapabilitiesChanger/{id}, per user. This service
// makes the configured policy (Config) hold:
//
//   - on events: user.created (createuser, createfederateduser: the JIT
//     path), user.updated, user.activated, user.capabilities_changed (a
//     capability turned back on by hand is drift: it is reverted and
//     audited), and membership changes when a rule matches on groups;
//   - on sweeps, scheduled (sweep.interval, sweep.on_start) or asked for
//     through the admin API, over every user of a domain, so users that
//     existed before iamflow are covered too;
//   - on demand for one user through the admin API (Preview, Apply).
//
// Every reconcile is level-triggered: it reads the user's current flags
// (and groups when a rule needs them), computes the desired flags, and
// writes only when they differ: one PUT carrying the policy's flags and,
// for flags the policy does not manage, the values just read, so the outcome
// does not depend on how the domain treats flags left out of a PUT. A
// compliant user costs one read; the
// updateusercapabilities event iamflow's own write causes finds the user
// compliant and writes nothing, so there is no loop. Every change (and
// every drift found) is recorded in IAM_AUDIT; what cannot be done goes to
// IAM_DLQ with the reason.
package capabilities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/servicestatus"
	"github.com/iamflow/iamflow/internal/telemetry"
)

// Name is the service's name in status, logs, audit records and the CLI.
const Name = "capabilities"

// instrumentationName names the service's tracer.
const instrumentationName = "github.com/iamflow/iamflow/services/capabilities"

// Auditor stores audit records; *audit.Writer is one.
type Auditor interface {
	Record(ctx context.Context, r *iamflowv1.AuditRecord) error
}

// Service is the capabilities service. Create it with New; it is an
// app.Service (Name, Run, Status) and the iamflow.v1.CapabilitiesService
// admin API (Register, RegisterGateway).
type Service struct {
	iamflowv1.UnimplementedCapabilitiesServiceServer

	cfg     Config
	policy  *Policy
	bus     *bus.Bus
	dirs    map[string]Directory // enforced domains only
	domains []string             // enforced, sorted
	log     *slog.Logger
	tracer  trace.Tracer
	auditor Auditor
	now     func() time.Time
	version string
	metrics *metrics
	started time.Time

	counters counters
	sweep    sweepState
	state    atomic.Int32 // iamflowv1.State
	consumer atomic.Pointer[bus.Consumer]
	last     servicestatus.Last

	runMu   sync.Mutex
	running bool
}

// Option configures a Service.
type Option func(*options)

type options struct {
	log        *slog.Logger
	tel        *telemetry.Telemetry
	registerer prometheus.Registerer
	auditor    Auditor
	now        func() time.Time
	version    string
}

// WithLogger sets the logger (default: the telemetry's, else discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithTelemetry sets the tracer provider (and the default logger).
func WithTelemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.tel = t } }

// WithRegisterer registers the service's Prometheus metrics on r.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithAuditWriter sets where audit records go (default: an audit.Writer on
// the bus, recording as "capabilities").
func WithAuditWriter(a Auditor) Option { return func(o *options) { o.auditor = a } }

// WithClock sets the clock for timestamps in status, sweeps and audit
// records (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithVersion sets the version reported in status.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// New validates cfg, compiles the policy and returns the service. dirs maps
// domain short names to their directories; every enforced domain
// (cfg.Domains, or every key of dirs when it is empty) needs one. b carries
// the events, the dead letters and, unless WithAuditWriter says otherwise,
// the audit records. Nothing is read or written until Run or an API call.
func New(ctx context.Context, cfg Config, b *bus.Bus, dirs map[string]Directory, opts ...Option) (*Service, error) {
	if b == nil {
		return nil, errors.New("capabilities: no bus")
	}
	return build(cfg, b, dirs, opts...)
}

// build is New without the bus requirement, for tests of the logic.
func build(cfg Config, b *bus.Bus, dirs map[string]Directory, opts ...Option) (*Service, error) {
	cfg = cfg.withDefaults()
	policy, err := NewPolicy(cfg)
	if err != nil {
		return nil, fmt.Errorf("capabilities config: %w", err)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.tel == nil {
		o.tel = telemetry.Noop()
	}
	if o.log == nil {
		o.log = o.tel.Logger
	}
	if o.auditor == nil {
		if b == nil {
			return nil, errors.New("capabilities: no bus and no audit writer")
		}
		o.auditor = audit.NewWriter(b, Name)
	}

	all := make([]string, 0, len(dirs))
	for d := range dirs {
		all = append(all, d)
	}
	slices.Sort(all)
	enforced := slices.Clone(cfg.enforcedDomains(all))
	slices.Sort(enforced)
	if len(enforced) == 0 {
		return nil, errors.New("capabilities: no domain to enforce: configure at least one domain")
	}
	s := &Service{
		cfg: cfg, policy: policy, bus: b, dirs: map[string]Directory{}, domains: enforced,
		log: o.log, tracer: o.tel.TracerProvider.Tracer(instrumentationName), auditor: o.auditor,
		now: o.now, version: o.version, metrics: newMetrics(o.registerer), started: o.now(),
	}
	var missing []string
	for _, d := range enforced {
		if !event.ValidDomainName(d) {
			return nil, fmt.Errorf("capabilities: %q is not a domain short name", d)
		}
		if dirs[d] == nil {
			missing = append(missing, d)
			continue
		}
		s.dirs[d] = dirs[d]
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("capabilities: no directory (identity domain client) for enforced domain(s) %v", missing)
	}
	for i, r := range cfg.Rules {
		for _, d := range r.Match.Domains {
			if s.dirs[d] == nil {
				return nil, fmt.Errorf("capabilities: rules[%d] %q: match.domains: %q is not an enforced domain", i, r.Name, d)
			}
		}
	}
	s.state.Store(int32(iamflowv1.State_STATE_STARTING))
	return s, nil
}

// Name returns "capabilities".
func (s *Service) Name() string { return Name }

// Policy returns the compiled policy.
func (s *Service) Policy() *Policy { return s.policy }

// Domains returns the enforced domains' short names, sorted.
func (s *Service) Domains() []string { return slices.Clone(s.domains) }

// ConsumerConfig is the consumer Run creates: cfg.Consumer with one filter
// per enforced domain for user events, one for membership events when a
// rule matches on groups, and per-user coalescing.
func (s *Service) ConsumerConfig() bus.ConsumerConfig {
	cc := s.cfg.Consumer
	cc.FilterSubjects = nil
	for _, d := range s.domains {
		cc.FilterSubjects = append(cc.FilterSubjects, event.SubjectFilter(d, "user"))
		if s.policy.NeedsGroups() {
			cc.FilterSubjects = append(cc.FilterSubjects, event.SubjectFilter(d, "membership"))
		}
	}
	cc.Coalesce = coalesceKey
	return cc
}

// Run consumes events until ctx is cancelled and runs the scheduled sweeps
// (sweep.on_start, sweep.interval); then it drains the consumer, stops the
// sweep in progress and returns nil. It returns an error if the consumer
// cannot be created or the bus connection is lost. A Service runs once at a time.
func (s *Service) Run(ctx context.Context) error {
	if s.bus == nil {
		return errors.New("capabilities: no bus")
	}
	s.runMu.Lock()
	if s.running {
		s.runMu.Unlock()
		return errors.New("capabilities: already running")
	}
	s.running = true
	s.runMu.Unlock()
	defer func() {
		s.runMu.Lock()
		s.running = false
		s.runMu.Unlock()
	}()

	s.state.Store(int32(iamflowv1.State_STATE_STARTING))
	cons, err := s.bus.Consumer(ctx, s.ConsumerConfig(), s.handle)
	if err != nil {
		s.recordError(err)
		return fmt.Errorf("capabilities: %w", err)
	}
	s.consumer.Store(cons)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.scheduleSweeps(ctx)
	}()
	s.state.Store(int32(iamflowv1.State_STATE_RUNNING))
	if s.cfg.Default.IsZero() && len(s.cfg.Rules) == 0 {
		s.log.Warn("the capabilities policy sets no flag: users are read but never changed; set capabilities.default")
	}
	s.log.Info("capabilities enforcing", "domains", s.domains, "rules", len(s.cfg.Rules),
		"groups", s.policy.NeedsGroups(), "sweep_interval", s.cfg.Sweep.Interval, "sweep_on_start", s.cfg.Sweep.OnStart)
	err = cons.Run(ctx)
	s.state.Store(int32(iamflowv1.State_STATE_STOPPING))
	wg.Wait()
	if err != nil {
		s.recordError(err)
		return fmt.Errorf("capabilities: %w", err)
	}
	return nil
}

// scheduleSweeps sweeps every enforced domain at start (on_start) and every
// interval, until ctx ends. A sweep still running when the next is due
// delays it: sweeps never overlap.
func (s *Service) scheduleSweeps(ctx context.Context) {
	if s.cfg.Sweep.OnStart {
		s.sweepAll(ctx, "on_start")
	}
	if s.cfg.Sweep.Interval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.Sweep.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweepAll(ctx, "scheduled")
		}
	}
}

func (s *Service) sweepAll(ctx context.Context, why string) {
	for _, d := range s.domains {
		if ctx.Err() != nil {
			return
		}
		rep, err := s.Sweep(ctx, d, false)
		switch {
		case errors.Is(err, ErrSweepRunning):
			s.log.Info("sweep skipped: another sweep is running", "domain", d, "trigger", why)
		case err != nil && ctx.Err() == nil:
			s.log.Error("sweep failed", "domain", d, "trigger", why, "error", err)
		case err == nil:
			s.log.Info("sweep done", "domain", d, "trigger", why, "checked", rep.Checked, "changed", rep.Changed,
				"failed", rep.Failed, "took", rep.Finished.Sub(rep.Started).Round(time.Millisecond))
		}
	}
}
