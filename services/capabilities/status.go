package capabilities

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// counters are the numbers the service reports in its status.
type counters struct {
	events      atomic.Int64 // events handled
	checked     atomic.Int64 // users read and compared with the policy
	compliant   atomic.Int64 // ... that already complied
	changed     atomic.Int64 // users whose flags were set
	drift       atomic.Int64 // capability changes found reverting the policy
	notFound    atomic.Int64 // users that could not be found
	jitRetries  atomic.Int64 // user.created events retried for a not yet readable user
	jitGone     atomic.Int64 // user.created events whose user never became readable (deleted)
	failed      atomic.Int64 // reads and writes that failed
	auditFailed atomic.Int64 // audit records not stored
}

// Status counter names. The sweep_* counters describe the sweep running
// (sweep_running 1) or else the last one.
const (
	counterEvents       = "events"           // events handled
	counterChecked      = "users_checked"    // users read and compared with the policy
	counterCompliant    = "users_compliant"  // ... that complied already (no write)
	counterChanged      = "users_changed"    // users whose flags were set
	counterDrift        = "drift_found"      // capability changes that undid the policy
	counterNotFound     = "users_not_found"  // reads of users that do not exist (yet)
	counterJITRetries   = "jit_retries"      // user.created events retried for a user not yet readable
	counterJITGone      = "jit_gone"         // user.created events whose user never became readable: deleted, nothing to enforce
	counterFailed       = "failures"         // reads and writes that failed
	counterAuditFailed  = "audit_failed"     // audit records that could not be stored
	counterSweepRunning = "sweep_running"    // 1 while a sweep runs
	counterSweepTotal   = "sweep_total"      // the swept domain's users: 0 until known (at the end, unless the directory counts)
	counterSweepChecked = "sweep_checked"    // users the sweep has checked so far
	counterSweepChanged = "sweep_changed"    // ... and changed (or, in a dry run, would change)
	counterSweepFailed  = "sweep_failed"     // ... and failed to change
	counterSweeps       = "sweeps_completed" // sweeps that ran to the end
)

func (s *Service) counterSnapshot() map[string]int64 {
	c := &s.counters
	out := map[string]int64{
		counterEvents:      c.events.Load(),
		counterChecked:     c.checked.Load(),
		counterCompliant:   c.compliant.Load(),
		counterChanged:     c.changed.Load(),
		counterDrift:       c.drift.Load(),
		counterNotFound:    c.notFound.Load(),
		counterJITRetries:  c.jitRetries.Load(),
		counterJITGone:     c.jitGone.Load(),
		counterFailed:      c.failed.Load(),
		counterAuditFailed: c.auditFailed.Load(),
	}
	s.sweep.snapshot(out)
	return out
}

// Status reports the service's state, its consumer's progress, the counters
// (sweep_* describe the sweep running, or the last one) and the last event
// and error. The consumer's numbers come from the server; when it cannot be
// reached the state is DEGRADED.
func (s *Service) Status(ctx context.Context) *iamflowv1.ServiceStatus {
	return s.kit.Report(ctx, s.kit.Status(s.counterSnapshot()), s.consumer.Load())
}

// metrics are the service's Prometheus metrics.
type metrics struct {
	reconciles   *prometheus.CounterVec
	sweepRunning prometheus.Gauge
	sweepUsers   *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_capabilities_reconciles_total",
			Help: "Users reconciled, by trigger (event, sweep, api) and outcome (compliant, changed, dry_run, not_found, failed, failed_permanent).",
		}, []string{"trigger", "outcome"}),
		sweepRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "iamflow_capabilities_sweep_running",
			Help: "1 while a sweep runs.",
		}),
		sweepUsers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_capabilities_sweep_users_total",
			Help: "Users seen by sweeps, by domain.",
		}, []string{"domain"}),
	}
	if r != nil {
		r.MustRegister(m.reconciles, m.sweepRunning, m.sweepUsers)
	}
	return m
}

func (m *metrics) outcome(trigger, outcome string) {
	m.reconciles.WithLabelValues(trigger, outcome).Inc()
}
