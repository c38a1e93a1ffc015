package capabilities

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/pipelinetest"
)

// A sweep of a generated 50,000-user domain at the Free tier's rate limits
// (the emulator enforces 20/s and 150/min, the client is configured with the
// same tier). Every generated user has every flag true; the policy turns DB
// credentials off for every 5,000th user only, so the sweep is dominated by
// the paged reads. It takes about 25s (the client's per-minute bucket), so
// -short skips it.
func TestSweepFreeTier50kUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("sweeps 50,000 users at the Free tier's 150 calls/min; skipped with -short")
	}
	const users = 50_000
	b := bustest.RunServer(t).Open(t)
	d := pipelinetest.Emulator(t, domainShort, emu.TierFree, "")
	start := time.Now()
	if err := d.Generate(emu.GenerateConfig{Users: users, Seed: 42}); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d users in %v", users, time.Since(start).Round(time.Millisecond))
	c := newClient(t, d, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, true)

	cfg := DefaultConfig()
	cfg.Rules = []Rule{{
		Name:  "every-5000th",
		Match: Match{UserName: `user0[0-5][05]000`}, // user005000, user010000, ..., user050000
		Set:   Flags{CanUseDBCredentials: ptr(false)},
	}}
	svc, err := New(context.Background(), cfg, b, map[string]Directory{domainShort: NewDirectory(c)})
	if err != nil {
		t.Fatal(err)
	}

	// Watch the status while the sweep runs.
	var (
		mu       sync.Mutex
		progress []string
		midway   bool
	)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		last := int64(-1)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			cnt := svc.Status(context.Background()).Counters
			if cnt[counterSweepRunning] != 1 || cnt[counterSweepChecked] == last {
				continue
			}
			last = cnt[counterSweepChecked]
			mu.Lock()
			progress = append(progress, fmt.Sprintf("%d/%d (%d changed)", cnt[counterSweepChecked], cnt[counterSweepTotal], cnt[counterSweepChanged]))
			midway = midway || (last > 0 && last < users)
			mu.Unlock()
		}
	}()

	callsBefore := d.Stats().Calls
	start = time.Now()
	rep, err := svc.sweepDomain(context.Background(), domainShort, false)
	took := time.Since(start)
	close(stop)
	<-watched
	if err != nil {
		t.Fatal(err)
	}

	st := d.Stats()
	calls := map[string]int64{}
	var total int64
	for op, n := range st.Calls {
		if n -= callsBefore[op]; n > 0 {
			calls[string(op)] = n
			total += n
		}
	}
	var names []string
	for op, n := range calls {
		names = append(names, fmt.Sprintf("%s=%d", op, n))
	}
	sort.Strings(names)
	t.Logf("sweep of %d users: %v wall, %d API calls (%s), %d rate limited (429), checked %d changed %d failed %d",
		users, took.Round(time.Millisecond), total, strings.Join(names, " "), st.RateLimited, rep.Checked, rep.Changed, rep.Failed)
	mu.Lock()
	t.Logf("progress seen in Status while running: %s", strings.Join(progress, ", "))
	sawMidway := midway
	mu.Unlock()

	if rep.Checked != users || rep.Changed != 10 || rep.Failed != 0 {
		t.Errorf("checked %d changed %d failed %d, want %d, 10, 0", rep.Checked, rep.Changed, rep.Failed, users)
	}
	if st.RateLimited != 0 {
		t.Errorf("%d requests were rate limited (429)", st.RateLimited)
	}
	if calls[string(emu.OpListUsers)] != users/1000 || calls[string(emu.OpPutUserCapabilitiesChanger)] != 10 {
		t.Errorf("calls %v, want %d list calls and 10 PUTs", calls, users/1000)
	}
	if !sawMidway {
		t.Error("the sweep's progress never showed in Status while it ran")
	}
	if cnt := svc.Status(context.Background()).Counters; cnt[counterSweepRunning] != 0 || cnt[counterSweepTotal] != users || cnt[counterSweepChanged] != 10 {
		t.Errorf("status after the sweep: %v", cnt)
	}
	// Spot checks.
	for _, name := range []string{"user005000", "user025000", "user050000"} {
		u, _ := d.UserByName(name)
		if u.Capabilities["canUseDbCredentials"] || !u.Capabilities["canUseApiKeys"] {
			t.Errorf("%s: %v, want DB credentials off and the rest untouched", name, u.Capabilities)
		}
	}
	for _, name := range []string{"user000001", "user005001", "user004999", "user049999", "user012345"} {
		u, _ := d.UserByName(name)
		for flag, v := range u.Capabilities {
			if !v {
				t.Errorf("%s: %s is false; the policy does not cover this user", name, flag)
			}
		}
	}
	perMin := float64(users+users/1000) / 150
	t.Logf("a sweep where all %d users must change: %d calls at 150/min = %.0f min (%.1f h); at the client's 135/min (10%% headroom) %.1f h",
		users, users+users/1000, perMin, perMin/60, float64(users+users/1000)/135/60)
}
