package replicator

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/scimtest/misbehave"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// A full reconcile sends its user updates, and the deletions (or
// deactivations) the guard lets through, as SCIM Bulk; against a target
// whose Bulk misbehaves, what Bulk did not do goes the single way. Either
// way the target ends as the source says, every action is audited once as
// applied, the retired objects' mappings are forgotten, an updated user's
// new state is remembered as an own write, and a reconcile after finds
// nothing to do.
func TestFullReconcileUpdatesAndDeletesInBulk(t *testing.T) {
	const users, updated, gone = 30, 8, 4
	for _, tc := range []struct {
		name    string
		policy  string
		faults  misbehave.BulkFaults
		counted string // the double's count of the fault acting
		exact   bool   // every write goes through Bulk
	}{
		{"delete", planner.PolicyDelete, misbehave.BulkFaults{}, "", true},
		{"deactivate", planner.PolicyDeactivate, misbehave.BulkFaults{}, "", true},
		{"one operation refused", planner.PolicyDelete, misbehave.BulkFaults{BulkRefuseOperation: 2}, "bulk-refused-op", false},
		{"results missing", planner.PolicyDelete, misbehave.BulkFaults{BulkDropResults: 2}, "dropped-result", false},
		{"answer lost after the request ran", planner.PolicyDelete, misbehave.BulkFaults{BulkLoseAnswers: 1}, "bulk-answer-lost", false},
		{"413 below the advertised limit", planner.PolicyDeactivate, misbehave.BulkFaults{BulkMaxOperations: 3}, "bulk413", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := link("hub", "src", "tgt")
			l.Delete.Users = tc.policy
			cfg := config(l)
			p := newPipeline(t, cfg, pipelineOpts{noRun: true, faults: map[string]misbehave.Faults{"tgt": {}}})
			src, tgt := p.sites["src"], p.sites["tgt"]
			ctx := context.Background()
			var ids []string
			for i := range users {
				ids = append(ids, src.createUser(t, fmt.Sprintf("bw%03d", i), fmt.Sprintf("Bw %d", i)))
			}
			src.add(t, src.createGroup(t, "stays", ""), ids[2])
			doomed := src.createGroup(t, "doomed", "")
			src.add(t, doomed, ids[0], ids[1])
			p.reconcileLink("hub", false)
			d := p.svc.direction("src", "tgt")
			doomedCopy, _ := tgt.emu.GroupByName("doomed")

			for _, id := range ids[:updated] {
				src.patchUser(t, id, identitydomain.Replace("displayName", "Renamed "+id))
			}
			for _, id := range ids[users-gone:] {
				if _, err := src.human.DeleteUser(ctx, id, ""); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := src.human.DeleteGroup(ctx, doomed, ""); err != nil {
				t.Fatal(err)
			}
			// The target counts a Bulk request's operations under their
			// own operations too.
			single := func() int64 {
				return tgt.emu.CallCount(emu.OpPatchUser) + tgt.emu.CallCount(emu.OpDeleteUser) + tgt.emu.CallCount(emu.OpDeleteGroup)
			}
			singleBefore, bulkBefore := single(), tgt.emu.CallCount(emu.OpBulk)
			tgt.double.SetFaults(misbehave.Faults{RetryAfter: time.Second, BulkFaults: tc.faults})
			p.reconcileLink("hub", false)
			tgt.double.SetFaults(misbehave.Faults{})
			if tc.counted != "" && tgt.double.Count(tc.counted) == 0 {
				t.Fatalf("the fault %q never acted", tc.counted)
			}
			if tgt.emu.CallCount(emu.OpBulk) == bulkBefore {
				t.Fatal("no Bulk request")
			}
			c := p.svc.Status(ctx).GetCounters()
			retire := int64(gone)
			if tc.policy == planner.PolicyDelete {
				retire = 0
			}
			if tc.exact {
				if s := single() - singleBefore - c[counterBulkUpdates] - c[counterBulkDeletes]; s != 0 {
					t.Errorf("%d writes went the single way, want none", s)
				}
				if c[counterBulkUpdates] != updated+retire || c[counterBulkDeletes] != gone-retire+1 {
					t.Errorf("through Bulk: %d updates, %d deletes; want %d, %d", c[counterBulkUpdates], c[counterBulkDeletes], updated+retire, gone-retire+1)
				}
			} else if c[counterBulkUpdates]+c[counterBulkDeletes] == 0 {
				t.Error("nothing went through Bulk")
			}

			// The target as the source says.
			for _, id := range ids[:updated] {
				copy, ok := tgt.emu.UserByName(fmt.Sprintf("bw%03d", slices.Index(ids, id)))
				if !ok || copy.DisplayName != "Renamed "+id {
					t.Errorf("user %s in the target: %q %v, want renamed", id, copy.DisplayName, ok)
				}
				now, err := tgt.client.GetUser(ctx, copy.ID, userAttributes...)
				if err != nil {
					t.Fatal(err)
				}
				fp := d.rules.UserFingerprint(planner.FromSDKUser(now))
				if own, err := d.writes.is(ctx, "hub", "tgt", planner.KindUser, copy.ID, fp); err != nil || !own {
					t.Errorf("user %s: its new state is not remembered as an own write (%v)", id, err)
				}
			}
			for i, id := range ids[users-gone:] {
				copy, ok := tgt.emu.UserByName(fmt.Sprintf("bw%03d", users-gone+i))
				if tc.policy == planner.PolicyDelete && ok {
					t.Errorf("user %s still in the target", id)
				}
				if tc.policy == planner.PolicyDeactivate && (!ok || copy.Active) {
					t.Errorf("user %s in the target: %v, active %v; want it inactive", id, ok, copy.Active)
				}
				if _, found, err := d.ids.Get(ctx, d.scope(planner.KindUser), id); err != nil || found {
					t.Errorf("user %s: mapping still there (%v)", id, err)
				}
			}
			if _, ok := tgt.emu.Group(doomedCopy.ID); ok {
				t.Error("the deleted group is still in the target")
			}
			if _, found, err := d.ids.Get(ctx, d.scope(planner.KindGroup), doomed); err != nil || found {
				t.Errorf("group mapping still there (%v)", err)
			}
			per := map[string]int{}
			seen := map[string]bool{}
			for _, r := range auditRecords(t, p.bus) {
				switch planner.ActionKind(r.GetAction()) {
				case planner.ActUpdateUser, planner.ActDeleteUser, planner.ActDeactivateUser, planner.ActDeleteGroup:
				default:
					continue
				}
				k := r.GetAction() + " " + r.GetResource().GetId()
				if r.GetOutcome() != "applied" || seen[k] {
					t.Errorf("%s: outcome %s, seen before %v (%s)", k, r.GetOutcome(), seen[k], r.GetReason())
				}
				seen[k] = true
				per[r.GetAction()]++
			}
			retired := string(planner.ActDeleteUser)
			if tc.policy == planner.PolicyDeactivate {
				retired = string(planner.ActDeactivateUser)
			}
			if per[string(planner.ActUpdateUser)] != updated || per[retired] != gone || per[string(planner.ActDeleteGroup)] != 1 {
				t.Errorf("applied records %v, want %d updates, %d %s, 1 group delete", per, updated, gone, retired)
			}
			p.reconcileWritesNothing("hub", tgt)
		})
	}
}

