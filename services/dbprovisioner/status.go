package dbprovisioner

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// counters are one database's numbers.
type counters struct {
	events      atomic.Int64 // events handled
	checked     atomic.Int64 // users or groups checked against the database
	inLine      atomic.Int64 // ... already in line
	changed     atomic.Int64 // ... changed (every statement run)
	statements  atomic.Int64 // statements run
	skipped     atomic.Int64 // accounts left alone (not created by iamflow)
	refused     atomic.Int64 // users refused for an unsafe name
	failed      atomic.Int64 // reads and statements that failed
	auditFailed atomic.Int64 // audit records not stored
	reconciles  atomic.Int64 // full reconciles completed
	busy        atomic.Int64 // accounts another replica held for all of the wait (the event is retried)
	replanned   atomic.Int64 // plans made again after a CREATE USER met an account made meanwhile (ORA-01920)
}

// Status counter names, per database in DatabaseStatus and summed in the
// service status.
const (
	counterEvents      = "events"
	counterChecked     = "checked"
	counterInLine      = "in_line"
	counterChanged     = "changed"
	counterStatements  = "statements"
	counterSkipped     = "skipped"
	counterRefused     = "refused_unsafe_name"
	counterFailed      = "failures"
	counterAuditFailed = "audit_failed"
	counterReconciles  = "reconciles_completed"
	counterBusy        = "lease_busy"
	counterReplanned   = "replanned"
)

func (c *counters) snapshot() map[string]int64 {
	return map[string]int64{
		counterEvents: c.events.Load(), counterChecked: c.checked.Load(), counterInLine: c.inLine.Load(),
		counterChanged: c.changed.Load(), counterStatements: c.statements.Load(), counterSkipped: c.skipped.Load(),
		counterRefused: c.refused.Load(), counterFailed: c.failed.Load(), counterAuditFailed: c.auditFailed.Load(),
		counterReconciles: c.reconciles.Load(), counterBusy: c.busy.Load(), counterReplanned: c.replanned.Load(),
	}
}

// Status reports the service's state, every database's consumer, the
// counters summed over the databases and the last event and error. When a
// consumer cannot be read the state is DEGRADED.
func (s *Service) Status(ctx context.Context) *iamflowv1.ServiceStatus {
	st := s.kit.Status(nil)
	for _, r := range s.dbs {
		for k, v := range r.counters.snapshot() {
			st.Counters[k] += v
		}
		if err := servicekit.AddConsumers(ctx, st, r.consumer.Load()); err != nil {
			s.recordError(r, err)
		}
	}
	return s.kit.Report(ctx, st)
}

// databaseStatus is one database's status for the admin API.
func (s *Service) databaseStatus(ctx context.Context, r *dbRuntime) *iamflowv1.DatabaseStatus {
	ds := &iamflowv1.DatabaseStatus{
		Name: r.cfg.Name, Domain: r.cfg.Domain, Mode: r.cfg.Mode, OnLeave: r.cfg.OnLeave,
		Groups: r.m.Groups(), MaxConcurrency: int32(r.cfg.MaxConcurrency), Counters: r.counters.snapshot(),
	}
	roles := r.m.GroupRoles()
	for _, g := range r.m.Groups() {
		ds.Mapping = append(ds.Mapping, &iamflowv1.GroupRoles{Group: g, Roles: roles[g]})
	}
	if c := r.consumer.Load(); c != nil {
		tmp := &iamflowv1.ServiceStatus{State: iamflowv1.State_STATE_RUNNING}
		if err := servicekit.AddConsumers(ctx, tmp, c); err != nil {
			s.recordError(r, err)
		} else if len(tmp.Consumers) == 1 {
			ds.Consumer = tmp.Consumers[0]
		}
	}
	var last iamflowv1.ServiceStatus
	r.last.Fill(&last)
	ds.LastError, ds.LastErrorTime = last.LastError, last.LastErrorTime
	ds.Refused = r.refusals.list()
	ds.ReconcileRunning = r.reconciling.Load()
	if rep := r.lastReport.Load(); rep != nil {
		ds.LastReconcile = rep.Proto()
	}
	return ds
}

// Proto is the API form of the report.
func (rep reconcileReport) Proto() *iamflowv1.ReconcileDatabaseResponse {
	out := &iamflowv1.ReconcileDatabaseResponse{
		Database: rep.Database, DryRun: rep.DryRun,
		Checked: int64(rep.Checked), Changed: int64(rep.Changed), Failed: int64(rep.Failed), Skipped: int64(rep.Skipped),
		Failures: rep.Failures, Skips: rep.Skips,
		StartedAt: timestamppb.New(rep.Started), FinishedAt: timestamppb.New(rep.Finished),
	}
	for _, st := range rep.Statements {
		out.Statements = append(out.Statements, &iamflowv1.DatabaseStatement{Subject: st.Subject, Action: st.Action, Sql: st.SQL, IamName: st.IAMName})
	}
	out.Accounts = rep.Accounts
	return out
}

// metrics are the service's Prometheus metrics.
type metrics struct {
	outcomes   *prometheus.CounterVec
	statements *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_dbprovisioner_syncs_total",
			Help: "Users or groups synchronised, by database, trigger (event, reconcile, api) and outcome (in_line, changed, dry_run, skipped, refused, failed).",
		}, []string{"database", "trigger", "outcome"}),
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iamflow_dbprovisioner_statements_total",
			Help: "SQL statements run, by database, action and outcome (done, failed).",
		}, []string{"database", "action", "outcome"}),
	}
	if r != nil {
		r.MustRegister(m.outcomes, m.statements)
	}
	return m
}

func (m *metrics) outcome(db, trigger, outcome string) {
	m.outcomes.WithLabelValues(db, trigger, outcome).Inc()
}

func (m *metrics) statement(db, action, outcome string) {
	m.statements.WithLabelValues(db, action, outcome).Inc()
}
