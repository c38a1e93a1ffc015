// Package dbprovisioner makes Autonomous Database accounts and roles follow
// IAM group membership, through ORDS REST-enabled SQL (internal/ords). It
// replaces a function that built SQL from raw names, created password users
// whose passwords were thrown away and dropped users on the first event.
//
// For each configured database (DatabaseConfig) the service runs one durable
// consumer ("dbprovisioner-<database>") on the events of the database's
// identity domain, coalesced per user, and reconciles the user the event
// names. Every reconcile is level-triggered: it reads the user's groups from
// the domain and the account's state from DBA_USERS and DBA_ROLE_PRIVS (with
// bind variables), plans the difference (Mapping.PlanUser) and runs only the
// statements needed, so replayed or reordered events change nothing more.
// Every identifier goes through ords.Ident and every IAM name through
// ords.GlobalPrincipal/GlobalGroup before it reaches SQL; a name that cannot
// be a safe identifier is dead-lettered with the reason and nothing runs.
// Accounts iamflow did not create (another external_name, or a password
// account) are never touched. Each statement run is an audit record in
// IAM_AUDIT; statements in flight per database are bounded
// (max_concurrency), since ORDS on Autonomous Database has a small pool.
//
// A full reconcile (scheduled, at start, or through the admin API, with
// dry_run) covers every member of every mapped group and every account
// iamflow created, so users who left every group while iamflow was not
// listening are locked too. In shared and global_role modes the objects are
// per group and are ensured by reconciles and group events.
package dbprovisioner

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
const Name = "dbprovisioner"

const instrumentationName = "github.com/iamflow/iamflow/services/dbprovisioner"

// Auditor stores audit records; *audit.Writer is one.
type Auditor interface {
	Record(ctx context.Context, r *iamflowv1.AuditRecord) error
}

// Service is the DB provisioner. Create it with New; it is an app.Service
// (Name, Run, Status) and the iamflow.v1.DBProvisionerService admin API
// (Register, RegisterGateway).
type Service struct {
	iamflowv1.UnimplementedDBProvisionerServiceServer

	cfg     Config
	bus     *bus.Bus
	dbs     []*dbRuntime // sorted by name
	byName  map[string]*dbRuntime
	log     *slog.Logger
	tracer  trace.Tracer
	auditor Auditor
	now     func() time.Time
	version string
	metrics *metrics
	started time.Time

	state atomic.Int32 // iamflowv1.State
	last  servicestatus.Last
	book  *accountBook

	runMu   sync.Mutex
	running bool
}

