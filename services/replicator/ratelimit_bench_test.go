package replicator

import (
	"context"
	"fmt"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/testutil"
)

// BenchmarkMembershipBurstFreeTier: an administrator makes 10,000
// membership changes (1,000 users added to each of 10 groups, one
// single-member PATCH each, as fast as the source takes them) while the
// target is a Free-tier domain: the replicator's client paces its calls to
// the target at the tier's "Others" limits and the emulated target enforces
// them (429 above them). Coalescing decides how many calls the burst costs
// the target (C); the limiter alone decides the least time C calls can
// take (the bound, identitydomain.Limits.PacedDuration). The benchmark
// reports the wall time from the first change until the target equals the
// source and every event is handled (the calls after the target is equal
// still spend the domain's limit), against that bound: the goal is
// wall/bound <= 1.10, with no 429. When the target became equal, and
// after how many calls, is reported too.
//
// Coalescing and covering (an event stored before a reconcile of its group
// began is not reconciled again) leave some 300 calls for 10,000 changes,
// about two minutes at the documented Free-tier limits, so both runs use
// the documented limits, unscaled (before covering, some 1,800 calls, 14
// minutes, and the run had to scale them). -short makes 1,000 changes
// (100 users, 10 groups).
// The output says which. The source is not rate-limited (it is
// another domain with limits of its own; the burst is made there by an
// administrator).
func BenchmarkMembershipBurstFreeTier(b *testing.B) {
	groupsN, usersN, scale := 10, 1000, 1
	if testing.Short() {
		usersN = 100
	}
	free := identitydomain.Limits{}.Effective(identitydomain.TierFree)
	limits := identitydomain.Limits{PerSecond: free.PerSecond * scale, PerMinute: free.PerMinute * scale}.Effective(identitydomain.TierFree)
	scaled := "documented, not scaled"
	if scale != 1 {
		scaled = fmt.Sprintf("the documented %d/s and %d/min scaled by %d", free.PerSecond, free.PerMinute, scale)
	}
	for range b.N {
		b.StopTimer()
		ctx := context.Background()
		p := newPipeline(b, config(link("hub", "src", "tgt")), pipelineOpts{noRun: true})
		src, tgt := p.sites["src"], p.sites["tgt"]
		var groups, users []string
		for g := range groupsN {
			groups = append(groups, src.createGroup(b, fmt.Sprintf("burst-%d", g), ""))
		}
		for u := range usersN {
			users = append(users, src.createUser(b, fmt.Sprintf("user%04d", u), "Burst User"))
		}
		// The users and the empty groups are in the target before the
		// burst, copied without limits (the initial sync is measured by
		// BenchmarkFullReconcile), and their events handled.
		p.svc = p.newService()
		if _, err := p.svc.ReconcileLink(ctx, "hub", false); err != nil {
			b.Fatal(err)
		}
		p.start()
		p.settled()
		p.stop()
		// From here on the target is a Free-tier domain: a client of its
		// own (full buckets, as after a quiet minute) paced at the
		// documented limits, and the emulator refusing anything above them.
		if err := tgt.emu.SetRateLimits(emu.TierFree, emu.Limits{PerSecond: limits.PerSecond, PerMinute: limits.PerMinute}); err != nil {
			b.Fatal(err)
		}
		tgt.client = limitedClient(b, tgt.emu, limits)
		p.svc = p.newService()
		p.start()
		p.settled()

		events0 := src.emu.EventStats().Emitted
		calls0, reads0, limited0 := calls(tgt.emu), reads(src.emu), tgt.emu.Stats().RateLimited
		b.StartTimer()
		start := time.Now()
		src.burst(b, groups, users)
		issued := time.Since(start)
		// Polled every 100 ms: comparing two directories of 1,000 users
		// costs CPU the replicator would otherwise have.
		testutil.CheckFor(b, 10*time.Minute, 100*time.Millisecond, func() error {
			if d := snap(src.emu).diff(snap(tgt.emu)); d != "" {
				return fmt.Errorf("target differs from source:\n%s", d)
			}
			return nil
		})
		converged, convergedCalls := time.Since(start), calls(tgt.emu)-calls0
		p.settledWithin(10*time.Minute, 100*time.Millisecond)
		wall := time.Since(start)
		b.StopTimer()

		changes := groupsN * usersN
		events := src.emu.EventStats().Emitted - events0
		c := calls(tgt.emu) - calls0
		srcReads := reads(src.emu) - reads0
		refused := tgt.emu.Stats().RateLimited - limited0
		bound := limits.PacedDuration(int(c))
		ratio := wall.Seconds() / bound.Seconds()
		convergedBound := limits.PacedDuration(int(convergedCalls))
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(changes), "changes")
		b.ReportMetric(float64(scale), "limit-scale")
		b.ReportMetric(float64(events), "events")
		b.ReportMetric(float64(c), "target-calls")
		b.ReportMetric(float64(c)/float64(changes), "target-calls/change")
		b.ReportMetric(float64(srcReads), "source-reads")
		b.ReportMetric(issued.Seconds(), "burst-issued-s")
		b.ReportMetric(converged.Seconds(), "converged-s")
		b.ReportMetric(float64(convergedCalls), "target-calls-by-convergence")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(bound.Seconds(), "bound-s")
		b.ReportMetric(ratio, "wall/bound")
		b.ReportMetric(float64(refused), "429s")
		b.Logf("%d membership changes (%d events) on %d groups at the Free tier's limits (Others %d/s, %d/min: %s): "+
			"%d calls to the target (%.3f per change), %d reads of the source; burst issued in %.1f s; "+
			"target equal to the source after %.1f s and %d calls (the limiter needs %.1f s for them); every event handled after %.1f s: "+
			"the limiter needs %.1f s for all %d calls: wall/bound %.2f (goal <= 1.10), %d x 429",
			changes, events, groupsN, limits.PerSecond, limits.PerMinute, scaled, c, float64(c)/float64(changes), srcReads,
			issued.Seconds(), converged.Seconds(), convergedCalls, convergedBound.Seconds(), wall.Seconds(), bound.Seconds(), c, ratio, refused)
		if refused != 0 {
			b.Errorf("%d requests to the target were refused with 429", refused)
		}
		p.stop()
	}
}

// limitedClient is iamflow's client for d, paced at limits (the Free
// tier's, possibly scaled), with the retries of newClient.
func limitedClient(t testing.TB, d *emu.Domain, limits identitydomain.Limits) *identitydomain.Client {
	t.Helper()
	cfg := pipelinetest.ClientConfig(t, d.URL(), pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, true)
	cfg.Limits = limits
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 4, BaseDelay: 20 * time.Millisecond, MaxDelay: 2 * time.Second}
	cfg.Breaker = identitydomain.BreakerConfig{Failures: 5, Cooldown: 500 * time.Millisecond}
	return pipelinetest.Client(t, d.Config().Name, cfg)
}
