package replicator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// direction is one direction of a link: the source domain copied into one
// target domain. A bidirectional link has two per target.
type direction struct {
	link           planner.Link
	rules          *planner.Rules
	source, target string
	src, tgt       Domain
	ids            *idMap
	guard          *guard
	fences         *fences
	writes         *ownWrites
	audit          func(ctx context.Context, recs []*iamflowv1.AuditRecord) error // servicekit.Kit.AuditBatch
	log            *slog.Logger
	now            func() time.Time

	stats   dirStats
	attrs   targetAttrs
	catchUp catchUp
	// bookkeepingFor, when set, replaces bookkeepingTimeout (tests).
	bookkeepingFor time.Duration
}

// dirStats is a direction's progress, for status.
type dirStats struct {
	auditFailed atomic.Int64
	writes      atomic.Int64
	echoes      atomic.Int64
	covered     atomic.Int64 // events a later-begun reconcile had covered
	catchUps    atomic.Int64 // full reconciles begun for a backlog
	bulkCreates atomic.Int64 // users created through SCIM Bulk
	bulkUpdates atomic.Int64 // users updated or deactivated through SCIM Bulk
	bulkDeletes atomic.Int64 // users and groups deleted through SCIM Bulk
	// bulkGroupCreates and bulkMemberChanges count the groups created and
	// the members added or removed through SCIM Bulk.
	bulkGroupCreates, bulkMemberChanges atomic.Int64

	mu          sync.Mutex
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
	lastReport  *iamflowv1.ReconcileReport
	lastDryRun  *iamflowv1.ReconcileReport // with its plan
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
func (d *direction) scope(k planner.Kind) scope {
	return scope{Link: d.link.Name, Source: d.source, Target: d.target, Kind: k}
}

// errUnsupported marks events the replicator has nothing to do for.
var errUnsupported = errors.New("event not replicated")

// staleAttempts is how often an event's reconcile reads and plans again
// when its plan turned stale before it could be applied.
const staleAttempts = 3

// handle reconciles the entity an event from the source names and returns
// the plan applied. A user event reconciles the user; a group or membership
// event reconciles the group with its members (so a burst of membership
// changes to one group costs one read of each side and one write). The
// event only says where to look: what to do comes from the state read now.
func (d *direction) handle(ctx context.Context, e *iamflowv1.IdentityEvent) (planner.Plan, error) {
	id := e.GetResource().GetId()
	if id == "" {
		return planner.Plan{}, fmt.Errorf("%w: %s event %s names no resource id", errUnsupported, e.GetType(), e.GetId())
	}
	var kind planner.Kind
	switch e.GetKind() {
	case iamflowv1.Kind_KIND_USER:
		// Every user event, capability changes too: events of one user are
		// coalesced and only the newest is handled, so skipping one kind
		// would skip the others with it.
		kind = planner.KindUser
	case iamflowv1.Kind_KIND_GROUP, iamflowv1.Kind_KIND_MEMBERSHIP:
		kind = planner.KindGroup
	default:
		return planner.Plan{}, errUnsupported
	}
	for attempt := 1; ; attempt++ {
		p, err := d.reconcileOne(ctx, kind, id, cause{eventID: e.GetId()})
		if errors.Is(err, errStale) && attempt < staleAttempts {
			continue
		}
		return p, err
	}
}

// reconcileOne reconciles one source object under its lease: it reads both
// sides, plans and applies, so no other reconcile of the object runs in
// between, here or in another replica, and its plan is never older than a
// change already applied.
func (d *direction) reconcileOne(ctx context.Context, kind planner.Kind, id string, c cause) (p planner.Plan, err error) {
	ls, ctx := d.fences.set(ctx)
	defer func() { err = ls.lost(err) }()
	if _, err := ls.take(ctx, d.scope(kind).key(id), primaryWait, time.Time{}); err != nil {
		ls.release(ctx, time.Time{})
		return planner.Plan{}, err
	}
	readAt := d.now()
	if kind == planner.KindUser {
		p, err = d.reconcileUser(ctx, id)
	} else {
		p, err = d.reconcileGroup(ctx, id)
	}
	if err != nil {
		ls.release(ctx, time.Time{})
		return p, err
	}
	_, err = d.execute(ctx, p, c, 0, ls, readAt)
	if errors.Is(err, errStale) {
		ls.release(ctx, time.Time{})
		return p, err
	}
	// The watermark is when this reconcile ended: a plan read before it
	// (and so perhaps before what it wrote) is refused.
	ls.release(ctx, d.now())
	return p, err
}

// reconcileUser reads one user on both sides and plans. A user whose
// current state is what the replicator itself wrote there (the reverse
// direction of a bidirectional link) is an echo: nothing to copy back.
func (d *direction) reconcileUser(ctx context.Context, sourceID string) (planner.Plan, error) {
	in, err := d.userInput(ctx, sourceID)
	if err != nil {
		return planner.Plan{}, err
	}
	if in.Source != nil {
		echo, err := d.writes.is(ctx, d.link.Name, d.source, planner.KindUser, sourceID, d.rules.UserFingerprint(*in.Source))
		if err != nil {
			return planner.Plan{}, err
		}
		if echo {
			return d.echo(planner.KindUser, sourceID), nil
		}
	}
	return withRecovered(d.rules.PlanUser(d.target, in), planner.KindUser, in.Mapping), nil
}

// reconcileGroup reads one group and its members on both sides and plans.
func (d *direction) reconcileGroup(ctx context.Context, sourceID string) (planner.Plan, error) {
	src, err := readGroup(ctx, d.src, sourceID, true)
	if err != nil {
		return planner.Plan{}, fmt.Errorf("read group %s in %s: %w", sourceID, d.source, err)
	}
	if src != nil {
		echo, err := d.writes.is(ctx, d.link.Name, d.source, planner.KindGroup, sourceID, d.rules.GroupFingerprint(*src))
		if err != nil {
			return planner.Plan{}, err
		}
		if echo {
			return d.echo(planner.KindGroup, sourceID), nil
		}
	}
	in, err := d.groupInput(ctx, src, sourceID, true)
	if err != nil {
		return planner.Plan{}, err
	}
	return withRecovered(d.rules.PlanGroup(d.target, in), planner.KindGroup, in.Mapping), nil
}

// withRecovered has p store mp under its leases when mp was recovered from
// its copy's externalId (lostMapping) rather than read from the id map.
func withRecovered(p planner.Plan, k planner.Kind, mp *planner.Mapping) planner.Plan {
	if mp != nil && mp.Recovered {
		p.Recovered, p.RecoveredKind = mp, k
	}
	return p
}

// echo is the plan of an event that echoes the replicator's own write.
func (d *direction) echo(k planner.Kind, sourceID string) planner.Plan {
	p := d.rules.NewPlan(d.target)
	p.Source = d.source
	p.Actions = []planner.Action{planner.Skip(k, sourceID, planner.ReasonEcho)}
	return p
}

// execute passes the plan's deletions through the guard (targetCount: the
// target's objects, 0 when unknown; a guard without its state fails the
// plan, errGuardState, and nothing is applied), takes the leases of the objects it
// writes (refusing it with errStale when one of them was reconciled from a
// read newer than readAt), applies it and audits it. The caller releases ls.
func (d *direction) execute(ctx context.Context, p planner.Plan, c cause, targetCount int, ls *leaseSet, readAt time.Time) (applied, error) {
	if p.Deletions() > 0 {
		var gerr error
		p, gerr = d.guard.Check(ctx, d.link.Guard, p, targetCount)
		if gerr != nil {
			// Nothing is applied and nothing held: the event is retried
			// and the guard judges the deletions once it has its state.
			return applied{}, fmt.Errorf("%s: %w", d.name(), gerr)
		}
	}
	if echo := len(p.Actions) == 1 && p.Actions[0].Reason == planner.ReasonEcho; echo {
		d.stats.echoes.Add(1)
	}
	if !p.DryRun {
		for _, k := range d.writeKeys(p) {
			fresh, err := ls.take(ctx, k, secondaryWait, readAt)
			if err != nil {
				return applied{}, err
			}
			if !fresh {
				return applied{}, fmt.Errorf("%s: %w", d.name(), errStale)
			}
		}
		if err := d.validate(ctx, p); err != nil {
			return applied{}, err
		}
		if err := d.membersStillMapped(ctx, p); err != nil {
			return applied{}, err
		}
	}
	return d.applyPlan(ctx, p, c)
}

// membersStillMapped checks, under the plan's leases, that each user an
// event's plan adds to a group is still mapped to the copy it adds: a user
// retired since the group was read (deleted in the source, its copy
// deactivated and forgotten) makes the plan stale instead of adding the
// inactive copy. The full reconcile does without (a read per membership of
// the directory); a retired copy added all the same is iamflow's by its
// record (markRetired), so the group's next reconcile takes it out.
func (d *direction) membersStillMapped(ctx context.Context, p planner.Plan) error {
	for _, a := range p.Writes() {
		if a.Kind != planner.ActAddMember || a.MemberSourceID == "" || a.MemberTargetID == "" {
			continue // a member created by this plan has no mapping to check yet
		}
		if held, err := d.mappedTo(ctx, planner.KindUser, a.MemberSourceID, a.MemberTargetID); err != nil || !held {
			return cmp.Or(err, fmt.Errorf("add_member %q to %q: the member's mapping changed since the group was read: %w", a.MemberName, a.Name, errStale))
		}
	}
	return nil
}

func ignoreStale(err error) error {
	if errors.Is(err, errStale) {
		return nil
	}
	return err
}

// validate checks, under the plan's leases, that the mappings its
// retirements and updates rest on still hold: a target object another
// source object took over since (a user deleted and re-created under the
// same name, whose copy the new user adopted) is not the old one's to
// deactivate, delete or overwrite any more. A mapping the plan recovered
// is stored first (storeRecovered), so the checks find it.
func (d *direction) validate(ctx context.Context, p planner.Plan) error {
	if err := d.storeRecovered(ctx, p); err != nil {
		return err
	}
	made := map[string]bool{}
	for _, a := range p.Writes() {
		var k planner.Kind
		var sid string
		switch a.Kind {
		case planner.ActCreateUser, planner.ActCreateGroup, planner.ActAdopt:
			made[string(a.Entity)+"/"+a.SourceID] = true
			continue
		case planner.ActUpdateUser, planner.ActDeactivateUser, planner.ActDeleteUser, planner.ActForget:
			k, sid = planner.KindUser, a.SourceID
		case planner.ActUpdateGroup, planner.ActDeleteGroup:
			k, sid = planner.KindGroup, a.SourceID
		case planner.ActRemoveMember:
			if a.MemberSourceID == "" || a.MemberTargetID == "" {
				continue
			}
			k, sid = planner.KindUser, a.MemberSourceID
		default:
			continue
		}
		if a.TargetID == "" || made[string(k)+"/"+sid] {
			continue
		}
		want := a.TargetID
		if a.Kind == planner.ActRemoveMember {
			want = a.MemberTargetID
		}
		if held, err := d.mappedTo(ctx, k, sid, want); err != nil || !held {
			return cmp.Or(err, fmt.Errorf("%s %s %q: the mapping it rests on changed: %w", a.Kind, a.Entity, a.Name, errStale))
		}
	}
	return nil
}

// mappedTo reports whether source object sid of kind k is still mapped to
// target object want.
func (d *direction) mappedTo(ctx context.Context, k planner.Kind, sid, want string) (bool, error) {
	mp, found, err := d.ids.Get(ctx, d.scope(k), sid)
	return err == nil && found && mp.TargetID == want, err
}

// storeRecovered stores the plan's recovered mapping (Plan.Recovered) under
// its leases, which hold the copy's: unless another source object took the
// copy after the plan's read (a user deleted and re-created under the same
// name, the new one adopting the copy), which makes the plan stale.
func (d *direction) storeRecovered(ctx context.Context, p planner.Plan) error {
	mp := p.Recovered
	if mp == nil {
		return nil
	}
	k := p.RecoveredKind
	taken, err := d.ids.ownedByAnother(ctx, d.scope(k), mp.SourceID, mp.TargetID)
	if err != nil {
		return err
	}
	if taken {
		return fmt.Errorf("%s %s: its copy %s is another source object's now: %w", k, mp.SourceID, mp.TargetID, errStale)
	}
	stored := *mp
	stored.Recovered = false
	if err := d.ids.Put(ctx, d.scope(k), stored); err != nil {
		return err
	}
	d.log.Info("mapping recovered from the copy's externalId", "link", d.link.Name, "target", d.target, "kind", k, "source_id", mp.SourceID, "target_id", mp.TargetID)
	return nil
}

// writeKeys are the fence keys of the objects a plan writes, sorted: each
// source object whose copy it changes, and each existing target object it
// changes (two source objects may name one target object for a moment: a
// user re-created under the same name, whose copy the new one adopts). A
// target object's key is the key of the same object seen from the reverse
// direction, so a bidirectional link shares one lease per object.
func (d *direction) writeKeys(p planner.Plan) []string {
	var keys []string
	for _, a := range p.Writes() {
		k := planner.KindGroup
		switch a.Kind {
		case planner.ActCreateUser, planner.ActUpdateUser, planner.ActDeactivateUser, planner.ActDeleteUser, planner.ActForget:
			k = planner.KindUser
		case planner.ActAdopt:
			k = a.Entity
		}
		if a.SourceID != "" {
			keys = append(keys, d.scope(k).key(a.SourceID))
		}
		if a.TargetID != "" {
			keys = append(keys, d.scope(k).Reverse().key(a.TargetID))
		}
	}
	if mp := p.Recovered; mp != nil {
		keys = append(keys, d.scope(p.RecoveredKind).key(mp.SourceID), d.scope(p.RecoveredKind).Reverse().key(mp.TargetID))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// applyListed applies a plan made from a read at readAt taken outside the
// objects' leases (a full reconcile's listing, a held deletion). Under the
// leases it is applied only if none of its objects was reconciled from a
// newer read since; otherwise it is not applied and stale is true (the
// newer reconcile saw more than the listing did). Audit records go to buf.
func (d *direction) applyListed(ctx context.Context, p planner.Plan, c cause, buf *auditBuf, readAt time.Time) (res applied, stale bool, err error) {
	ls, ctx := d.fences.set(ctx)
	defer func() { err = ls.lost(err) }()
	for _, k := range d.writeKeys(p) {
		fresh, err := ls.take(ctx, k, primaryWait, readAt)
		if err != nil || !fresh {
			ls.release(ctx, time.Time{})
			return applied{}, err == nil, err
		}
	}
	if err := d.validate(ctx, p); err != nil {
		ls.release(ctx, time.Time{})
		return applied{}, errors.Is(err, errStale), ignoreStale(err)
	}
	res, err = d.apply(ctx, p, c, buf)
	if err == nil {
		d.rememberWrites(ctx, p, res)
	}
	d.stats.writes.Add(int64(res.writes))
	ls.release(ctx, d.now())
	return res, false, err
}

// applyApproved applies a held deletion a person approved. The hold's read
// is old (on the event path the object's own reconcile left a newer
// watermark when it released the lease), so the object is read again under
// its lease and planned afresh: if the fresh plan still makes the approved
// deletion, that plan is applied with its deletions released (the approval
// is for them; the rest of the plan, such as the memberships a retired user
// leaves, goes with them). If the source says otherwise now (the object came
// back), nothing is applied and stale is true. An action without a source
// object to read is applied against the hold's read, as a listing is.
func (d *direction) applyApproved(ctx context.Context, a planner.Action, c cause, buf *auditBuf, heldAt time.Time) (stale bool, err error) {
	a.Held = false
	kind := a.Entity
	if a.SourceID == "" || (kind != planner.KindUser && kind != planner.KindGroup) {
		p := planner.Plan{Link: d.link.Name, Source: d.source, Target: d.target, Actions: []planner.Action{a}}
		_, stale, err := d.applyListed(ctx, p, c, buf, heldAt)
		return stale, err
	}
	ls, ctx := d.fences.set(ctx)
	defer func() { err = ls.lost(err) }()
	if _, err := ls.take(ctx, d.scope(kind).key(a.SourceID), primaryWait, time.Time{}); err != nil {
		ls.release(ctx, time.Time{})
		return false, err
	}
	readAt := d.now()
	var p planner.Plan
	if kind == planner.KindUser {
		p, err = d.reconcileUser(ctx, a.SourceID)
	} else {
		p, err = d.reconcileGroup(ctx, a.SourceID)
	}
	if err != nil || !slices.ContainsFunc(p.Actions, func(x planner.Action) bool { return x.Kind == a.Kind && x.TargetID == a.TargetID }) {
		ls.release(ctx, time.Time{})
		return err == nil, err
	}
	for i := range p.Actions {
		p.Actions[i].Held = false
	}
	for _, k := range d.writeKeys(p) {
		fresh, err := ls.take(ctx, k, secondaryWait, readAt)
		if err != nil || !fresh {
			ls.release(ctx, time.Time{})
			return err == nil, err
		}
	}
	if err := d.validate(ctx, p); err != nil {
		ls.release(ctx, time.Time{})
		return errors.Is(err, errStale), ignoreStale(err)
	}
	res, err := d.apply(ctx, p, c, buf)
	if err == nil {
		d.rememberWrites(ctx, p, res)
	}
	d.stats.writes.Add(int64(res.writes))
	ls.release(ctx, d.now())
	return false, err
}

// applyPlan applies and audits a plan (already past the guard), then
// remembers the states it left its objects in.
func (d *direction) applyPlan(ctx context.Context, p planner.Plan, c cause) (applied, error) {
	var buf auditBuf
	res, err := d.apply(ctx, p, c, &buf)
	if err == nil {
		d.rememberWrites(ctx, p, res)
	}
	d.flush(ctx, &buf)
	d.stats.writes.Add(int64(res.writes))
	if err != nil {
		d.stats.failure(d.now(), err)
		return res, err
	}
	d.stats.success(d.now())
	return res, nil
}
