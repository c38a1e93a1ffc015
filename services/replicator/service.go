package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// Name is the service's name in status, logs, audit records and the CLI.
const Name = "replicator"

// Errors of the service's operations.
var (
	// errNoLink: the link named is not configured.
	errNoLink = errors.New("no such link")
	// errReconcileRunning: a full reconcile of the link is already running.
	errReconcileRunning = errors.New("a full reconcile of this link is already running")
)

// Service is the replicator. Create it with New; it is an app.Service
// (Name, Run, Status) with an admin API (Endpoint).
type Service struct {
	iamflowv1.UnimplementedReplicatorServiceServer

	kit     *servicekit.Kit
	cfg     Config
	bus     *bus.Bus
	dirs    []*direction // every direction of every link
	targets []string     // target domains, sorted: one consumer each
	ids     *idMap
	guard   *guard
	fences  *fences
	writes  *ownWrites
	state   *stateStore
	metrics *metrics

	// noCoalesce reconciles every event on its own (the benchmarks' baseline).
	noCoalesce bool
	// catchUpAt is the backlog at which a handler catches up with a full
	// reconcile: catchUpBacklog (tests lower it).
	catchUpAt uint64
	// covers is, per target, what reconciles covered of its consumer's stream.
	covers map[string]*covered

	events    atomic.Int64
	consumers sync.Map // target -> *bus.Consumer
	lastSeqs  sync.Map // stream -> *lastSeq, for covered events
	running   sync.Map // link -> chan struct{}: full reconcile in progress, closed when done
}

// New validates cfg and returns the service. domains maps domain short
// names to their clients; every source and target of every link needs one.
// The id map, the guard's holds and the reconcile schedule are kept in
// JetStream KV buckets on b, created here.
func New(ctx context.Context, cfg Config, b *bus.Bus, domains map[string]Domain, opts ...servicekit.Option) (*Service, error) {
	if b == nil {
		return nil, errors.New("replicator: no bus")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replicator config: %w", err)
	}
	cfg = cfg.withDefaults()
	if len(cfg.Links) == 0 {
		return nil, errors.New("replicator: no link configured (replicator.links)")
	}
	kit, err := servicekit.New(Name, b, opts...)
	if err != nil {
		return nil, err
	}
	s := &Service{kit: kit, cfg: cfg, bus: b, metrics: newMetrics(kit.Registerer()), catchUpAt: catchUpBacklog}
	if err := s.openStores(ctx); err != nil {
		return nil, err
	}
	var missing []string
	need := func(name string) Domain {
		d := domains[name]
		if d == nil && !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
		return d
	}
	for _, l := range cfg.Links {
		rules, err := planner.NewRules(l)
		if err != nil {
			return nil, fmt.Errorf("replicator: %w", err)
		}
		for _, t := range l.Targets {
			pairs := [][2]string{{l.Source, t}}
			if l.Bidirectional {
				pairs = append(pairs, [2]string{t, l.Source})
			}
			for _, p := range pairs {
				s.dirs = append(s.dirs, s.newDirection(rules, p[0], p[1], need(p[0]), need(p[1])))
				if !slices.Contains(s.targets, p[1]) {
					s.targets = append(s.targets, p[1])
				}
			}
		}
	}
	if err := registerHoldGauge(kit.Registerer(), holdGauge{guard: s.guard, dirs: s.dirs, now: kit.Clock()}); err != nil {
		return nil, fmt.Errorf("replicator: metrics: %w", err)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("replicator: no client for domain(s) %v: give each linked domain url, client_id and client_secret", missing)
	}
	slices.Sort(s.targets)
	s.covers = map[string]*covered{}
	for _, t := range s.targets {
		s.covers[t] = &covered{}
	}
	return s, nil
}

