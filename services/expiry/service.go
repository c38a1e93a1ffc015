package expiry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// Name is the service's name in status, logs, audit records and the CLI.
const Name = "expiry"

// Stream is the JetStream stream holding the deadline schedules and the due
// messages they produce.
const Stream = "IAM_EXPIRY"

// Subjects of the IAM_EXPIRY stream.
const (
	subjectPrefix   = "iam.expiry"
	scheduleSubject = subjectPrefix + ".schedule"
	dueSubject      = subjectPrefix + ".due"
)

// claimTTL is how long a replica's claim on a grant it is revoking holds
// before another may take over (if the claimant crashed, or could not store
// the outcome nor release the claim). The claimant itself takes its claim
// over at once.
const claimTTL = 30 * time.Second

// Audit actions.
const (
	actionGrant  = "grant"
	actionExtend = "extend"
	actionRevoke = "revoke"
	actionExpire = "expire"
)

// Service is the expiry service. Create it with New; it is an app.Service
// (Name, Run, Status) with an admin API (Endpoint).
type Service struct {
	iamflowv1.UnimplementedExpiryServiceServer

	kit     *servicekit.Kit
	clock   *deadlineClock
	cfg     Config
	groups  map[string]TemporaryGroup // by groupKey
	bus     *bus.Bus
	clients map[string]Domain
	metrics *metrics
	// instance names the process in the claims of the grants it revokes.
	instance string
	ending   grantSet
	// dueMaxDeliver is the due consumer's max_deliver.
	dueMaxDeliver int

	initMu sync.Mutex
	st     *store

	counters counters
	consDue  atomic.Pointer[bus.Consumer]
	consEv   atomic.Pointer[bus.Consumer]
}

// New validates cfg and returns the service. domains maps domain short
// names to their identity domains; every domain of a temporary group needs
// one. Deadlines fire on the server's clock and are judged on it (see
// deadlineClock; servicekit.WithClock is the wall clock read until the
// server's time is known). Nothing is read or written until Run or an
// API call.
func New(ctx context.Context, cfg Config, b *bus.Bus, domains map[string]Domain, opts ...servicekit.Option) (*Service, error) {
	if b == nil {
		return nil, errors.New("expiry: no bus")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("expiry config: %w", err)
	}
	cfg = cfg.withDefaults()
	kit, err := servicekit.New(Name, b, opts...)
	if err != nil {
		return nil, err
	}
	s := &Service{
		kit: kit, clock: &deadlineClock{wall: kit.Clock()}, cfg: cfg, groups: map[string]TemporaryGroup{}, bus: b, clients: map[string]Domain{},
		metrics: newMetrics(kit.Registerer()), instance: newID()[:12],
	}
	s.dueMaxDeliver = s.dueConsumerConfig().WithDefaults().MaxDeliver
	var missing []string
	for _, g := range cfg.Groups {
		s.groups[g.key()] = g
		c := domains[g.Domain]
		if c == nil {
			missing = append(missing, g.Domain)
			continue
		}
		s.clients[g.Domain] = c
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("expiry: no identity domain client for domain(s) %v of temporary groups", missing)
	}
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

// validID reports whether id has the form newID gives a grant id.
func validID(id string) bool { return len(id) == 32 && strings.Trim(id, "0123456789abcdef") == "" }

// init creates (or updates) the bucket and the stream, once.
func (s *Service) init(ctx context.Context) (*store, error) {
	s.initMu.Lock()
	defer s.initMu.Unlock()
	if s.st != nil {
		return s.st, nil
	}
	js := s.bus.JetStream()
	storage, replicas := s.bus.Placement()
	kv, err := servicekit.OpenBucket(ctx, s.bus, Name, jetstream.KeyValueConfig{
		Bucket: grantsBucket, Description: "iamflow temporary group grants",
	})
	if err != nil {
		return nil, err
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              Stream,
		Description:       "iamflow grant deadlines: schedules and the due messages they fire",
		Subjects:          []string{subjectPrefix + ".>"},
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
	s.st = newStore(kv)
	return s.st, nil
}

// dueConsumerConfig is the consumer of fired deadlines.
func (s *Service) dueConsumerConfig() bus.ConsumerConfig {
	cc := s.cfg.Consumer
	cc.Stream = Stream
	cc.Durable = cc.Durable + "-due"
	cc.FilterSubjects = []string{dueSubject + ".>"}
	cc.Backoff = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}
	cc.MaxDeliver = max(cc.WithDefaults().MaxDeliver, 10)
	cc.Coalesce = func(m *bus.Msg) string { return m.Subject }
	return cc
}

// eventConsumerConfig is the consumer of membership events of the domains
// with temporary groups.
func (s *Service) eventConsumerConfig() bus.ConsumerConfig {
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
	return s.kit.Run(ctx, func(ctx context.Context) (servicekit.Work, error) {
		w := servicekit.Work{Loops: []func(context.Context){s.scanLoop}}
		if _, err := s.init(ctx); err != nil {
			return w, err
		}
		due, err := s.bus.Consumer(ctx, s.dueConsumerConfig(), s.handleDue)
		if err != nil {
			return w, err
		}
		s.consDue.Store(due)
		w.Consumers = append(w.Consumers, due)
		if len(s.cfg.Groups) > 0 {
			ev, err := s.bus.Consumer(ctx, s.eventConsumerConfig(), s.handleEvent)
			if err != nil {
				return w, err
			}
			s.consEv.Store(ev)
			w.Consumers = append(w.Consumers, ev)
		}
		if s.cfg.ReconcileOnStart {
			w.Loops = append(w.Loops, s.reconcileOnStart)
		}
		if s.cfg.ReconcileAfterOutage > 0 && len(s.cfg.Groups) > 0 {
			w.Loops = append(w.Loops, s.reconcileAfterOutages)
		}
		s.kit.Log().Info("expiry running", "groups", len(s.cfg.Groups), "scan_interval", s.cfg.ScanInterval, "instance", s.instance)
		return w, nil
	})
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
