package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

func anyPtr(v any) *any { return &v }

func replace(path string, v any) identitydomains.Operations {
	return identitydomains.Operations{Op: identitydomains.OperationsOpReplace, Path: &path, Value: anyPtr(v)}
}

// The whole pipeline: the source changes, its OCI events go through ingest
// and JetStream, and the target converges, change after change.
func TestEndToEnd(t *testing.T) {
	l := link("hub", "src", "tgt")
	l.Delete.Users = planner.PolicyDelete
	p := newPipeline(t, config(l), pipelineOpts{})
	src, tgt := p.sites["src"], p.sites["tgt"]
	step := func(what string) {
		t.Helper()
		start := time.Now()
		p.converged("src", "tgt", 20*time.Second)
		t.Logf("%-34s converged in %v", what, time.Since(start).Round(time.Millisecond))
	}

	// A group is created before anyone is in it, then renamed and described.
	ops := src.createGroup(t, "ops", "")
	step("group created")
	src.patchGroup(t, ops, replace("displayName", "Operations"))
	step("group renamed")
	src.patchGroup(t, ops, replace(identitydomain.SchemaGroupExtension+":description", "on call"))
	step("group described")

	// Users appear in the target with their first membership.
	alice := src.createUser(t, "alice", "Alice Liddell")
	bob := src.createUser(t, "bob", "Bob Builder")
	src.add(t, ops, alice, bob)
	step("members added (users created)")
	src.patchUser(t, alice, replace("displayName", "Alice L."))
	step("user updated")
	src.remove(t, ops, bob)
	step("member removed")
	src.patchUser(t, bob, replace("active", false))
	step("user deactivated")
	if _, err := src.human.DeleteUser(context.Background(), bob, ""); err != nil {
		t.Fatal(err)
	}
	step("user deleted (delete policy)")
	if _, err := src.human.DeleteGroup(context.Background(), ops, ""); err != nil {
		t.Fatal(err)
	}
	step("group deleted")
	p.settled()

	// Everything iamflow did is in the audit trail, tied to its event.
	kinds := map[string]int{}
	for _, r := range auditRecords(t, p.bus) {
		if r.Outcome == "applied" {
			kinds[r.Action]++
			if r.EventId == "" || r.Link != "hub" || r.Target != "tgt" {
				t.Errorf("record without event, link or target: %v", r)
			}
		}
	}
	for _, k := range []planner.ActionKind{planner.ActCreateGroup, planner.ActUpdateGroup, planner.ActCreateUser, planner.ActAddMember, planner.ActUpdateUser,
		planner.ActRemoveMember, planner.ActDeleteUser, planner.ActDeleteGroup} {
		if kinds[string(k)] == 0 {
			t.Errorf("no applied %s in the audit trail: %v", k, kinds)
		}
	}
	// Reconciling now finds nothing to do and writes nothing.
	p.reconcileWritesNothing("hub", tgt)
}

// Duplicated, reordered and lost events: duplicates and order do no harm,
// and the full reconcile repairs what lost events left undone.
func TestLostDuplicatedAndReorderedEvents(t *testing.T) {
	p := newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{})
	src, tgt := p.sites["src"], p.sites["tgt"]
	var (
		mu       sync.Mutex
		captured [][]byte
	)
	src.emu.OnEvent(func(b []byte) {
		mu.Lock()
		captured = append(captured, append([]byte(nil), b...))
		mu.Unlock()
	})

	// 1. Every event delivered twice or more, and in reverse order: the
	// memberships arrive before the groups and users they name.
	if err := src.emu.SetFaults(emu.Faults{DropEvents: 1}); err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, n := range []string{"u1", "u2", "u3", "u4"} {
		users = append(users, src.createUser(t, n, "User "+n))
	}
	g1 := src.createGroup(t, "g1", "group one")
	g2 := src.createGroup(t, "g2", "")
	src.add(t, g1, users...)
	src.add(t, g2, users[:2]...)
	src.remove(t, g1, users[3])
	src.patchGroup(t, g2, replace("displayName", "g2-renamed"))
	mu.Lock()
	events := slices.Clone(captured)
	mu.Unlock()
	slices.Reverse(events)
	for _, e := range append(events, events...) {
		p.post(e)
	}
	p.settled()
	p.converged("src", "tgt", 10*time.Second)
	t.Logf("%d events delivered twice in reverse order: converged", len(events))

	// 2. Events lost: the target falls behind until the full reconcile.
	src.patchGroup(t, g1, replace(identitydomain.SchemaGroupExtension+":description", "changed while events were lost"))
	src.remove(t, g2, users[0])
	g3 := src.createGroup(t, "g3", "")
	src.add(t, g3, users[3])
	p.settled()
	if d := snap(src.emu).diff(snap(tgt.emu)); d == "" {
		t.Fatal("the target converged without the lost events")
	}
	reps, err := p.svc.ReconcileLink(context.Background(), "hub", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full reconcile repaired: %v", reps[0].Actions)
	p.converged("src", "tgt", 5*time.Second)
	// No object was created twice.
	if n := len(tgt.emu.Users()); n != len(users) {
		t.Errorf("target has %d users, want %d", n, len(users))
	}
	if n := len(tgt.emu.Groups()); n != 3 {
		t.Errorf("target has %d groups, want 3", n)
	}
}

