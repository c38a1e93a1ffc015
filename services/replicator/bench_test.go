package replicator

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// BenchmarkEventToTarget: a group created in the source, through its OCI
// event, ingest, JetStream and the replicator, until its copy exists in the
// target (the emulators have no rate limit). The baseline is the source's
// own create call, measured in the same run. Reports p50 and p99 of both.
func BenchmarkEventToTarget(b *testing.B) {
	p := newPipeline(b, config(link("hub", "src", "tgt")), pipelineOpts{})
	src, tgt := p.sites["src"], p.sites["tgt"]
	const n = 300
	var lat, base []time.Duration
	b.ResetTimer()
	for i := range b.N {
		for j := range n {
			name := fmt.Sprintf("g-%d-%d", i, j)
			t0 := time.Now()
			src.createGroup(b, name, "")
			t1 := time.Now()
			for {
				if _, ok := tgt.emu.GroupByName(name); ok {
					break
				}
				if time.Since(t0) > 10*time.Second {
					b.Fatalf("group %s not replicated within 10s", name)
				}
				time.Sleep(100 * time.Microsecond)
			}
			lat = append(lat, time.Since(t0))
			base = append(base, t1.Sub(t0))
		}
	}
	b.StopTimer()
	b.ReportMetric(pct(lat, 50), "p50-ms")
	b.ReportMetric(pct(lat, 99), "p99-ms")
	b.ReportMetric(pct(base, 50), "baseline-create-p50-ms")
	b.ReportMetric(pct(base, 99), "baseline-create-p99-ms")
}

// pct is the p-th percentile of ds in milliseconds.
func pct(ds []time.Duration, p int) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, len(s)*p/100)
	return float64(s[i].Microseconds()) / 1000
}

// BenchmarkMembershipBurst: 400 membership changes (100 members added to
// each of 4 groups, one single-member PATCH each) by an administrator as
// fast as the source takes them (users already replicated), then the API
// calls the replicator made on both domains per change and per event the
// source emitted (a single-member PATCH emits two: the membership and the
// group update), with coalescing and without it (the baseline, same run).
func BenchmarkMembershipBurst(b *testing.B) {
	for _, c := range []struct {
		name       string
		noCoalesce bool
	}{{"coalesced", false}, {"baseline_uncoalesced", true}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				p := newPipeline(b, config(link("hub", "src", "tgt")), pipelineOpts{noRun: true})
				p.svc = p.newService()
				p.svc.noCoalesce = c.noCoalesce // every event reconciled on its own
				src, tgt := p.sites["src"], p.sites["tgt"]
				var groups, users []string
				const groupsN, usersN = 4, 100
				for g := range groupsN {
					groups = append(groups, src.createGroup(b, fmt.Sprintf("burst-%d", g), ""))
				}
				for u := range usersN {
					users = append(users, src.createUser(b, fmt.Sprintf("user%03d", u), "Burst User"))
				}
				if _, err := p.svc.ReconcileLink(context.Background(), "hub", false); err != nil {
					b.Fatal(err)
				}
				p.start()
				p.settled()
				events0 := src.emu.EventStats().Emitted
				calls0 := calls(tgt.emu) + reads(src.emu)
				b.StartTimer()
				start := time.Now()
				src.burst(b, groups, users)
				p.settled()
				p.converged("src", "tgt", 30*time.Second)
				took := time.Since(start)
				b.StopTimer()
				events := src.emu.EventStats().Emitted - events0
				used := calls(tgt.emu) + reads(src.emu) - calls0
				changes := groupsN * usersN
				b.ReportMetric(float64(used)/float64(changes), "calls/change")
				b.ReportMetric(float64(changes), "changes")
				b.ReportMetric(float64(used)/float64(events), "calls/event")
				b.ReportMetric(float64(events), "events")
				b.ReportMetric(float64(used), "calls")
				b.ReportMetric(took.Seconds(), "s-to-converge")
				p.stop()
			}
		})
	}
}

