package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// bulkInlineMembers is the most members a group create carries in its
// Bulk POST; a larger new group is created the single way.
const bulkInlineMembers = 1000

// bulkGroups sends a full reconcile's group creates, each with its members
// in its POST, and the member additions and removals of existing groups
// (memberBatch a PATCH) as SCIM Bulk where the target supports it, as
// bulkWrites does for users: under the groups' leases, only plans still
// fresh, with the mappings validated. Each operation's result is mapped
// back to its actions: a created group is mapped and each action audited
// as applied, one record per action as the single path writes. What Bulk
// did not do goes the single way: the rest of the plan, with the ids of
// what Bulk did made in it filled in. A create whose result is missing or
// that met "already exists" is looked up by name, and taken as made when it
// carries the source id as externalId (a group's members then go the
// single way, which adds them idempotently).
//
// The user pass comes first and is flushed, so most members are named by
// their ids. A member the user pass did not create (a user who appeared in
// the source after its listing) is created in the group's plan: its POST
// goes in the same Bulk request, before the group's operation, which names
// it by bulkId reference (RFC 7644 §3.7.2), so the user and its membership
// cost one request. A user two plans of one request would create (a new
// user in two groups) is created by the first, and the second names it by
// the same reference; a plan in a later batch names its copy
// (withMadeMembers).
type bulkGroups struct {
	fr  *fullRun
	off atomic.Bool
	q   *batch
}

// eligible reports whether p can go in a Bulk batch: a group create with
// (not too many) members to add, or member changes of an existing group,
// every member already in the target or created earlier in the plan by a
// user create Bulk carries, nothing held.
func (b *bulkGroups) eligible(p planner.Plan) bool {
	if b.off.Load() || p.DryRun || len(p.Actions) == 0 {
		return false
	}
	create := p.Actions[0].Kind == planner.ActCreateGroup && p.Actions[0].Group != nil
	made := map[string]bool{} // source ids of the users the plan creates
	members := 0
	for i, a := range p.Actions {
		switch {
		case a.Held:
			return false
		case i == 0 && create:
		case !groupBulkCarries(a, create, made):
			return false
		case a.Kind == planner.ActAddMember:
			members++
		}
	}
	return !create || members <= bulkInlineMembers
}

// groupBulkCarries reports whether Bulk carries action a of a group plan
// (create: the plan creates its group): a user create, or a member change
// naming a user in the target or one the plan creates before (made, which
// gains the users the plan creates).
func groupBulkCarries(a planner.Action, create bool, made map[string]bool) bool {
	switch a.Kind {
	case planner.ActCreateUser:
		made[a.SourceID] = true
		return a.User != nil && a.TargetID == ""
	case planner.ActAddMember:
		return (a.MemberTargetID != "" || made[a.MemberSourceID]) && (create || a.TargetID != "")
	case planner.ActRemoveMember:
		return a.MemberTargetID != "" && !create && a.TargetID != ""
	}
	return false
}

// bulkOp is one Bulk operation of a plan and the actions it carries.
type bulkOp struct {
	op      identitydomain.BulkOperation
	actions []int // indexes in the plan's actions
	create  bool  // the group's create
	user    bool  // a member's create
}

