package replicator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/scimtest/external"
	"github.com/iamflow/iamflow/internal/scimtest/misbehave"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// snapClient reads a domain's content through a client, for servers that
// are not our emulator.
func snapClient(t testing.TB, c *identitydomain.Client) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{users: map[string]string{}, groups: map[string]string{}, member: map[string][]string{}}
	names := map[string]string{}
	for u, err := range c.Users(ctx, identitydomain.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		st := planner.FromSDKUser(u)
		s.users[st.UserName] = fmt.Sprintf("%s|%v", st.DisplayName, st.Active)
		names[st.ID] = st.UserName
	}
	var ids []string
	for g, err := range c.Groups(ctx, identitydomain.ListOptions{Attributes: []string{"id"}}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *g.Id)
	}
	for _, id := range ids {
		g, err := readGroup(ctx, c, id, true)
		if err != nil || g == nil {
			t.Fatalf("read group %s: %v", id, err)
		}
		s.groups[g.DisplayName] = g.Description
		ms := []string{}
		for _, m := range g.Members {
			n := names[m]
			if n == "" {
				n = "(no user " + m + ")"
			}
			ms = append(ms, n)
		}
		slices.Sort(ms)
		s.member[g.DisplayName] = ms
	}
	return s
}

// withoutDescriptions drops what a target without Oracle's group extension
// cannot hold.
func withoutDescriptions(s snapshot) snapshot {
	for k := range s.groups {
		s.groups[k] = ""
	}
	return s
}

// A SCIM 2.0 server nobody here wrote (SCIMMY, from npm, in its own node
// process) as the target: users, groups and memberships replicate into it
// on the event path, a deleted user leaves its groups although the server
// does not cascade deletes, the group extension it does not declare is
// never sent, and a full reconcile then finds nothing to do.
func TestInteropExternalTarget(t *testing.T) {
	l := link("hub", "src", "ext")
	l.Delete.Users = planner.PolicyDelete
	cfg := config(l)
	p := newPipeline(t, cfg, pipelineOpts{sites: map[string]func(testing.TB) *site{"ext": externalSite}})
	src, ext := p.sites["src"], p.sites["ext"]
	ops := src.createGroup(t, "ops", "on call")
	dev := src.createGroup(t, "dev", "")
	var users []string
	for i := range 12 {
		users = append(users, src.createUser(t, fmt.Sprintf("user%02d", i), fmt.Sprintf("User %02d", i)))
	}
	src.add(t, ops, users[:8]...)
	src.add(t, dev, users[5:]...)
	src.patchUser(t, users[0], replace("displayName", "Renamed"))
	p.settled()
	converge := func(what string) {
		t.Helper()
		testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			if d := withoutDescriptions(snap(src.emu)).diff(snapClient(t, ext.client)); d != "" {
				return fmt.Errorf("%s: ext differs from src:\n%s", what, d)
			}
			return nil
		})
	}
	converge("replicated")

	// Deleted in the source: gone from the external server and its groups,
	// which it does not do by itself.
	for _, u := range users[6:8] {
		if _, err := src.human.DeleteUser(context.Background(), u, ""); err != nil {
			t.Fatal(err)
		}
	}
	src.remove(t, dev, users[11])
	p.settled()
	converge("after deletes")

	// The description is not declared by the server: not sent, not planned.
	src.patchGroup(t, ops, replace(identitydomain.SchemaGroupExtension+":description", "changed"))
	p.settled()
	expectInSync(t, p, "hub")
	ls, err := p.svc.linkStatus(context.Background(), "hub")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ls[0].Directions[0].Unsupported, func(u *iamflowv1.UnsupportedAttribute) bool {
		return u.Resource == planner.ResourceGroup && strings.HasSuffix(u.Path, ":description")
	}) {
		t.Errorf("status does not list the undeclared group description: %v", ls[0].Directions[0].Unsupported)
	}
	if st := p.svc.Status(context.Background()); st.Consumers[0].DeadLettered != 0 {
		t.Errorf("%d dead letters", st.Consumers[0].DeadLettered)
	}
}

