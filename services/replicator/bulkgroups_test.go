package replicator

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/scimtest/misbehave"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// groupWorld fills src with users and groups of overlapping members and
// returns the groups' ids and how many memberships they hold.
func groupWorld(t testing.TB, src *site, users, groups, size int) (ids []string, memberships int) {
	t.Helper()
	var uids []string
	for i := range users {
		uids = append(uids, src.createUser(t, fmt.Sprintf("gw%03d", i), fmt.Sprintf("Gw %d", i)))
	}
	for k := range groups {
		g := src.createGroup(t, fmt.Sprintf("team%02d", k), "")
		var ms []string
		for j := range size {
			ms = append(ms, uids[(k*3+j)%users])
		}
		src.add(t, g, ms...)
		ids = append(ids, g)
		memberships += len(ms)
	}
	return ids, memberships
}

// sameGroups fails unless every source group has a copy in tgt holding
// the copies of its members (by userName), mapped to it.
func sameGroups(t *testing.T, p *pipeline, src, tgt *site) {
	t.Helper()
	d := p.svc.direction(src.name, tgt.name)
	for _, g := range src.emu.Groups() {
		copy, ok := tgt.emu.GroupByName(g.DisplayName)
		if !ok {
			t.Fatalf("group %s has no copy", g.DisplayName)
		}
		mp, found, err := d.ids.Get(context.Background(), d.scope(planner.KindGroup), g.ID)
		if err != nil || !found || mp.TargetID != copy.ID {
			t.Fatalf("group %s: mapping %+v %v %v, copy %s", g.DisplayName, mp, found, err, copy.ID)
		}
		want, got := memberNames(t, src.emu, g.ID), memberNames(t, tgt.emu, copy.ID)
		if !slices.Equal(want, got) {
			t.Fatalf("group %s: target members %v, want %v", g.DisplayName, got, want)
		}
	}
}

func memberNames(t *testing.T, d *emu.Domain, gid string) []string {
	t.Helper()
	ms, ok := d.Members(gid)
	if !ok {
		t.Fatalf("no group %s", gid)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.UserName)
	}
	slices.Sort(out)
	return out
}

// appliedOnce fails unless every create_group, add_member and
// remove_member the audit trail holds was applied, each group created and
// each membership changed recorded once; it returns the count per kind.
func appliedOnce(t *testing.T, p *pipeline) map[string]int {
	t.Helper()
	seen := map[string]int{}
	per := map[string]int{}
	for _, r := range auditRecords(t, p.bus) {
		switch planner.ActionKind(r.GetAction()) {
		case planner.ActCreateGroup, planner.ActAddMember, planner.ActRemoveMember:
		default:
			continue
		}
		if r.GetOutcome() != "applied" {
			t.Errorf("%s %s: outcome %s (%s)", r.GetAction(), r.GetResource().GetName(), r.GetOutcome(), r.GetReason())
			continue
		}
		k := r.GetAction() + " " + r.GetResource().GetId() + " " + r.GetRelated().GetId()
		if seen[k]++; seen[k] > 1 {
			t.Errorf("%s recorded %d times", k, seen[k])
		}
		per[r.GetAction()]++
	}
	return per
}

