package replicator

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// BenchmarkInitialSyncAtLimits is the initial sync a customer meets in OCI: a
// generated 50,000-user, 5,000-group, 200,000-membership source reconciled
// into an empty target, both domains enforcing one tier's documented rate
// limits (docs/oci-sources.md §4) and the clients spacing their calls for
// them, at real speed (no scaled clock).
//
// The baseline is the bound those limits allow for the calls made, in the
// same run: for each domain and API group (Others, Bulk, Token), the calls
// the run sent there divided by the group's per-minute and per-second
// rates, the largest of them. A domain serves its groups in parallel, and
// the source's reads and the target's writes overlap, so nothing can finish
// faster. The goal (issue 18) is a wall time within 10% of that bound with
// no 429.
//
// Free and Premium differ in the Others group only (150/min against
// 5,000/min); Bulk is 200/min on every tier, so where the creates travel as
// Bulk the two tiers take nearly the same time.
func BenchmarkInitialSyncAtLimits(b *testing.B) {
	size := emu.GenerateConfig{Users: 50_000, Groups: 5_000, Memberships: 200_000, Seed: 1}
	if testing.Short() {
		size = emu.GenerateConfig{Users: 2_000, Groups: 200, Memberships: 8_000, Seed: 1}
	}
	for _, tier := range []emu.Tier{emu.TierFree, emu.TierPremium} {
		b.Run("tier="+string(tier), func(b *testing.B) {
			for range b.N {
				benchmarkSyncAtLimits(b, tier, size)
			}
		})
	}
}

func benchmarkSyncAtLimits(b *testing.B, tier emu.Tier, size emu.GenerateConfig) {
	b.StopTimer()
	p := newPipeline(b, config(link("hub", "src", "tgt")), pipelineOpts{noRun: true, sites: map[string]func(testing.TB) *site{"tgt": bulkTarget(emu.BulkConfig{})}})
	src, tgt := p.sites["src"], p.sites["tgt"]
	if err := src.emu.Generate(size); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	clients := map[string]Domain{}
	for _, s := range []*site{src, tgt} {
		clients[s.name] = atTier(b, s, tier)
	}
	svc, err := New(ctx, p.cfg, p.bus, clients, servicekit.WithLogger(pipelinetest.Logger(b)))
	if err != nil {
		b.Fatal(err)
	}
	before := map[string]emu.Stats{"src": src.emu.Stats(), "tgt": tgt.emu.Stats()}

	b.StartTimer()
	start := time.Now()
	reps, err := svc.ReconcileLink(ctx, "hub", false)
	took := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if d := snap(src.emu).diff(snap(tgt.emu)); d != "" {
		b.Fatalf("after the initial sync at the %s tier's limits:\n%s", tier, d)
	}

	bound, rl, detail := boundAtLimits(tier, before, src, tgt)
	b.ReportMetric(took.Seconds(), "wall-s")
	b.ReportMetric(bound, "bound-s")
	b.ReportMetric(took.Seconds()/bound, "wall/bound")
	b.ReportMetric(float64(rl), "429s")
	b.Logf("%s tier: %d users, %d groups in %v against a bound of %.0f s (%s); actions %v", tier,
		reps[0].GetSourceUsers(), reps[0].GetSourceGroups(), took.Round(time.Second), bound, strings.Join(detail, "; "), reps[0].GetActions())
	if rl != 0 {
		b.Errorf("%d requests were refused with 429 at the %s tier's limits", rl, tier)
	}
}

// atTier makes s's emulator enforce tier's documented rate limits and
// returns iamflow's client for it, pacing its calls for them.
func atTier(t testing.TB, s *site, tier emu.Tier) *identitydomain.Client {
	t.Helper()
	if err := s.emu.SetRateLimits(tier, emu.Limits{}); err != nil {
		t.Fatal(err)
	}
	cfg := pipelinetest.ClientConfig(t, s.emu.URL(), pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, true)
	cfg.Tier = identitydomain.Tier(tier)
	return pipelinetest.Client(t, s.name, cfg)
}

// boundAtLimits is the least time the tier's limits allow for the requests
// the sites received since before (each site and API group at its per-second
// and per-minute rates, the largest of them), the requests refused with 429
// meanwhile, and what the bound is made of.
func boundAtLimits(tier emu.Tier, before map[string]emu.Stats, sites ...*site) (bound float64, refused int64, detail []string) {
	limits, _ := identitydomain.TierLimits(identitydomain.Tier(tier))
	for _, s := range sites {
		st := s.emu.Stats()
		refused += st.RateLimited - before[s.name].RateLimited
		for _, g := range groupCalls(before[s.name], st) {
			var perSec, perMin int
			switch g.name {
			case "others":
				perSec, perMin = limits.PerSecond, limits.PerMinute
			case "bulk":
				perSec, perMin = limits.BulkPerSecond, limits.BulkPerMinute
			case "token":
				perSec, perMin = limits.TokenPerSecond, limits.TokenPerMinute
			}
			need := math.Max(float64(g.n)/float64(perSec), 60*float64(g.n)/float64(perMin))
			bound = math.Max(bound, need)
			if g.n > 0 {
				detail = append(detail, fmt.Sprintf("%s %s %d calls (%.0f s at %d/s, %d/min)", s.name, g.name, g.n, need, perSec, perMin))
			}
		}
	}
	return bound, refused, detail
}

// groupCall is how many requests one API group received.
type groupCall struct {
	name string
	n    int64
}

// groupCalls splits the HTTP requests a domain received between two
// snapshots by rate-limit group: a Bulk request counts once, in "bulk",
// and the operations inside it not at all.
func groupCalls(before, after emu.Stats) []groupCall {
	delta := func(op emu.Operation) int64 { return after.Calls[op] - before.Calls[op] }
	var others int64
	for op := range after.Calls {
		if op != emu.OpToken && op != emu.OpBulk {
			others += delta(op)
		}
	}
	others -= after.BulkOperations - before.BulkOperations
	return []groupCall{{"others", others}, {"bulk", delta(emu.OpBulk)}, {"token", delta(emu.OpToken)}}
}