// The external server as the source (it sends no events: the full
// reconcile reads it). Its GET listing ignores startIndex, so the client
// reads it another way or fails the read; either way the target ends equal
// or untouched, never with users deleted for a short read.
func TestInteropExternalSource(t *testing.T) {
	l := link("back", "ext", "tgt")
	cfg := config(l)
	p := newPipeline(t, cfg, pipelineOpts{sites: map[string]func(testing.TB) *site{"ext": externalSite}})
	ext, tgt := p.sites["ext"], p.sites["tgt"]
	ctx := context.Background()
	g, _, err := ext.client.CreateGroup(ctx, identitydomains.Group{DisplayName: sp("platform")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 29 {
		name := fmt.Sprintf("ext%02d@example.com", i)
		u, _, err := ext.client.CreateUser(ctx, identitydomains.User{UserName: sp(name), DisplayName: sp("Ext " + name),
			Name: &identitydomains.UserName{GivenName: sp("Ext"), FamilyName: sp(fmt.Sprint(i))}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *u.Id)
	}
	if _, err := ext.client.AddMembers(ctx, *g.Id, ids[:20]...); err != nil {
		t.Fatal(err)
	}
	p.reconcileLink("back", false)
	if d := snapClient(t, ext.client).diff(snap(tgt.emu)); d != "" {
		t.Fatalf("tgt differs from ext after the full reconcile:\n%s", d)
	}
	// Deleted in the external source: deactivated in the target and out of its group.
	if _, err := ext.client.DeleteUser(ctx, ids[3], ""); err != nil {
		t.Fatal(err)
	}
	p.reconcileLink("back", false)
	u, ok := tgt.emu.UserByName("ext03@example.com")
	if !ok || u.Active {
		t.Fatalf("the deleted user in the target: exists %v, %+v", ok, u)
	}
	if got := membersOf(t, tgt, "platform"); slices.Contains(got, "ext03@example.com") || len(got) != 19 {
		t.Fatalf("platform members %v", got)
	}
	expectInSync(t, p, "back")
}

// externalSite starts the external SCIM server as a site.
func externalSite(t testing.TB) *site {
	srv := external.Start(t)
	cfg := identitydomain.DefaultConfig()
	cfg.URL, cfg.SCIMPath = srv.URL, srv.Path
	cfg.Auth, cfg.StaticToken = identitydomain.AuthStatic, srv.TokenRef(t)
	cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 4, BaseDelay: 20 * time.Millisecond, MaxDelay: 2 * time.Second}
	c, err := identitydomain.New(context.Background(), "ext", cfg, identitydomain.WithLogger(pipelinetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &site{name: "ext", client: c, human: c}
}

// Each fault seen in the field, behind a misbehaving double: the safety
// promise holds (nothing wrongly deleted, the other changes still made, the
// fault visible), with no dead letter.
func TestMisbehavingServers(t *testing.T) {
	t.Run("source ignores paging: the read fails, nothing is deleted", func(t *testing.T) {
		testSourcePagingFault(t, misbehave.Faults{IgnorePaging: true, MaxPageSize: 20}, "startIndex")
	})
	t.Run("source repeats a page: the read fails, nothing is deleted", func(t *testing.T) {
		testSourcePagingFault(t, misbehave.Faults{RepeatPage: true, MaxPageSize: 20}, "repeated")
	})
	t.Run("source GET ignores paging (the field report): read another way, in sync", func(t *testing.T) {
		p, src, tgt := pagingPipeline(t, misbehave.Faults{})
		src.double.SetFaults(misbehave.Faults{IgnoreQueryPaging: true, PageSize: 20})
		reps, err := p.svc.ReconcileLink(context.Background(), "hub", false)
		if err != nil {
			t.Fatal(err)
		}
		if d := snap(src.emu).diff(snap(tgt.emu)); d != "" || reps[0].SourceUsers != 29 {
			t.Fatalf("read %d source users; differs:\n%s", reps[0].SourceUsers, d)
		}
		if src.double.Count("paging") == 0 {
			t.Fatal("the fault never acted; the test proves nothing")
		}
	})
	t.Run("source omits totalResults: read to the end, in sync", func(t *testing.T) {
		p, src, tgt := pagingPipeline(t, misbehave.Faults{})
		src.double.SetFaults(misbehave.Faults{OmitTotalResults: true})
		p.reconcileLink("hub", false)
		if d := snap(src.emu).diff(snap(tgt.emu)); d != "" {
			t.Fatalf("differs:\n%s", d)
		}
	})
	t.Run("target drops the group extension: memberships still flow", func(t *testing.T) {
		f := misbehave.Faults{DropExtensions: []string{identitydomain.SchemaGroupExtension}}
		p := newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{faults: map[string]misbehave.Faults{"tgt": f}})
		src, tgt := p.sites["src"], p.sites["tgt"]
		g := src.createGroup(t, "ops", "on call")
		src.add(t, g, src.createUser(t, "ann", "Ann A"))
		p.settled()
		src.patchGroup(t, g, replace(identitydomain.SchemaGroupExtension+":description", "changed"))
		src.add(t, g, src.createUser(t, "bob", "Bob B"))
		p.settled()
		if got := membersOf(t, tgt, "ops"); !slices.Equal(got, []string{"ann", "bob"}) {
			t.Fatalf("ops members %v", got)
		}
		if n := tgt.double.Count("dropped") + tgt.double.Count("rejected"); n != 0 {
			t.Errorf("the undeclared extension was sent %d times", n)
		}
		expectInSync(t, p, "hub")
		expectUnsupported(t, p, planner.ResourceGroup, ":description", reasonNotDeclared)
	})
	t.Run("target refuses one attribute: the rest of the user and its memberships are written", func(t *testing.T) {
		f := misbehave.Faults{RejectAttribute: "name.givenName"}
		p := newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{faults: map[string]misbehave.Faults{"tgt": f}})
		src, tgt := p.sites["src"], p.sites["tgt"]
		g := src.createGroup(t, "ops", "")
		u := src.createUser(t, "cid", "Cid C")
		src.add(t, g, u)
		p.settled()
		if got := membersOf(t, tgt, "ops"); !slices.Equal(got, []string{"cid"}) {
			t.Fatalf("ops members %v", got)
		}
		tu, _ := tgt.emu.UserByName("cid")
		if tu.DisplayName != "Cid C" {
			t.Errorf("target user %+v: the other attributes were not written", tu)
		}
		refused := tgt.double.Count("rejected")
		src.patchUser(t, u, replace("displayName", "Cid Renamed"), replace("name.givenName", "Cidney"))
		p.settled()
		testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if tu, _ := tgt.emu.UserByName("cid"); tu.DisplayName != "Cid Renamed" {
				return fmt.Errorf("displayName %q", tu.DisplayName)
			}
			return nil
		})
		if n := tgt.double.Count("rejected"); n != refused {
			t.Errorf("the refused attribute was sent again (%d refusals, %d before)", n, refused)
		}
		expectInSync(t, p, "hub")
		expectUnsupported(t, p, planner.ResourceUser, "name.givenName", "invalidPath")
		var audited bool
		for _, r := range auditRecords(t, p.bus) {
			audited = audited || r.Outcome == "refused" && strings.Contains(r.Reason, "name.givenName")
		}
		if !audited {
			t.Error("no audit record of the refusal")
		}
		if st := p.svc.Status(context.Background()); st.Consumers[0].DeadLettered != 0 {
			t.Errorf("%d dead letters", st.Consumers[0].DeadLettered)
		}
	})
	t.Run("target does not cascade deletes: no member dangles", func(t *testing.T) {
		l := link("hub", "src", "tgt")
		l.Delete.Users = planner.PolicyDelete
		p := newPipeline(t, config(l), pipelineOpts{faults: map[string]misbehave.Faults{"tgt": {NoDeleteCascade: true}}})
		src, tgt := p.sites["src"], p.sites["tgt"]
		g := src.createGroup(t, "ops", "")
		u := src.createUser(t, "dan", "Dan D")
		src.add(t, g, u, src.createUser(t, "eve", "Eve E"))
		p.settled()
		if _, err := src.human.DeleteUser(context.Background(), u, ""); err != nil {
			t.Fatal(err)
		}
		p.settled()
		tg, _ := tgt.emu.GroupByName("ops")
		testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if _, ok := tgt.emu.UserByName("dan"); ok {
				return fmt.Errorf("dan still in the target")
			}
			if gh := tgt.double.Ghosts(tg.ID); len(gh) != 0 {
				return fmt.Errorf("dangling members %v", gh)
			}
			return nil
		})
		// A member deleted behind iamflow's back (by someone at the target)
		// dangles; the group's next reconcile removes it.
		eve, _ := tgt.emu.UserByName("eve")
		if _, err := tgt.client.DeleteUser(context.Background(), eve.ID, ""); err != nil {
			t.Fatal(err)
		}
		if gh := tgt.double.Ghosts(tg.ID); len(gh) != 1 {
			t.Fatalf("ghosts %v, want eve", gh)
		}
		reps, err := p.svc.ReconcileLink(context.Background(), "hub", false)
		if err != nil {
			t.Fatal(err)
		}
		if gh := tgt.double.Ghosts(tg.ID); len(gh) != 0 {
			t.Fatalf("the reconcile left dangling members %v: %v", gh, reps[0].Actions)
		}
	})
	t.Run("target answers members only when asked: memberships converge", func(t *testing.T) {
		p := newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{faults: map[string]misbehave.Faults{"tgt": {MembersOnlyOnRequest: true}}})
		src := p.sites["src"]
		g := src.createGroup(t, "ops", "")
		for _, n := range []string{"fay", "gus", "hal"} {
			src.add(t, g, src.createUser(t, n, "User "+n))
		}
		p.settled()
		p.converged("src", "tgt", 10*time.Second)
		src.remove(t, g, src.emuUser(t, "gus"))
		p.settled()
		p.converged("src", "tgt", 10*time.Second)
		expectInSync(t, p, "hub")
	})
}