// listDirectory lists every user and group of a domain, as a reconcile does.
func listDirectory(b *testing.B, c *identitydomain.Client) {
	b.Helper()
	ctx := context.Background()
	for _, err := range c.Users(ctx, identitydomain.ListOptions{}) {
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := listGroups(ctx, c); err != nil {
		b.Fatal(err)
	}
}

// reads counts the read calls a domain answered (the replicator is the only reader).
func reads(d *emu.Domain) int64 {
	var n int64
	for _, op := range []emu.Operation{emu.OpGetUser, emu.OpGetGroup, emu.OpListUsers, emu.OpListGroups, emu.OpSearchUsers, emu.OpSearchGroups} {
		n += d.CallCount(op)
	}
	return n
}

// BenchmarkFullReconcile: a generated 50,000-user, 5,000-group,
// 200,000-membership source reconciled into an empty target, then into the
// same target in sync; calls, time and the reconcile's peak heap (above the
// emulators' own). Then the in-sync reconcile at the Free tier's rate limit
// (client limits on, emulator enforcing them): no 429 may be provoked.
// The in-sync reconcile's baseline is listing both directories once they
// are equal (the reads any reconcile must make), timed in the same run.
//
// It runs twice: into a target that offers SCIM Bulk (OCI does) and, as the
// baseline of the same run, into one that does not (one call per create).
func BenchmarkFullReconcile(b *testing.B) {
	for _, v := range []struct {
		name string
		bulk emu.BulkConfig
	}{{"bulk", emu.BulkConfig{}}, {"baseline_no_bulk", emu.BulkConfig{Disabled: true}}} {
		b.Run(v.name, func(b *testing.B) { benchmarkFullReconcile(b, v.bulk) })
	}
}

func benchmarkFullReconcile(b *testing.B, bulk emu.BulkConfig) {
	size := emu.GenerateConfig{Users: 50_000, Groups: 5_000, Memberships: 200_000, Seed: 1}
	if testing.Short() {
		size = emu.GenerateConfig{Users: 2_000, Groups: 200, Memberships: 8_000, Seed: 1}
	}
	for range b.N {
		b.StopTimer()
		p := newPipeline(b, config(link("hub", "src", "tgt")), pipelineOpts{noRun: true, sites: map[string]func(testing.TB) *site{"tgt": bulkTarget(bulk)}})
		src, tgt := p.sites["src"], p.sites["tgt"]
		if err := src.emu.Generate(size); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		for _, phase := range []string{"empty", "in-sync"} {
			if phase == "in-sync" {
				// The baseline: listing both directories, now equal, the
				// way a reconcile lists them: the reads any reconcile must
				// make. Like the reconcile (watchHeap), it starts after a
				// collection, not amid the garbage of the phase before.
				runtime.GC()
				t0 := time.Now()
				for _, s := range []*site{src, tgt} {
					listDirectory(b, s.client)
				}
				b.ReportMetric(time.Since(t0).Seconds(), "baseline-list-both-s")
			}
			c0 := calls(tgt.emu) + reads(src.emu)
			b0 := tgt.emu.CallCount(emu.OpBulk)
			peak := watchHeap()
			b.StartTimer()
			start := time.Now()
			reps, err := p.svc.ReconcileLink(ctx, "hub", false)
			took := time.Since(start)
			b.StopTimer()
			heap := peak()
			if err != nil {
				b.Fatal(err)
			}
			if d := snap(src.emu).diff(snap(tgt.emu)); d != "" {
				b.Fatalf("after reconcile into %s target:\n%s", phase, d)
			}
			b.ReportMetric(took.Seconds(), phase+"-s")
			n := calls(tgt.emu) + reads(src.emu) - c0
			bulk := tgt.emu.CallCount(emu.OpBulk) - b0
			b.ReportMetric(float64(n), phase+"-calls")
			b.ReportMetric(float64(bulk), phase+"-bulk-requests")
			// What the calls cost at the Free tier's per-minute limits
			// (Others 150/min, Bulk 200/min, docs/oci-sources.md §4): the
			// users' Bulk requests come before the groups' calls.
			b.ReportMetric(float64(n-bulk)/150+float64(bulk)/200, phase+"-free-tier-min")
			b.ReportMetric(float64(heap)/(1<<20), phase+"-peak-heap-MB")
			b.Logf("%s: %v in %v, actions %v", phase, reps[0].GetSourceUsers(), took.Round(time.Millisecond), reps[0].GetActions())
		}
		// The same in-sync reconcile at the Free tier's limits.
		limited := newClient(b, src.emu, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, true)
		limitedT := newClient(b, tgt.emu, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, true)
		for _, s := range []*site{src, tgt} {
			if err := s.emu.SetRateLimits(emu.TierFree, emu.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		svc, err := New(ctx, p.cfg, p.bus, map[string]Domain{"src": limited, "tgt": limitedT}, servicekit.WithLogger(pipelinetest.Logger(b)))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := svc.ReconcileLink(ctx, "hub", false); err != nil {
			b.Fatal(err)
		}
		rl := src.emu.Stats().RateLimited + tgt.emu.Stats().RateLimited
		b.ReportMetric(time.Since(start).Seconds(), "free-tier-in-sync-s")
		b.ReportMetric(float64(rl), "free-tier-429s")
		if rl != 0 {
			b.Errorf("%d requests were refused with 429 at the Free tier", rl)
		}
	}
}

// watchHeap samples the heap in use until the returned function is called,
// which returns the peak above the heap at the start.
func watchHeap() func() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	peak := watchPeakHeap(ms.HeapInuse, "")
	return func() uint64 { return peak() - ms.HeapInuse }
}
