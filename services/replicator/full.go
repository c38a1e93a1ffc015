package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

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
	tgtByName map[string]string // lower-case userName -> id
	tgtByExt  map[string]string // externalId -> id
	userMaps  map[string]planner.Mapping
	managed   map[string]bool // target user id -> iamflow created or adopted it
}

// report accumulates a reconcile report.
type report struct {
	r *iamflowv1.ReconcileReport
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
func (d *direction) fullReconcile(ctx context.Context, dryRun bool) (*iamflowv1.ReconcileReport, error) {
	rp := report{r: &iamflowv1.ReconcileReport{Link: d.link.Name, Source: d.source, Target: d.target,
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
	err := d.reconcileAll(ctx, &rp, dryRun)
	if err != nil {
		rp.r.Error = err.Error()
		d.stats.failure(d.now(), err)
		return rp.r, err
	}
	d.stats.success(d.now())
	return rp.r, nil
}

func (d *direction) reconcileAll(ctx context.Context, rp *report, dryRun bool) error {
	var buf auditBuf
	defer d.flush(context.WithoutCancel(ctx), &buf)
	c := cause{reconcile: "reconcile"}
	// Every plan is made from the listings read from now on: one already
	// reconciled from a newer read (by its event) is not applied.
	readAt := d.now()
	var mu sync.Mutex // guards rp, deletions and the index's maps while workers run
	run := func(p planner.Plan) error {
		if dryRun {
			p.DryRun = true
		}
		mu.Lock()
		rp.add(p)
		mu.Unlock()
		if p.DryRun {
			return nil
		}
		// Skips are counted in the report, not audited: a reconcile would
		// otherwise record every out-of-scope object every time.
		p.Actions = slices.DeleteFunc(slices.Clone(p.Actions), func(a planner.Action) bool { return a.Kind == planner.ActSkip })
		if len(p.Actions) == 0 {
			return nil
		}
		_, stale, err := d.applyListed(ctx, p, c, &buf, readAt)
		if stale {
			mu.Lock()
			rp.r.Actions[actionStale]++
			mu.Unlock()
		}
		return err
	}
	// runEach applies the actions of a plan one by one (deletions, judged
	// together by the guard, but each fenced on its own).
	runEach := func(p planner.Plan) error {
		if dryRun || p.DryRun {
			return run(p)
		}
		mu.Lock()
		rp.add(p)
		mu.Unlock()
		var errs []error
		for _, a := range p.Actions {
			if a.Kind == planner.ActSkip || a.Held {
				continue
			}
			one := p
			one.Actions = []planner.Action{a}
			_, stale, err := d.applyListed(ctx, one, c, &buf, readAt)
			if stale {
				mu.Lock()
				rp.r.Actions[actionStale]++
				mu.Unlock()
			}
			errs = append(errs, err)
		}
		for _, a := range p.Actions {
			if a.Held {
				d.record(ctx, &buf, p, a, c, outcomeOf(a, false), "")
			}
		}
		return errors.Join(errs...)
	}
	var deletions planner.Plan
	deletions.Link, deletions.Source, deletions.Target, deletions.DryRun = d.link.Name, d.source, d.target, dryRun || d.link.DryRun
	split := func(p planner.Plan) planner.Plan {
		keep := p
		keep.Actions = nil
		mu.Lock()
		defer mu.Unlock()
		for _, a := range p.Actions {
			if a.IsDeletion() {
				deletions.Actions = append(deletions.Actions, a)
			} else {
				keep.Actions = append(keep.Actions, a)
			}
		}
		return keep
	}

	dc := d.declares(ctx)
	ix, err := d.indexUsers(ctx, rp)
	if err != nil {
		return err
	}
	// Users, reconcileWorkers at a time (the client's rate limits pace them).
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(reconcileWorkers)
	var seen atomic.Int64
	inputs := make([]planner.UserInput, 0, len(ix.srcUsers)) // read before the workers write the index
	for _, src := range ix.srcUsers {
		in := planner.UserInput{Source: src, SourceComplete: true, Declares: dc}
		if mp, ok := ix.userMaps[src.ID]; ok {
			in.Mapping = &mp
			in.Mapped = ix.tgtUsers[mp.TargetID]
		}
		if in.Mapped == nil {
			in.Matched = ix.match(d.link.Match.User, *src)
		}
		inputs = append(inputs, in)
	}
	for _, in := range inputs {
		g.Go(func() error {
			p := d.rules.PlanUser(d.target, in)
			if err := run(split(p)); err != nil {
				return err
			}
			for _, a := range p.Actions {
				d.noteUser(gctx, ix, &mu, a, dryRun)
			}
			if n := seen.Add(1); n%1000 == 0 {
				d.stats.setProgress("users %d/%d", n, len(ix.srcUsers))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Mapped users the source no longer has.
	for sid, mp := range ix.userMaps {
		if ix.srcUsers[sid] != nil || mp.TargetID == plannedID {
			continue
		}
		if len(ix.srcUsers) == 0 {
			return fmt.Errorf("the source listed no users while %s has mapped users: nothing is deleted", d.name())
		}
		split(d.rules.PlanUser(d.target, planner.UserInput{SourceComplete: true, Mapping: &mp, Mapped: ix.tgtUsers[mp.TargetID]}))
	}

	// Groups, with their members.
	srcGroups, err := listGroups(ctx, d.src)
	if err != nil {
		return fmt.Errorf("list groups of %s: %w", d.source, err)
	}
	tgtGroups, err := listGroups(ctx, d.tgt)
	if err != nil {
		return fmt.Errorf("list groups of %s: %w", d.target, err)
	}
	rp.r.SourceGroups, rp.r.TargetGroups = int64(len(srcGroups)), int64(len(tgtGroups))
	gByName, gByExt := map[string]*planner.GroupState{}, map[string]*planner.GroupState{}
	for _, g := range tgtGroups {
		gByName[strings.ToLower(g.DisplayName)] = g
		if g.ExternalID != "" {
			gByExt[g.ExternalID] = g
		}
	}
	res := d.fullResolver(ix)
	groupMaps, err := d.ids.all(ctx, d.scope(planner.KindGroup))
	if err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(reconcileWorkers)
	seen.Store(0)
	for id, src := range srcGroups {
		in := planner.GroupInput{Source: src, SourceComplete: true, Declares: dc}
		if mp, found := groupMaps[id]; found {
			in.Mapping = &mp
			in.Mapped = tgtGroups[mp.TargetID]
		}
		if in.Mapped == nil {
			if d.link.Match.Group == planner.MatchExternalID {
				in.Matched = gByExt[id]
			} else {
				in.Matched = gByName[strings.ToLower(src.DisplayName)]
			}
		}
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
			if err := run(split(d.rules.PlanGroup(d.target, in))); err != nil {
				return err
			}
			if n := seen.Add(1); n%100 == 0 {
				d.stats.setProgress("groups %d/%d", n, len(srcGroups))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for sid, mp := range groupMaps {
		if srcGroups[sid] != nil {
			continue
		}
		if len(srcGroups) == 0 {
			return fmt.Errorf("the source listed no groups while %s has mapped groups: nothing is deleted", d.name())
		}
		split(d.rules.PlanGroup(d.target, planner.GroupInput{SourceComplete: true, Mapping: &mp, Mapped: tgtGroups[mp.TargetID]}))
	}

	// Deletions, judged together.
	if len(deletions.Actions) > 0 {
		deletions, err = d.guard.Check(ctx, d.link.Guard, deletions, len(ix.tgtUsers)+len(tgtGroups))
		if err != nil {
			d.log.Error("mass-deletion guard state not saved; deletions held", "link", d.link.Name, "target", d.target, "error", err)
		}
		if err := runEach(deletions); err != nil {
			return err
		}
	}
	return nil
}

// indexUsers lists the users of both sides and loads the user mappings.
func (d *direction) indexUsers(ctx context.Context, rp *report) (*fullIndex, error) {
	ix := &fullIndex{srcUsers: map[string]*planner.UserState{}, tgtUsers: map[string]*planner.UserState{},
		tgtByName: map[string]string{}, tgtByExt: map[string]string{}, userMaps: map[string]planner.Mapping{}, managed: map[string]bool{}}
	for u, err := range d.tgt.Users(ctx, identitydomain.ListOptions{}) {
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
	for u, err := range d.src.Users(ctx, identitydomain.ListOptions{}) {
		if err != nil {
			return nil, fmt.Errorf("list users of %s: %w", d.source, err)
		}
		s := planner.FromSDKUser(u)
		ix.srcUsers[s.ID] = &s
		if len(ix.srcUsers)%5000 == 0 {
			d.stats.setProgress("reading source users: %d", len(ix.srcUsers))
		}
	}
	rp.r.SourceUsers, rp.r.TargetUsers = int64(len(ix.srcUsers)), int64(len(ix.tgtUsers))
	maps, err := d.ids.all(ctx, d.scope(planner.KindUser))
	if err != nil {
		return nil, err
	}
	ix.userMaps = maps
	for _, mp := range maps {
		ix.managed[mp.TargetID] = mp.Managed()
	}
	return ix, nil
}

// match finds the target user src matches in the index.
func (ix *fullIndex) match(rule string, src planner.UserState) *planner.UserState {
	id := ix.tgtByName[strings.ToLower(src.UserName)]
	if rule == planner.MatchExternalID {
		id = ix.tgtByExt[src.ID]
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
	mu.Lock()
	ix.userMaps[a.SourceID] = mp
	if !dryRun && !d.link.DryRun {
		ix.managed[mp.TargetID] = mp.Managed()
	}
	mu.Unlock()
}

// listGroups lists every group of a domain with its members. An Identity
// Domain (its schemas declare Oracle's group extension) answers members in
// a listing, so one pass reads them; when it refuses them (a group too
// large), or for any other server, which may leave members out of a
// listing without saying so, each group's members are read on their own.
func listGroups(ctx context.Context, dom Domain) (map[string]*planner.GroupState, error) {
	caps, err := dom.Capabilities(ctx)
	if err != nil || !caps.Discovered || !caps.Declares(planner.ResourceGroup, identitydomain.SchemaGroupExtension+":description") {
		return listGroupsPaged(ctx, dom)
	}
	out := map[string]*planner.GroupState{}
	for g, err := range dom.Groups(ctx, identitydomain.ListOptions{Attributes: withMembers}) {
		if errors.Is(err, identitydomain.ErrInvalidRequest) {
			return listGroupsPaged(ctx, dom)
		}
		if err != nil {
			return nil, err
		}
		s := planner.FromSDKGroup(g)
		out[s.ID] = &s
	}
	return out, nil
}

// listGroupsPaged lists the groups, then reads each one's members.
func listGroupsPaged(ctx context.Context, dom Domain) (map[string]*planner.GroupState, error) {
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
			out[s.ID] = s
		}
	}
	return out, nil
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
