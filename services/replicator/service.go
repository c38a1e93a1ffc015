package replicator

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

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/servicestatus"
	"github.com/iamflow/iamflow/internal/telemetry"
)

// Name is the service's name in status, logs, audit records and the CLI.
const Name = "replicator"

// Errors of the service's operations.
var (
	// ErrNoLink: the link named is not configured.
	ErrNoLink = errors.New("no such link")
	// ErrReconcileRunning: a full reconcile of the link is already running.
	ErrReconcileRunning = errors.New("a full reconcile of this link is already running")
)

// Service is the replicator. Create it with New; it is an app.Service
// (Name, Run, Status) and the iamflow.v1.ReplicatorService admin API
// (Register, RegisterGateway).
type Service struct {
	iamflowv1.UnimplementedReplicatorServiceServer

	cfg     Config
	bus     *bus.Bus
	dirs    []*direction // every direction of every link
	targets []string     // target domains, sorted: one consumer each
	ids     *IDMap
	guard   *Guard
	fences  *fences
	writes  *ownWrites
	state   *stateStore
	log     *slog.Logger
	now     func() time.Time
	version string
	started time.Time
	metrics *metrics

	noCoalesce bool

	events    atomic.Int64
	status    atomic.Int32 // iamflowv1.State
	last      servicestatus.Last
	consumers sync.Map // target -> *bus.Consumer
	running   sync.Map // link -> struct{}: full reconcile in progress

	runMu sync.Mutex
	run   bool
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
	noCoalesce bool // benchmarks' baseline: every event reconciled on its own
}

// WithLogger sets the logger (default: the telemetry's, else discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithTelemetry sets the tracer provider (and the default logger).
func WithTelemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.tel = t } }