// A Bulk delete whose object is gone already (404) is done: the mapping is
// forgotten and the delete audited as applied, not tried again alone. Any
// other refusal goes the single way.
func TestBulkDeleteOfWhatIsGoneIsDone(t *testing.T) {
	cfg := config(link("hub", "src", "tgt"))
	p := newPipeline(t, cfg, pipelineOpts{noRun: true})
	src := p.sites["src"]
	ctx := context.Background()
	ids := []string{src.createUser(t, "gone1", "Gone 1"), src.createUser(t, "gone2", "Gone 2")}
	p.reconcileLink("hub", false)
	d := p.svc.direction("src", "tgt")
	fr := &fullRun{d: d, c: cause{reconcile: "reconcile"}, ix: &fullIndex{}}
	b := &bulkWrites{fr: fr}
	for i, tc := range []struct {
		err  error
		done bool
	}{
		{&identitydomain.Error{Kind: identitydomain.KindNotFound, Status: 404}, true},
		{&identitydomain.Error{Kind: identitydomain.KindUnavailable, Status: 503}, false},
	} {
		mp := mustMapping(t, d, ids[i])
		a := planner.Action{Kind: planner.ActDeleteUser, Entity: planner.KindUser, SourceID: ids[i], TargetID: mp.TargetID, Name: "gone"}
		pl := d.rules.NewPlan("tgt")
		pl.Actions = []planner.Action{a}
		if _, done := b.mapBack(ctx, ctx, pl, identitydomain.BulkResult{Status: tc.err.(*identitydomain.Error).Status, Err: tc.err}); done != tc.done {
			t.Fatalf("%v: done %v, want %v", tc.err, done, tc.done)
		}
		fr.storeRecords(ctx)
		_, found, err := d.ids.Get(ctx, d.scope(planner.KindUser), ids[i])
		if err != nil || found == tc.done {
			t.Errorf("%v: mapping found %v (%v)", tc.err, found, err)
		}
	}
	var applied int
	for _, r := range auditRecords(t, p.bus) {
		if r.GetAction() == string(planner.ActDeleteUser) && r.GetOutcome() == "applied" {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("%d delete_user records applied, want 1", applied)
	}
}

// However many workers queue, at most batchesInFlight full batches are out
// being sent at once: the others wait to queue, so a reconcile does not hold
// a batch of group plans per worker.
func TestBatchesInFlightAreBounded(t *testing.T) {
	q := newBatch()
	release := make(chan struct{})
	var inflight, most atomic.Int64
	apply := func(_ context.Context, plans []planner.Plan) error {
		if len(plans) == 0 {
			return nil
		}
		n := inflight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		inflight.Add(-1)
		return nil
	}
	const workers = 8
	var g errgroup.Group
	for range workers {
		g.Go(func() error {
			for range 100 {
				if err := q.queue(context.Background(), planner.Plan{}, bulkBatch/4, apply); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Unbounded, every worker would soon hold a full batch; give them the
	// time to.
	for deadline := time.Now().Add(time.Second); inflight.Load() < workers && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if m := most.Load(); m > batchesInFlight {
		t.Errorf("%d batches out at once, want at most %d", m, batchesInFlight)
	}
	close(release)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// The user pass writes as it reads the source: the changes to the users of
// the pages read before a source fails in the middle of its listing are
// made, and nothing is deleted.
func TestUserPassWritesAsItReadsTheSource(t *testing.T) {
	const users, page, failFrom = 40, 10, 21 // pages 1 and 2 answer, the third fails
	l := link("hub", "src", "tgt")
	l.Delete.Users = planner.PolicyDelete
	cfg := config(l)
	p := newPipeline(t, cfg, pipelineOpts{noRun: true, faults: map[string]misbehave.Faults{"src": {}}})
	src, tgt := p.sites["src"], p.sites["tgt"]
	var ids []string
	for i := range users {
		ids = append(ids, src.createUser(t, fmt.Sprintf("rw%03d", i), fmt.Sprintf("Rw %d", i)))
	}
	ctx := context.Background()
	p.reconcileLink("hub", false)
	// The source lists its users in creation order: the first five are on
	// the first page, the last on the fourth.
	for _, id := range ids[:5] {
		src.patchUser(t, id, identitydomain.Replace("displayName", "Renamed "+id))
	}
	if _, err := src.human.DeleteUser(ctx, ids[users-1], ""); err != nil {
		t.Fatal(err)
	}
	src.double.SetFaults(misbehave.Faults{MaxPageSize: page, FailUsersFrom: failFrom})
	_, err := p.svc.ReconcileLink(ctx, "hub", false)
	src.double.SetFaults(misbehave.Faults{})
	if err == nil || src.double.Count("list503") == 0 {
		t.Fatalf("reconcile: %v, the source failed %d times; want the listing's error", err, src.double.Count("list503"))
	}
	for i, id := range ids[:5] {
		if u, ok := tgt.emu.UserByName(fmt.Sprintf("rw%03d", i)); !ok || u.DisplayName != "Renamed "+id {
			t.Errorf("rw%03d in the target: %q %v; want it renamed before the listing failed", i, u.DisplayName, ok)
		}
	}
	if _, ok := tgt.emu.UserByName(fmt.Sprintf("rw%03d", users-1)); !ok {
		t.Error("a user the source deleted was deleted in the target although the source listing failed")
	}
}
