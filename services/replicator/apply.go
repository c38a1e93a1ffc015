package replicator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
	"go.opentelemetry.io/otel/trace"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// memberBatch is the most members one PATCH adds or removes.
const memberBatch = 100

// cause says what a plan is applied for, for the audit trail.
type cause struct {
	eventID string
	// reconcile names a full reconcile or an approval ("reconcile",
	// "approve:<hold>") when there is no event.
	reconcile string
}

// applied is what applying a plan did.
type applied struct {
	writes int
	// created maps source ids to the target ids made or adopted by the plan.
	created map[planner.Kind]map[string]string
	// users are the states the target answered with for the users the plan
	// created or changed, by target id.
	users map[string]planner.UserState
	// added and removed are the member ids changed per target group id.
	added, removed map[string][]string
	// refused are the attributes the target refused while the plan was
	// applied (the rest of each object was written).
	refused []refusedAttr
}

// refusedAttr is one attribute a target refused.
type refusedAttr struct {
	resource, path string
	err            error
}

// apply runs the plan's writes in order and records every action (skips
// and held deletions too) in the audit trail. Add and remove actions for
// one group are sent together, memberBatch at a time. It stops at the first
// failure: what was done stays done, and the next reconcile plans the rest.
func (d *direction) apply(ctx context.Context, p planner.Plan, c cause, buf *auditBuf) (applied, error) {
	res := applied{created: map[planner.Kind]map[string]string{planner.KindUser: {}, planner.KindGroup: {}}, users: map[string]planner.UserState{},
		added: map[string][]string{}, removed: map[string][]string{}}
	for i := 0; i < len(p.Actions); i++ {
		a := p.Actions[i]
		if a.Kind == planner.ActSkip || a.Held || p.DryRun {
			d.record(ctx, buf, p, a, c, outcomeOf(a, p.DryRun), "")
			continue
		}
		var err error
		if a.Kind == planner.ActAddMember || a.Kind == planner.ActRemoveMember {
			batch := res.memberBatchAt(p.Actions, i)
			i += len(batch) - 1
			err = d.applyMemberBatch(ctx, buf, p, batch, c, &res)
		} else {
			err = d.applyAction(ctx, buf, p, a, c, &res)
		}
		// Each write's record is stored as soon as the write is made, not
		// when the plan is done: a process killed between the two would
		// take the record with it.
		d.flush(context.WithoutCancel(ctx), buf)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// resolve returns targetID, or when it is empty the target id the plan
// created (or adopted) for the source object of kind k so far.
func (res *applied) resolve(k planner.Kind, targetID, sourceID string) string {
	if targetID != "" {
		return targetID
	}
	return res.created[k][sourceID]
}

// memberBatchAt returns the membership actions from actions[i] on that are
// sent in one request: of the same kind, not held, for the same target
// group, at most memberBatch of them.
func (res *applied) memberBatchAt(actions []planner.Action, i int) []planner.Action {
	a := actions[i]
	batch := []planner.Action{a}
	gid := res.resolve(planner.KindGroup, a.TargetID, a.SourceID)
	for j := i + 1; j < len(actions) && len(batch) < memberBatch; j++ {
		b := actions[j]
		if b.Kind != a.Kind || b.Held || res.resolve(planner.KindGroup, b.TargetID, b.SourceID) != gid {
			break
		}
		batch = append(batch, b)
	}
	return batch
}

// applyMemberBatch sends one batch of membership actions for one group and
// notes the members it added or removed in res.
func (d *direction) applyMemberBatch(ctx context.Context, buf *auditBuf, p planner.Plan, batch []planner.Action, c cause, res *applied) error {
	a := batch[0]
	gid := res.resolve(planner.KindGroup, a.TargetID, a.SourceID)
	ids, err := d.applyMembers(ctx, buf, p, batch, gid, res.resolve, c)
	if err != nil {
		return err
	}
	if a.Kind == planner.ActAddMember {
		res.added[gid] = append(res.added[gid], ids...)
	} else {
		res.removed[gid] = append(res.removed[gid], ids...)
	}
	res.writes++
	return nil
}

// applyAction applies one non-membership action and records it, with the
// attributes the target refused while it was written.
func (d *direction) applyAction(ctx context.Context, buf *auditBuf, p planner.Plan, a planner.Action, c cause, res *applied) error {
	a.TargetID = res.resolve(a.Entity, a.TargetID, a.SourceID)
	before := len(res.refused)
	rc, err := d.applyOne(ctx, a, res)
	d.recordRefused(ctx, buf, p, a, c, res.refused[before:])
	var written *writtenError
	if errors.As(err, &written) {
		// The write is made; only what records it failed. It is
		// audited as applied (the retry may plan another action for
		// the object, such as adopting what this created, and would
		// not record this change), and retried for the rest.
		res.writes++
		a.TargetID = res.resolve(a.Entity, a.TargetID, a.SourceID)
		d.record(ctx, buf, p, a, c, "applied", rc.RequestID)
		return fmt.Errorf("%s %s %q in %s: %w", a.Kind, a.Entity, a.Name, d.target, err)
	}
	if err != nil {
		d.record(ctx, buf, p, a, c, "failed", err.Error())
		return fmt.Errorf("%s %s %q in %s: %w", a.Kind, a.Entity, a.Name, d.target, err)
	}
	res.writes++
	a.TargetID = res.resolve(a.Entity, a.TargetID, a.SourceID)
	d.record(ctx, buf, p, a, c, "applied", rc.RequestID)
	return nil
}

// recordRefused records, for each attribute the target refused while a
// was written, an audit entry "refused" carrying a's changes of it.
func (d *direction) recordRefused(ctx context.Context, buf *auditBuf, p planner.Plan, a planner.Action, c cause, refused []refusedAttr) {
	for _, r := range refused {
		ra := a
		ra.Changes = nil
		for _, ch := range a.Changes {
			if strings.EqualFold(ch.Attr, r.path) || strings.HasSuffix(strings.ToLower(r.path), ":"+strings.ToLower(ch.Attr)) {
				ra.Changes = append(ra.Changes, ch)
			}
		}
		ra.Reason = fmt.Sprintf("the target refused %s (%s); the rest of the %s is written, %s is not sent again for %v",
			r.path, shortError(r.err), strings.ToLower(r.resource), r.path, refusalTTL)
		d.record(ctx, buf, p, ra, c, "refused", "")
	}
}

// applyOne applies one non-membership action.
func (d *direction) applyOne(ctx context.Context, a planner.Action, res *applied) (identitydomain.Receipt, error) {
	var (
		rc  identitydomain.Receipt
		err error
	)
	scope := d.scope(a.Entity)
	switch a.Kind {
	case planner.ActCreateUser:
		rc, err = d.createUser(ctx, scope, a, res)
	case planner.ActCreateGroup:
		rc, err = d.createGroup(ctx, scope, a, res)
	case planner.ActAdopt:
		rc, err = d.adopt(ctx, scope, a, res)
	case planner.ActUpdateUser:
		var u identitydomains.User
		if u, rc, err = d.tgt.PatchUser(ctx, a.TargetID, "", a.Ops...); err == nil {
			res.noteUser(u)
		} else if refusal(err) {
			rc, err = d.patchEach(ctx, planner.KindUser, a.TargetID, a.Ops, res)
		}
	case planner.ActDeactivateUser:
		// The retired user is forgotten, so a user that comes back is
		// matched and adopted afresh, and no group reconcile counts the
		// inactive copy as a member to keep; the copy stays iamflow's.
		if _, rc, err = d.tgt.PatchUser(ctx, a.TargetID, "", a.Ops...); err == nil {
			err = d.retire(ctx, scope, a.SourceID, a.TargetID)
		}
	case planner.ActForget:
		err = d.ids.Delete(ctx, scope, a.SourceID)
	case planner.ActUpdateGroup:
		if _, rc, err = d.tgt.PatchGroup(ctx, a.TargetID, "", a.Ops...); refusal(err) {
			rc, err = d.patchEach(ctx, planner.KindGroup, a.TargetID, a.Ops, res)
		}
	case planner.ActDeleteUser:
		if rc, err = d.tgt.DeleteUser(ctx, a.TargetID, ""); err == nil {
			err = d.forget(ctx, scope, a.SourceID)
		}
	case planner.ActDeleteGroup:
		if rc, err = d.tgt.DeleteGroup(ctx, a.TargetID, ""); err == nil {
			err = d.forget(ctx, scope, a.SourceID)
		}
	default:
		err = fmt.Errorf("unknown action kind %q", a.Kind)
	}
	return rc, err
}

// createUser creates the user in the target (piece by piece when the
// target refuses the whole) and records its mapping.
func (d *direction) createUser(ctx context.Context, sc scope, a planner.Action, res *applied) (identitydomain.Receipt, error) {
	u, rc, err := d.tgt.CreateUser(ctx, a.User.SDKUser())
	if refusal(err) {
		u, rc, err = d.createUserPiecewise(ctx, *a.User, res)
	}
	if identitydomain.IsKind(err, identitydomain.KindConflict) {
		// Made already by an attempt whose answer was lost (a Bulk request
		// that failed as a whole after it ran): the user carrying the
		// source id as externalId is ours.
		if own, found, ferr := d.tgt.FindUserByName(ctx, a.User.UserName, "externalId"); ferr == nil && found && str(own.ExternalId) == a.SourceID {
			u, err = own, nil
		}
	}
	if err == nil {
		err = d.remember(ctx, sc, a.SourceID, str(u.Id), originOf(rc, str(u.ExternalId), a.SourceID), res)
		res.noteUser(u)
	}
	return rc, err
}

// createGroup creates the group in the target (without its description
// first when the target refuses it) and records its mapping.
func (d *direction) createGroup(ctx context.Context, sc scope, a planner.Action, res *applied) (identitydomain.Receipt, error) {
	g, rc, err := d.tgt.CreateGroup(ctx, a.Group.SDKGroup())
	if refusal(err) && a.Group.Description != "" {
		g, rc, err = d.createGroupPiecewise(ctx, *a.Group, res)
	}
	if identitydomain.IsKind(err, identitydomain.KindConflict) {
		// As createUser: a group carrying the source id is ours.
		if own, found, ferr := d.tgt.FindGroupByName(ctx, a.Group.DisplayName, "externalId"); ferr == nil && found && str(own.ExternalId) == a.SourceID {
			g, err = own, nil
		}
	}
	if err == nil {
		err = d.remember(ctx, sc, a.SourceID, str(g.Id), originOf(rc, str(g.ExternalId), a.SourceID), res)
	}
	return rc, err
}

// adopt brings a matched target object in line, if it differs, and records
// it as adopted.
func (d *direction) adopt(ctx context.Context, sc scope, a planner.Action, res *applied) (identitydomain.Receipt, error) {
	var (
		rc  identitydomain.Receipt
		err error
	)
	if len(a.Ops) > 0 {
		if a.Entity == planner.KindUser {
			_, rc, err = d.tgt.PatchUser(ctx, a.TargetID, "", a.Ops...)
		} else {
			_, rc, err = d.tgt.PatchGroup(ctx, a.TargetID, "", a.Ops...)
		}
	}
	if err == nil {
		err = d.remember(ctx, sc, a.SourceID, a.TargetID, planner.OriginAdopted, res)
	}
	return rc, err
}

// originOf is how a create came to hold its object: a create that found
// the object already there (its earlier response was lost) made it if it
// carries the source id as externalId, else adopted it.
func originOf(rc identitydomain.Receipt, externalID, sourceID string) planner.Origin {
	if rc.Outcome == identitydomain.OutcomeExisted && externalID != sourceID {
		return planner.OriginAdopted
	}
	return planner.OriginCreated
}

// remember records a mapping made by a create or an adopt.
func (d *direction) remember(ctx context.Context, s scope, sourceID, targetID string, o planner.Origin, res *applied) error {
	if targetID == "" {
		return fmt.Errorf("the target returned no id")
	}
	res.created[s.Kind][sourceID] = targetID
	return d.recordWritten(ctx, func(ctx context.Context) error {
		return d.ids.Put(ctx, s, planner.Mapping{SourceID: sourceID, TargetID: targetID, Origin: o})
	})
}

// patchEach sends a refused PATCH again one operation at a time: what the
// target takes is written, what it refuses is remembered (not sent again
// for refusalTTL, listed in the status, audited) and does not hold back the
// rest of the object, nor its memberships.
func (d *direction) patchEach(ctx context.Context, k planner.Kind, id string, ops []identitydomains.Operations, res *applied) (identitydomain.Receipt, error) {
	var last identitydomain.Receipt
	resource := planner.ResourceGroup
	if k == planner.KindUser {
		resource = planner.ResourceUser
	}
	for _, op := range ops {
		var err error
		var rc identitydomain.Receipt
		if k == planner.KindUser {
			var u identitydomains.User
			if u, rc, err = d.tgt.PatchUser(ctx, id, "", op); err == nil {
				res.noteUser(u)
			}
		} else {
			_, rc, err = d.tgt.PatchGroup(ctx, id, "", op)
		}
		switch {
		case err == nil:
			last = rc
		case refusal(err):
			if d.attrs.refuse(resource, opPath(op), shortError(err), d.now()) {
				d.log.Warn("target refused an attribute; the rest is written and it is not sent again for a while",
					"link", d.link.Name, "target", d.target, "resource", resource, "path", opPath(op), "error", err)
			}
			res.refused = append(res.refused, refusedAttr{resource: resource, path: opPath(op), err: err})
		default:
			return last, err
		}
	}
	return last, nil
}

// createUserPiecewise creates a user the target refused whole: with its
// userName and externalId (and its name, which some domains require, unless
// the name is what was refused), then each other attribute on its own
// (patchEach), so one attribute the target will not take costs that
// attribute, not the user.
func (d *direction) createUserPiecewise(ctx context.Context, want planner.UserState, res *applied) (identitydomains.User, identitydomain.Receipt, error) {
	var (
		u   identitydomains.User
		rc  identitydomain.Receipt
		err error
	)
	withName := want.GivenName != "" || want.FamilyName != ""
	for _, named := range []bool{true, false} {
		if named && !withName {
			continue
		}
		if u, rc, err = d.tgt.CreateUser(ctx, want.SDKUserCore(named)); err == nil {
			withName = !named && withName // the name is still to be set
			break
		}
		if !refusal(err) {
			return u, rc, err
		}
	}
	if err != nil || u.Id == nil {
		return u, rc, err
	}
	ops := planner.PatchOps(want)
	if withName {
		if want.GivenName != "" {
			ops = append(ops, identitydomain.Replace(planner.AttrGivenName, want.GivenName))
		}
		if want.FamilyName != "" {
			ops = append(ops, identitydomain.Replace(planner.AttrFamilyName, want.FamilyName))
		}
	}
	if _, err := d.patchEach(ctx, planner.KindUser, *u.Id, ops, res); err != nil {
		return u, rc, err
	}
	return u, rc, nil
}

// createGroupPiecewise is createUserPiecewise for groups: displayName and
// externalId, then the description on its own.
func (d *direction) createGroupPiecewise(ctx context.Context, want planner.GroupState, res *applied) (identitydomains.Group, identitydomain.Receipt, error) {
	g, rc, err := d.tgt.CreateGroup(ctx, planner.GroupState{DisplayName: want.DisplayName, ExternalID: want.ExternalID}.SDKGroup())
	if err != nil || g.Id == nil {
		return g, rc, err
	}
	op := identitydomain.Replace(planner.GroupAttrPath(planner.AttrDescription), want.Description)
	if _, err := d.patchEach(ctx, planner.KindGroup, *g.Id, []identitydomains.Operations{op}, res); err != nil {
		return g, rc, err
	}
	return g, rc, nil
}

// noteUser keeps the state a target answered a user write with.
func (res *applied) noteUser(u identitydomains.User) {
	if s := planner.FromSDKUser(u); s.ID != "" {
		res.users[s.ID] = s
	}
}

// applyMembers adds or removes a batch of members of one group in one call
// and returns the member ids. A member whose recorded copy no longer
// exists in the target makes the whole add fail: its stale mapping is
// forgotten, so the retry finds or creates the user again.
func (d *direction) applyMembers(ctx context.Context, buf *auditBuf, p planner.Plan, batch []planner.Action, gid string, resolve func(planner.Kind, string, string) string, c cause) ([]string, error) {
	ids := make([]string, 0, len(batch))
	for i := range batch {
		batch[i].TargetID = gid
		batch[i].MemberTargetID = resolve(planner.KindUser, batch[i].MemberTargetID, batch[i].MemberSourceID)
		ids = append(ids, batch[i].MemberTargetID)
	}
	var (
		rc  identitydomain.Receipt
		err error
	)
	switch {
	case gid == "":
		err = errors.New("the group has no copy in the target")
	case batch[0].Kind == planner.ActAddMember:
		rc, err = d.tgt.AddMembers(ctx, gid, ids...)
	default:
		rc, err = d.tgt.RemoveMembers(ctx, gid, ids...)
	}
	if err != nil {
		if batch[0].Kind == planner.ActAddMember && !identitydomain.Retryable(err) {
			d.forgetMissingUsers(ctx, batch)
		}
		for _, a := range batch {
			d.record(ctx, buf, p, a, c, "failed", err.Error())
		}
		return nil, fmt.Errorf("%s %d member(s) of group %q in %s: %w", batch[0].Kind, len(batch), batch[0].Name, d.target, err)
	}
	for _, a := range batch {
		d.record(ctx, buf, p, a, c, "applied", rc.RequestID)
	}
	return ids, nil
}

// rememberWrites records the fingerprints of the states a plan left its
// objects in, so the events those writes cause in the target are known as
// echoes. A record that cannot be stored costs a reconcile, nothing more.
func (d *direction) rememberWrites(ctx context.Context, p planner.Plan, res applied) {
	ctx, cancel := d.bookkeeping(ctx)
	defer cancel()
	var errs []error
	for id, u := range res.users {
		errs = append(errs, d.writes.record(ctx, d.link.Name, d.target, planner.KindUser, id, d.rules.UserFingerprint(u)))
	}
	if g := p.Group; g != nil {
		gid := res.created[planner.KindGroup][g.SourceID]
		wrote := gid != ""
		for _, a := range p.Writes() {
			if a.Entity == planner.KindGroup && a.SourceID == g.SourceID && a.TargetID != "" {
				gid, wrote = a.TargetID, true
			}
		}
		if wrote && gid != "" {
			members := map[string]bool{}
			for _, m := range g.Members {
				members[m] = true
			}
			for _, m := range res.added[gid] {
				members[m] = true
			}
			for _, m := range res.removed[gid] {
				delete(members, m)
			}
			want := g.Want
			want.Members = slices.Collect(maps.Keys(members))
			errs = append(errs, d.writes.record(ctx, d.link.Name, d.target, planner.KindGroup, gid, d.rules.GroupFingerprint(want)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Warn("own writes not remembered; their echoes will be reconciled", "link", d.link.Name, "target", d.target, "error", err)
	}
}

// forgetMissingUsers drops the mappings of batch members whose target user
// is gone.
func (d *direction) forgetMissingUsers(ctx context.Context, batch []planner.Action) {
	for _, a := range batch {
		if a.MemberTargetID == "" || a.MemberSourceID == "" {
			continue
		}
		if _, err := d.tgt.GetUser(ctx, a.MemberTargetID, "id"); errors.Is(err, identitydomain.ErrNotFound) {
			if err := d.ids.Delete(ctx, d.scope(planner.KindUser), a.MemberSourceID); err != nil {
				d.log.Warn("stale user mapping not forgotten", "link", d.link.Name, "source_id", a.MemberSourceID, "error", err)
			}
		}
	}
}

// outcomeOf is the audit outcome of an action not applied.
func outcomeOf(a planner.Action, dryRun bool) string {
	switch {
	case a.Held:
		return "held"
	case a.Kind == planner.ActSkip:
		return "skipped"
	case dryRun:
		return "planned"
	}
	return "applied"
}

// record writes one audit record for action a.
func (d *direction) record(ctx context.Context, buf *auditBuf, p planner.Plan, a planner.Action, c cause, outcome, detail string) {
	before, after := map[string]string{}, map[string]string{}
	for _, ch := range a.Changes {
		if ch.Before != "" {
			before[ch.Attr] = ch.Before
		}
		after[ch.Attr] = ch.After
	}
	typ := "User"
	if a.Entity == planner.KindGroup {
		typ = "Group"
	}
	rec := &iamflowv1.AuditRecord{
		Action: string(a.Kind), Domain: p.Source, Target: p.Target, Link: p.Link, Outcome: outcome,
		Reason: a.Reason, Before: before, After: after, EventId: c.eventID,
		Resource: &iamflowv1.Resource{Id: a.TargetID, Name: a.Name, Type: typ},
	}
	if a.SourceID != "" {
		rec.After["source_id"] = a.SourceID
	}
	if a.MemberTargetID != "" || a.MemberSourceID != "" {
		rec.Related = &iamflowv1.Resource{Id: a.MemberTargetID, Name: a.MemberName, Type: "User"}
		if a.MemberSourceID != "" {
			rec.After["member_source_id"] = a.MemberSourceID
		}
	}
	if c.reconcile != "" {
		rec.After["cause"] = c.reconcile
	}
	switch outcome {
	case "failed":
		rec.Reason = joinReason(rec.Reason, detail)
	case "applied":
		rec.RequestId = detail
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		rec.TraceId = sc.TraceID().String()
	}
	if a.Held {
		rec.After["held"] = strconv.FormatBool(true)
	}
	buf.mu.Lock()
	buf.recs = append(buf.recs, rec)
	full := len(buf.recs) >= auditFlushAt
	buf.mu.Unlock()
	if full {
		d.flush(ctx, buf)
	}
}

// writtenError is the error of an action whose write in the target was
// made but whose bookkeeping (the id mapping) failed.
type writtenError struct{ err error }

func (e *writtenError) Error() string {
	return "written, but not recorded: " + e.err.Error()
}
func (e *writtenError) Unwrap() error { return e.err }

// forget drops the mapping of a source object whose copy was just
// retired; a failure is a writtenError.
func (d *direction) forget(ctx context.Context, s scope, sourceID string) error {
	return d.recordWritten(ctx, func(ctx context.Context) error {
		return d.ids.Delete(ctx, s, sourceID)
	})
}

// retire records that the copy targetID, just deactivated, is iamflow's
// retired copy of sourceID, then forgets sourceID's mapping; a failure is
// a writtenError.
func (d *direction) retire(ctx context.Context, s scope, sourceID, targetID string) error {
	return d.recordWritten(ctx, func(ctx context.Context) error {
		if err := d.ids.markRetired(ctx, s, sourceID, targetID); err != nil {
			return err
		}
		return d.ids.Delete(ctx, s, sourceID)
	})
}

// recordWritten runs fn, the id map's record of a write already made,
// retried within bookkeepingWithin even when ctx ends (bus.Outlast); a
// failure is a writtenError.
func (d *direction) recordWritten(ctx context.Context, fn func(context.Context) error) error {
	if err := bus.Outlast(ctx, d.bookkeepingWithin(), 0, fn); err != nil {
		return &writtenError{err}
	}
	return nil
}

// bookkeeping is the context of what records a write already made (its
// fingerprint, its audit record): it runs even when the write's own
// context ended (a lease lapsed, the service stops) since the write cannot
// be undone, bounded by bookkeepingWithin. The mapping's writes are
// retried within the same bound (bus.Outlast).
func (d *direction) bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d.bookkeepingWithin())
}

// bookkeepingWithin is bookkeepingTimeout, or d.bookkeepingFor when set (tests).
func (d *direction) bookkeepingWithin() time.Duration {
	return cmp.Or(d.bookkeepingFor, bookkeepingTimeout)
}

// bookkeepingTimeout bounds the bookkeeping of one write or plan.
const bookkeepingTimeout = 10 * time.Second

// auditFlushAt is how many audit records are buffered before they are stored.
const auditFlushAt = 500

// auditBuf collects audit records so they are stored in batches; it is
// safe for concurrent use.
type auditBuf struct {
	mu   sync.Mutex
	recs []*iamflowv1.AuditRecord
}

// flush stores the buffered records. A record that cannot be stored is
// logged and counted; the action it describes is done and stays done.
func (d *direction) flush(ctx context.Context, buf *auditBuf) {
	buf.mu.Lock()
	recs := buf.recs
	buf.recs = nil
	buf.mu.Unlock()
	if len(recs) == 0 || d.audit == nil {
		return
	}
	ctx, cancel := d.bookkeeping(ctx)
	defer cancel()
	if err := d.audit(ctx, recs); err != nil {
		d.log.Error("audit records not stored", "link", d.link.Name, "target", d.target, "records", len(recs), "error", err)
		d.stats.auditFailed.Add(int64(len(recs)))
	}
}