// WithRegisterer registers the service's Prometheus metrics on r.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithAuditWriter sets where audit records go (default: an audit.Writer on
// the bus, recording as "replicator").
func WithAuditWriter(a Auditor) Option { return func(o *options) { o.auditor = a } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithVersion sets the version reported in status.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// New validates cfg and returns the service. domains maps domain short
// names to their clients; every source and target of every link needs one.
// The id map, the guard's holds and the reconcile schedule are kept in
// JetStream KV buckets on b, created here.
func New(ctx context.Context, cfg Config, b *bus.Bus, domains map[string]Domain, opts ...Option) (*Service, error) {
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
	s := &Service{cfg: cfg, bus: b, log: o.log, now: o.now, version: o.version, started: o.now(), metrics: newMetrics(o.registerer),
		noCoalesce: o.noCoalesce}
	storage, replicas := b.Placement()
	pl := Placement{Storage: storage, Replicas: replicas}
	var err error
	if s.ids, err = OpenIDMap(ctx, b.JetStream(), "", pl, o.now); err != nil {
		return nil, err
	}
	if s.guard, err = OpenGuard(ctx, b.JetStream(), "", pl, o.now); err != nil {
		return nil, err
	}
	if s.state, err = openState(ctx, b); err != nil {
		return nil, err
	}
	if s.fences, err = openFences(ctx, b.JetStream(), pl, o.now, o.log); err != nil {
		return nil, err
	}
	if s.writes, err = openOwnWrites(ctx, b.JetStream(), pl); err != nil {
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
		rules, err := NewRules(l)
		if err != nil {
			return nil, fmt.Errorf("replicator: %w", err)
		}
		for _, t := range l.Targets {
			pairs := [][2]string{{l.Source, t}}
			if l.Bidirectional {
				pairs = append(pairs, [2]string{t, l.Source})
			}
			for _, p := range pairs {
				src, tgt := need(p[0]), need(p[1])
				s.dirs = append(s.dirs, &direction{link: rules.Link(), rules: rules, source: p[0], target: p[1],
					src: src, tgt: tgt, ids: s.ids, guard: s.guard, fences: s.fences, writes: s.writes, auditor: o.auditor,
					log: o.log, now: o.now})
				if !slices.Contains(s.targets, p[1]) {
					s.targets = append(s.targets, p[1])
				}
			}
		}
	}
	if err := registerHoldGauge(o.registerer, s); err != nil {
		return nil, fmt.Errorf("replicator: metrics: %w", err)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("replicator: no client for domain(s) %v: give each linked domain url, client_id and client_secret", missing)
	}
	slices.Sort(s.targets)
	s.status.Store(int32(iamflowv1.State_STATE_STARTING))
	return s, nil
}

// Name returns "replicator".
func (s *Service) Name() string { return Name }

// Targets returns the target domains, one consumer each.
func (s *Service) Targets() []string { return slices.Clone(s.targets) }

// IDMap returns the id map (for tests and tools).
func (s *Service) IDMap() *IDMap { return s.ids }

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

// coalesceKey is the entity an event reconciles: the user, or the group
// (group and membership events alike). Who made the change does not
// matter: the reconcile reads the entity as it is now.
func coalesceKey(m *bus.Msg) string {
	e, err := event.Unmarshal(m.Data)
	if err != nil || e.GetResource().GetId() == "" {
		return ""
	}
	kind := "group"
	if e.GetKind() == iamflowv1.Kind_KIND_USER {
		kind = "user"
	}
	return e.GetDomain() + "/" + kind + "/" + e.GetResource().GetId()
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

// Run consumes events for every target (one consumer each, so one slow or
// failing target never holds the others back) and runs the scheduled full
// reconciles, until ctx is cancelled; then it drains and returns nil.
func (s *Service) Run(ctx context.Context) error {
	s.runMu.Lock()
	if s.run {
		s.runMu.Unlock()
		return errors.New("replicator: already running")
	}
	s.run = true
	s.runMu.Unlock()
	defer func() {
		s.runMu.Lock()
		s.run = false
		s.runMu.Unlock()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cons []*bus.Consumer
	for _, t := range s.targets {
		c, err := s.bus.Consumer(ctx, s.ConsumerConfig(t), s.handler(t))
		if err != nil {
			s.last.Error(err, s.now())
			return fmt.Errorf("replicator: consumer for %s: %w", t, err)
		}
		s.consumers.Store(t, c)
		cons = append(cons, c)
	}
	errs := make(chan error, len(cons))
	var wg sync.WaitGroup
	for i, c := range cons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				errs <- fmt.Errorf("replicator: consumer for %s: %w", s.targets[i], err)
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.schedule(ctx)
	}()
	s.status.Store(int32(iamflowv1.State_STATE_RUNNING))
	s.log.Info("replicator running", "links", len(s.cfg.Links), "targets", s.targets,
		"full_reconcile_interval", s.cfg.FullReconcile.Interval)
	<-ctx.Done()
	s.status.Store(int32(iamflowv1.State_STATE_STOPPING))
	wg.Wait()
	close(errs)
	return errors.Join(slices.Collect(func(yield func(error) bool) {
		for e := range errs {
			if !yield(e) {
				return
			}
		}
	})...)
}

// handler handles the events of one target's consumer.
func (s *Service) handler(target string) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) bus.Result {
		e, err := event.Unmarshal(m.Data)
		if err != nil {
			return bus.Terminal(fmt.Errorf("replicator: %w", err))
		}
		d := s.direction(e.GetDomain(), target)
		if d == nil {
			return bus.Done()
		}
		s.events.Add(1)
		s.last.Event(e.GetId(), s.now())
		if err := waitForBreaker(ctx, d.tgt, s.now); err != nil {
			return bus.Retry(err)
		}
		start := s.now()
		p, err := d.handle(ctx, e)
		s.metrics.observe(d, p, err, s.now().Sub(start))
		d.log.DebugContext(ctx, "event reconciled", "link", d.link.Name, "target", target, "event", e.GetId(), "type", e.GetType(),
			"resource", e.GetResource().GetId(), "actions", p.Kinds(), "took", s.now().Sub(start).String(), "error", err)
		res := resultOf(err)
		switch {
		case res.IsDone():
		case res.IsTerminal():
			s.last.Error(err, s.now())
			d.log.Error("replication failed for good; event dead-lettered", "link", d.link.Name, "target", target, "event", e.GetId(), "error", err)
		default:
			s.last.Error(err, s.now())
		}
		return res
	}
}

// resultOf decides what becomes of an event whose reconcile returned err.
func resultOf(err error) bus.Result {
	switch {
	case err == nil, errors.Is(err, errUnsupported):
		return bus.Done()
	case identitydomain.Retryable(err) || errors.Is(err, identitydomain.ErrCircuitOpen):
		return bus.RetryAfter(identitydomain.RetryAfter(err), err)
	case errors.Is(err, identitydomain.ErrNotFound), errors.Is(err, identitydomain.ErrPreconditionFailed),
		errors.Is(err, identitydomain.ErrConflict):
		// Something changed between the read and the write (another
		// event's reconcile created the same user, say): read again.
		// A conflict that persists is dead-lettered after max_deliver.
		return bus.Retry(err)
	case isTerminal(err):
		return bus.Terminal(err)
	}
	return bus.Retry(err)
}