// A full reconcile creates groups with their members, and changes the
// members of existing groups, through SCIM Bulk where the target offers it
// (one request per bulkBatch operations, split further by the target's
// limits) and one call at a time where it does not; either way the target
// ends equal to the source, every group mapped, every action audited once
// as applied, and a reconcile after finds nothing to do.
func TestFullReconcileGroupsInBulk(t *testing.T) {
	const users, groups, size = 24, 6, 8
	for _, tc := range []struct {
		name string
		bulk emu.BulkConfig
		via  bool // through Bulk
	}{
		{"bulk", emu.BulkConfig{}, true},
		{"small payload", emu.BulkConfig{MaxPayloadSize: 1500}, true},
		{"no bulk", emu.BulkConfig{Disabled: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(link("hub", "src", "tgt"))
			p := newPipeline(t, cfg, pipelineOpts{noRun: true, sites: map[string]func(testing.TB) *site{"tgt": bulkTarget(tc.bulk)}})
			src, tgt := p.sites["src"], p.sites["tgt"]
			gids, memberships := groupWorld(t, src, users, groups, size)
			ctx := context.Background()
			counters := func() (creates, changes int64) {
				c := p.svc.Status(ctx).GetCounters()
				return c[counterBulkGroupCreates], c[counterBulkMemberChanges]
			}

			p.reconcileLink("hub", false)
			sameGroups(t, p, src, tgt)
			creates, changes := counters()
			wantCreates, wantChanges := int64(0), int64(0)
			if tc.via {
				wantCreates, wantChanges = groups, int64(memberships)
			}
			if creates != wantCreates || changes != wantChanges {
				t.Fatalf("through Bulk: %d group creates, %d member changes; want %d and %d", creates, changes, wantCreates, wantChanges)
			}
			if tc.via && tgt.emu.Stats().Calls[emu.OpPatchGroup] != 0 {
				t.Errorf("%d member PATCHes: the members should have come with the creates", tgt.emu.Stats().Calls[emu.OpPatchGroup])
			}
			if tc.bulk.MaxPayloadSize > 0 && tgt.emu.CallCount(emu.OpBulk) < 8 {
				t.Errorf("%d Bulk requests, want at least 8: at 1500 bytes a request holds 4 users or 2 groups of 8", tgt.emu.CallCount(emu.OpBulk))
			}

			// Member changes of existing groups: two removed, three added.
			u := src.emu.Users()
			src.remove(t, gids[0], memberIDs(t, src.emu, gids[0])[:2]...)
			var add []string
			for _, x := range u {
				if !slices.Contains(memberIDs(t, src.emu, gids[1]), x.ID) && len(add) < 3 {
					add = append(add, x.ID)
				}
			}
			src.add(t, gids[1], add...)
			bulkBefore := tgt.emu.CallCount(emu.OpBulk)
			p.reconcileLink("hub", false)
			sameGroups(t, p, src, tgt)
			_, changes2 := counters()
			if tc.via && (changes2-changes != 5 || tgt.emu.CallCount(emu.OpBulk)-bulkBefore != 1) {
				t.Errorf("the changes: %d members through Bulk in %d requests, want 5 in 1", changes2-changes, tgt.emu.CallCount(emu.OpBulk)-bulkBefore)
			}
			per := appliedOnce(t, p)
			if per[string(planner.ActCreateGroup)] != groups || per[string(planner.ActAddMember)] != memberships+3 || per[string(planner.ActRemoveMember)] != 2 {
				t.Errorf("applied records %v, want %d creates, %d adds, 2 removes", per, groups, memberships+3)
			}
			p.reconcileWritesNothing("hub", tgt)
		})
	}
}

func memberIDs(t *testing.T, d *emu.Domain, gid string) []string {
	t.Helper()
	ms, ok := d.Members(gid)
	if !ok {
		t.Fatalf("no group %s", gid)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.UserID)
	}
	slices.Sort(out)
	return out
}