// openStores opens the service's KV buckets: the id map, the guard's holds,
// the reconcile schedule, the fences and the own-write fingerprints.
func (s *Service) openStores(ctx context.Context) (err error) {
	js, now := s.bus.JetStream(), s.kit.Clock()
	storage, replicas := s.bus.Placement()
	pl := Placement{Storage: storage, Replicas: replicas}
	if s.ids, err = openIDMap(ctx, js, "", pl, now); err != nil {
		return err
	}
	if s.guard, err = openGuard(ctx, js, "", pl, now); err != nil {
		return err
	}
	if s.state, err = openState(ctx, s.bus); err != nil {
		return err
	}
	if s.fences, err = openFences(ctx, js, pl, now, s.kit.Log()); err != nil {
		return err
	}
	s.writes, err = openOwnWrites(ctx, js, pl)
	return err
}

// newDirection is one direction of a link, sharing the service's stores.
func (s *Service) newDirection(rules *planner.Rules, source, target string, src, tgt Domain) *direction {
	return &direction{link: rules.Link(), rules: rules, source: source, target: target, src: src, tgt: tgt,
		ids: s.ids, guard: s.guard, fences: s.fences, writes: s.writes, audit: s.kit.AuditBatch,
		log: s.kit.Log(), now: s.kit.Clock()}
}

// Name returns "replicator".
func (s *Service) Name() string { return Name }

// targetDomains returns the target domains, one consumer each.
func (s *Service) targetDomains() []string { return slices.Clone(s.targets) }

// ConsumerConfig is the consumer of one target: the configured consumer
// with the durable "<durable>-<target>", one filter per source domain and
// kind, and coalescing per entity.
func (s *Service) ConsumerConfig(target string) bus.ConsumerConfig {
	cc := s.cfg.Consumer
	cc.Durable = s.cfg.Consumer.Durable + "-" + target
	cc.FilterSubjects = nil
	for _, d := range s.dirs {
		if d.target != target {
			continue
		}
		for _, k := range []string{"user", "group", "membership"} {
			f := event.SubjectFilter(d.source, k)
			if !slices.Contains(cc.FilterSubjects, f) {
				cc.FilterSubjects = append(cc.FilterSubjects, f)
			}
		}
	}
	if !s.noCoalesce {
		cc.Coalesce = coalesceKey
	}
	return cc
}

// direction returns the direction from source to target, nil if none.
func (s *Service) direction(source, target string) *direction {
	for _, d := range s.dirs {
		if d.source == source && d.target == target {
			return d
		}
	}
	return nil
}

// startRepairSince is how recent a full reconcile must have begun for a
// start to need none: after_outage (a process that began a full reconcile
// less than that ago cannot have been away longer, and its events wait in
// JetStream), at least repairSlack (replicas starting together). A crash
// and restart under load so costs no full reconcile racing the event path.
func (s *Service) startRepairSince() time.Duration {
	return max(repairSlack, s.cfg.FullReconcile.AfterOutage)
}

// Run consumes events for every target (one consumer each, so one slow or
// failing target never holds the others back) and runs the scheduled full
// reconciles, until ctx is cancelled; then it drains and returns nil.
func (s *Service) Run(ctx context.Context) error {
	return s.kit.Run(ctx, func(ctx context.Context) (servicekit.Work, error) {
		w := servicekit.Work{Loops: []func(context.Context){s.schedule}}
		if s.cfg.FullReconcile.OnStart {
			w.Loops = append(w.Loops, func(ctx context.Context) { s.repair(ctx, "start", s.kit.Now().Add(-s.startRepairSince()), false) })
		}
		if s.cfg.FullReconcile.AfterOutage > 0 {
			w.Loops = append(w.Loops, s.repairAfterOutages)
		}
		for _, t := range s.targets {
			c, err := s.bus.Consumer(ctx, s.ConsumerConfig(t), s.handler(t))
			if err != nil {
				return w, fmt.Errorf("consumer for %s: %w", t, err)
			}
			s.consumers.Store(t, c)
			w.Consumers = append(w.Consumers, c)
		}
		s.kit.Log().Info("replicator running", "links", len(s.cfg.Links), "targets", s.targets,
			"full_reconcile_interval", s.cfg.FullReconcile.Interval)
		return w, nil
	})
}