// opsOf turns an eligible plan into Bulk operations: the creates of the
// users it makes (bulkIDs bulkID+"u0", "u1", ...), then the group's create
// with its members, or one PATCH per memberBatch additions or removals. A
// member the plan creates is named "bulkId:<its create's bulkId>"; users
// holds the bulkIds of the users created earlier in the request (by source
// id), which the plan names rather than create again, and gains the plan's.
func opsOf(p planner.Plan, bulkID string, users map[string]string) []bulkOp {
	var out []bulkOp
	for i, a := range p.Actions {
		if _, made := users[a.SourceID]; a.Kind == planner.ActCreateUser && !made {
			id := fmt.Sprintf("%su%d", bulkID, len(out))
			users[a.SourceID] = id
			out = append(out, bulkOp{op: bulkOpOf(a, id), actions: []int{i}, user: true})
		}
	}
	member := func(a planner.Action) string {
		if a.MemberTargetID != "" {
			return a.MemberTargetID
		}
		return "bulkId:" + users[a.MemberSourceID]
	}
	if a := p.Actions[0]; a.Kind == planner.ActCreateGroup {
		idx := []int{0}
		var ids []string
		for i, m := range p.Actions {
			if m.Kind == planner.ActAddMember {
				idx = append(idx, i)
				ids = append(ids, member(m))
			}
		}
		g := identitydomain.GroupWithSchemas(a.Group.SDKGroup())
		if len(ids) > 0 {
			g = identitydomain.WithMembers(g, ids...)
		}
		return append(out, bulkOp{op: identitydomain.BulkOperation{Method: "POST", Path: "/Groups", BulkID: bulkID, Data: g}, actions: idx, create: true})
	}
	for _, kind := range []planner.ActionKind{planner.ActAddMember, planner.ActRemoveMember} {
		var idx []int
		for i, a := range p.Actions {
			if a.Kind == kind {
				idx = append(idx, i)
			}
		}
		for chunk := range slices.Chunk(idx, memberBatch) {
			ids := make([]string, len(chunk))
			for j, i := range chunk {
				ids[j] = member(p.Actions[i])
			}
			data := identitydomain.AddMembersPatch(ids...)
			if kind == planner.ActRemoveMember {
				data = identitydomain.RemoveMembersPatch(ids...)
			}
			out = append(out, bulkOp{op: identitydomain.BulkOperation{Method: "PATCH", Path: "/Groups/" + p.Actions[chunk[0]].TargetID, Data: data}, actions: chunk})
		}
	}
	return out
}

// countOps is len(opsOf(p, "", nil)), without making the operations' bodies.
func countOps(p planner.Plan) int {
	var users, adds, removes int
	for _, a := range p.Actions {
		switch a.Kind {
		case planner.ActCreateUser:
			users++
		case planner.ActAddMember:
			adds++
		case planner.ActRemoveMember:
			removes++
		}
	}
	if p.Actions[0].Kind == planner.ActCreateGroup {
		return users + 1
	}
	return users + (adds+memberBatch-1)/memberBatch + (removes+memberBatch-1)/memberBatch
}

// add queues p and, when a batch holds bulkBatch operations, applies it
// (in the caller's goroutine).
func (b *bulkGroups) add(ctx context.Context, p planner.Plan) error {
	return b.q.queue(ctx, p, countOps(p), b.apply)
}

// flush applies what is queued.
func (b *bulkGroups) flush(ctx context.Context) error {
	return b.apply(ctx, b.q.take())
}

// apply sends one batch and applies what Bulk did not do the single way.
func (b *bulkGroups) apply(ctx context.Context, plans []planner.Plan) error {
	return b.fr.applyBatch(ctx, &b.off, plans, b.send, nil)
}