// Against a target whose Bulk misbehaves, no operation's result is lost:
// an operation the target refused goes the single way and succeeds, one
// whose result is missing is found made, a request throttled on the Bulk
// group or refused as too large is sent again; the target ends equal to
// the source with every action audited once as applied, and a reconcile
// after finds nothing to do.
func TestFullReconcileGroupBulkFailures(t *testing.T) {
	const users, groups, size = 12, 8, 4
	for _, tc := range []struct {
		name    string
		faults  misbehave.BulkFaults
		counted string // the double's count of the fault acting
		single  bool   // some groups are created the single way
	}{
		{"one operation refused", misbehave.BulkFaults{BulkRefuseOperation: 2}, "bulk-refused-op", true},
		{"results missing", misbehave.BulkFaults{BulkDropResults: 1}, "dropped-result", false},
		{"429 on the Bulk group", misbehave.BulkFaults{BulkTooManyRequests: 2}, "bulk429", false},
		{"413 below the advertised limit", misbehave.BulkFaults{BulkMaxOperations: 3}, "bulk413", false},
		{"answer lost after the request ran", misbehave.BulkFaults{BulkLoseAnswers: 1}, "bulk-answer-lost", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(link("hub", "src", "tgt"))
			p := newPipeline(t, cfg, pipelineOpts{noRun: true, faults: map[string]misbehave.Faults{"tgt": {}}})
			src, tgt := p.sites["src"], p.sites["tgt"]
			gids, _ := groupWorld(t, src, users, groups, size)
			ctx := context.Background()
			if _, err := tgt.client.Capabilities(ctx); err != nil {
				t.Fatal(err)
			}
			tgt.double.SetFaults(misbehave.Faults{RetryAfter: time.Second, BulkFaults: tc.faults})
			p.reconcileLink("hub", false)
			if tgt.double.Count(tc.counted) == 0 {
				t.Fatalf("the fault %q never acted", tc.counted)
			}
			sameGroups(t, p, src, tgt)
			per := appliedOnce(t, p)
			if per[string(planner.ActCreateGroup)] != groups || per[string(planner.ActAddMember)] != groups*size {
				t.Errorf("applied records %v, want %d creates and %d adds", per, groups, groups*size)
			}
			creates := p.svc.Status(ctx).GetCounters()[counterBulkGroupCreates]
			if single := tgt.emu.Stats().Calls[emu.OpCreateGroup] - creates; (single > 0) != tc.single || creates == 0 {
				t.Errorf("%d groups created through Bulk, %d alone; want some alone: %v", creates, single, tc.single)
			}

			// Member changes of three existing groups, under the same fault.
			for _, g := range gids[:3] {
				src.remove(t, g, memberIDs(t, src.emu, g)[0])
			}
			tgt.double.SetFaults(misbehave.Faults{RetryAfter: time.Second, BulkFaults: tc.faults})
			p.reconcileLink("hub", false)
			sameGroups(t, p, src, tgt)
			if per := appliedOnce(t, p); per[string(planner.ActRemoveMember)] != 3 {
				t.Errorf("applied records %v, want 3 removes", per)
			}
			tgt.double.SetFaults(misbehave.Faults{})
			p.reconcileWritesNothing("hub", tgt)
		})
	}
}

// An initial sync into a SCIM server nobody here wrote (SCIMMY, whose
// ServiceProviderConfig offers Bulk): users, and groups with their
// members, go through its Bulk, and the target equals the source; a dry
// run after plans nothing. Then user updates and deletions go through its
// Bulk too, and the target equals the source again.
func TestInteropExternalTargetInitialSyncInBulk(t *testing.T) {
	const users, groups, size = 20, 3, 6
	l := link("hub", "src", "ext")
	l.Delete.Users = planner.PolicyDelete
	cfg := config(l)
	p := newPipeline(t, cfg, pipelineOpts{noRun: true, sites: map[string]func(testing.TB) *site{"ext": externalSite}})
	src, ext := p.sites["src"], p.sites["ext"]
	_, memberships := groupWorld(t, src, users, groups, size)
	ctx := context.Background()
	p.reconcileLink("hub", false)
	if d := withoutDescriptions(snap(src.emu)).diff(snapClient(t, ext.client)); d != "" {
		t.Fatalf("ext differs from src:\n%s", d)
	}
	c := p.svc.Status(ctx).GetCounters()
	if c[counterBulkCreates] != users || c[counterBulkGroupCreates] != groups || c[counterBulkMemberChanges] != int64(memberships) {
		t.Errorf("through Bulk: %d users, %d groups, %d members; want %d, %d, %d", c[counterBulkCreates], c[counterBulkGroupCreates],
			c[counterBulkMemberChanges], users, groups, memberships)
	}
	expectInSync(t, p, "hub")

	all := src.emu.Users()
	for _, u := range all[:3] {
		src.patchUser(t, u.ID, identitydomain.Replace("displayName", "Renamed "+u.UserName))
	}
	if _, err := src.human.DeleteUser(ctx, all[len(all)-1].ID, ""); err != nil {
		t.Fatal(err)
	}
	p.reconcileLink("hub", false)
	if d := withoutDescriptions(snap(src.emu)).diff(snapClient(t, ext.client)); d != "" {
		t.Fatalf("after updates and a deletion, ext differs from src:\n%s", d)
	}
	c = p.svc.Status(ctx).GetCounters()
	if c[counterBulkUpdates] != 3 || c[counterBulkDeletes] != 1 {
		t.Errorf("through Bulk: %d updates, %d deletes; want 3, 1", c[counterBulkUpdates], c[counterBulkDeletes])
	}
}

