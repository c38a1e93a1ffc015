package replicator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// A dry run plans and changes nothing; the mass-deletion guard holds a
// large deletion until it is approved, and a rejected hold deletes nothing.
func TestDryRunAndMassDeletionGuard(t *testing.T) {
	l := link("hub", "src", "tgt")
	l.Guard = planner.GuardConfig{MaxDeletions: 5, MaxPercent: 50, Window: time.Hour}
	p := newPipeline(t, config(l), pipelineOpts{noRun: true})
	src, tgt := p.sites["src"], p.sites["tgt"]
	var groups []string
	for i := range 12 {
		g := src.createGroup(t, fmt.Sprintf("team-%02d", i), "")
		groups = append(groups, g)
		src.add(t, g, src.createUser(t, fmt.Sprintf("user%02d", i), "User X"))
	}

	// Dry run: the plan, and not one write.
	reps := p.reconcileLink("hub", true)
	r := reps[0]
	if !r.DryRun || r.Actions[string(planner.ActCreateUser)] != 12 || r.Actions[string(planner.ActCreateGroup)] != 12 || r.Actions[string(planner.ActAddMember)] != 12 {
		t.Fatalf("dry-run plan: %v", r.Actions)
	}
	if w := writes(tgt.emu); w != 0 {
		t.Fatalf("dry run wrote %d times", w)
	}
	for _, a := range r.Planned {
		if a.Kind == string(planner.ActAddMember) && a.MemberTargetId != plannedID {
			t.Errorf("dry-run add_member names member %q, want %q", a.MemberTargetId, plannedID)
		}
	}
	if n := fullyCovered(p, "src", "tgt"); n != 0 {
		t.Errorf("a dry run covers the events up to %d: they would be acknowledged undone", n)
	}
	// For real, then the source loses ten groups at once.
	p.reconcileLink("hub", false)
	p.converged("src", "tgt", 5*time.Second)
	clean := fullyCovered(p, "src", "tgt")
	if clean == 0 {
		t.Error("a clean full reconcile covers no event")
	}
	src.deleteGroups(t, groups[:10]...)
	reps = p.reconcileLink("hub", false)
	if reps[0].HeldDeletions != 10 {
		t.Fatalf("held %d deletions, want 10: %v", reps[0].HeldDeletions, reps[0].Actions)
	}
	if n := fullyCovered(p, "src", "tgt"); n != clean {
		t.Errorf("a reconcile that held deletions covers the events up to %d (the clean one before it %d): the deletions' events would be acknowledged undone", n, clean)
	}
	if n := len(tgt.emu.Groups()); n != 12 {
		t.Fatalf("target has %d groups while deletions are held, want 12", n)
	}
	holds := p.svc.holds(context.Background(), "hub")
	if len(holds) != 1 || len(holds[0].Actions) != 10 || !strings.Contains(holds[0].Reason, "max_deletions") {
		t.Fatalf("holds: %+v", holds)
	}
	// The held deletions survive a restart of the service (they are in KV).
	p.svc = p.newService()
	if got := p.svc.holds(context.Background(), "hub"); len(got) != 1 || got[0].ID != holds[0].ID {
		t.Fatalf("holds after restart: %+v", got)
	}
	ls, err := p.svc.linkStatus(context.Background(), "hub")
	if err != nil || ls[0].Directions[0].HeldDeletions != 10 {
		t.Fatalf("status: %v %v", ls, err)
	}
	// Approve through the API: the groups go.
	resp, err := p.svc.ApproveDeletions(context.Background(), &iamflowv1.ApproveDeletionsRequest{Id: holds[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Applied != 10 || len(resp.Failed) != 0 {
		t.Fatalf("approve: %v", resp)
	}
	p.converged("src", "tgt", 5*time.Second)

	// One more deletion within the window is held too, and rejected:
	// nothing is deleted.
	src.deleteGroups(t, groups[10])
	reps = p.reconcileLink("hub", false)
	if reps[0].HeldDeletions != 1 {
		t.Fatalf("one more deletion: held %d, want 1 (the window already counts 10): %v", reps[0].HeldDeletions, reps[0].Actions)
	}
	h := p.svc.holds(context.Background(), "hub")[0]
	if _, err := p.svc.RejectDeletions(context.Background(), &iamflowv1.RejectDeletionsRequest{Id: h.ID}); err != nil {
		t.Fatal(err)
	}
	if n := len(tgt.emu.Groups()); n != 2 {
		t.Errorf("after rejecting, target has %d groups, want 2", n)
	}
	// The audit trail has the held, applied and planned actions.
	acts, err := p.svc.ListActions(context.Background(), &iamflowv1.ListActionsRequest{Link: "hub", Action: string(planner.ActDeleteGroup)})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, r := range acts.Records {
		outcomes[r.Outcome]++
	}
	if outcomes["held"] != 11 || outcomes["applied"] != 10 {
		t.Errorf("delete_group records by outcome: %v, want 11 held and 10 applied", outcomes)
	}
}

// An empty source never counts as "everything was deleted".
func TestEmptySourceDeletesNothing(t *testing.T) {
	l := link("hub", "src", "tgt")
	l.Guard = planner.GuardConfig{MaxDeletions: 1000, MaxPercent: 100}
	p := newPipeline(t, config(l), pipelineOpts{noRun: true})
	src, tgt := p.sites["src"], p.sites["tgt"]
	u := src.createUser(t, "solo", "Solo User")
	g := src.createGroup(t, "only", "")
	src.add(t, g, u)
	p.reconcileLink("hub", false)
	src.emu.Reset() // the source comes back empty
	_, err := p.svc.ReconcileLink(context.Background(), "hub", false)
	if err == nil || !strings.Contains(err.Error(), "nothing is deleted") {
		t.Fatalf("reconcile of an empty source: %v", err)
	}
	if len(tgt.emu.Users()) != 1 || len(tgt.emu.Groups()) != 1 {
		t.Errorf("target lost objects: %d users, %d groups", len(tgt.emu.Users()), len(tgt.emu.Groups()))
	}
}

// Stopping the replicator mid-stream and starting another loses no change
// and creates nothing twice.
func TestRestartMidStream(t *testing.T) {
	p := newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{})
	src, tgt := p.sites["src"], p.sites["tgt"]
	g := src.createGroup(t, "big", "")
	var users []string
	for i := range 40 {
		users = append(users, src.createUser(t, fmt.Sprintf("m%02d", i), "Member"))
	}
	for i, u := range users {
		src.add(t, g, u)
		if i == 15 {
			p.stop() // mid-stream
			p.svc = p.newService()
			p.start()
		}
	}
	p.settled()
	p.converged("src", "tgt", 20*time.Second)
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := len(tgt.emu.Users()); n != len(users) {
			return fmt.Errorf("target has %d users, want %d", n, len(users))
		}
		return nil
	})
	if n := len(tgt.emu.Groups()); n != 1 {
		t.Errorf("target has %d groups, want 1", n)
	}
}
