// Package expiry makes temporary group memberships revoke themselves on
// time. A grant adds a user to a temporary group (Config.Groups) until a
// deadline; at the deadline iamflow removes the membership in the OCI
// identity domain itself, instead of waiting for the IdP and a SCIM cycle.
//
// # Durability
//
// Grants live in the JetStream KV bucket IAM_EXPIRY_GRANTS. Each deadline is
// a JetStream message schedule (Nats-Schedule: @at <RFC3339>) in the stream
// IAM_EXPIRY (AllowMsgSchedules, nats-server 2.12+), whose target
// iam.expiry.due.<grant id> is consumed by the durable consumer
// "<durable>-due": the timer survives restarts of the service and of the
// server, and a second replica shares the consumer rather than doubling it.
// Every replica also scans the grants every ScanInterval, a safety net: it
// re-publishes a due message for a grant whose revocation failed, and for
// one whose timer has not fired within timerGrace of its deadline. The
// latter is a fault, counted and logged as a missed timer: the scan is not
// the way deadlines are kept.
//
// Whatever fires, the handler is level-triggered: it reads the grant, acts
// only if it is still open and its deadline has passed, and changes it only
// by compare-and-set on the KV revision. Before calling the domain it claims
// the grant (a CAS that records the claimant for ClaimTTL), so two
// replicas, or a timer and a scan, never both revoke it. An extended grant's
// old timer finds the deadline in the future and does nothing.
//
// # Revocation
//
// Revocation removes the membership (RemoveMembers; removing a non-member
// succeeds), then reads the user's groups to verify it is gone. A user
// removed from the group by other means before the deadline ends the same
// way: the grant becomes expired at its deadline (iamflow does not watch
// for early removals). While the domain cannot be reached the grant stays
// active with overdue set and last_error, the revocation is retried, the
// status counter "overdue" and the gauge iamflow_expiry_overdue_grants count
// it.
//
// # Memberships added outside iamflow
//
// A member_added event for a temporary group (the IdP's SCIM push, a JIT
// login, the console) opens a grant with the group's default duration,
// unless the membership already has an open grant (iamflow's own Grant
// records the grant before adding the member). The membership index
// ("m.<domain>.<group>.<user>" in the bucket, created atomically) keeps
// replicas from opening two grants for one membership.
package expiry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/servicestatus"
	"github.com/iamflow/iamflow/internal/telemetry"
)

// Name is the service's name in status, logs, audit records and the CLI.
const Name = "expiry"

// Stream is the JetStream stream holding the deadline schedules and the due
// messages they produce.
const Stream = "IAM_EXPIRY"

// Subjects of the IAM_EXPIRY stream.
const (
	SubjectPrefix   = "iam.expiry"
	scheduleSubject = SubjectPrefix + ".schedule"
	dueSubject      = SubjectPrefix + ".due"
)

// ClaimTTL is how long a replica's claim on a grant it is revoking holds
// before another may take over (if the claimant crashed).
const ClaimTTL = 30 * time.Second

// Audit actions.
const (
	ActionGrant  = "grant"
	ActionExtend = "extend"
	ActionRevoke = "revoke"
	ActionExpire = "expire"
)

// Auditor stores audit records; *audit.Writer is one.
type Auditor interface {
	Record(ctx context.Context, r *iamflowv1.AuditRecord) error
}

// Service is the expiry service. Create it with New; it is an app.Service
// (Name, Run, Status) and the iamflow.v1.ExpiryService admin API
// (Register, RegisterGateway).
type Service struct {
	iamflowv1.UnimplementedExpiryServiceServer

	cfg      Config
	groups   map[string]TemporaryGroup // by groupKey
	bus      *bus.Bus
	clients  map[string]*identitydomain.Client
	log      *slog.Logger
	auditor  Auditor
	now      func() time.Time
	version  string
	metrics  *metrics
	started  time.Time
	instance string
	// dueMaxDeliver is the due consumer's max_deliver.
	dueMaxDeliver int

	initMu sync.Mutex
	st     *store

	counters counters
	state    atomic.Int32
	consDue  atomic.Pointer[bus.Consumer]
	consEv   atomic.Pointer[bus.Consumer]
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

// WithTelemetry sets the telemetry (and the default logger).
func WithTelemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.tel = t } }

// WithRegisterer registers the service's Prometheus metrics on r.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithAuditWriter sets where audit records go (default: an audit.Writer on
// the bus, recording as "expiry").
func WithAuditWriter(a Auditor) Option { return func(o *options) { o.auditor = a } }

// WithClock sets the clock (default time.Now). Deadlines fire on the
// server's clock; the clock decides whether a deadline has passed.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithVersion sets the version reported in status.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// New validates cfg and returns the service. clients maps domain short
// names to their Identity Domains clients; every domain of a temporary group
// needs one. Nothing is read or written until Run or an API call.
func New(ctx context.Context, cfg Config, b *bus.Bus, clients map[string]*identitydomain.Client, opts ...Option) (*Service, error) {
	if b == nil {
		return nil, errors.New("expiry: no bus")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("expiry config: %w", err)
	}
	cfg = cfg.withDefaults()
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
		o.auditor = audit.NewWriter(b, Name)
	}
	s := &Service{
		cfg: cfg, groups: map[string]TemporaryGroup{}, bus: b, clients: map[string]*identitydomain.Client{},
		log: o.log, auditor: o.auditor, now: o.now, version: o.version, metrics: newMetrics(o.registerer),
		started: o.now(), instance: newID()[:12],
	}
	s.dueMaxDeliver = s.DueConsumerConfig().WithDefaults().MaxDeliver
	var missing []string
	for _, g := range cfg.Groups {
		s.groups[g.key()] = g
		c := clients[g.Domain]
		if c == nil {
			missing = append(missing, g.Domain)
			continue
		}
		s.clients[g.Domain] = c
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("expiry: no identity domain client for domain(s) %v of temporary groups", missing)
	}
	s.state.Store(int32(iamflowv1.State_STATE_STARTING))
	return s, nil
}

