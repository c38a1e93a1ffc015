package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// membersOf lists the userNames of a group's members in an emulated domain.
func membersOf(t *testing.T, s *site, group string) []string {
	t.Helper()
	g, ok := s.emu.GroupByName(group)
	if !ok {
		return nil
	}
	ms, _ := s.emu.Members(g.ID)
	var out []string
	for _, m := range ms {
		out = append(out, m.UserName)
	}
	slices.Sort(out)
	return out
}

// waitMembers waits until the userNames of the group's members in s are
// want, sorted (none when want is empty).
func waitMembers(t *testing.T, s *site, group string, want ...string) {
	t.Helper()
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got := membersOf(t, s, group); !slices.Equal(got, want) {
			return fmt.Errorf("%s members in %s: %v, want %v", group, s.name, got, want)
		}
		return nil
	})
}

// A user deleted in the source leaves the target's groups on the event
// path, before any full reconcile, under either delete policy.
func TestDeletedUserLeavesTargetGroups(t *testing.T) {
	for _, policy := range []string{planner.PolicyDeactivate, planner.PolicyDelete} {
		t.Run(policy, func(t *testing.T) {
			l := link("hub", "src", "tgt")
			l.Delete.Users = policy
			cfg := config(l)
			p := newPipeline(t, cfg, pipelineOpts{})
			src, tgt := p.sites["src"], p.sites["tgt"]
			g := src.createGroup(t, "ops", "")
			u := src.createUser(t, "ursula", "Ursula U")
			keep := src.createUser(t, "kim", "Kim K")
			src.add(t, g, u, keep)
			p.settled()
			p.converged("src", "tgt", 10*time.Second)

			if _, err := src.human.DeleteUser(context.Background(), u, ""); err != nil {
				t.Fatal(err)
			}
			p.settled()
			waitMembers(t, tgt, "ops", "kim")
			tu, exists := tgt.emu.UserByName("ursula")
			switch {
			case policy == planner.PolicyDelete && exists:
				t.Errorf("deleted user still in the target: %+v", tu)
			case policy == planner.PolicyDeactivate && (!exists || tu.Active):
				t.Errorf("deactivated user: exists %v, %+v", exists, tu)
			}
			// A dry-run reconcile now finds nothing to do.
			expectInSync(t, p, "hub")
		})
	}
}

// What iamflow's own OAuth client changes in a source (a temporary grant,
// an operator using iamflow's client) is a real change and is replicated;
// only the replicator's own writes are echoes.
func TestChangesByIamflowsClientAreReplicated(t *testing.T) {
	cfg := config(link("hub", "src", "tgt"))
	p := newPipeline(t, cfg, pipelineOpts{})
	src, tgt := p.sites["src"], p.sites["tgt"]
	g := src.createGroup(t, "OCI-Temp-Admins", "")
	u := src.createUser(t, "dev", "Dev D")
	p.settled()
	p.converged("src", "tgt", 10*time.Second)

	// The grant: iamflow's own client adds the member in the source.
	if _, err := src.client.AddMembers(context.Background(), g, u); err != nil {
		t.Fatal(err)
	}
	p.settled()
	waitMembers(t, tgt, "OCI-Temp-Admins", "dev")
	// The revocation, by the same client.
	if _, err := src.client.RemoveMembers(context.Background(), g, u); err != nil {
		t.Fatal(err)
	}
	p.settled()
	waitMembers(t, tgt, "OCI-Temp-Admins") // none after the revocation
}

