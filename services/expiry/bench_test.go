package expiry

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/testutil"
)

// BenchmarkExpireTenThousand: 10,000 grants whose deadlines fall within the
// same minute (the case), and within the same 3 seconds (a stress
// case, 20 times the rate), through the whole pipeline (emulator → ingest →
// JetStream → service). It reports the lateness of the recorded expiry
// (deadline → membership removed and verified) at p50/p99/max and the domain
// API calls the expiry phase made.
func BenchmarkExpireTenThousand(b *testing.B) {
	for _, spread := range []time.Duration{time.Minute, 3 * time.Second} {
		b.Run("within_"+spread.String(), func(b *testing.B) { benchmarkExpire(b, 10_000, spread) })
	}
}

func benchmarkExpire(b *testing.B, n int, spread time.Duration) {
	for range b.N {
		b.StopTimer()
		cfg := testConfig()
		cfg.Groups[0].MaxDuration, cfg.Groups[0].DefaultDuration = 10*time.Minute, 10*time.Minute
		cfg.ScanInterval = 30 * time.Second
		cfg.Consumer.Concurrency = 32
		p := newPipeline(b, cfg)
		if err := p.domain.Generate(emu.GenerateConfig{Users: n, Seed: 1}); err != nil {
			b.Fatal(err)
		}
		svc, _ := p.start()
		users := p.domain.Users()
		ids := make([]string, 0, n)
		for _, u := range users {
			ids = append(ids, u.ID)
		}
		ids = ids[:n]
		ctx := context.Background()
		grants := make([]string, n)
		parallel(b, n, 16, func(i int) error {
			g, err := svc.grant(ctx, grantRequest{Domain: domainShort, Group: tempGroup, User: ids[i], Reason: "bench", Requester: "bench"})
			if err != nil {
				return err
			}
			grants[i] = g.Id
			return nil
		})
		// Move every deadline into the same window.
		t0 := time.Now().Add(10 * time.Second)
		parallel(b, n, 16, func(i int) error {
			_, err := svc.extend(ctx, grants[i], 0, t0.Add(time.Duration(i)*spread/time.Duration(n)), "bench", "")
			return err
		})
		if late := time.Since(t0); late > 0 {
			b.Fatalf("setting the deadlines took %v too long", late)
		}
		before := p.domain.Stats().Calls
		b.StartTimer()
		testutil.CheckFor(b, spread+5*time.Minute, 50*time.Millisecond, func() error {
			if got := svc.counters.expired.Load(); got < int64(n) {
				return fmt.Errorf("%d of %d expired", got, n)
			}
			return nil
		})
		b.StopTimer()
		after := p.domain.Stats().Calls
		gs, err := svc.list(ctx, filter{})
		if err != nil {
			b.Fatal(err)
		}
		var late []time.Duration
		for _, g := range gs {
			if g.EndedAt != nil {
				late = append(late, g.EndedAt.AsTime().Sub(g.ExpiresAt.AsTime()))
			}
		}
		sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
		pct := func(q float64) time.Duration { return late[min(int(q*float64(len(late))), len(late)-1)] }
		var calls int64
		for op, c := range after {
			if op != emu.OpToken {
				calls += c - before[op]
			}
		}
		b.ReportMetric(pct(0.5).Seconds()*1000, "p50-late-ms")
		b.ReportMetric(pct(0.99).Seconds()*1000, "p99-late-ms")
		b.ReportMetric(late[len(late)-1].Seconds()*1000, "max-late-ms")
		b.ReportMetric(float64(after[emu.OpPatchGroup]-before[emu.OpPatchGroup]), "patch-calls")
		b.ReportMetric(float64(calls), "api-calls")
		b.Logf("%d grants expired: lateness p50=%v p99=%v max=%v; API calls %d (PatchGroup %d)",
			len(late), pct(0.5), pct(0.99), late[len(late)-1], calls, after[emu.OpPatchGroup]-before[emu.OpPatchGroup])
	}
}

// parallel runs fn(0..n-1) on w goroutines and fails b on the first error.
func parallel(b *testing.B, n, w int, fn func(i int) error) {
	b.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
}
