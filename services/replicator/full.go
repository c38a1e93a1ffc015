package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// reconcileWorkers is how many objects a full reconcile works on at once.
const reconcileWorkers = 8

// maxReportActions bounds the actions a reconcile report lists.
const maxReportActions = 1000

// plannedID stands for the target id of an object a dry run would create.
const plannedID = "(new)"

// actionStale counts, in a reconcile report, the plans not applied because
// their objects were reconciled from a newer read meanwhile.
const actionStale = "skipped_stale"

// fullIndex is what a full reconcile holds in memory: the objects of both
// sides, by id, and the user mappings. It grows with the directory (tens of
// megabytes for 50,000 users), never with the history.
type fullIndex struct {
	srcUsers  map[string]*planner.UserState
	tgtUsers  map[string]*planner.UserState
	tgtByName map[string]string      // lower-case userName -> id
	tgtByExt  map[string]string      // externalId -> id
	userMaps  map[string]userMapping // by source id
	managed   map[string]bool        // target user id -> iamflow created, adopted or retired it
}

// userMapping is a user mapping as the index holds it: 40 bytes and the
// target id it shares with the target user, where a planner.Mapping is 80
// (its source id is the index's key, and the time it was stored no plan
// reads). At 50,000 users that is a tenth of an in-sync reconcile's heap.
type userMapping struct {
	target  string
	origin  planner.Origin
	reverse bool
}

// indexed is mp as the index holds it.
func indexed(mp planner.Mapping) userMapping {
	o := mp.Origin
	switch o { // the constant's string, not the one decoded for each mapping
	case planner.OriginCreated:
		o = planner.OriginCreated
	case planner.OriginAdopted:
		o = planner.OriginAdopted
	}
	return userMapping{target: mp.TargetID, origin: o, reverse: mp.Reverse}
}

// mapping is m, the mapping of source user sid, as the planner takes it.
func (m userMapping) mapping(sid string) planner.Mapping {
	return planner.Mapping{SourceID: sid, TargetID: m.target, Origin: m.origin, Reverse: m.reverse}
}

// report accumulates a reconcile report.
type report struct {
	r *iamflowv1.ReconcileReport
	// stale names (by coalesceKey) the objects of plans not applied because
	// a newer read of one of them was reconciled meanwhile: the reconcile
	// does not cover their events, since the newer reconcile may have failed.
	stale map[string]struct{}
}

func (rp *report) add(p planner.Plan) {
	for _, a := range p.Actions {
		rp.r.Actions[string(a.Kind)]++
		if a.Held {
			rp.r.HeldDeletions++
		}
		if a.Kind == planner.ActSkip && !rp.r.DryRun {
			continue // skips are counted, not listed, outside dry runs
		}
		if len(rp.r.Planned) >= maxReportActions {
			rp.r.Truncated = true
			continue
		}
		rp.r.Planned = append(rp.r.Planned, actionProto(a))
	}
}

// fullReconcile compares every user and group of the source with the
// target and repairs what differs (with dryRun, only plans). Users come
// first so that memberships find their users; deletions come last, all in
// one plan, so the mass-deletion guard judges them together against the
// target's size. A source listing that fails, or that returns nothing while
// mappings exist, deletes nothing.
func (d *direction) fullReconcile(ctx context.Context, dryRun bool) (*report, error) {
	rp := &report{stale: map[string]struct{}{}, r: &iamflowv1.ReconcileReport{Link: d.link.Name, Source: d.source, Target: d.target,
		DryRun: dryRun || d.link.DryRun, StartedAt: timestamppb.New(d.now()), Actions: map[string]int64{}}}
	d.stats.mu.Lock()
	d.stats.reconciling = true
	d.stats.mu.Unlock()
	defer func() {
		rp.r.FinishedAt = timestamppb.New(d.now())
		d.stats.mu.Lock()
		d.stats.reconciling, d.stats.progress = false, ""
		if !dryRun {
			d.stats.lastReport = rp.r
		}
		if rp.r.DryRun {
			d.stats.lastDryRun = rp.r // the drift the console shows
		}
		d.stats.mu.Unlock()
	}()
	err := d.reconcileAll(ctx, rp, dryRun)
	if err != nil {
		rp.r.Error = err.Error()
		d.stats.failure(d.now(), err)
		return rp, err
	}
	d.stats.success(d.now())
	return rp, nil
}

