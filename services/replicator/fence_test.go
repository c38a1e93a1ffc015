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

// twoReplicas opens the fence bucket twice on one server, as two replicas
// of the replicator would (each with its own holder id).
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
	if out[0].holder == out[1].holder {
		t.Fatal("two fences share a holder id")
	}
	return out[0], out[1]
}

// A lease is exclusive within a process and across replicas: while one
// holder works on an object, nobody else enters.
func TestFenceExclusive(t *testing.T) {
	a, b := twoReplicas(t, time.Now)
	ctx := context.Background()
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		f := a
		if i%2 == 1 {
			f = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				l, err := f.acquire(ctx, "obj", 20*time.Second, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(time.Millisecond) // work while holding it (not synchronisation)
				inside.Add(-1)
				l.release(ctx, time.Time{})
			}
		}()
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d times two holders were inside at once", n)
	}
}

// A holder that waits too long gets errBusy, and gets the lease once it is free.
func TestFenceBusyThenFree(t *testing.T) {
	a, b := twoReplicas(t, time.Now)
	ctx := context.Background()
	l, err := a.acquire(ctx, "obj", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.acquire(ctx, "obj", 50*time.Millisecond, nil); !errors.Is(err, errBusy) {
		t.Fatalf("second replica while held: %v, want errBusy", err)
	}
	if _, err := a.acquire(ctx, "obj", 50*time.Millisecond, nil); !errors.Is(err, errBusy) {
		t.Fatalf("same process while held: %v, want errBusy", err)
	}
	l.release(ctx, time.Time{})
	l2, err := b.acquire(ctx, "obj", time.Second, nil)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.release(ctx, time.Time{})
}

// The watermark refuses plans made from reads older than one applied.
func TestFenceWatermark(t *testing.T) {
	a, b := twoReplicas(t, time.Now)
	ctx := context.Background()
	t0 := time.Now()
	t1 := t0.Add(time.Second)

	l, err := a.acquire(ctx, "obj", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !l.watermark().IsZero() || !l.fresh(t0) {
		t.Fatalf("new object: mark %v, fresh(t0) %v", l.watermark(), l.fresh(t0))
	}
	l.release(ctx, t1) // a reconcile read at t1 applied its plan

	s, _ := b.set(ctx)
	fresh, err := s.take(ctx, "obj", time.Second, t0)
	if err != nil {
		t.Fatal(err)
	}
	if fresh {
		t.Fatal("a plan read at t0 is fresh after one read at t1 was applied")
	}
	s.release(ctx, time.Time{}) // not applied: the watermark stays
	s, _ = b.set(ctx)
	if fresh, err = s.take(ctx, "obj", time.Second, t1.Add(time.Millisecond)); err != nil || !fresh {
		t.Fatalf("a newer read: fresh %v, %v", fresh, err)
	}
	s.release(ctx, t0) // a lower read never lowers the watermark
	l, err = a.acquire(ctx, "obj", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !l.watermark().Equal(t1) {
		t.Fatalf("mark %v, want %v", l.watermark(), t1)
	}
	l.release(ctx, time.Time{})
}

// A lease whose holder died (it is never released nor renewed) is taken
// over once it expires.
func TestFenceExpiredLeaseIsTakenOver(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, b := twoReplicas(t, clock)
	ctx := context.Background()
	// The crashed holder: a lease taken straight in KV, never released.
	if _, err := a.acquireKV(ctx, "obj"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.acquire(ctx, "obj", 50*time.Millisecond, nil); !errors.Is(err, errBusy) {
		t.Fatalf("before expiry: %v, want errBusy", err)
	}
	mu.Lock()
	now = now.Add(leaseTTL + time.Second)
	mu.Unlock()
	l, err := b.acquire(ctx, "obj", time.Second, nil)
	if err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	l.release(ctx, time.Time{})
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
	s, wctx := a.set(ctx)
	if _, err := s.take(ctx, "obj", time.Second, time.Time{}); err != nil {
		t.Fatal(err)
	}
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
	l, err := b.acquire(ctx, "obj", time.Second, nil)
	if err != nil {
		t.Fatalf("the other replica after the lapse: %v", err)
	}
	s.release(ctx, time.Time{})
	if _, err := a.acquire(ctx, "obj", 50*time.Millisecond, nil); !errors.Is(err, errBusy) {
		t.Fatalf("after the lapsed holder released: %v, want errBusy (the new holder keeps it)", err)
	}
	l.release(ctx, time.Time{})
}

// A write of the lease whose answer was lost (a timeout while JetStream
// changed leaders) may have been stored anyway: the holder finds its own
// record at a newer revision and goes on with it, instead of failing every
// renewal and leaving the object blocked until the lease expires.
func TestFenceLostAnswerDoesNotStrandTheLease(t *testing.T) {
	a, b := twoReplicas(t, time.Now)
	ctx := context.Background()
	l, err := a.acquire(ctx, "obj", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The renewal that was stored though its answer never came.
	e, err := a.kv.Get(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.kv.Update(ctx, "obj", e.Value(), e.Revision()); err != nil {
		t.Fatal(err)
	}
	l.release(ctx, time.Time{})
	l2, err := b.acquire(ctx, "obj", 100*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("after the release: %v (the release did not free the lease)", err)
	}
	l2.release(ctx, time.Time{})
}
