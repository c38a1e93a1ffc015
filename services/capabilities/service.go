package capabilities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// Name is the service's name in status, logs, audit records and the CLI.
const Name = "capabilities"

// Service is the capabilities service. Create it with New; it is an
// app.Service (Name, Run, Status) with an admin API (Endpoint).
type Service struct {
	iamflowv1.UnimplementedCapabilitiesServiceServer

	kit     *servicekit.Kit
	cfg     Config
	policy  *policy
	bus     *bus.Bus
	dirs    map[string]Directory // enforced domains only
	domains []string             // enforced, sorted
	metrics *metrics

	counters counters
	sweep    sweepState
	consumer atomic.Pointer[bus.Consumer]
}

// New validates cfg, compiles the policy and returns the service. dirs maps
// domain short names to their directories; every enforced domain
// (cfg.Domains, or every key of dirs when it is empty) needs one. b carries
// the events, the dead letters and, unless servicekit.WithAuditWriter says
// otherwise, the audit records. Nothing is read or written until Run or an
// API call.
func New(ctx context.Context, cfg Config, b *bus.Bus, dirs map[string]Directory, opts ...servicekit.Option) (*Service, error) {
	if b == nil {
		return nil, errors.New("capabilities: no bus")
	}
	return build(cfg, b, dirs, opts...)
}

// build is New without the bus requirement, for tests of the logic.
func build(cfg Config, b *bus.Bus, dirs map[string]Directory, opts ...servicekit.Option) (*Service, error) {
	cfg = cfg.withDefaults()
	policy, err := newPolicy(cfg)
	if err != nil {
		return nil, fmt.Errorf("capabilities config: %w", err)
	}
	kit, err := servicekit.New(Name, b, opts...)
	if err != nil {
		return nil, err
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
		kit: kit, cfg: cfg, policy: policy, bus: b, dirs: map[string]Directory{}, domains: enforced,
		metrics: newMetrics(kit.Registerer()),
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
	return s, nil
}

// Name returns "capabilities".
func (s *Service) Name() string { return Name }

// ConsumerConfig is the consumer Run creates: cfg.Consumer with one filter
// per enforced domain for user events, one for membership events when a
// rule matches on groups, and per-user coalescing.
func (s *Service) ConsumerConfig() bus.ConsumerConfig {
	cc := s.cfg.Consumer
	cc.FilterSubjects = nil
	for _, d := range s.domains {
		cc.FilterSubjects = append(cc.FilterSubjects, event.SubjectFilter(d, "user"))
		if s.policy.readsGroups() {
			cc.FilterSubjects = append(cc.FilterSubjects, event.SubjectFilter(d, "membership"))
		}
	}
	cc.Coalesce = servicekit.CoalesceEvents(coalesceKey)
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
	return s.kit.Run(ctx, func(ctx context.Context) (servicekit.Work, error) {
		cons, err := s.bus.Consumer(ctx, s.ConsumerConfig(), s.handle)
		if err != nil {
			return servicekit.Work{}, err
		}
		s.consumer.Store(cons)
		if s.cfg.Default.IsZero() && len(s.cfg.Rules) == 0 {
			s.kit.Log().Warn("the capabilities policy sets no flag: users are read but never changed; set capabilities.default")
		}
		s.kit.Log().Info("capabilities enforcing", "domains", s.domains, "rules", len(s.cfg.Rules),
			"groups", s.policy.readsGroups(), "sweep_interval", s.cfg.Sweep.Interval, "sweep_on_start", s.cfg.Sweep.OnStart)
		return servicekit.Work{Consumers: []*bus.Consumer{cons}, Loops: s.cfg.Sweep.Loops(s.bus, s.sweepAll)}, nil
	})
}
