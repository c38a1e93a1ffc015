package replicator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
)

type coveredCase struct {
	domain, key string
	seq         uint64
	want        bool
}

func TestCoveredSet(t *testing.T) {
	var c covered
	if c.has("d", "d/group/g1", 1) {
		t.Fatal("an empty set covers an event")
	}
	c.note("d/group/g1", 10)
	c.note("d/group/g1", 7) // an older reconcile ending later covers no less
	check := func(cases []coveredCase) {
		t.Helper()
		for _, tc := range cases {
			if got := c.has(tc.domain, tc.key, tc.seq); got != tc.want {
				t.Errorf("has(%q, %q, %d) = %v, want %v", tc.domain, tc.key, tc.seq, got, tc.want)
			}
		}
	}
	check([]coveredCase{
		{"d", "d/group/g1", 3, true},
		{"d", "d/group/g1", 10, true},
		{"d", "d/group/g1", 11, false}, // stored after the reconcile began
		{"d", "d/group/g2", 3, false},  // another entity
		{"d", "", 3, false},            // an event without a key is always handled
	})
	// A full reconcile of d that began at 20 covers every event of d up to
	// it, keyed or not, and none of another source.
	// Its plan for g3 was stale (a newer read of g3 or of a member of it
	// was reconciled meanwhile, and may have failed): g3's events are not
	// covered by it.
	c.noteAll("d", 20, map[string]struct{}{"d/group/g3": {}})
	c.noteAll("d", 15, nil) // an older full reconcile ending later changes nothing
	check([]coveredCase{
		{"d", "d/group/g2", 20, true},
		{"d", "d/user/u1", 5, true},
		{"d", "", 5, true},
		{"d", "d/group/g1", 21, false},
		{"e", "e/group/g1", 5, false},
		{"d", "d/group/g3", 5, false},
	})
	// A newer clean one covers g3 too.
	c.noteAll("d", 30, nil)
	check([]coveredCase{{"d", "d/group/g3", 5, true}, {"d", "d/group/g3", 25, true}})
}

// A burst on one group stored before the consumer runs: the first batch's
// reconcile begins after every event is stored, so the events of the later
// batches have nothing left to do and are not reconciled again; the target
// still ends equal to the source.
func TestEventsStoredBeforeAReconcileAreCovered(t *testing.T) {
	cfg := config(link("hub", "src", "tgt"))
	cfg.Consumer.Batch = 5
	p := newPipeline(t, cfg, pipelineOpts{noRun: true})
	src, tgt := p.sites["src"], p.sites["tgt"]
	gids, _ := groupWorld(t, src, 30, 1, 0)
	ctx := context.Background()
	p.reconcileLink("hub", false)
	emitted := src.emu.EventStats().Emitted
	for i := range 30 {
		u, _ := src.emu.UserByName(fmt.Sprintf("gw%03d", i))
		src.add(t, gids[0], u.ID)
	}
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if st := src.emu.EventStats(); st.Pending != 0 || st.Emitted < emitted+30 {
			return fmt.Errorf("events: %+v", st)
		}
		return nil
	})
	p.start()
	p.settled()
	sameGroups(t, p, src, tgt)
	if n := p.svc.Status(ctx).GetCounters()[counterCovered]; n == 0 {
		t.Errorf("no event was covered by a reconcile begun after it was stored (%d events)", p.svc.Status(ctx).GetCounters()[counterEvents])
	}
}
