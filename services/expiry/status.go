package expiry

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// Status counter names. The grant counts (active ... failed) are the
// bucket's grants by state at the last scan, moved at once by the changes
// this process makes (overdue is the last scan's alone); the others count
// what this process did since it started.
const (
	counterActive       = "active"
	counterPending      = "pending"
	counterOverdue      = "overdue"
	counterExpired      = "expired"
	counterRevoked      = "revoked"
	counterFailed       = "failed"
	counterGranted      = "granted_total"       // grants made through the API
	counterAdopted      = "adopted_total"       // memberships added outside iamflow turned into grants
	counterExtended     = "extended_total"      // extensions
	counterExpiredNow   = "expirations_total"   // grants this process expired
	counterRevokedNow   = "revocations_total"   // grants this process revoked early
	counterFired        = "deadlines_fired"     // due messages handled
	counterFailures     = "failures"            // domain calls that failed (add, remove)
	counterEvents       = "events"              // membership events handled
	counterAdoptSkipped = "events_already_held" // member_added events for memberships with a grant
	counterAuditFailed  = "audit_failed"        // audit records that could not be stored
	// counterTimersMissed counts grants this process expired late because
	// their deadline timer did not end them and the safety scan stepped in.
	counterTimersMissed = "timers_missed"
)

type counters struct {
	granted, adopted, extended, expired, revoked, fired, failures, events, adoptSkipped, auditFailed, timersMissed atomic.Int64

	mu      sync.Mutex
	counts  stateCounts
	scanned bool // a scan has set counts
}

// stateCounts are the grants by state.
type stateCounts struct{ active, pending, overdue, expired, revoked, failed int64 }

// add counts n grants more (or fewer) in state s; a count never goes below
// zero.
func (c *stateCounts) add(s iamflowv1.GrantState, n int64) {
	var p *int64
	switch s {
	case iamflowv1.GrantState_GRANT_STATE_ACTIVE:
		p = &c.active
	case iamflowv1.GrantState_GRANT_STATE_PENDING:
		p = &c.pending
	case iamflowv1.GrantState_GRANT_STATE_EXPIRED:
		p = &c.expired
	case iamflowv1.GrantState_GRANT_STATE_REVOKED:
		p = &c.revoked
	case iamflowv1.GrantState_GRANT_STATE_FAILED:
		p = &c.failed
	default:
		return
	}
	*p = max(*p+n, 0)
}

// setCounts takes a scan's counts.
func (s *Service) setCounts(c stateCounts) {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock() // the gauges set in the order the counts are
	s.counters.counts, s.counters.scanned = c, true
	s.metrics.overdue.Set(float64(c.overdue))
	s.metrics.active.Set(float64(c.active))
}

// moved counts a grant this process created (from unspecified) or moved
// from one state to another, so that status and the active gauge show it
// at once rather than at the next scan. The next scan counts the bucket
// again, which also brings in what other replicas did.
func (s *Service) moved(from, to iamflowv1.GrantState) {
	if from == to {
		return
	}
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	s.counters.counts.add(from, -1)
	s.counters.counts.add(to, 1)
	s.metrics.active.Set(float64(s.counters.counts.active))
}

func (s *Service) counterSnapshot() map[string]int64 {
	c := &s.counters
	c.mu.Lock()
	sc := c.counts
	c.mu.Unlock()
	return map[string]int64{
		counterActive: sc.active, counterPending: sc.pending, counterOverdue: sc.overdue,
		counterExpired: sc.expired, counterRevoked: sc.revoked, counterFailed: sc.failed,
		counterGranted: c.granted.Load(), counterAdopted: c.adopted.Load(), counterExtended: c.extended.Load(),
		counterExpiredNow: c.expired.Load(), counterRevokedNow: c.revoked.Load(), counterFired: c.fired.Load(),
		counterFailures: c.failures.Load(), counterEvents: c.events.Load(), counterAdoptSkipped: c.adoptSkipped.Load(),
		counterAuditFailed: c.auditFailed.Load(), counterTimersMissed: c.timersMissed.Load(),
	}
}

// Status reports the state, the counters (grants by state, overdue among
// them at the last scan, and this process's work), both consumers and the
// last event and error. With overdue grants the state is DEGRADED.
func (s *Service) Status(ctx context.Context) *iamflowv1.ServiceStatus {
	st := s.kit.Status(s.counterSnapshot())
	if st.Counters[counterOverdue] > 0 && st.State == iamflowv1.State_STATE_RUNNING {
		st.State = iamflowv1.State_STATE_DEGRADED
	}
	return s.kit.Report(ctx, st, s.consDue.Load(), s.consEv.Load())
}

type metrics struct {
	overdue      prometheus.Gauge
	active       prometheus.Gauge
	revocations  *prometheus.CounterVec
	lateness     prometheus.Histogram
	timersMissed prometheus.Counter
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		overdue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "iamflow_expiry_overdue_grants",
			Help: "Open grants past their deadline whose membership is not removed yet (at the last scan). Alert when > 0.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "iamflow_expiry_active_grants",
			Help: "Active grants (at the last scan).",
		}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_expiry_revocations_total",
			Help: "Membership removals, by action (expire, revoke) and outcome (done, failed).",
		}, []string{"action", "outcome"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "iamflow_expiry_lateness_seconds",
			Help:    "From a grant's deadline to its expiry being recorded.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}),
		timersMissed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iamflow_expiry_timers_missed_total",
			Help: "Grants expired late by the safety scan because their deadline timer did not end them. Alert when it grows.",
		}),
	}
	if r != nil {
		r.MustRegister(m.overdue, m.active, m.revocations, m.lateness, m.timersMissed)
	}
	return m
}
