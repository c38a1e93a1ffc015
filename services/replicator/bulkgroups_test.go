package replicator

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/scimtest/misbehave"
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
		if got, want := countOps(p), len(opsOf(p, "")); got != want {
			t.Errorf("%d actions: countOps %d, opsOf made %d", len(actions), got, want)
		}
	}
}
