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

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// Auditor stores audit records in batches; *audit.Writer is one.
type Auditor interface {
	RecordBatch(ctx context.Context, rs []*iamflowv1.AuditRecord) error
}

// direction is one direction of a link: the source domain copied into one
// target domain. A bidirectional link has two per target.
type direction struct {
	link           Link
	rules          *Rules
	source, target string
	src, tgt       Domain
	ids            *IDMap
	guard          *Guard
	auditor        Auditor
	// own are the actors whose changes in the source are iamflow's own
	// (the OAuth client id iamflow uses in the source domain).
	own []string
	log *slog.Logger
	now func() time.Time

	stats dirStats
}

// dirStats is a direction's progress, for status.
type dirStats struct {
	auditFailed atomic.Int64
	writes      atomic.Int64
	echoes      atomic.Int64

	mu          sync.Mutex
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
	lastReport  *iamflowv1.ReconcileReport
	reconciling bool
	progress    string
}

func (st *dirStats) success(t time.Time) {
	st.mu.Lock()
	st.lastSuccess = t
	st.mu.Unlock()
}

func (st *dirStats) failure(t time.Time, err error) {
	st.mu.Lock()
	st.lastError, st.lastErrorAt = err.Error(), t
	st.mu.Unlock()
}

func (st *dirStats) setProgress(format string, args ...any) {
	st.mu.Lock()
	st.progress = fmt.Sprintf(format, args...)
	st.mu.Unlock()
}

// name is "link source->target".
func (d *direction) name() string { return d.link.Name + " " + d.source + "->" + d.target }

// scope is the id-map scope of kind k in this direction.
func (d *direction) scope(k Kind) Scope {
	return Scope{Link: d.link.Name, Source: d.source, Target: d.target, Kind: k}
}

// trigger is the Trigger of an event from the source domain.
func (d *direction) trigger(e *iamflowv1.IdentityEvent) Trigger {
	t := Trigger{Own: d.own}
	if a := e.GetActor(); a != nil {
		t.Actor = a.GetName()
		if a.GetId() != "" && slices.Contains(d.own, a.GetId()) {
			t.Actor = a.GetId()
		}
	}
	return t
}

// isEcho reports whether iamflow's own client in the source made the change.
func (d *direction) isEcho(e *iamflowv1.IdentityEvent) bool {
	a := e.GetActor()
	return a != nil && ((a.GetId() != "" && slices.Contains(d.own, a.GetId())) ||
		(a.GetName() != "" && slices.Contains(d.own, a.GetName())))
}

// errUnsupported marks events the replicator has nothing to do for.
var errUnsupported = errors.New("event not replicated")

// handle reconciles the entity an event from the source names and returns
// the plan applied. A user event reconciles the user; a group or membership
// event reconciles the group with its members (so a burst of membership
// changes to one group costs one read of each side and one write).
func (d *direction) handle(ctx context.Context, e *iamflowv1.IdentityEvent) (Plan, error) {
	trig := d.trigger(e)
	id := e.GetResource().GetId()
	if id == "" {
		return Plan{}, fmt.Errorf("%w: %s event %s names no resource id", errUnsupported, e.GetType(), e.GetId())
	}
	var (
		p   Plan
		err error
	)
	switch e.GetKind() {
	case iamflowv1.Kind_KIND_USER:
		if e.GetAction() == iamflowv1.Action_ACTION_CAPABILITIES_CHANGED {
			return Plan{}, errUnsupported
		}
		p, err = d.reconcileUser(ctx, trig, id)
	case iamflowv1.Kind_KIND_GROUP, iamflowv1.Kind_KIND_MEMBERSHIP:
		p, err = d.reconcileGroup(ctx, trig, id, true)
	default:
		return Plan{}, errUnsupported
	}
	if err != nil {
		return p, err
	}
	if _, err = d.execute(ctx, p, cause{eventID: e.GetId()}, 0); err != nil {
		return p, err
	}
	return p, nil
}

// reconcileUser reads one user on both sides and plans.
func (d *direction) reconcileUser(ctx context.Context, trig Trigger, sourceID string) (Plan, error) {
	if trig.echo() {
		return d.rules.PlanUser(d.target, UserInput{Trigger: trig, Source: &UserState{ID: sourceID}}), nil
	}
	in, err := d.userInput(ctx, trig, sourceID)
	if err != nil {
		return Plan{}, err
	}
	return d.rules.PlanUser(d.target, in), nil
}

// reconcileGroup reads one group (and its members) on both sides and plans.
func (d *direction) reconcileGroup(ctx context.Context, trig Trigger, sourceID string, members bool) (Plan, error) {
	if trig.echo() {
		return d.rules.PlanGroup(d.target, GroupInput{Trigger: trig, Source: &GroupState{ID: sourceID}}), nil
	}
	in, err := d.groupInput(ctx, trig, sourceID, members)
	if err != nil {
		return Plan{}, err
	}
	return d.rules.PlanGroup(d.target, in), nil
}

// execute passes the plan's deletions through the guard (targetCount: the
// target's objects, 0 when unknown), applies it and audits it.
func (d *direction) execute(ctx context.Context, p Plan, c cause, targetCount int) (applied, error) {
	if p.Deletions() > 0 {
		var gerr error
		p, gerr = d.guard.Check(ctx, d.link.Guard, p, targetCount)
		if gerr != nil {
			d.log.Error("mass-deletion guard state not saved; deletions held", "link", d.link.Name, "target", d.target, "error", gerr)
		}
	}
	if echo := len(p.Actions) == 1 && p.Actions[0].Reason == ReasonEcho; echo {
		d.stats.echoes.Add(1)
	}
	return d.applyPlan(ctx, p, c)
}

// applyPlan applies and audits a plan (already past the guard).
func (d *direction) applyPlan(ctx context.Context, p Plan, c cause) (applied, error) {
	var buf auditBuf
	res, err := d.apply(ctx, p, c, &buf)
	d.flush(ctx, &buf)
	d.stats.writes.Add(int64(res.writes))
	if err != nil {
		d.stats.failure(d.now(), err)
		return res, err
	}
	d.stats.success(d.now())
	return res, nil
}
