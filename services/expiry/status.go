package expiry

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// Status counter names. The grant counts (active ... failed, overdue) are
// the bucket's grants by state at the last scan; the others count what this
// process did since it started.
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

	mu     sync.Mutex
	counts stateCounts
}

// stateCounts are the grants by state.
type stateCounts struct{ active, pending, overdue, expired, revoked, failed int64 }

func (c *stateCounts) add(s iamflowv1.GrantState) {
	switch s {
	case iamflowv1.GrantState_GRANT_STATE_ACTIVE:
		c.active++
	case iamflowv1.GrantState_GRANT_STATE_PENDING:
		c.pending++
	case iamflowv1.GrantState_GRANT_STATE_EXPIRED:
		c.expired++
	case iamflowv1.GrantState_GRANT_STATE_REVOKED:
		c.revoked++
	case iamflowv1.GrantState_GRANT_STATE_FAILED:
		c.failed++
	}
}

func (s *Service) setCounts(c stateCounts) {
	s.counters.mu.Lock()
	s.counters.counts = c
	s.counters.mu.Unlock()
	s.metrics.overdue.Set(float64(c.overdue))
	s.metrics.active.Set(float64(c.active))
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

// Status reports the state, the counters (grants by state at the last scan,
// overdue among them, and this process's work), both consumers and the
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