// fullRun is one full reconcile under way: what its steps share. Users
// and groups are planned by reconcileWorkers workers at once; mu guards
// the report, the deletions and the index's maps while they run.
type fullRun struct {
	d        *direction
	rp       *report
	dryRun   bool
	c        cause
	buf      auditBuf
	readAt   time.Time // every plan is made from the listings read from now on
	declares planner.Declares
	ix       *fullIndex

	mu        sync.Mutex
	deletions planner.Plan // every deletion, judged together at the end
}

// groupIndex is what the group pass reads: the groups of both sides, the
// target's by name and by externalId for matching, and the group mappings.
type groupIndex struct {
	src, tgt      map[string]*planner.GroupState
	byName, byExt map[string]*planner.GroupState
	maps          map[string]planner.Mapping
}

// reconcileAll runs a full reconcile's steps in order: index the users,
// plan and apply every user, plan the deletions of users the source no
// longer has, then the same for groups with their members, and last the
// deletions, judged together by the mass-deletion guard.
func (d *direction) reconcileAll(ctx context.Context, rp *report, dryRun bool) error {
	fr := &fullRun{d: d, rp: rp, dryRun: dryRun, c: cause{reconcile: "reconcile"}}
	defer d.flush(context.WithoutCancel(ctx), &fr.buf)
	// A plan for an object already reconciled from a newer read (by its
	// event) is not applied.
	fr.readAt = d.now()
	fr.deletions.Link, fr.deletions.Source, fr.deletions.Target, fr.deletions.DryRun = d.link.Name, d.source, d.target, dryRun || d.link.DryRun
	fr.declares = d.declares(ctx)
	ix, err := d.indexTarget(ctx, rp)
	if err != nil {
		return err
	}
	fr.ix = ix
	// The source's groups are read beside the rest of the users pass once
	// its users are read: at a tier's limits that pass waits on the Bulk
	// group and the listing on Others, so the listing costs no time.
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var srcGroups func() (map[string]*planner.GroupState, error)
	if err := fr.users(ctx, func() { srcGroups = fr.prefetchSourceGroups(pctx) }); err != nil {
		return err
	}
	if err := fr.goneUsers(ctx); err != nil {
		return err
	}
	ix.slimTargetUsers()
	gx, err := fr.indexGroups(ctx, srcGroups)
	if err != nil {
		return err
	}
	if err := fr.groups(ctx, gx); err != nil {
		return err
	}
	if err := fr.goneGroups(gx); err != nil {
		return err
	}
	return fr.deleteTogether(ctx, len(ix.tgtUsers)+len(gx.tgt))
}

// apply counts a plan in the report and, outside dry runs, applies its
// actions but the skips, fenced against newer reads.
func (fr *fullRun) apply(ctx context.Context, p planner.Plan) error {
	if fr.dryRun {
		p.DryRun = true
	}
	fr.mu.Lock()
	fr.rp.add(p)
	fr.mu.Unlock()
	if p.DryRun {
		return nil
	}
	// Skips are counted in the report, not audited: a reconcile would
	// otherwise record every out-of-scope object every time.
	p.Actions = slices.DeleteFunc(slices.Clone(p.Actions), func(a planner.Action) bool { return a.Kind == planner.ActSkip })
	if len(p.Actions) == 0 {
		return nil
	}
	return fr.applyListed(ctx, p)
}

