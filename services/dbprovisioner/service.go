package dbprovisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/lease"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// Name is the service's name in status, logs, audit records and the CLI.
const Name = "dbprovisioner"

// Service is the DB provisioner. Create it with New; it is an app.Service
// (Name, Run, Status) with an admin API (Endpoint).
type Service struct {
	iamflowv1.UnimplementedDBProvisionerServiceServer

	kit     *servicekit.Kit
	cfg     Config
	bus     *bus.Bus
	dbs     []*dbRuntime // sorted by name
	byName  map[string]*dbRuntime
	metrics *metrics
	book    *accountBook
	// leases serialise the work on one account across replicas (nil
	// without a bus: tests of the logic); leaseWait bounds the wait for one.
	leases    *lease.Set
	leaseWait time.Duration
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
	last     servicekit.Last
	refusals refusals

	reconciling atomic.Bool // a reconcile of the database runs (one at a time)
	lastReport  atomic.Pointer[reconcileReport]
}

// New validates cfg's mappings and returns the service. dirs maps domain
// short names to their directories (NewDirectory over an identity domain
// client) and dbs maps database names to their databases (NewDatabase over
// an ORDS client built from DatabaseConfig.WithDefaults().ORDS); every
// configured database needs both. b carries the events, the dead letters
// and, unless servicekit.WithAuditWriter says otherwise, the audit records.
// Nothing is read or written until Run or an API call.
func New(ctx context.Context, cfg Config, b *bus.Bus, dirs map[string]Directory, dbs map[string]Database, opts ...servicekit.Option) (*Service, error) {
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
	if s.leases, err = openLeases(ctx, b, s.kit.Clock(), lease.WithLogger(s.kit.Log())); err != nil {
		return nil, err
	}
	return s, nil
}

// build is New without the bus requirement, for tests of the logic.
func build(cfg Config, b *bus.Bus, dirs map[string]Directory, dbs map[string]Database, opts ...servicekit.Option) (*Service, error) {
	cfg = cfg.withDefaults()
	kit, err := servicekit.New(Name, b, opts...)
	if err != nil {
		return nil, err
	}
	if len(cfg.Databases) == 0 {
		return nil, errors.New("dbprovisioner: no database configured")
	}
	s := &Service{
		kit: kit, cfg: cfg, bus: b, byName: map[string]*dbRuntime{}, metrics: newMetrics(kit.Registerer()),
		book: &accountBook{mem: map[string]string{}}, leaseWait: leaseWait,
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
	slices.SortFunc(s.dbs, func(a, b *dbRuntime) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
	return s, nil
}

// Name returns "dbprovisioner".
func (s *Service) Name() string { return Name }

// databases returns the configured databases' names, sorted.
func (s *Service) databases() []string {
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
		return bus.ConsumerConfig{}, fmt.Errorf("%w: %q", errUnknownDatabase, database)
	}
	return s.consumerConfig(r), nil
}

func (s *Service) consumerConfig(r *dbRuntime) bus.ConsumerConfig {
	cc := s.cfg.Consumer
	cc.Durable = s.cfg.durable(r.cfg.Name)
	if cc.Concurrency == 0 {
		cc.Concurrency = r.cfg.MaxConcurrency
	}
	if r.m.Mode() == modeUser {
		cc.FilterSubjects = []string{event.SubjectFilter(r.cfg.Domain, "user"), event.SubjectFilter(r.cfg.Domain, "membership")}
	} else {
		cc.FilterSubjects = []string{event.SubjectFilter(r.cfg.Domain, "group")}
	}
	cc.Coalesce = servicekit.CoalesceEvents(coalesceKey)
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
	return s.kit.Run(ctx, func(ctx context.Context) (servicekit.Work, error) {
		w := servicekit.Work{Loops: s.cfg.Reconcile.Loops(s.bus, s.reconcileAll)}
		for _, r := range s.dbs {
			c, err := s.bus.Consumer(ctx, s.consumerConfig(r), s.handler(r))
			if err != nil {
				err = fmt.Errorf("database %s: %w", r.cfg.Name, err)
				r.last.Error(err, s.kit.Now())
				return w, err
			}
			r.consumer.Store(c)
			w.Consumers = append(w.Consumers, c)
		}
		s.kit.Log().Info("dbprovisioner running", "databases", s.databases(), "reconcile_interval", s.cfg.Reconcile.Interval,
			"reconcile_on_start", s.cfg.Reconcile.OnStart)
		return w, nil
	})
}

// recordError remembers err as the last error of the service and of the
// database. Errors hold names and ORA- messages, never credentials.
func (s *Service) recordError(r *dbRuntime, err error) {
	s.kit.Error(err)
	if r != nil {
		r.last.Error(err, s.kit.Now())
	}
}
