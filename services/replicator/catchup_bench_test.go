package replicator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/testutil"
)

// BenchmarkCatchUpFreeTier is the return of a replicator after an outage:
// while it was away, 10,000 users were created in the source and added to
// 10 groups (1,000 members each), some 20,000 events now queued. Both domains
// enforce the Free tier's documented limits and iamflow's clients pace
// their calls for them. The first handler finds the backlog (catchUpBacklog
// events or more) and catches the link up with one full reconcile, which
// creates the users and the groups with their members through SCIM Bulk;
// the events behind it are acknowledged without a call.
//
// The wall time runs from the start of the replicator until the target
// equals the source and every event is handled. The baseline is the bound
// the tier's limits allow for the requests made, same run (boundAtLimits);
// the goal (issue 18) is a wall time within 10% of it, with no 429. Beside
// it, the least the same limits would allow the events reconciled one by
// one: a create per user at the Others group's 150 calls a minute, reads
// not counted (computed, not run: 69 minutes). -short: 1,000 users.
func BenchmarkCatchUpFreeTier(b *testing.B) {
	users, groups := 10_000, 10
	if testing.Short() {
		users = 1_000
	}
	for range b.N {
		b.StopTimer()
		p := newPipeline(b, config(link("hub", "src", "tgt")), pipelineOpts{noRun: true})
		src, tgt := p.sites["src"], p.sites["tgt"]
		backlog(b, src, users, groups)
		events := src.emu.EventStats().Emitted
		src.client, tgt.client = atTier(b, src, emu.TierFree), atTier(b, tgt, emu.TierFree)
		p.svc = p.newService()
		before := map[string]emu.Stats{"src": src.emu.Stats(), "tgt": tgt.emu.Stats()}

		b.StartTimer()
		start := time.Now()
		p.start()
		testutil.CheckFor(b, 10*time.Minute, 100*time.Millisecond, func() error {
			if d := snap(src.emu).diff(snap(tgt.emu)); d != "" {
				return fmt.Errorf("target differs from source:\n%s", d)
			}
			return nil
		})
		p.settledWithin(10*time.Minute, 100*time.Millisecond)
		wall := time.Since(start)
		b.StopTimer()

		bound, refused, detail := boundAtLimits(emu.TierFree, before, src, tgt)
		oneByOne := identitydomain.Limits{}.Effective(identitydomain.TierFree).PacedDuration(users)
		ctr := p.svc.Status(context.Background()).GetCounters()
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(users), "users")
		b.ReportMetric(float64(events), "events")
		b.ReportMetric(float64(ctr[counterCatchUps]), "catch-ups")
		b.ReportMetric(float64(ctr[counterCovered]), "covered")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(bound, "bound-s")
		b.ReportMetric(wall.Seconds()/bound, "wall/bound")
		b.ReportMetric(oneByOne.Seconds(), "one-by-one-bound-s")
		b.ReportMetric(float64(refused), "429s")
		b.Logf("backlog of %d events (%d users on %d groups) caught up at the Free tier's limits in %.1f s against a bound of %.1f s (%s): "+
			"wall/bound %.2f (goal <= 1.10), %d catch-up(s); of %d events handled (after coalescing), %d covered; %d x 429; one by one, the creates alone would need %.0f s",
			events, users, groups, wall.Seconds(), bound, strings.Join(detail, "; "), wall.Seconds()/bound,
			ctr[counterCatchUps], ctr[counterEvents], ctr[counterCovered], refused, oneByOne.Seconds())
		if refused != 0 {
			b.Errorf("%d requests were refused with 429", refused)
		}
		if ctr[counterCatchUps] == 0 {
			b.Error("the backlog was not caught up: every event was reconciled one by one")
		}
		p.stop()
	}
}
