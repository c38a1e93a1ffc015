package identitydomain_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

// BenchmarkListDirectory lists a generated directory of 50,000 users, 5,000
// groups and 200,000 memberships through the client: every user, every
// group, and every group's members (one GetGroup per group). It reports the
// API calls made (counted by the emulator), the wall time per listing and the
// heap: the peak of all heap objects (garbage included) of the whole process,
// the emulator's directory included, and how far the live heap measured by
// the GC rose above its level before listing (what paging holds at once:
// one page decoded, its body, the emulator's rendering of it).
//
//	go test -run '^$' -bench BenchmarkListDirectory -benchtime 1x ./internal/identitydomain/
func BenchmarkListDirectory(b *testing.B) {
	const users, groups, memberships = 50000, 5000, 200000
	f := newFixture(b, fixtureOpt{})
	if err := f.d.Generate(emu.GenerateConfig{Users: users, Groups: groups, Memberships: memberships, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Fetch the token outside the measurement.
	if _, _, err := f.c.FindUserByName(ctx, "user000001"); err != nil {
		b.Fatal(err)
	}

	runtime.GC()
	baseline := sample(liveHeap)
	peak := startPeakSampler(5 * time.Millisecond)
	callsBefore := totalCalls(f.d)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		nu, ng, nm := 0, 0, 0
		for _, err := range f.c.Users(ctx, identitydomain.ListOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			nu++
		}
		for g, err := range f.c.Groups(ctx, identitydomain.ListOptions{Attributes: []string{"displayName"}}) {
			if err != nil {
				b.Fatal(err)
			}
			ng++
			for _, err := range f.c.GroupMembers(ctx, *g.Id, 0) {
				if err != nil {
					b.Fatal(err)
				}
				nm++
			}
		}
		if nu != users || ng != groups || nm != memberships {
			b.Fatalf("listed %d users, %d groups, %d memberships", nu, ng, nm)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	maxHeap, maxLive := peak()
	calls := float64(totalCalls(f.d)-callsBefore) / float64(b.N)
	const mb = 1 << 20
	b.ReportMetric(calls, "api_calls/op")
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "wall_s/op")
	b.ReportMetric(float64(maxHeap)/mb, "peak_heap_MB")
	b.ReportMetric(float64(baseline)/mb, "live_heap_before_MB")
	b.ReportMetric(float64(maxLive-min(maxLive, baseline))/mb, "peak_live_heap_growth_MB")
	b.ReportMetric(float64(users+memberships)/(elapsed.Seconds()/float64(b.N)), "items/s")
}

func totalCalls(d *emu.Domain) int64 {
	var n int64
	for _, c := range d.Stats().Calls {
		n += c
	}
	return n
}

// The heap metrics sampled: all heap objects (live and not yet collected),
// and the live heap as the last GC measured it.
const (
	heapObjects = "/memory/classes/heap/objects:bytes"
	liveHeap    = "/gc/heap/live:bytes"
)

func sample(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// startPeakSampler samples the heap every interval until the returned
// function is called, which returns the largest samples of heap objects and
// of the live heap.
func startPeakSampler(interval time.Duration) func() (heap, live uint64) {
	var (
		mu             sync.Mutex
		peakH, peakL   = sample(heapObjects), sample(liveHeap)
		stop, finished = make(chan struct{}), make(chan struct{})
	)
	read := func() {
		h, l := sample(heapObjects), sample(liveHeap)
		mu.Lock()
		peakH, peakL = max(peakH, h), max(peakL, l)
		mu.Unlock()
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() (uint64, uint64) {
		close(stop)
		<-finished
		read()
		mu.Lock()
		defer mu.Unlock()
		return peakH, peakL
	}
}