// applyListed applies a plan made from the listings and counts it in the
// report when a newer read made it stale.
func (fr *fullRun) applyListed(ctx context.Context, p planner.Plan) error {
	_, stale, err := fr.d.applyListed(ctx, p, fr.c, &fr.buf, fr.readAt)
	if stale {
		// Stale perhaps only because another group's plan made a member
		// this plan creates too: the rest is applied naming its copy.
		var made bool
		if p, made, err = fr.withMadeMembers(ctx, p); made {
			_, stale, err = fr.d.applyListed(ctx, p, fr.c, &fr.buf, fr.readAt)
		}
	}
	fr.storeRecords(ctx)
	if stale {
		fr.countStale(p)
	}
	return err
}

// storeRecords stores the audit records of what the run has done so far.
// They are stored as each plan (or Bulk request) is done, not when the run
// ends: a process killed in the middle of a reconcile of minutes would
// otherwise take with it the records of every change it made (the proof's
// SIGKILL found a create without its record).
func (fr *fullRun) storeRecords(ctx context.Context) {
	fr.d.flush(context.WithoutCancel(ctx), &fr.buf)
}

// withMadeMembers returns group plan p without the creates of the members
// that have a copy now, and with each member change naming that copy;
// made is false when no member p creates has one. A user who appeared in
// the source after the user pass's listing has no copy when the groups are
// planned, so each of its groups' plans creates it; the first to run makes
// it, and its mapping, and the others' creates are stale while the rest of
// their plans is not.
func (fr *fullRun) withMadeMembers(ctx context.Context, p planner.Plan) (_ planner.Plan, made bool, _ error) {
	d := fr.d
	copies := map[string]string{} // member source id -> its copy's id
	for _, a := range p.Actions {
		if a.Kind != planner.ActCreateUser || !slices.ContainsFunc(p.Actions, func(m planner.Action) bool { return m.MemberSourceID == a.SourceID }) {
			continue
		}
		mp, found, err := d.ids.Get(ctx, d.scope(planner.KindUser), a.SourceID)
		if err != nil {
			return p, false, fmt.Errorf("read the mapping of user %q: %w", a.Name, err)
		}
		if found {
			copies[a.SourceID] = mp.TargetID
		}
	}
	if len(copies) == 0 {
		return p, false, nil
	}
	rest := p
	rest.Actions = nil
	for _, a := range p.Actions {
		if a.Kind == planner.ActCreateUser && copies[a.SourceID] != "" {
			continue
		}
		nameMember(&a, copies)
		rest.Actions = append(rest.Actions, a)
	}
	return rest, true, nil
}

// nameMember names a's member by its copy's id in ids (by source id) when
// a names it by source id alone: a member made after the plan was.
func nameMember(a *planner.Action, ids map[string]string) {
	if a.MemberTargetID == "" {
		a.MemberTargetID = ids[a.MemberSourceID]
	}
}

// countStale counts a plan not applied because a newer read made it
// stale, and notes the objects it acts on as not covered by this reconcile.
func (fr *fullRun) countStale(p planner.Plan) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	fr.rp.r.Actions[actionStale]++
	for _, a := range p.Actions {
		fr.rp.stale[entityKey(fr.d.source, a.Entity, a.SourceID)] = struct{}{}
		if a.MemberSourceID != "" {
			fr.rp.stale[entityKey(fr.d.source, planner.KindUser, a.MemberSourceID)] = struct{}{}
		}
	}
}

// applyEach applies the actions of a plan one by one: the deletions,
// judged together by the guard, but each fenced on its own (through SCIM
// Bulk where the target takes it). Held actions are audited, not applied.
func (fr *fullRun) applyEach(ctx context.Context, p planner.Plan) error {
	if fr.dryRun || p.DryRun {
		return fr.apply(ctx, p)
	}
	fr.mu.Lock()
	fr.rp.add(p)
	fr.mu.Unlock()
	var errs []error
	bulk := &bulkWrites{fr: fr, q: newBatch()}
	for _, a := range p.Actions {
		if a.Kind == planner.ActSkip || a.Held {
			continue
		}
		one := p
		one.Actions = []planner.Action{a}
		if bulk.eligible(one) {
			errs = append(errs, bulk.add(ctx, one))
			continue
		}
		errs = append(errs, fr.applyListed(ctx, one))
	}
	errs = append(errs, bulk.flush(ctx))
	for _, a := range p.Actions {
		if a.Held {
			fr.d.record(ctx, &fr.buf, p, a, fr.c, outcomeOf(a, false), "")
		}
	}
	fr.storeRecords(ctx)
	return errors.Join(errs...)
}