// isTerminal reports errors that retrying cannot fix.
func isTerminal(err error) bool {
	for _, k := range []error{identitydomain.ErrInvalidRequest, identitydomain.ErrForbidden, identitydomain.ErrUnauthorized} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// breakerPoll is how often a handler waiting for an open circuit looks again.
const breakerPoll = time.Second

// waitForBreaker blocks while the target's circuit is open, so a failing
// target's consumer waits (its messages in progress, not redelivered)
// instead of burning retries; it returns ctx's error when stopped.
func waitForBreaker(ctx context.Context, d Domain, now func() time.Time) error {
	if d.BreakerState() != identitydomain.BreakerOpen {
		return nil
	}
	t := time.NewTicker(breakerPoll)
	defer t.Stop()
	for d.BreakerState() == identitydomain.BreakerOpen {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s's circuit to close: %w", d.Domain(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// ReconcileLink runs a full reconcile of every direction of the named link now
// (with dryRun, only plans) and returns one report per direction.
func (s *Service) ReconcileLink(ctx context.Context, link string, dryRun bool) ([]*iamflowv1.ReconcileReport, error) {
	dirs := s.linkDirections(link)
	if len(dirs) == 0 {
		return nil, fmt.Errorf("reconcile %q: %w", link, ErrNoLink)
	}
	if _, busy := s.running.LoadOrStore(link, struct{}{}); busy {
		return nil, fmt.Errorf("reconcile %q: %w", link, ErrReconcileRunning)
	}
	defer s.running.Delete(link)
	var reps []*iamflowv1.ReconcileReport
	var errs []error
	for _, d := range dirs {
		start := s.now()
		rep, err := d.fullReconcile(ctx, dryRun)
		reps = append(reps, rep)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", d.name(), err))
			s.last.Error(err, s.now())
		}
		d.log.Info("full reconcile done", "link", link, "source", d.source, "target", d.target, "dry_run", rep.DryRun,
			"source_users", rep.SourceUsers, "source_groups", rep.SourceGroups, "actions", rep.Actions,
			"held", rep.HeldDeletions, "took", s.now().Sub(start).Round(time.Millisecond), "error", err)
	}
	return reps, errors.Join(errs...)
}

// linkDirections returns the directions of a link.
func (s *Service) linkDirections(link string) []*direction {
	var out []*direction
	for _, d := range s.dirs {
		if d.link.Name == link {
			out = append(out, d)
		}
	}
	return out
}

// Holds lists the held deletions, oldest first; link "" lists all. The
// list is read from the guard's bucket, so holds other replicas made show.
func (s *Service) Holds(ctx context.Context, link string) []Hold {
	if err := s.guard.Refresh(ctx); err != nil {
		s.log.Warn("guard state not readable; listing the holds this process knows", "error", err)
	}
	var out []Hold
	for _, h := range s.guard.Holds() {
		if link == "" || h.Link == link {
			out = append(out, h)
		}
	}
	return out
}

// Approve releases a hold and applies its deletions now. It
// returns the hold, how many were applied and the failures.
func (s *Service) Approve(ctx context.Context, id string) (Hold, int, []string, error) {
	var d *direction
	for _, h := range s.Holds(ctx, "") {
		if h.ID == id {
			for _, x := range s.linkDirections(h.Link) {
				if x.target == h.Target {
					d = x
				}
			}
		}
	}
	h, err := s.guard.Approve(ctx, id)
	if err != nil {
		return h, 0, nil, err
	}
	if d == nil {
		return h, 0, nil, fmt.Errorf("approve hold %q: link %q has no direction to %s any more", id, h.Link, h.Target)
	}
	applied := 0
	var failed []string
	c := cause{reconcile: "approve:" + id}
	var buf auditBuf
	defer d.flush(context.WithoutCancel(ctx), &buf)
	for _, a := range h.Actions {
		stale, err := d.applyApproved(ctx, a, c, &buf, h.At)
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s %s %q: %v", a.Kind, a.Entity, a.Name, err))
		case stale:
			failed = append(failed, fmt.Sprintf("%s %s %q: not applied: %s", a.Kind, a.Entity, a.Name, ReasonStale))
		default:
			applied++
		}
	}
	return h, applied, failed, nil
}

// Reject discards a hold: its deletions are not applied.
func (s *Service) Reject(ctx context.Context, id string) (Hold, error) {
	return s.guard.Reject(ctx, id)
}