// countOps counts what opsOf makes.
func TestCountOps(t *testing.T) {
	members := func(kind planner.ActionKind, n int) []planner.Action {
		out := make([]planner.Action, n)
		for i := range out {
			out[i] = planner.Action{Kind: kind, TargetID: "g", MemberTargetID: fmt.Sprint(i)}
		}
		return out
	}
	create := planner.Action{Kind: planner.ActCreateGroup, Group: &planner.GroupState{DisplayName: "g"}}
	for _, actions := range [][]planner.Action{
		{create},
		append([]planner.Action{create}, members(planner.ActAddMember, 250)...),
		members(planner.ActAddMember, 100),
		members(planner.ActAddMember, 101),
		append(members(planner.ActAddMember, 1), members(planner.ActRemoveMember, 201)...),
	} {
		p := planner.Plan{Actions: actions}
		if got, want := countOps(p), len(opsOf(p, "", map[string]string{})); got != want {
			t.Errorf("%d actions: countOps %d, opsOf made %d", len(actions), got, want)
		}
	}
}

// hidingUsers is a source whose listing of every user leaves out the users
// named in hide, as a listing taken just before they were created does; a
// filtered read (by id) still finds them.
type hidingUsers struct {
	listed
	hide map[string]bool
}

// listed is Domain under a name that does not hide its method Domain.
type listed = Domain

// replicatedAnn makes user ann, a member of group old, in the source of
// the pipeline's link "hub" and reconciles it; it returns their ids.
func replicatedAnn(t *testing.T, p *pipeline) (ann, old string) {
	t.Helper()
	src := p.sites["src"]
	ann, old = src.createUser(t, "ann", "Ann"), src.createGroup(t, "old", "")
	src.add(t, old, ann)
	p.reconcileLink("hub", false)
	return ann, old
}

