package lease

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/bus/bustest"
)

// clock is a clock the test moves by hand, shared by the holders.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// holders opens n Sets (n holders, as n replicas would be) on one bucket
// of a real embedded JetStream.
func holders(t *testing.T, n int, cfg Config, opts ...Option) []*Set {
	t.Helper()
	b := bustest.RunServer(t).Open(t)
	if cfg.Bucket == "" {
		cfg.Bucket = "test_leases"
	}
	out := make([]*Set, n)
	for i := range out {
		s, err := Open(context.Background(), b.JetStream(), cfg, opts...)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

// twoHolders opens two holders of leases of ttl on one bucket, on a clock
// the test moves.
func twoHolders(t *testing.T, ttl time.Duration) (clk *clock, a, b *Set) {
	t.Helper()
	clk = newClock()
	hs := holders(t, 2, Config{TTL: ttl}, WithClock(clk.now))
	return clk, hs[0], hs[1]
}

// mustAcquire takes the lease of key from s, waiting up to a second.
func mustAcquire(t *testing.T, s *Set, key string) *Lease {
	t.Helper()
	l, err := s.Acquire(context.Background(), key, time.Second)
	if err != nil {
		t.Fatalf("acquire %q: %v", key, err)
	}
	return l
}

// mustBeBusy fails the test with msg unless s's Acquire of key gives up
// within wait with ErrBusy.
func mustBeBusy(t *testing.T, s *Set, key string, wait time.Duration, msg string) {
	t.Helper()
	if _, err := s.Acquire(context.Background(), key, wait); !errors.Is(err, ErrBusy) {
		t.Fatalf("%s: %v", msg, err)
	}
}

// mustLose waits up to 5 s for l to be lost (its Lost channel closed), or
// fails the test with msg.
func mustLose(t *testing.T, l *Lease, msg string) {
	t.Helper()
	select {
	case <-l.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal(msg)
	}
}

func TestOneHolderAtATime(t *testing.T) {
	ctx := context.Background()
	hs := holders(t, 2, Config{})
	a, b := hs[0], hs[1]
	l := mustAcquire(t, a, "db.ALICE")
	mustBeBusy(t, b, "db.ALICE", 100*time.Millisecond, "a second holder got a held lease")
	// Another key is free.
	other := mustAcquire(t, b, "db.BOB")
	other.Release(ctx, time.Time{})
	// A goroutine of the same holder queues on the local lock.
	mustBeBusy(t, a, "db.ALICE", 50*time.Millisecond, "the same holder took its lease twice")
	l.Release(ctx, time.Time{})
	l2, err := b.Acquire(ctx, "db.ALICE", time.Second)
	if err != nil {
		t.Fatalf("released lease not free: %v", err)
	}
	l2.Release(ctx, time.Time{})
	// A cancelled caller is told so, not "busy".
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Acquire(cctx, "db.ALICE", time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled acquire: %v", err)
	}
}

// Many goroutines of two holders work on a few keys: never two at once on
// one key.
func TestMutualExclusionUnderContention(t *testing.T) {
	ctx := context.Background()
	hs := holders(t, 2, Config{})
	keys := []string{"k1", "k2", "k3"}
	inside := map[string]*atomic.Int32{}
	for _, k := range keys {
		inside[k] = &atomic.Int32{}
	}
	var overlaps, done atomic.Int32
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			s, k := hs[i%2], keys[i%len(keys)]
			for range 5 {
				l, err := s.Acquire(ctx, k, 30*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				if inside[k].Add(1) != 1 {
					overlaps.Add(1)
				}
				time.Sleep(time.Millisecond) // work under the lease
				inside[k].Add(-1)
				l.Release(ctx, time.Time{})
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Errorf("%d times two holders worked on one key at once", overlaps.Load())
	}
	if done.Load() != 24*5 {
		t.Errorf("%d of %d leases taken", done.Load(), 24*5)
	}
}

// A holder that dies (stops renewing, never releases) blocks its key for
// the TTL, then the next holder takes it over; the dead one, were it to
// wake, finds its lease lost.
func TestDeadHolderTakenOverAfterTTL(t *testing.T) {
	ctx := context.Background()
	clk, a, b := twoHolders(t, 300*time.Millisecond)
	l := mustAcquire(t, a, "db.ALICE")
	// Renewals date the lease by the (frozen) clock: within the TTL, held.
	clk.advance(200 * time.Millisecond)
	mustBeBusy(t, b, "db.ALICE", 100*time.Millisecond, "taken within the TTL")
	// The holder dies: its renewals stop.
	close(l.stop)
	<-l.done
	clk.advance(time.Second)
	l2, err := b.Acquire(ctx, "db.ALICE", time.Second)
	if err != nil {
		t.Fatalf("a dead holder's lease was not taken over after the TTL: %v", err)
	}
	defer l2.Release(ctx, time.Time{})
	a.unlockLocal("db.ALICE")
}

// A holder whose renewals are late (its lease expired and was taken over)
// learns it through Lost, and its Release leaves the new holder's lease.
func TestLostLease(t *testing.T) {
	ctx := context.Background()
	clk, a, b := twoHolders(t, 150*time.Millisecond)
	l := mustAcquire(t, a, "k")
	clk.advance(time.Second) // a's lease looks expired to b
	l2 := mustAcquire(t, b, "k")
	mustLose(t, l, "the old holder was not told its lease was lost")
	l.Release(ctx, time.Time{})
	mustBeBusy(t, a, "k", 100*time.Millisecond, "the old holder's release freed the new holder's lease")
	l2.Release(ctx, time.Time{})
}

func TestWatermark(t *testing.T) {
	ctx := context.Background()
	hs := holders(t, 2, Config{})
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	l := mustAcquire(t, hs[0], "k")
	if !l.Watermark().IsZero() || !l.Fresh(t0) {
		t.Fatalf("a new key has watermark %v", l.Watermark())
	}
	l.Release(ctx, t0.Add(time.Second))
	l = mustAcquire(t, hs[1], "k")
	if l.Fresh(t0) || !l.Fresh(t0.Add(time.Second)) || !l.Watermark().Equal(t0.Add(time.Second)) {
		t.Errorf("watermark %v: an older read is fresh or the same is not", l.Watermark())
	}
	l.Release(ctx, t0) // an older read does not lower it
	l = mustAcquire(t, hs[0], "k")
	defer l.Release(ctx, time.Time{})
	if !l.Watermark().Equal(t0.Add(time.Second)) {
		t.Errorf("watermark lowered to %v", l.Watermark())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{}, {Bucket: "b", TTL: -time.Second}, {Bucket: "b", TTL: time.Hour, MaxAge: time.Minute}} {
		if err := c.withDefaults().validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// A holder whose renewals are not stored in time (JetStream electing a
// leader, a partition) learns that its lease lapsed before another holder
// may take it over, not after: its work must have stopped by then.
func TestLapsedLeaseIsLostBeforeItCanBeTakenOver(t *testing.T) {
	ctx := context.Background()
	clk, a, b := twoHolders(t, 300*time.Millisecond)
	l := mustAcquire(t, a, "k")
	// The lease's validity passes (by the holder's clock) with no renewal
	// stored, while for everyone else it has not expired yet.
	clk.advance(250 * time.Millisecond)
	mustLose(t, l, "the holder was not told its lease lapsed")
	mustBeBusy(t, b, "k", 50*time.Millisecond, "another holder took the lease before its Until: the lapse came too late")
	l.Release(ctx, time.Time{})
}

// A write of the lease whose answer was lost may have been stored anyway:
// the holder finds its own record at a newer revision and goes on, so its
// release frees the key instead of leaving it blocked for the TTL.
func TestLostAnswerDoesNotStrandTheLease(t *testing.T) {
	ctx := context.Background()
	hs := holders(t, 2, Config{})
	a, b := hs[0], hs[1]
	l := mustAcquire(t, a, "k")
	e, err := a.kv.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.kv.Update(ctx, "k", e.Value(), e.Revision()); err != nil { // stored, answer lost
		t.Fatal(err)
	}
	l.Release(ctx, time.Time{})
	l2, err := b.Acquire(ctx, "k", 100*time.Millisecond)
	if err != nil {
		t.Fatalf("after the release: %v (the release did not free the lease)", err)
	}
	l2.Release(ctx, time.Time{})
}
