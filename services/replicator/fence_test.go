package replicator

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/bus/bustest"
)

// The leases themselves (one holder at a time, a dead holder taken over,
// a lapse, a lost answer) are tested in internal/lease; these tests are of
// what the replicator builds on them: plans fenced by watermarks, and
// writes that stop when a lease lapses.

// twoReplicas opens the fence bucket twice on one server, as two replicas
// of the replicator would (each its own holder).
func twoReplicas(t *testing.T, now func() time.Time) (*fences, *fences) {
	t.Helper()
	srv := bustest.RunServer(t)
	var out [2]*fences
	for i := range out {
		b := srv.Open(t)
		f, err := openFences(context.Background(), b.JetStream(), Placement{}, now, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = f
	}
	return out[0], out[1]
}

// take takes key in a new lease set and fails the test if it cannot.
func take(t *testing.T, f *fences, key string, readAt time.Time) (*leaseSet, context.Context, bool) {
	t.Helper()
	s, ctx := f.set(context.Background())
	fresh, err := s.take(ctx, key, 20*time.Second, readAt)
	if err != nil {
		t.Fatal(err)
	}
	return s, ctx, fresh
}

// A lease is exclusive within a process and across replicas: while one
// plan works on an object, nobody else enters.
func TestFenceExclusive(t *testing.T) {
	a, b := twoReplicas(t, time.Now)
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		f := a
		if i%2 == 1 {
			f = b
		}
		wg.Go(func() {
			for range 5 {
				s, _, _ := take(t, f, "obj", time.Time{})
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(time.Millisecond) // work while holding it (not synchronisation)
				inside.Add(-1)
				s.release(context.Background(), time.Time{})
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d times two holders were inside at once", n)
	}
}

// A plan that waits too long gets errBusy, and gets the lease once it is free.
func TestFenceBusyThenFree(t *testing.T) {
	a, b := twoReplicas(t, time.Now)
	ctx := context.Background()
	s, _, _ := take(t, a, "obj", time.Time{})
	for name, f := range map[string]*fences{"second replica": b, "same process": a} {
		other, octx := f.set(ctx)
		if _, err := other.take(octx, "obj", 50*time.Millisecond, time.Time{}); !errors.Is(err, errBusy) {
			t.Fatalf("%s while held: %v, want errBusy", name, err)
		}
		other.release(ctx, time.Time{})
	}
	s.release(ctx, time.Time{})
	s2, _, _ := take(t, b, "obj", time.Time{})
	s2.release(ctx, time.Time{})
}

// The watermark refuses plans made from reads older than one applied.
func TestFenceWatermark(t *testing.T) {
	a, b := twoReplicas(t, time.Now)
	ctx := context.Background()
	t0 := time.Now()
	t1 := t0.Add(time.Second)

	s, _, fresh := take(t, a, "obj", t0)
	if !fresh {
		t.Fatal("a new object is not fresh")
	}
	s.release(ctx, t1) // a reconcile read at t1 applied its plan

	s, _, fresh = take(t, b, "obj", t0)
	if fresh {
		t.Fatal("a plan read at t0 is fresh after one read at t1 was applied")
	}
	s.release(ctx, time.Time{}) // not applied: the watermark stays
	s, _, fresh = take(t, b, "obj", t1.Add(time.Millisecond))
	if !fresh {
		t.Fatal("a newer read is not fresh")
	}
	s.release(ctx, t0) // a lower read never lowers the watermark
	s, _, fresh = take(t, a, "obj", t1.Add(-time.Millisecond))
	if fresh {
		t.Fatal("the watermark was lowered by an older read")
	}
	s.release(ctx, time.Time{})
}

// A holder whose lease lapses (JetStream did not take its renewals in
// time) stops writing: the lease set's context ends with errLeaseLost, so
// no write starts under it once another replica may hold the object, and
// its release does not clobber the new holder's lease.
func TestFenceLapsedLeaseStopsItsWrites(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, b := twoReplicas(t, clock)
	ctx := context.Background()
	s, wctx, _ := take(t, a, "obj", time.Time{})
	// No renewal got through for longer than the lease lasts.
	mu.Lock()
	now = now.Add(leaseTTL + time.Second)
	mu.Unlock()
	select {
	case <-wctx.Done():
	case <-time.After(leaseTTL):
		t.Fatal("the lease lapsed, but the writes under it were not stopped")
	}
	if cause := context.Cause(wctx); !errors.Is(cause, errLeaseLost) {
		t.Fatalf("cause %v, want errLeaseLost", cause)
	}
	if err := s.lost(context.Canceled); !errors.Is(err, errLeaseLost) {
		t.Fatalf("a write stopped by the lapse reports %v, want errLeaseLost", err)
	}
	s2, _, _ := take(t, b, "obj", time.Time{})
	s.release(ctx, time.Time{})
	other, octx := a.set(ctx)
	if _, err := other.take(octx, "obj", 50*time.Millisecond, time.Time{}); !errors.Is(err, errBusy) {
		t.Fatalf("after the lapsed holder released: %v, want errBusy (the new holder keeps it)", err)
	}
	other.release(ctx, time.Time{})
	s2.release(ctx, time.Time{})
}