// hideUsers replaces the pipeline's service by one whose source's listing
// of every user leaves out the users named.
func hideUsers(t *testing.T, p *pipeline, names ...string) *Service {
	t.Helper()
	domains := map[string]Domain{}
	for n, s := range p.sites {
		domains[n] = s.client
	}
	hide := map[string]bool{}
	for _, n := range names {
		hide[n] = true
	}
	domains["src"] = hidingUsers{listed: domains["src"], hide: hide}
	svc, err := New(context.Background(), p.cfg, p.bus, domains, servicekit.WithLogger(pipelinetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	p.svc = svc
	return svc
}

func (h hidingUsers) Users(ctx context.Context, opts identitydomain.ListOptions) iter.Seq2[identitydomains.User, error] {
	return func(yield func(identitydomains.User, error) bool) {
		for u, err := range h.listed.Users(ctx, opts) {
			if err == nil && opts.Filter == "" && h.hide[str(u.UserName)] {
				continue
			}
			if !yield(u, err) {
				return
			}
		}
	}
}

// A member the user pass did not create (a user who appeared in the source
// after its listing) is created in the same Bulk request as its group's
// create or member change, which names it by bulkId reference: one request
// for the users, the new group and the new memberships, no single call.
// Where the target refuses the user's create, the group's operation, which
// names it, fails too; where it refuses the group's operation, the user is
// made all the same. Either way what Bulk did not do goes the single way
// (naming a user Bulk made by its id) and the target ends equal to the
// source, every action audited once as applied. A new user in two groups
// is created once and named by both.
func TestFullReconcileCreatesLateMembersWithTheirGroupInBulk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults misbehave.BulkFaults
		both   bool // late1 joins both groups: created once, named twice
	}{
		{"one request", misbehave.BulkFaults{}, false},
		{"one user in two groups", misbehave.BulkFaults{}, true},
		{"user create refused", misbehave.BulkFaults{BulkRefuseOperation: 1}, false},
		{"group operation refused", misbehave.BulkFaults{BulkRefuseOperation: 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(link("hub", "src", "tgt"))
			p := newPipeline(t, cfg, pipelineOpts{noRun: true, faults: map[string]misbehave.Faults{"tgt": {}}})
			src, tgt := p.sites["src"], p.sites["tgt"]
			ctx := context.Background()
			a, old := replicatedAnn(t, p)
			sameGroups(t, p, src, tgt)

			late1, late2 := src.createUser(t, "late1", "Late One"), src.createUser(t, "late2", "Late Two")
			fresh := src.createGroup(t, "fresh", "")
			src.add(t, fresh, a, late1)
			src.add(t, old, late2)
			if tc.both {
				src.add(t, old, late1)
			}
			svc := hideUsers(t, p, "late1", "late2")
			tgt.double.SetFaults(misbehave.Faults{BulkFaults: tc.faults})
			before := tgt.emu.Stats().Calls
			wrote := writes(tgt.emu)
			p.reconcileLink("hub", false)
			sameGroups(t, p, src, tgt)
			after := tgt.emu.Stats().Calls
			calls := func(op emu.Operation) int64 { return after[op] - before[op] }
			c := svc.Status(ctx).GetCounters()
			if tc.faults.BulkRefuseOperation == 0 {
				// The emulator counts each operation of a Bulk request as
				// the write it is: two user creates, the group's create
				// with its members, and the PATCH adding late2 to old.
				if w := writes(tgt.emu) - wrote; calls(emu.OpBulk) != 1 || w != 4 {
					t.Errorf("%d Bulk requests and %d writes; want the users, the group and its members in 1 request of 4 operations, nothing else",
						calls(emu.OpBulk), w)
				}
				members := int64(3)
				if tc.both {
					members++
				}
				if c[counterBulkCreates] != 2 || c[counterBulkGroupCreates] != 1 || c[counterBulkMemberChanges] != members {
					t.Errorf("through Bulk: %d users, %d groups, %d members; want 2, 1, %d",
						c[counterBulkCreates], c[counterBulkGroupCreates], c[counterBulkMemberChanges], members)
				}
			} else if tgt.double.Count("bulk-refused-op") == 0 {
				t.Error("the fault never acted")
			}
			switch tc.faults.BulkRefuseOperation {
			case 1: // the first plan's user: created alone, after the request
				if c[counterBulkCreates] != 1 || calls(emu.OpCreateUser) != 2 {
					t.Errorf("%d users created through Bulk of %d; want 1 of 2", c[counterBulkCreates], calls(emu.OpCreateUser))
				}
			case 2: // the first plan's group operation, which names its user
				if c[counterBulkCreates] != 2 || calls(emu.OpCreateUser) != 2 {
					t.Errorf("%d users created through Bulk of %d; want both, once", c[counterBulkCreates], calls(emu.OpCreateUser))
				}
			}
			d := svc.direction("src", "tgt")
			for _, sid := range []string{late1, late2} {
				if mp, found, err := d.ids.Get(ctx, d.scope(planner.KindUser), sid); err != nil || !found || mp.Origin != planner.OriginCreated {
					t.Errorf("user %s: mapping %+v %v %v", sid, mp, found, err)
				}
			}
			appliedOnce(t, p)
			created := map[string]int{}
			for _, r := range auditRecords(t, p.bus) {
				switch planner.ActionKind(r.GetAction()) {
				case planner.ActCreateUser:
					created[r.GetResource().GetName()]++
				case planner.ActAddMember:
					// The record names the member by its id in the target.
					if u, ok := tgt.emu.UserByName(r.GetRelated().GetName()); !ok || r.GetRelated().GetId() != u.ID {
						t.Errorf("add_member of %q to %q names member id %q, want %q", r.GetRelated().GetName(), r.GetResource().GetName(), r.GetRelated().GetId(), u.ID)
					}
				}
			}
			if created["late1"] != 1 || created["late2"] != 1 {
				t.Errorf("create_user records %v, want one each for late1 and late2", created)
			}
			tgt.double.SetFaults(misbehave.Faults{})
			p.svc = p.newService()
			p.reconcileWritesNothing("hub", tgt)
		})
	}
}