// dbRuntime is one database's mapping, connections and progress.
type dbRuntime struct {
	cfg      DatabaseConfig
	m        *Mapping
	dir      Directory
	db       Database
	sem      chan struct{} // bounds the reconciles in flight (max_concurrency)
	consumer atomic.Pointer[bus.Consumer]
	counters counters
	last     servicestatus.Last
	refusals refusals

	recMu       sync.Mutex
	reconciling bool
	lastReport  atomic.Pointer[ReconcileReport]
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
// the bus, recording as "dbprovisioner").
func WithAuditWriter(a Auditor) Option { return func(o *options) { o.auditor = a } }

// WithClock sets the clock for status and reports (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithVersion sets the version reported in status.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// New validates cfg's mappings and returns the service. dirs maps domain
// short names to their directories (NewDirectory over an identity domain
// client) and dbs maps database names to their databases (NewDatabase over
// an ORDS client built from DatabaseConfig.WithDefaults().ORDS); every
// configured database needs both. b carries the events, the dead letters
// and, unless WithAuditWriter says otherwise, the audit records. Nothing is
// read or written until Run or an API call.
func New(ctx context.Context, cfg Config, b *bus.Bus, dirs map[string]Directory, dbs map[string]Database, opts ...Option) (*Service, error) {
	if b == nil {
		return nil, errors.New("dbprovisioner: no bus")
	}
	s, err := build(cfg, b, dirs, dbs, opts...)
	if err != nil {
		return nil, err
	}
	if s.book, err = openAccountBook(ctx, b); err != nil {
		return nil, err
	}
	return s, nil
}

// build is New without the bus requirement, for tests of the logic.
func build(cfg Config, b *bus.Bus, dirs map[string]Directory, dbs map[string]Database, opts ...Option) (*Service, error) {
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
		if b == nil {
			return nil, errors.New("dbprovisioner: no bus and no audit writer")
		}
		o.auditor = audit.NewWriter(b, Name)
	}
	if len(cfg.Databases) == 0 {
		return nil, errors.New("dbprovisioner: no database configured")
	}
	s := &Service{
		cfg: cfg, bus: b, byName: map[string]*dbRuntime{}, log: o.log,
		tracer: o.tel.TracerProvider.Tracer(instrumentationName), auditor: o.auditor,
		now: o.now, version: o.version, metrics: newMetrics(o.registerer), started: o.now(),
		book: &accountBook{mem: map[string]string{}},
	}
	var errs []error
	for _, d := range cfg.Databases {
		m, err := NewMapping(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("dbprovisioner: %w", err))
			continue
		}
		if s.byName[d.Name] != nil {
			errs = append(errs, fmt.Errorf("dbprovisioner: database %q configured twice", d.Name))
			continue
		}
		r := &dbRuntime{cfg: d, m: m, dir: dirs[d.Domain], db: dbs[d.Name], sem: make(chan struct{}, d.MaxConcurrency)}
		if r.dir == nil {
			errs = append(errs, fmt.Errorf("dbprovisioner: database %q: no directory (identity domain client) for domain %q", d.Name, d.Domain))
		}
		if r.db == nil {
			errs = append(errs, fmt.Errorf("dbprovisioner: database %q: no database (ORDS client)", d.Name))
		}
		s.byName[d.Name] = r
		s.dbs = append(s.dbs, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(s.dbs, func(a, b *dbRuntime) int {
		if a.cfg.Name < b.cfg.Name {
			return -1
		}
		if a.cfg.Name > b.cfg.Name {
			return 1
		}
		return 0
	})
	s.state.Store(int32(iamflowv1.State_STATE_STARTING))
	return s, nil
}

// Name returns "dbprovisioner".
func (s *Service) Name() string { return Name }

// Databases returns the configured databases' names, sorted.
func (s *Service) Databases() []string {
	out := make([]string, len(s.dbs))
	for i, r := range s.dbs {
		out[i] = r.cfg.Name
	}
	return out
}

// ConsumerConfig is the consumer Run creates for the named database:
// cfg.Consumer named "<durable>-<database>", filtered on the database's
// domain (user and membership events in user mode, group events
// otherwise), coalesced per user (per group), with concurrency
// max_concurrency unless consumer.concurrency is set.
func (s *Service) ConsumerConfig(database string) (bus.ConsumerConfig, error) {
	r := s.byName[database]
	if r == nil {
		return bus.ConsumerConfig{}, fmt.Errorf("%w: %q", ErrUnknownDatabase, database)
	}
	return s.consumerConfig(r), nil
}

func (s *Service) consumerConfig(r *dbRuntime) bus.ConsumerConfig {
	cc := s.cfg.Consumer
	cc.Durable = s.cfg.Durable(r.cfg.Name)
	if cc.Concurrency == 0 {
		cc.Concurrency = r.cfg.MaxConcurrency
	}
	if r.m.Mode() == ModeUser {
		cc.FilterSubjects = []string{event.SubjectFilter(r.cfg.Domain, "user"), event.SubjectFilter(r.cfg.Domain, "membership")}
	} else {
		cc.FilterSubjects = []string{event.SubjectFilter(r.cfg.Domain, "group")}
	}
	cc.Coalesce = coalesceKey
	return cc
}

// Run consumes events for every database until ctx is cancelled and runs the
// scheduled reconciles; then it drains the consumers and returns nil. It
// returns an error if a consumer cannot be created or the bus connection is
// lost. A Service runs once at a time.
func (s *Service) Run(ctx context.Context) error {
	if s.bus == nil {
		return errors.New("dbprovisioner: no bus")
	}
	s.runMu.Lock()
	if s.running {
		s.runMu.Unlock()
		return errors.New("dbprovisioner: already running")
	}
	s.running = true
	s.runMu.Unlock()
	defer func() {
		s.runMu.Lock()
		s.running = false
		s.runMu.Unlock()
	}()

	s.state.Store(int32(iamflowv1.State_STATE_STARTING))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cons []*bus.Consumer
	for _, r := range s.dbs {
		c, err := s.bus.Consumer(ctx, s.consumerConfig(r), s.handler(r))
		if err != nil {
			err = fmt.Errorf("dbprovisioner: database %s: %w", r.cfg.Name, err)
			s.recordError(r, err)
			return err
		}
		r.consumer.Store(c)
		cons = append(cons, c)
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(cons))
	for _, c := range cons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.scheduleReconciles(ctx)
	}()
	s.state.Store(int32(iamflowv1.State_STATE_RUNNING))
	s.log.Info("dbprovisioner running", "databases", s.Databases(), "reconcile_interval", s.cfg.Reconcile.Interval,
		"reconcile_on_start", s.cfg.Reconcile.OnStart)
	<-ctx.Done()
	s.state.Store(int32(iamflowv1.State_STATE_STOPPING))
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		s.last.Error(err, s.now())
		return fmt.Errorf("dbprovisioner: %w", err)
	}
	return nil
}

// scheduleReconciles reconciles every database at start (on_start) and
// every interval, until ctx ends; reconciles never overlap.
func (s *Service) scheduleReconciles(ctx context.Context) {
	if s.cfg.Reconcile.OnStart {
		s.reconcileAll(ctx, "on_start")
	}
	if s.cfg.Reconcile.Interval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.Reconcile.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reconcileAll(ctx, "scheduled")
		}
	}
}

func (s *Service) reconcileAll(ctx context.Context, why string) {
	for _, r := range s.dbs {
		if ctx.Err() != nil {
			return
		}
		rep, err := s.Reconcile(ctx, r.cfg.Name, false)
		switch {
		case errors.Is(err, ErrReconcileRunning):
			s.log.Info("reconcile skipped: another is running", "database", r.cfg.Name, "trigger", why)
		case err != nil && ctx.Err() == nil:
			s.log.Error("reconcile failed", "database", r.cfg.Name, "trigger", why, "error", err)
		case err == nil:
			s.log.Info("reconcile done", "database", r.cfg.Name, "trigger", why, "checked", rep.Checked,
				"changed", rep.Changed, "failed", rep.Failed, "skipped", rep.Skipped,
				"took", rep.Finished.Sub(rep.Started).Round(time.Millisecond))
		}
	}
}

// recordError remembers err as the last error of the service and of the
// database. Errors hold names and ORA- messages, never credentials.
func (s *Service) recordError(r *dbRuntime, err error) {
	s.last.Error(err, s.now())
	if r != nil {
		r.last.Error(err, s.now())
	}
}