// setAside moves a plan's deletions to the run's deletions and returns
// the rest of the plan.
func (fr *fullRun) setAside(p planner.Plan) planner.Plan {
	keep := p
	keep.Actions = nil
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for _, a := range p.Actions {
		if a.IsDeletion() {
			fr.deletions.Actions = append(fr.deletions.Actions, a)
		} else {
			keep.Actions = append(keep.Actions, a)
		}
	}
	return keep
}

// users reads the source's users page by page and plans and applies each
// as it comes, reconcileWorkers at a time (the client's rate limits pace
// them), noting in the index what each did so the memberships find their
// users. Writes begin with the first page, not once the whole source is
// read: at a tier's limits, reading 50,000 users first was a tenth of an
// initial sync. Once the source is read, listed is called. A user a
// listing yields twice is planned once.
func (fr *fullRun) users(ctx context.Context, listed func()) error {
	d, ix := fr.d, fr.ix
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(reconcileWorkers)
	var seen, read atomic.Int64
	bulk := &bulkWrites{fr: fr, q: newBatch()}
	for u, err := range d.src.Users(gctx, identitydomain.ListOptions{Attributes: userAttributes}) {
		if err != nil {
			// What was read is done (its writes are right whatever the
			// rest holds); nothing is deleted.
			return errors.Join(fmt.Errorf("list users of %s: %w", d.source, err), g.Wait(), bulk.flush(ctx))
		}
		src := planner.FromSDKUser(u)
		fr.mu.Lock()
		_, twice := ix.srcUsers[src.ID]
		if !twice {
			ix.srcUsers[src.ID] = &src
		}
		fr.mu.Unlock()
		if twice {
			continue
		}
		read.Add(1)
		in := fr.userInput(&src)
		g.Go(func() error {
			p := d.rules.PlanUser(d.target, in)
			fr.donePlanning(in, p)
			if keep := fr.setAside(p); !fr.dryRun && bulk.eligible(keep) {
				// Applied with others, and noted in the index once made.
				fr.mu.Lock()
				fr.rp.add(keep)
				fr.mu.Unlock()
				if err := bulk.add(ctx, keep); err != nil {
					return err
				}
			} else {
				if err := fr.apply(ctx, keep); err != nil {
					return err
				}
				for _, a := range p.Actions {
					d.noteUser(gctx, ix, &fr.mu, a, fr.dryRun)
				}
			}
			if n := seen.Add(1); n%1000 == 0 {
				d.stats.setProgress("users %d of %d read from the source", n, read.Load())
			}
			return nil
		})
	}
	fr.rp.r.SourceUsers = read.Load()
	listed()
	if err := g.Wait(); err != nil {
		return err
	}
	return bulk.flush(ctx)
}

// sourceUser is the source user of the index with id sid, which the user
// pass may be adding to.
func (fr *fullRun) sourceUser(sid string) *planner.UserState {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.ix.srcUsers[sid]
}

// userInput is the planner's input for source user src, made as it is
// read. It reads only src's own mapping, which no other user's worker
// writes, so it is the same as one read before the workers start.
func (fr *fullRun) userInput(src *planner.UserState) planner.UserInput {
	ix := fr.ix
	in := planner.UserInput{Source: src, SourceComplete: true, Declares: fr.declares}
	fr.mu.Lock()
	um, ok := ix.userMaps[src.ID]
	fr.mu.Unlock()
	if ok {
		mp := um.mapping(src.ID)
		in.Mapping = &mp
		in.Mapped = ix.tgtUsers[mp.TargetID]
	}
	if in.Mapped == nil {
		in.Matched = ix.match(fr.d.link.Match.User, *src)
	}
	return in
}