// send applies batch through Bulk under its groups' leases and returns
// the plans (or the rests of plans) left for single calls.
func (b *bulkGroups) send(ctx context.Context, batch []planner.Plan) (single []planner.Plan, err error) {
	fr, d := b.fr, b.fr.d
	ls, lctx := d.fences.set(ctx)
	defer func() { err = ls.lost(err) }()
	type sentPlan struct {
		p     planner.Plan
		ops   []bulkOp
		first int
	}
	var (
		sent []sentPlan
		ops  []identitydomain.BulkOperation
	)
	fenced, err := fr.fencedOnly(ctx, lctx, ls, batch)
	if err != nil {
		return nil, err
	}
	refs := map[string]string{} // source id -> bulkId of the user create that makes it
	for _, p := range fenced {
		sp := sentPlan{p: p, ops: opsOf(p, fmt.Sprintf("g%d", len(sent)), refs), first: len(ops)}
		for _, o := range sp.ops {
			ops = append(ops, o.op)
		}
		sent = append(sent, sp)
	}
	results := fr.bulk(lctx, &b.off, "groups", ops)
	users := map[string]string{} // source id -> id of the users Bulk created
	for _, sp := range sent {
		rest := b.mapBack(ctx, lctx, sp.p, sp.ops, results[sp.first:sp.first+len(sp.ops)], users)
		if rest == nil {
			continue
		}
		// Left (in whole or part) to single calls: its leases go back
		// without raising the watermark, or the single attempt would find
		// its own listing stale.
		ls.releaseKeys(ctx, d.writeKeys(sp.p), time.Time{})
		single = append(single, *rest)
	}
	ls.release(ctx, d.now())
	return single, nil
}

// mapBack reads the results of one plan's operations: it maps, audits and
// remembers what Bulk did, and returns the plan of what is left to do the
// single way (nil when nothing is), with the ids of the users and the group
// Bulk created filled in. users holds the ids of the users Bulk created
// for the plans before (by source id) and gains this plan's: a user an
// earlier plan created is not created again. ctx is for the bookkeeping,
// lctx for lookups under the batch's leases.
func (b *bulkGroups) mapBack(ctx, lctx context.Context, p planner.Plan, ops []bulkOp, results []identitydomain.BulkResult, users map[string]string) *planner.Plan {
	fr, d := b.fr, b.fr.d
	res := applied{created: map[planner.Kind]map[string]string{planner.KindUser: {}, planner.KindGroup: {}},
		added: map[string][]string{}, removed: map[string][]string{}}
	gid := "" // the group's id: known, or once Bulk created it
	for _, a := range p.Actions {
		if a.Entity == planner.KindGroup && a.Kind != planner.ActCreateGroup {
			gid = a.TargetID
			break
		}
	}
	left := map[int]bool{}
	own := map[int]bool{} // the plan's user creates it sent itself
	for i, o := range ops {
		r := results[i]
		switch {
		case o.user:
			own[o.actions[0]] = true
			a := p.Actions[o.actions[0]]
			// Its mapping is stored, and not noted in the index: the
			// group pass's workers read the index without its lock.
			if id, _ := fr.bulkCreatedUser(ctx, lctx, p, a, r, &res); id != "" {
				users[a.SourceID] = id
			} else {
				left[o.actions[0]] = true
			}
		case o.create:
			gid = b.groupCreated(ctx, lctx, p, o, r, users, &res, left)
		case r.Err != nil:
			if !errors.Is(r.Err, identitydomain.ErrNotRun) {
				d.log.Info("Bulk member change refused; trying it alone", "link", d.link.Name, "target", d.target, "group", p.Actions[o.actions[0]].Name, "error", r.Err)
			}
			for _, j := range o.actions {
				left[j] = true
			}
		default:
			d.stats.writes.Add(1)
			b.membersApplied(ctx, p, o.actions, gid, users, &res)
		}
	}
	for i, a := range p.Actions {
		if a.Kind == planner.ActCreateUser && !own[i] && users[a.SourceID] == "" {
			left[i] = true // an earlier plan's create, which Bulk did not do
		}
	}
	if len(left) == 0 {
		d.rememberWrites(ctx, p, res)
		return nil
	}
	return b.rest(p, left, gid, users, res)
}