// Name returns "expiry".
func (s *Service) Name() string { return Name }

// newID returns a random grant id (32 hex digits).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// init creates (or updates) the bucket and the stream, once.
func (s *Service) init(ctx context.Context) (*store, error) {
	s.initMu.Lock()
	defer s.initMu.Unlock()
	if s.st != nil {
		return s.st, nil
	}
	js := s.bus.JetStream()
	storage, replicas := s.bus.Placement()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "iamflow temporary group grants", History: 1, Storage: storage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("expiry: create bucket %s: %w", Bucket, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              Stream,
		Description:       "iamflow grant deadlines: schedules and the due messages they fire",
		Subjects:          []string{SubjectPrefix + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           storage,
		Replicas:          replicas,
		MaxMsgsPerSubject: 1,
		AllowMsgSchedules: true,
		AllowMsgTTL:       true, // due messages expire (dueTTL); schedules purge themselves when they fire
		Duplicates:        2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("expiry: create stream %s (needs nats-server 2.12+ for message schedules): %w", Stream, err)
	}
	s.st = &store{kv: kv}
	return s.st, nil
}

// DueConsumerConfig is the consumer of fired deadlines.
func (s *Service) DueConsumerConfig() bus.ConsumerConfig {
	cc := s.cfg.Consumer
	cc.Stream = Stream
	cc.Durable = cc.Durable + "-due"
	cc.FilterSubjects = []string{dueSubject + ".>"}
	cc.Backoff = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}
	cc.MaxDeliver = max(cc.WithDefaults().MaxDeliver, 10)
	cc.Coalesce = func(m *bus.Msg) string { return m.Subject }
	return cc
}

// EventConsumerConfig is the consumer of membership events of the domains
// with temporary groups.
func (s *Service) EventConsumerConfig() bus.ConsumerConfig {
	cc := s.cfg.Consumer
	cc.FilterSubjects = nil
	seen := map[string]bool{}
	for _, g := range s.cfg.Groups {
		if !seen[g.Domain] {
			seen[g.Domain] = true
			cc.FilterSubjects = append(cc.FilterSubjects, event.SubjectFilter(g.Domain, "membership"))
		}
	}
	sort.Strings(cc.FilterSubjects)
	return cc
}

// Run consumes fired deadlines and membership events and scans the grants
// every ScanInterval until ctx is cancelled; then it drains and returns nil.
// A Service runs once at a time; several Services (replicas) may share a bus.
func (s *Service) Run(ctx context.Context) error {
	s.runMu.Lock()
	if s.running {
		s.runMu.Unlock()
		return errors.New("expiry: already running")
	}
	s.running = true
	s.runMu.Unlock()
	defer func() {
		s.runMu.Lock()
		s.running = false
		s.runMu.Unlock()
	}()
	s.state.Store(int32(iamflowv1.State_STATE_STARTING))
	if _, err := s.init(ctx); err != nil {
		s.recordError(err)
		return err
	}
	due, err := s.bus.Consumer(ctx, s.DueConsumerConfig(), s.handleDue)
	if err != nil {
		s.recordError(err)
		return fmt.Errorf("expiry: %w", err)
	}
	s.consDue.Store(due)
	var ev *bus.Consumer
	if len(s.cfg.Groups) > 0 {
		ev, err = s.bus.Consumer(ctx, s.EventConsumerConfig(), s.handleEvent)
		if err != nil {
			s.recordError(err)
			return fmt.Errorf("expiry: %w", err)
		}
		s.consEv.Store(ev)
	}

	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = due.Run(ctx) }()
	if ev != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errs[1] = ev.Run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.scanLoop(ctx) }()
	s.state.Store(int32(iamflowv1.State_STATE_RUNNING))
	s.log.Info("expiry running", "groups", len(s.cfg.Groups), "scan_interval", s.cfg.ScanInterval, "instance", s.instance)
	if s.cfg.ReconcileOnStart {
		go func() {
			if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
				s.recordError(err)
				s.log.Error("reconcile on start failed", "error", err)
			}
		}()
	}
	<-ctx.Done()
	s.state.Store(int32(iamflowv1.State_STATE_STOPPING))
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.recordError(err)
		return fmt.Errorf("expiry: %w", err)
	}
	return nil
}

// scanLoop scans at start and every ScanInterval.
func (s *Service) scanLoop(ctx context.Context) {
	lateSince := map[string]time.Time{}
	s.scan(ctx, lateSince)
	if s.cfg.ScanInterval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.scan(ctx, lateSince)
		}
	}
}

// group returns the temporary group named name in domain.
func (s *Service) group(domain, name string) (TemporaryGroup, bool) {
	g, ok := s.groups[groupKey(domain, name)]
	return g, ok
}

// groupNames lists the temporary groups, for error messages.
func (s *Service) groupNames() string {
	var out []string
	for _, g := range s.cfg.Groups {
		out = append(out, g.Domain+"/"+g.Group)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