// Two targets, one of them down for a while: the other keeps up, and the
// failed one catches up when it is back.
func TestTargetOutage(t *testing.T) {
	p := newPipeline(t, config(link("fan", "src", "a", "b")), pipelineOpts{})
	src, b := p.sites["src"], p.sites["b"]
	if err := b.emu.SetFaults(emu.Faults{Outage: true}); err != nil {
		t.Fatal(err)
	}
	g := src.createGroup(t, "team", "")
	for _, n := range []string{"x", "y", "z"} {
		src.add(t, g, src.createUser(t, n, "User "+n))
	}
	start := time.Now()
	p.converged("src", "a", 20*time.Second)
	t.Logf("a converged in %v while b is down", time.Since(start).Round(time.Millisecond))
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if b.client.BreakerState() != identitydomain.BreakerOpen {
			return errNotYet
		}
		return nil
	})
	if err := b.emu.SetFaults(emu.Faults{}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	p.converged("src", "b", 30*time.Second)
	t.Logf("b caught up %v after the outage ended", time.Since(start).Round(time.Millisecond))
	p.settled()
	if n := len(b.emu.Users()); n != 3 {
		t.Errorf("b has %d users, want 3", n)
	}
}

// A bidirectional link: changes on either side settle on both, and
// iamflow's own changes are not echoed back.
func TestBidirectionalNoEcho(t *testing.T) {
	l := link("pair", "east", "west")
	l.Bidirectional = true
	p := newPipeline(t, config(l), pipelineOpts{})
	east, west := p.sites["east"], p.sites["west"]

	g := east.createGroup(t, "shared", "from east")
	east.add(t, g, east.createUser(t, "eve", "Eve East"))
	p.settled()
	p.converged("east", "west", 10*time.Second)
	wg, ok := west.emu.GroupByName("shared")
	if !ok {
		t.Fatal("no copy in west")
	}
	west.add(t, wg.ID, west.createUser(t, "will", "Will West"))
	p.settled()
	p.converged("west", "east", 10*time.Second)
	p.converged("east", "west", 10*time.Second)

	// Quiet now: nothing more is written on either side.
	eastW, westW := writes(east.emu), writes(west.emu)
	p.settled()
	if writes(east.emu) != eastW || writes(west.emu) != westW {
		t.Errorf("writes after settling: east %d -> %d, west %d -> %d", eastW, writes(east.emu), westW, writes(west.emu))
	}
	st := p.svc.Status(context.Background())
	if st.Counters[counterEchoes] == 0 {
		t.Errorf("no echo recognised: %v", st.Counters)
	}
	t.Logf("counters: %v; east writes %d, west writes %d", st.Counters, eastW, westW)
	// Each side has one copy of each user.
	if len(east.emu.Users()) != 2 || len(west.emu.Users()) != 2 {
		t.Errorf("users: east %d, west %d, want 2 and 2", len(east.emu.Users()), len(west.emu.Users()))
	}
}

var errNotYet = errors.New("not yet")

// Groups and users outside the link's scope cost no call to the target.
func TestOutOfScopeCostsNothingInTheTarget(t *testing.T) {
	l := link("hub", "src", "tgt")
	l.Groups.Include = []string{"oci-.*"}
	l.Users.Exclude = []string{"svc-.*"}
	p := newPipeline(t, config(l), pipelineOpts{})
	src, tgt := p.sites["src"], p.sites["tgt"]
	p.settled()
	before := calls(tgt.emu)
	g := src.createGroup(t, "private", "")
	src.add(t, g, src.createUser(t, "svc-robot", "Robot"))
	p.settled()
	if n := calls(tgt.emu) - before; n != 0 {
		t.Errorf("out-of-scope changes made %d calls to the target", n)
	}
	// In scope: the group comes, its out-of-scope member does not.
	og := src.createGroup(t, "oci-admins", "")
	src.add(t, og, src.createUser(t, "ann", "Ann"))
	robot, _ := src.emu.UserByName("svc-robot")
	src.add(t, og, robot.ID)
	p.settled()
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		g, ok := tgt.emu.GroupByName("oci-admins")
		if !ok {
			return errors.New("oci-admins not replicated")
		}
		ms, _ := tgt.emu.Members(g.ID)
		if len(ms) != 1 || ms[0].UserName != "ann" {
			return fmt.Errorf("members %v, want ann only", ms)
		}
		return nil
	})
	if _, ok := tgt.emu.GroupByName("private"); ok {
		t.Error("out-of-scope group replicated")
	}
	if _, ok := tgt.emu.UserByName("svc-robot"); ok {
		t.Error("out-of-scope user replicated")
	}
}