// Against a SCIM server nobody here wrote (SCIMMY): a member the user pass
// did not create goes in the Bulk request of its groups, named by bulkId
// reference in a new group's members and in an existing group's PATCH,
// and the target ends equal to the source.
func TestInteropExternalTargetLateMembersInBulk(t *testing.T) {
	cfg := config(link("hub", "src", "ext"))
	p := newPipeline(t, cfg, pipelineOpts{noRun: true, sites: map[string]func(testing.TB) *site{"ext": externalSite}})
	src, ext := p.sites["src"], p.sites["ext"]
	a, old := replicatedAnn(t, p)
	late := src.createUser(t, "late1", "Late One")
	src.add(t, src.createGroup(t, "fresh", ""), a, late)
	src.add(t, old, late)
	svc := hideUsers(t, p, "late1")
	p.reconcileLink("hub", false)
	if d := withoutDescriptions(snap(src.emu)).diff(snapClient(t, ext.client)); d != "" {
		t.Fatalf("ext differs from src:\n%s", d)
	}
	c := svc.Status(context.Background()).GetCounters()
	if c[counterBulkCreates] != 1 || c[counterBulkGroupCreates] != 1 || c[counterBulkMemberChanges] != 3 {
		t.Errorf("through Bulk: %d users, %d groups, %d members; want 1, 1, 3", c[counterBulkCreates], c[counterBulkGroupCreates], c[counterBulkMemberChanges])
	}
}

// A user the user pass did not create, added to several groups, is created
// once by the first group plan that reaches it; the other plans name the
// copy it made instead of being set aside as stale, so one reconcile brings
// every group in step, with Bulk (the groups' plans in separate requests)
// and without.
func TestFullReconcileCreatesALateMemberOnceForEveryGroup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bulk   emu.BulkConfig
		groups int
	}{
		{"no bulk", emu.BulkConfig{Disabled: true}, 3},
		// Each new group's plan is two operations (the user's create and
		// the group's), so these plans fill more than one batch.
		{"bulk, two batches", emu.BulkConfig{}, bulkBatch/2 + 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(link("hub", "src", "tgt"))
			p := newPipeline(t, cfg, pipelineOpts{noRun: true, sites: map[string]func(testing.TB) *site{"tgt": bulkTarget(tc.bulk)}})
			src, tgt := p.sites["src"], p.sites["tgt"]
			_, old := replicatedAnn(t, p)
			late := src.createUser(t, "late1", "Late One")
			src.add(t, old, late)
			for i := range tc.groups {
				src.add(t, src.createGroup(t, fmt.Sprintf("fresh%d", i), ""), late)
			}
			svc := hideUsers(t, p, "late1")
			before := tgt.emu.Stats()
			reps, err := svc.ReconcileLink(context.Background(), "hub", false)
			if err != nil {
				t.Fatal(err)
			}
			sameGroups(t, p, src, tgt)
			after := tgt.emu.Stats()
			// The emulator counts a create Bulk carries as the create it is,
			// and a refused one (409) too.
			if n := after.Calls[emu.OpCreateUser] - before.Calls[emu.OpCreateUser]; n != 1 {
				t.Errorf("%d creates of late1 sent, want 1", n)
			}
			for _, r := range reps {
				if n := r.GetActions()[actionStale]; n != 0 {
					t.Errorf("%s: %d plans set aside as stale", r.GetLink(), n)
				}
			}
			appliedOnce(t, p)
			p.svc = p.newService()
			p.reconcileWritesNothing("hub", tgt)
		})
	}
}
