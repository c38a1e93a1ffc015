package replicator

import (
	"context"
	"testing"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// A user gone from both sides (deleted in the source, its copy deleted in
// the target by hand) is done: the full reconcile forgets its mapping, as
// it does a retired user's whose copy is already inactive, instead of
// planning it again every run.
func TestFullReconcileForgetsWhatIsGoneOnBothSides(t *testing.T) {
	cfg := config(link("hub", "src", "tgt"))
	p := newPipeline(t, cfg, pipelineOpts{noRun: true})
	src, tgt := p.sites["src"], p.sites["tgt"]
	ctx := context.Background()
	gone := src.createUser(t, "gone", "Gone")
	inactive := src.createUser(t, "inactive", "Inactive")
	src.createUser(t, "stays", "Stays")
	p.reconcileLink("hub", false)
	d := p.svc.direction("src", "tgt")
	goneCopy, inactiveCopy := mustMapping(t, d, gone).TargetID, mustMapping(t, d, inactive).TargetID
	for _, id := range []string{gone, inactive} {
		if _, err := src.human.DeleteUser(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tgt.human.DeleteUser(ctx, goneCopy, ""); err != nil {
		t.Fatal(err)
	}
	tgt.patchUser(t, inactiveCopy, identitydomain.Replace("active", false))
	reps, err := p.svc.ReconcileLink(ctx, "hub", false)
	if err != nil {
		t.Fatal(err)
	}
	if n := reps[0].GetActions()[string(planner.ActForget)]; n != 2 {
		t.Errorf("forget actions %d, want 2 (%v)", n, reps[0].GetActions())
	}
	for _, id := range []string{gone, inactive} {
		if _, found, err := d.ids.Get(ctx, d.scope(planner.KindUser), id); err != nil || found {
			t.Errorf("mapping of %s still there (%v)", id, err)
		}
	}
	if _, found, err := d.ids.Get(ctx, d.scope(planner.KindUser), src.emu.Users()[0].ID); err != nil || !found {
		t.Errorf("the mapping of the user that stays is gone (%v)", err)
	}
	reps, err = p.svc.ReconcileLink(ctx, "hub", false)
	if err != nil {
		t.Fatal(err)
	}
	if n := reps[0].GetActions()[string(planner.ActForget)]; n != 0 {
		t.Errorf("the next reconcile forgets %d mappings again", n)
	}
}