// donePlanning slims, in the index, the source user a plan was made for
// when the plan leaves it mapped and writes nothing (an in-sync user): the
// group pass reads a mapped member's id, names and state only (an
// unmapped one's attributes make its copy). In an in-sync reconcile the
// attributes of 50,000 source users are then never held together with
// the groups' listings. It is done in place: the listing of the source's
// groups may be reading the index (the user's id, not its attributes),
// and only this worker reads the attributes.
func (fr *fullRun) donePlanning(in planner.UserInput, p planner.Plan) {
	if in.Mapping == nil || len(p.Writes()) != 0 {
		return
	}
	dropAttributes(in.Source)
}

// goneUsers plans the deletions of mapped users the source no longer has,
// and forgets the mappings of those whose copy is gone too (or already
// retired). A source that listed no users at all deletes nothing.
func (fr *fullRun) goneUsers(ctx context.Context) error {
	d, ix := fr.d, fr.ix
	forget := fr.deletions
	forget.Actions = nil
	for sid, um := range ix.userMaps {
		if ix.srcUsers[sid] != nil || um.target == plannedID {
			continue
		}
		mp := um.mapping(sid)
		if len(ix.srcUsers) == 0 {
			return fmt.Errorf("the source listed no users while %s has mapped users: nothing is deleted", d.name())
		}
		keep := fr.setAside(d.rules.PlanUser(d.target, planner.UserInput{SourceComplete: true, Mapping: &mp, Mapped: ix.tgtUsers[mp.TargetID]}))
		// The rest of the plan, the memberships it leaves, is the group
		// pass's.
		for _, a := range keep.Actions {
			if a.Kind == planner.ActForget {
				forget.Actions = append(forget.Actions, a)
			}
		}
	}
	if len(forget.Actions) == 0 {
		return nil
	}
	return fr.applyEach(ctx, forget)
}

// indexGroups lists the groups of both sides with their members and loads
// the group mappings.
func (fr *fullRun) indexGroups(ctx context.Context, source func() (map[string]*planner.GroupState, error)) (*groupIndex, error) {
	d := fr.d
	srcGroups, err := source()
	if err != nil {
		return nil, fmt.Errorf("list groups of %s: %w", d.source, err)
	}
	tgtGroups, err := listGroupsOf(ctx, d.tgt, fr.ix.tgtUsers)
	if err != nil {
		return nil, fmt.Errorf("list groups of %s: %w", d.target, err)
	}
	fr.rp.r.SourceGroups, fr.rp.r.TargetGroups = int64(len(srcGroups)), int64(len(tgtGroups))
	gx := &groupIndex{src: srcGroups, tgt: tgtGroups, byName: map[string]*planner.GroupState{}, byExt: map[string]*planner.GroupState{}}
	for _, g := range tgtGroups {
		gx.byName[strings.ToLower(g.DisplayName)] = g
		if g.ExternalID != "" {
			gx.byExt[g.ExternalID] = g
		}
	}
	if gx.maps, err = d.ids.all(ctx, d.scope(planner.KindGroup)); err != nil {
		return nil, err
	}
	return gx, nil
}

// prefetchSourceGroups starts listing the source's groups with their
// members and returns the function that waits for the listing. The user
// index it shares member ids with is only read from here on.
func (fr *fullRun) prefetchSourceGroups(ctx context.Context) func() (map[string]*planner.GroupState, error) {
	type listing struct {
		groups map[string]*planner.GroupState
		err    error
	}
	ch := make(chan listing, 1)
	go func() {
		g, err := listGroupsOf(ctx, fr.d.src, fr.ix.srcUsers)
		ch <- listing{g, err}
	}()
	return func() (map[string]*planner.GroupState, error) {
		l := <-ch
		return l.groups, l.err
	}
}