// pagingPipeline replicates 29 users and a group through a double in front
// of the source, with faults off, and returns it converged.
func pagingPipeline(t *testing.T, f misbehave.Faults) (*pipeline, *site, *site) {
	t.Helper()
	p := newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{faults: map[string]misbehave.Faults{"src": f}})
	src, tgt := p.sites["src"], p.sites["tgt"]
	g := src.createGroup(t, "all", "")
	for i := range 29 {
		src.add(t, g, src.createUser(t, fmt.Sprintf("p%02d", i), fmt.Sprintf("P %02d", i)))
	}
	p.settled()
	p.converged("src", "tgt", 20*time.Second)
	return p, src, tgt
}

func testSourcePagingFault(t *testing.T, f misbehave.Faults, says string) {
	p, src, tgt := pagingPipeline(t, misbehave.Faults{})
	before := snap(tgt.emu)
	src.double.SetFaults(f)
	_, err := p.svc.ReconcileLink(context.Background(), "hub", false)
	if err == nil || !strings.Contains(err.Error(), string(identitydomain.KindInconsistentRead)) || !strings.Contains(err.Error(), says) {
		t.Fatalf("reconcile over a broken listing: %v; want an InconsistentRead naming %q", err, says)
	}
	if d := before.diff(snap(tgt.emu)); d != "" {
		t.Fatalf("the target changed after an inconsistent read:\n%s", d)
	}
	ls, _ := p.svc.linkStatus(context.Background(), "hub")
	if e := ls[0].Directions[0].LastError; !strings.Contains(e, string(identitydomain.KindInconsistentRead)) {
		t.Errorf("status last error %q does not name the fault", e)
	}
}