// A plan made from a read older than a change applied since is refused: a
// group reconcile that read a member before the member was deleted (and
// retired in the target by its own reconcile) does not create it again.
func TestStalePlanIsNotApplied(t *testing.T) {
	l := link("hub", "src", "tgt")
	l.Delete.Users = planner.PolicyDelete
	p := driven(t, l)
	src, tgt := p.sites["src"], p.sites["tgt"]
	d := p.svc.direction("src", "tgt")
	ctx := context.Background()
	g := src.createGroup(t, "ops", "")
	u := src.createUser(t, "late", "Late L")
	src.add(t, g, u)

	// The group's reconcile reads (the user is a member) and plans ...
	ls, lctx := d.fences.set(ctx)
	if _, err := ls.take(lctx, d.scope(planner.KindGroup).key(g), primaryWait, time.Time{}); err != nil {
		t.Fatal(err)
	}
	readAt := d.now()
	plan, err := d.reconcileGroup(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(plan.Kinds(), planner.ActCreateUser) {
		t.Fatalf("plan %v: want a create_user", plan.Kinds())
	}
	// ... the user is deleted in the source and its own reconcile runs ...
	if _, err := src.human.DeleteUser(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	mustReconcile(t, d, planner.KindUser, u, "test")
	// ... and only then would the group's old plan be applied.
	_, err = d.execute(lctx, plan, cause{eventID: "test"}, 0, ls, readAt)
	ls.release(ctx, time.Time{})
	if !errors.Is(err, errStale) {
		t.Fatalf("old plan: %v, want errStale", err)
	}
	if _, ok := tgt.emu.UserByName("late"); ok {
		t.Fatal("the deleted user was created in the target")
	}
	// Planned again from a fresh read, the group gets its copy, empty.
	mustReconcile(t, d, planner.KindGroup, g, "test")
	if _, ok := tgt.emu.UserByName("late"); ok {
		t.Fatal("the deleted user was created in the target")
	}
	if got := membersOf(t, tgt, "ops"); len(got) != 0 {
		t.Fatalf("target ops members %v, want none", got)
	}
}

// A full reconcile does not apply what it listed to an object that its own
// event reconciled from a newer read meanwhile.
func TestFullReconcileSkipsObjectsReconciledSince(t *testing.T) {
	_, src, tgt, d := drivenHub(t)
	ctx := context.Background()
	u := src.createUser(t, "rene", "Old Name")
	mustReconcile(t, d, planner.KindUser, u, "test")
	// The full reconcile listed at t0; its plan for the user is old ...
	t0 := d.now()
	src.patchUser(t, u, replace("displayName", "New Name"))
	mustReconcile(t, d, planner.KindUser, u, "test")
	stalePlan := d.rules.PlanUser(d.target, planner.UserInput{Source: &planner.UserState{ID: u, UserName: "rene", DisplayName: "Old Name", Active: true},
		SourceComplete: true, Mapped: mustUser(t, tgt, "rene"), Mapping: mustMapping(t, d, u)})
	if len(stalePlan.Writes()) == 0 {
		t.Fatal("the stale plan writes nothing; the test proves nothing")
	}
	var buf auditBuf
	_, stale, err := d.applyListed(ctx, stalePlan, cause{reconcile: "reconcile"}, &buf, t0)
	if err != nil || !stale {
		t.Fatalf("applyListed: stale %v, %v; want stale", stale, err)
	}
	if got := mustUser(t, tgt, "rene").DisplayName; got != "New Name" {
		t.Fatalf("target displayName %q: the stale plan reverted the rename", got)
	}
}

func mustUser(t *testing.T, s *site, name string) *planner.UserState {
	t.Helper()
	u, ok := s.emu.UserByName(name)
	if !ok {
		t.Fatalf("no user %s in %s", name, s.name)
	}
	st, err := readUser(context.Background(), s.client, u.ID)
	if err != nil || st == nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return st
}

func mustMapping(t *testing.T, d *direction, sourceID string) *planner.Mapping {
	t.Helper()
	mp, found, err := d.ids.Get(context.Background(), d.scope(planner.KindUser), sourceID)
	if err != nil || !found {
		t.Fatalf("mapping of %s: found %v, %v", sourceID, found, err)
	}
	return &mp
}

// driven is a pipeline of link l with no scheduled full reconcile, built
// but not run: the test drives the reconciles itself.
func driven(t *testing.T, l planner.Link) *pipeline {
	t.Helper()
	cfg := config(l)
	return newPipeline(t, cfg, pipelineOpts{noRun: true})
}

// drivenHub is driven over the link "hub" from src to tgt: the pipeline,
// both sites and the direction between them.
func drivenHub(t *testing.T) (p *pipeline, src, tgt *site, d *direction) {
	t.Helper()
	p = driven(t, link("hub", "src", "tgt"))
	return p, p.sites["src"], p.sites["tgt"], p.svc.direction("src", "tgt")
}

// failMappings makes d's next n id-map writes fail, and bounds its
// bookkeeping to 300 ms so a write that keeps failing gives up quickly.
func failMappings(d *direction, n int32) *failingPuts {
	fp := &failingPuts{KeyValue: d.ids.kv}
	fp.n.Store(n)
	d.ids.kv = fp
	d.bookkeepingFor = 300 * time.Millisecond
	return fp
}

// unmappedCopy creates a user in src and copies it to d's target while
// every id-map write fails, so the copy has no mapping; then the writes
// work again. It returns the source user's id.
func unmappedCopy(t *testing.T, d *direction, src *site, name, display string) string {
	t.Helper()
	fp := failMappings(d, 1000)
	u := src.createUser(t, name, display)
	if _, err := d.reconcileOne(context.Background(), planner.KindUser, u, cause{eventID: "create"}); err == nil {
		t.Fatal("the mapping's write did not fail; the test proves nothing")
	}
	fp.n.Store(0)
	return u
}

// failingPuts is the id map's bucket with its next n writes failing, as
// when JetStream elects a new leader for it.
type failingPuts struct {
	jetstream.KeyValue
	n atomic.Int32
}

func (f *failingPuts) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if f.n.Add(-1) >= 0 {
		return 0, errors.New("nats: no response from stream")
	}
	return f.KeyValue.Put(ctx, key, value)
}

// A create whose write is made but whose id mapping cannot be stored is
// audited as applied (the change happened), and retried: the retry adopts
// the copy the create made, and the one change in the target has exactly
// one record that says it was done.
func TestCreateWhoseMappingFailsIsAuditedOnce(t *testing.T) {
	p, src, tgt, d := drivenHub(t)
	ctx := context.Background()
	fp := failMappings(d, 1000)
	u := src.createUser(t, "mira", "Mira M")

	_, err := d.reconcileOne(ctx, planner.KindUser, u, cause{eventID: "first"})
	var written *writtenError
	if !errors.As(err, &written) {
		t.Fatalf("first attempt: %v, want a writtenError (the user is created, the mapping not stored)", err)
	}
	fp.n.Store(0)
	if _, err := d.reconcileOne(ctx, planner.KindUser, u, cause{eventID: "retry"}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	copyID := mustUser(t, tgt, "mira").ID
	if got := mustMapping(t, d, u).TargetID; got != copyID {
		t.Fatalf("mapping %s, want the copy %s", got, copyID)
	}
	var creates []string
	for _, r := range auditRecords(t, p.bus) {
		if r.GetResource().GetId() == copyID && r.GetAction() == string(planner.ActCreateUser) {
			creates = append(creates, r.GetOutcome())
		}
	}
	if !slices.Equal(creates, []string{"applied"}) {
		t.Fatalf("create_user records of the copy: %v, want exactly one applied", creates)
	}
}

// A copy whose mapping was never stored, whose source is renamed before
// the retry, is found by the source id it carries and adopted, not
// created a second time under the new name (seen in the cluster proof).
func TestCopyWithoutMappingIsFoundAfterARename(t *testing.T) {
	_, src, tgt, d := drivenHub(t)
	ctx := context.Background()
	u := unmappedCopy(t, d, src, "nora", "Nora N")
	src.patchUser(t, u, replace("userName", "nora-r1"))
	plan, err := d.reconcileOne(ctx, planner.KindUser, u, cause{eventID: "retry"})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	t.Logf("the retry's plan: %v", plan.Kinds())
	users := tgt.emu.Users()
	if len(users) != 1 {
		t.Fatalf("target holds %d users, want 1 (the first copy, adopted)", len(users))
	}
	if got := mustMapping(t, d, u).TargetID; got != users[0].ID {
		t.Fatalf("mapped to %s, want the first copy %s", got, users[0].ID)
	}
}

// A mapping write that fails for a moment (a JetStream leader election) is
// retried within the bookkeeping's time: the create is mapped at once.
func TestMappingWriteIsRetried(t *testing.T) {
	_, src, _, d := drivenHub(t)
	fp := &failingPuts{KeyValue: d.ids.kv}
	fp.n.Store(2) // within the bookkeeping's ten seconds: retried
	d.ids.kv = fp
	u := src.createUser(t, "otto", "Otto O")
	if _, err := d.reconcileOne(context.Background(), planner.KindUser, u, cause{eventID: "only"}); err != nil {
		t.Fatalf("reconcile: %v (two failed mapping writes were not retried)", err)
	}
	mustMapping(t, d, u)
}

// A source object deleted while its copy has no mapping (the mapping's
// writes all failed) is still retired: the copy is found by the source id
// it carries.
func TestCopyWithoutMappingIsRetiredWhenTheSourceGoes(t *testing.T) {
	_, src, tgt, d := drivenHub(t)
	ctx := context.Background()
	u := unmappedCopy(t, d, src, "pia", "Pia P")
	if _, err := src.human.DeleteUser(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := d.reconcileOne(ctx, planner.KindUser, u, cause{eventID: "delete"}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if c, ok := tgt.emu.UserByName("pia"); ok && c.Active {
		t.Fatal("the copy is still active after its source was deleted")
	}
}

// A late delete of a source user whose copy a re-created user of the same
// name has adopted since does not take the copy back by its externalId
// (the old source id): the copy is the new user's.
func TestLateDeleteDoesNotRecoverAnAdoptedCopy(t *testing.T) {
	_, src, tgt, d := drivenHub(t)
	ctx := context.Background()
	old := src.createUser(t, "rex", "Rex R")
	mustReconcile(t, d, planner.KindUser, old, "create")
	if _, err := src.human.DeleteUser(ctx, old, ""); err != nil {
		t.Fatal(err)
	}
	mustReconcile(t, d, planner.KindUser, old, "delete")
	again := src.createUser(t, "rex", "Rex R")
	mustReconcile(t, d, planner.KindUser, again, "again")
	if c, ok := tgt.emu.UserByName("rex"); !ok || !c.Active {
		t.Fatalf("the re-created user's copy: %v %v, want active", c.Active, ok)
	}
	// The old delete, delivered again late.
	if _, err := d.reconcileOne(ctx, planner.KindUser, old, cause{eventID: "delete, late"}); err != nil {
		t.Fatal(err)
	}
	if c, ok := tgt.emu.UserByName("rex"); !ok || !c.Active {
		t.Fatal("a late delete of the old user deactivated the copy the new one adopted")
	}
}

// mustReconcile reconciles one object of d's source as an event with
// eventID would, failing the test on an error.
func mustReconcile(t *testing.T, d *direction, k planner.Kind, id, eventID string) {
	t.Helper()
	if _, err := d.reconcileOne(context.Background(), k, id, cause{eventID: eventID}); err != nil {
		t.Fatal(err)
	}
}

// A mapping recovered from a copy's externalId is stored when its plan is
// applied, under the copy's lease, not when it is read: between the two, a
// user re-created under the same name may adopt the copy, and then the
// copy is the new user's. (Stored at the read, the recovered mapping took
// the copy back from the new user and the late event deactivated it: the
// property test, seed 1796602922548061388.)
func TestRecoveredMappingIsStoredUnderTheCopysLease(t *testing.T) {
	_, src, tgt, d := drivenHub(t)
	ctx := context.Background()
	users := d.scope(planner.KindUser)
	old := unmappedCopy(t, d, src, "sam", "Sam S")
	if _, err := src.human.DeleteUser(ctx, old, ""); err != nil {
		t.Fatal(err)
	}
	// The deleted user's late event reads, and plans to retire its copy.
	late, err := d.reconcileUser(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if late.Recovered == nil || late.Deletions() == 0 {
		t.Fatalf("the late event's plan: %v (recovered %v), want the copy's retirement on a recovered mapping", late.Kinds(), late.Recovered)
	}
	if _, found, err := d.ids.Get(ctx, users, old); err != nil || found {
		t.Fatalf("the read stored the recovered mapping (found %v, %v): it may only be stored under the copy's lease", found, err)
	}
	// Meanwhile the user is re-created and adopts the copy.
	again := src.createUser(t, "sam", "Sam S")
	mustReconcile(t, d, planner.KindUser, again, "again")
	copyID := mustMapping(t, d, again).TargetID
	// The late plan reaches its leases (as if its read were fresh).
	ls, lctx := d.fences.set(ctx)
	_, err = d.execute(lctx, late, cause{eventID: "late"}, 0, ls, d.now())
	ls.release(ctx, time.Time{})
	if !errors.Is(err, errStale) {
		t.Errorf("the late plan: %v, want it refused as stale", err)
	}
	if c, ok := tgt.emu.UserByName("sam"); !ok || !c.Active || c.ID != copyID {
		t.Fatalf("the re-created user's copy: %s active %v (found %v), want %s active", c.ID, c.Active, ok, copyID)
	}
	if got := mustMapping(t, d, again).TargetID; got != copyID {
		t.Errorf("the re-created user maps to %s, want %s", got, copyID)
	}
	// Retried, the late event finds nothing of its own to retire.
	mustReconcile(t, d, planner.KindUser, old, "late, retried")
	if c, ok := tgt.emu.UserByName("sam"); !ok || !c.Active {
		t.Fatal("the retried late event deactivated the re-created user's copy")
	}
	if _, found, err := d.ids.Get(ctx, users, old); err != nil || found {
		t.Errorf("the deleted user's mapping: found %v (%v), want none", found, err)
	}
}

// A member retired after an event read its group (deleted in the source,
// its copy deactivated and forgotten) is not added by the group's plan: the
// member's mapping changed, so the plan is stale, and read again it adds
// no one. (The SIGKILL proof once left three deleted users' inactive
// copies in a target group this way, where no later reconcile counted
// them as iamflow's to remove.)
func TestMemberRetiredAfterTheGroupsReadIsNotAdded(t *testing.T) {
	_, src, tgt, d := drivenHub(t)
	ctx := context.Background()
	u := src.createUser(t, "tom", "Tom T")
	g := src.createGroup(t, "crew", "")
	mustReconcile(t, d, planner.KindUser, u, "user")
	mustReconcile(t, d, planner.KindGroup, g, "group")
	src.add(t, g, u)
	readAt := d.now()
	plan, err := d.reconcileGroup(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(plan.Kinds(), planner.ActAddMember) {
		t.Fatalf("the group's plan %v adds no member; the test proves nothing", plan.Kinds())
	}
	// The member is deleted in the source and retired before the group's
	// plan reaches its leases.
	if _, err := src.human.DeleteUser(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	mustReconcile(t, d, planner.KindUser, u, "user deleted")
	ls, lctx := d.fences.set(ctx)
	_, err = d.execute(lctx, plan, cause{eventID: "group, late"}, 0, ls, readAt)
	ls.release(ctx, time.Time{})
	if !errors.Is(err, errStale) {
		t.Errorf("the group's plan: %v, want it refused as stale", err)
	}
	mustReconcile(t, d, planner.KindGroup, g, "group, retried")
	if c, ok := tgt.emu.GroupByName("crew"); !ok || c.Members != 0 {
		t.Fatalf("the target group: %d members (found %v), want none: the retired user's copy was added", c.Members, ok)
	}
}

// A retired copy that got into a group all the same (a plan that checked
// the member's mapping just before the retirement forgot it, and added it
// just after the retirement looked for the copy's groups) is iamflow's by
// its record: the group's next reconcile, by event or in full, takes it
// out, though its mapping is gone.
func TestRetiredCopyInAGroupIsTakenOut(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(map[bool]string{false: "event", true: "full reconcile"}[full], func(t *testing.T) {
			p, src, tgt, d := drivenHub(t)
			ctx := context.Background()
			u := src.createUser(t, "tom", "Tom T")
			g := src.createGroup(t, "crew", "")
			mustReconcile(t, d, planner.KindUser, u, "user")
			mustReconcile(t, d, planner.KindGroup, g, "group")
			mp, found, err := d.ids.Get(ctx, d.scope(planner.KindUser), u)
			if err != nil || !found {
				t.Fatalf("tom's mapping: %v %v", found, err)
			}
			if _, err := src.human.DeleteUser(ctx, u, ""); err != nil {
				t.Fatal(err)
			}
			mustReconcile(t, d, planner.KindUser, u, "user deleted")
			if c, ok := tgt.emu.UserByName("tom"); !ok || c.Active {
				t.Fatalf("tom's copy: found %v, active %v; want it retired (deactivated)", ok, c.Active)
			}
			// The late plan's add, as it reaches the target.
			copyOfG, _ := tgt.emu.GroupByName("crew")
			tgt.add(t, copyOfG.ID, mp.TargetID)
			if full {
				p.reconcileLink("hub", false)
			} else {
				src.patchGroup(t, g, replace(identitydomain.SchemaGroupExtension+":description", "the next change"))
				mustReconcile(t, d, planner.KindGroup, g, "group changed")
			}
			if c, _ := tgt.emu.GroupByName("crew"); c.Members != 0 {
				t.Errorf("the target group holds %d members: the retired copy was kept as not iamflow's", c.Members)
			}
		})
	}
}

// A plan that writes an object through its mapping is refused when the
// mapping changed after the plan's read (here it was forgotten, as a
// retirement forgets it): the copy is not the plan's to overwrite any more.
func TestPlanOnAChangedMappingIsStale(t *testing.T) {
	_, src, tgt, d := drivenHub(t)
	ctx := context.Background()
	u := src.createUser(t, "una", "Una U")
	mustReconcile(t, d, planner.KindUser, u, "user")
	src.patchUser(t, u, replace("displayName", "Una Renamed"))
	readAt := d.now()
	plan, err := d.reconcileUser(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(plan.Kinds(), planner.ActUpdateUser) {
		t.Fatalf("the plan %v updates nothing; the test proves nothing", plan.Kinds())
	}
	if err := d.ids.Delete(ctx, d.scope(planner.KindUser), u); err != nil {
		t.Fatal(err)
	}
	ls, lctx := d.fences.set(ctx)
	_, err = d.execute(lctx, plan, cause{eventID: "user, late"}, 0, ls, readAt)
	ls.release(ctx, time.Time{})
	if !errors.Is(err, errStale) {
		t.Errorf("the plan: %v, want it refused as stale", err)
	}
	if c, _ := tgt.emu.UserByName("una"); c.DisplayName != "Una U" {
		t.Errorf("the copy's displayName is %q: a plan on a forgotten mapping overwrote it", c.DisplayName)
	}
}
