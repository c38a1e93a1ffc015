package replicator

import (
	"context"
	"fmt"
	"testing"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// A deletion the guard held on the event path is applied when a person
// approves it: the approval re-reads the object under its lease (the event's
// reconcile left a watermark newer than the hold) and deletes it because the
// source still says so. Before the fix every such approval failed as stale.
func TestApproveHeldDeletionFromEvents(t *testing.T) {
	l := link("hub", "src", "tgt")
	l.Guard = planner.GuardConfig{MaxDeletions: 1, MaxPercent: 100, Window: time.Hour}
	p := newPipeline(t, config(l), pipelineOpts{})
	src, tgt := p.sites["src"], p.sites["tgt"]
	var groups []string
	for i := range 4 {
		groups = append(groups, src.createGroup(t, fmt.Sprintf("squad-%d", i), ""))
	}
	p.converged("src", "tgt", 10*time.Second)
	ctx := context.Background()
	src.deleteGroups(t, groups[:3]...)
	// One deletion passes the guard, the other two are held.
	var holds []hold
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		holds = p.svc.holds(ctx, "hub")
		n := 0
		for _, h := range holds {
			n += len(h.Actions)
		}
		if n != 2 || len(tgt.emu.Groups()) != 3 {
			return fmt.Errorf("%d held deletions, %d target groups; want 2 held and 3 groups", n, len(tgt.emu.Groups()))
		}
		return nil
	})
	applied := 0
	for _, h := range holds {
		resp, err := p.svc.ApproveDeletions(ctx, &iamflowv1.ApproveDeletionsRequest{Id: h.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Failed) != 0 {
			t.Errorf("approve %s: failed %v", h.ID, resp.Failed)
		}
		applied += int(resp.Applied)
	}
	if applied != 2 || len(tgt.emu.Groups()) != 1 {
		t.Fatalf("approved: %d applied, %d target groups left; want 2 and 1", applied, len(tgt.emu.Groups()))
	}
}