// expectInSync runs a dry-run reconcile and fails on any planned write.
func expectInSync(t *testing.T, p *pipeline, link string) {
	t.Helper()
	reps, err := p.svc.ReconcileLink(context.Background(), link, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		for _, a := range r.Planned {
			if a.Kind != string(planner.ActSkip) {
				t.Errorf("dry run: %s %s %q (%s)", a.Kind, a.Entity, a.Name, a.Reason)
			}
		}
	}
}

// expectUnsupported checks the link's status lists the attribute.
func expectUnsupported(t *testing.T, p *pipeline, resource, pathSuffix, reason string) {
	t.Helper()
	ls, err := p.svc.linkStatus(context.Background(), "hub")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ls[0].Directions[0].Unsupported {
		if u.Resource == resource && strings.HasSuffix(u.Path, pathSuffix) && strings.Contains(u.Reason, reason) {
			return
		}
	}
	t.Errorf("status does not list %s %s (%s): %v", resource, pathSuffix, reason, ls[0].Directions[0].Unsupported)
}

// emuUser returns the id of a user of an emulated site by userName.
func (s *site) emuUser(t testing.TB, name string) string {
	t.Helper()
	u, ok := s.emu.UserByName(name)
	if !ok {
		t.Fatalf("no user %s in %s", name, s.name)
	}
	return u.ID
}