// groupCreated reads the result r of the group create o of plan p: it
// maps, audits and remembers the group Bulk created with its members, and
// marks in left what goes the single way (the group and its members when
// it was not created, the members when they did not come with it). It
// returns the group's id, "" when it was not created.
func (b *bulkGroups) groupCreated(ctx, lctx context.Context, p planner.Plan, o bulkOp, r identitydomain.BulkResult, users map[string]string,
	res *applied, left map[int]bool) string {
	fr, d := b.fr, b.fr.d
	gid, membersDone := b.created(lctx, p.Actions[0], r)
	if gid == "" {
		for _, j := range o.actions {
			left[j] = true
		}
		return ""
	}
	d.stats.bulkGroupCreates.Add(1)
	d.stats.writes.Add(1)
	if err := d.remember(ctx, d.scope(planner.KindGroup), p.Actions[0].SourceID, gid, planner.OriginCreated, res); err != nil {
		d.log.Warn("group created by Bulk, but its mapping not stored; the next reconcile adopts it", "link", d.link.Name, "target", d.target, "group", p.Actions[0].Name, "error", err)
	}
	a := p.Actions[0]
	a.TargetID = gid
	d.record(ctx, &fr.buf, p, a, fr.c, "applied", "")
	if !membersDone {
		for _, j := range o.actions[1:] {
			left[j] = true
		}
		return gid
	}
	b.membersApplied(ctx, p, o.actions[1:], gid, users, res)
	return gid
}

// rest is the plan of p's actions at left, for the single way: a group
// action names group gid where Bulk created it, a member Bulk created is
// named by its id.
func (b *bulkGroups) rest(p planner.Plan, left map[int]bool, gid string, users map[string]string, res applied) *planner.Plan {
	rest := p
	rest.Actions = nil
	for i, a := range p.Actions {
		if !left[i] {
			continue
		}
		if a.Entity == planner.KindGroup {
			a.TargetID = gid
		}
		nameMember(&a, users)
		rest.Actions = append(rest.Actions, a)
	}
	if g := p.Group; g != nil {
		// What the target holds now that Bulk did its part, for the
		// own-write record the single path leaves.
		after := *g
		after.Members = slices.DeleteFunc(append(slices.Clone(g.Members), res.added[gid]...), func(id string) bool { return slices.Contains(res.removed[gid], id) })
		rest.Group = &after
	}
	return &rest
}

// created reads the result of a group create: the new group's id, and
// whether its members came with it. A create whose result is missing, or
// that met a group of its name, is looked up: a group carrying the source
// id as externalId is iamflow's (an earlier create whose answer was lost),
// its members unknown. "" means the group was not created.
func (b *bulkGroups) created(ctx context.Context, a planner.Action, r identitydomain.BulkResult) (gid string, members bool) {
	d := b.fr.d
	if r.Err == nil && r.ID != "" {
		return r.ID, true
	}
	if !errors.Is(r.Err, identitydomain.ErrNoResult) && !identitydomain.IsKind(r.Err, identitydomain.KindConflict) {
		if r.Err != nil && !errors.Is(r.Err, identitydomain.ErrNotRun) {
			d.log.Info("Bulk group create refused; trying it alone", "link", d.link.Name, "target", d.target, "group", a.Name, "error", r.Err)
		}
		return "", false
	}
	g, found, err := d.tgt.FindGroupByName(ctx, a.Group.DisplayName, "externalId")
	if err != nil || !found || str(g.ExternalId) != a.SourceID {
		return "", false
	}
	return str(g.Id), false
}

// membersApplied audits the member actions at idx as applied to group gid
// and notes them in res; a member the plan created is named by its id in
// users.
func (b *bulkGroups) membersApplied(ctx context.Context, p planner.Plan, idx []int, gid string, users map[string]string, res *applied) {
	fr, d := b.fr, b.fr.d
	for _, j := range idx {
		a := p.Actions[j]
		a.TargetID = gid
		nameMember(&a, users)
		d.record(ctx, &fr.buf, p, a, fr.c, "applied", "")
		if a.Kind == planner.ActAddMember {
			res.added[gid] = append(res.added[gid], a.MemberTargetID)
		} else {
			res.removed[gid] = append(res.removed[gid], a.MemberTargetID)
		}
	}
	d.stats.bulkMemberChanges.Add(int64(len(idx)))
}