// groupInput is the planner's input for a source group: its mapping, or
// the target group it matches.
func (fr *fullRun) groupInput(gx *groupIndex, id string, src *planner.GroupState) planner.GroupInput {
	in := planner.GroupInput{Source: src, SourceComplete: true, Declares: fr.declares}
	if mp, found := gx.maps[id]; found {
		in.Mapping = &mp
		in.Mapped = gx.tgt[mp.TargetID]
	}
	if in.Mapped == nil {
		if fr.d.link.Match.Group == planner.MatchExternalID {
			in.Matched = gx.byExt[id]
		} else if in.Matched = gx.byName[strings.ToLower(src.DisplayName)]; in.Matched == nil {
			in.Matched = gx.byExt[id] // a copy iamflow made, by the source id it carries
		}
	}
	return in
}

// groups plans and applies every source group with its members,
// reconcileWorkers at a time.
func (fr *fullRun) groups(ctx context.Context, gx *groupIndex) error {
	d := fr.d
	res := d.fullResolver(fr.ix)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(reconcileWorkers)
	var seen atomic.Int64
	bulk := &bulkGroups{fr: fr, q: newBatch()}
	for id, src := range gx.src {
		in := fr.groupInput(gx, id, src)
		g.Go(func() error {
			var current []string
			if t := d.rules.TargetGroup(in); t != nil {
				current = t.Members
			}
			if ok, _ := d.rules.GroupInScope(*src); ok {
				mi, err := d.resolveMembers(gctx, src.Members, current, res)
				if err != nil {
					return err
				}
				in.Members = &mi
			}
			keep := fr.setAside(d.rules.PlanGroup(d.target, in))
			writes := keep
			writes.Actions = slices.DeleteFunc(slices.Clone(keep.Actions), func(a planner.Action) bool { return a.Kind == planner.ActSkip })
			if !fr.dryRun && bulk.eligible(writes) {
				// Applied with others through Bulk; counted in the
				// report as fr.apply counts it.
				fr.mu.Lock()
				fr.rp.add(keep)
				fr.mu.Unlock()
				if err := bulk.add(ctx, writes); err != nil {
					return err
				}
			} else if err := fr.apply(ctx, keep); err != nil {
				return err
			}
			if n := seen.Add(1); n%100 == 0 {
				d.stats.setProgress("groups %d/%d", n, len(gx.src))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return bulk.flush(ctx)
}

// goneGroups plans the deletions of mapped groups the source no longer
// has. A source that listed no groups at all deletes nothing.
func (fr *fullRun) goneGroups(gx *groupIndex) error {
	d := fr.d
	for sid, mp := range gx.maps {
		if gx.src[sid] != nil {
			continue
		}
		if len(gx.src) == 0 {
			return fmt.Errorf("the source listed no groups while %s has mapped groups: nothing is deleted", d.name())
		}
		fr.setAside(d.rules.PlanGroup(d.target, planner.GroupInput{SourceComplete: true, Mapping: &mp, Mapped: gx.tgt[mp.TargetID]}))
	}
	return nil
}

// deleteTogether puts every deletion before the mass-deletion guard at
// once, against the target's size, and applies what it lets through. A
// guard without its state lets nothing through and holds nothing.
func (fr *fullRun) deleteTogether(ctx context.Context, targetSize int) error {
	if len(fr.deletions.Actions) == 0 {
		return nil
	}
	d := fr.d
	deletions, err := d.guard.Check(ctx, d.link.Guard, fr.deletions, targetSize)
	if err != nil {
		// Neither applied nor held: the reconcile reports the error and
		// the next one plans these deletions again.
		return fmt.Errorf("%d deletions not applied: %w", deletions.Deletions(), err)
	}
	return fr.applyEach(ctx, deletions)
}

// indexTarget lists the target's users and loads the user mappings; the
// user pass reads the source's users.
func (d *direction) indexTarget(ctx context.Context, rp *report) (*fullIndex, error) {
	ix := &fullIndex{srcUsers: map[string]*planner.UserState{}, tgtUsers: map[string]*planner.UserState{},
		tgtByName: map[string]string{}, tgtByExt: map[string]string{}, userMaps: map[string]userMapping{}, managed: map[string]bool{}}
	for u, err := range d.tgt.Users(ctx, identitydomain.ListOptions{Attributes: userAttributes}) {
		if err != nil {
			return nil, fmt.Errorf("list users of %s: %w", d.target, err)
		}
		s := planner.FromSDKUser(u)
		ix.tgtUsers[s.ID] = &s
		ix.tgtByName[strings.ToLower(s.UserName)] = s.ID
		if s.ExternalID != "" {
			ix.tgtByExt[s.ExternalID] = s.ID
		}
		if len(ix.tgtUsers)%5000 == 0 {
			d.stats.setProgress("reading target users: %d", len(ix.tgtUsers))
		}
	}
	rp.r.TargetUsers = int64(len(ix.tgtUsers))
	err := d.ids.each(ctx, d.scope(planner.KindUser), func(mp planner.Mapping) {
		if u := ix.tgtUsers[mp.TargetID]; u != nil {
			mp.TargetID = u.ID // one string for the target id, not two
		}
		ix.userMaps[mp.SourceID] = indexed(mp)
		ix.managed[mp.TargetID] = mp.Managed()
	})
	if err != nil {
		return nil, err
	}
	// A copy iamflow retired is still its own: a group that holds it
	// (added by a plan read before the retirement) lets it go.
	err = d.ids.eachRetired(ctx, d.scope(planner.KindUser), func(tid string) {
		if _, ok := ix.managed[tid]; !ok && ix.tgtUsers[tid] != nil {
			ix.managed[ix.tgtUsers[tid].ID] = true
		}
	})
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// slimTargetUsers drops from the index the target users' copied
// attributes once the user pass is done with them: the group pass reads a
// target user's id, names and state only. At 50,000 users that is a tenth
// of what the reconcile holds while it lists the groups.
func (ix *fullIndex) slimTargetUsers() {
	for _, u := range ix.tgtUsers {
		dropAttributes(u)
	}
}

// dropAttributes leaves u with only what the group pass reads of a user:
// its id, names and state. It writes only the fields it clears, so a
// reader of u's id meanwhile (the groups' listing) does not race it.
func dropAttributes(u *planner.UserState) {
	u.DisplayName, u.GivenName, u.FamilyName, u.Emails, u.Custom, u.Groups = "", "", "", nil, nil, nil
}

// match finds the target user src matches in the index.
func (ix *fullIndex) match(rule string, src planner.UserState) *planner.UserState {
	id, ok := ix.tgtByName[strings.ToLower(src.UserName)]
	if rule == planner.MatchExternalID || !ok {
		id = ix.tgtByExt[src.ID] // by name, a copy iamflow made is also found by the source id it carries
	}
	return ix.tgtUsers[id]
}

// noteUser records in the index what a user action did (or, in a dry run,
// would do), so the memberships planned next find the user.
func (d *direction) noteUser(ctx context.Context, ix *fullIndex, mu *sync.Mutex, a planner.Action, dryRun bool) {
	if a.Kind != planner.ActCreateUser && a.Kind != planner.ActAdopt {
		return
	}
	mp := planner.Mapping{SourceID: a.SourceID, TargetID: a.TargetID, Origin: planner.OriginCreated}
	if dryRun || d.link.DryRun {
		if mp.TargetID == "" {
			mp.TargetID = plannedID
		}
	} else {
		var found bool
		var err error
		if mp, found, err = d.ids.Get(ctx, d.scope(planner.KindUser), a.SourceID); err != nil || !found {
			return // the membership reconcile reads it again
		}
	}
	d.noteMapping(ix, mu, mp, dryRun)
}

// noteMapping records user mapping mp in the index (in a dry run, as
// planned: not as managed).
func (d *direction) noteMapping(ix *fullIndex, mu *sync.Mutex, mp planner.Mapping, dryRun bool) {
	mu.Lock()
	defer mu.Unlock()
	ix.userMaps[mp.SourceID] = indexed(mp)
	if !dryRun && !d.link.DryRun {
		ix.managed[mp.TargetID] = mp.Managed()
	}
}

// groupsWithMembersPage is how many groups one page of a listing with
// members asks for: a page of 1,000 groups of 40 members is some 17 MB of
// JSON and several times that decoded, the largest thing a full reconcile
// holds; 200 such groups are 8,000 members. (Pages of 100 took no more
// than noise off the peak heap of an in-sync reconcile of 50,000 users,
// and cost 50 more calls: 200 instead of 150.)
const groupsWithMembersPage = 200

// listGroups lists every group of a domain with its members. An Identity
// Domain (its schemas declare Oracle's group extension) answers members in
// a listing, so one pass reads them; when it refuses them (a group too
// large), or for any other server, which may leave members out of a
// listing without saying so, each group's members are read on their own.
func listGroups(ctx context.Context, dom Domain) (map[string]*planner.GroupState, error) {
	return listGroupsOf(ctx, dom, nil)
}

// listGroupsOf is listGroups where member ids that name users of users
// share those users' id strings.
func listGroupsOf(ctx context.Context, dom Domain, users map[string]*planner.UserState) (map[string]*planner.GroupState, error) {
	caps, err := dom.Capabilities(ctx)
	if err != nil || !caps.Discovered || !caps.Declares(planner.ResourceGroup, identitydomain.SchemaGroupExtension+":description") {
		return listGroupsPaged(ctx, dom, users)
	}
	out := map[string]*planner.GroupState{}
	for g, err := range dom.Groups(ctx, identitydomain.ListOptions{Attributes: withMembers, PageSize: groupsWithMembersPage}) {
		if errors.Is(err, identitydomain.ErrInvalidRequest) {
			return listGroupsPaged(ctx, dom, users)
		}
		if err != nil {
			return nil, err
		}
		s := planner.FromSDKGroup(g)
		shareIDs(s.Members, users)
		out[s.ID] = &s
	}
	return out, nil
}

// listGroupsPaged lists the groups, then reads each one's members.
func listGroupsPaged(ctx context.Context, dom Domain, users map[string]*planner.UserState) (map[string]*planner.GroupState, error) {
	var ids []string
	for g, err := range dom.Groups(ctx, identitydomain.ListOptions{Attributes: []string{"id"}}) {
		if err != nil {
			return nil, err
		}
		ids = append(ids, str(g.Id))
	}
	out := map[string]*planner.GroupState{}
	for _, id := range ids {
		s, err := readGroup(ctx, dom, id, true)
		if err != nil {
			return nil, fmt.Errorf("read group %s: %w", id, err)
		}
		if s != nil { // deleted since the listing
			shareIDs(s.Members, users)
			out[s.ID] = s
		}
	}
	return out, nil
}

// shareIDs replaces each id that names a user of users with that user's
// own id string, so the memberships of a directory cost no string of their
// own (a member is in several groups).
func shareIDs(ids []string, users map[string]*planner.UserState) {
	for i, id := range ids {
		if u := users[id]; u != nil {
			ids[i] = u.ID
		}
	}
}

// actionProto is an action in the admin API's form.
func actionProto(a planner.Action) *iamflowv1.PlannedAction {
	pa := &iamflowv1.PlannedAction{Kind: string(a.Kind), Entity: string(a.Entity), Name: a.Name, SourceId: a.SourceID,
		TargetId: a.TargetID, MemberSourceId: a.MemberSourceID, MemberTargetId: a.MemberTargetID, MemberName: a.MemberName, Reason: a.Reason, Held: a.Held}
	for _, c := range a.Changes {
		pa.Changes = append(pa.Changes, &iamflowv1.AttributeChange{Attribute: c.Attr, Before: c.Before, After: c.After})
	}
	return pa
}
