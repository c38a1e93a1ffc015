package replicator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// flakyKV is the guard's real bucket with failures on demand: while an
// operation's switch is on, it fails as a bucket without a leader would.
type flakyKV struct {
	jetstream.KeyValue
	read, window, hold atomic.Bool  // WatchFiltered; Get, Create and Update; Put and Delete
	failures           atomic.Int64 // calls failed so far
}

var errNoLeader = errors.New("nats: no response from stream")

func (f *flakyKV) fail(on *atomic.Bool) error {
	if on.Load() {
		f.failures.Add(1)
		return errNoLeader
	}
	return nil
}

// down switches every operation off (true) or on (false).
func (f *flakyKV) down(v bool) { f.read.Store(v); f.window.Store(v); f.hold.Store(v) }

func (f *flakyKV) WatchFiltered(ctx context.Context, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	if err := f.fail(&f.read); err != nil {
		return nil, err
	}
	return f.KeyValue.WatchFiltered(ctx, keys, opts...)
}

func (f *flakyKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if err := f.fail(&f.window); err != nil {
		return nil, err
	}
	return f.KeyValue.Get(ctx, key)
}

func (f *flakyKV) Create(ctx context.Context, key string, v []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if err := f.fail(&f.window); err != nil {
		return 0, err
	}
	return f.KeyValue.Create(ctx, key, v, opts...)
}

func (f *flakyKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	if err := f.fail(&f.window); err != nil {
		return 0, err
	}
	return f.KeyValue.Update(ctx, key, v, rev)
}

func (f *flakyKV) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	if err := f.fail(&f.hold); err != nil {
		return 0, err
	}
	return f.KeyValue.Put(ctx, key, v)
}

func (f *flakyKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	if err := f.fail(&f.hold); err != nil {
		return err
	}
	return f.KeyValue.Delete(ctx, key, opts...)
}

// storedHolds counts the holds in the bucket, read by a guard of its own.
func storedHolds(t *testing.T, ctx context.Context, js jetstream.JetStream) int {
	t.Helper()
	g := openShared(ctx, t, js, nil)
	return len(g.pending())
}

// A guard that cannot read or save its state decides nothing: it holds
// nothing, records nothing, and says so with an error the event handler
// retries. Once its bucket answers again, the same plan is judged by the
// limits alone: let through when under them, held (and the hold saved)
// when over.
func TestGuardWithoutItsStateDecidesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails func(*flakyKV) *atomic.Bool
		n     int // deletions in the plan (over 3 trips max_deletions)
	}{
		{"state not readable", func(f *flakyKV) *atomic.Bool { return &f.read }, 2},
		{"window not saved", func(f *flakyKV) *atomic.Bool { return &f.window }, 2},
		{"hold not saved", func(f *flakyKV) *atomic.Bool { return &f.hold }, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bustest.RunServer(t).Open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			g := openShared(ctx, t, b.JetStream(), newClock().now)
			f := &flakyKV{KeyValue: g.kv}
			g.kv = f
			tc.fails(f).Store(true)

			p, err := g.Check(ctx, cfg, deletionsOf("t", tc.n), 100)
			if !errors.Is(err, errGuardState) || !errors.Is(err, errNoLeader) {
				t.Fatalf("Check with its store failing: error %v, want errGuardState wrapping the store's", err)
			}
			if f.failures.Load() == 0 {
				t.Fatal("the store was never asked")
			}
			if r := resultOf(fmt.Errorf("wrapped: %w", err)); r.IsDone() || r.IsTerminal() {
				t.Fatalf("the event's result is %v, want a retry", r)
			}
			if heldCount(p) != tc.n {
				t.Errorf("the plan returned with the error lets deletions through: %s", p)
			}
			if hs := g.pending(); len(hs) != 0 {
				t.Fatalf("holds recorded without the guard's state: %+v", hs)
			}
			if n := storedHolds(t, ctx, b.JetStream()); n != 0 {
				t.Fatalf("%d holds stored", n)
			}

			f.down(false)
			p = check(t, g, deletionsOf("t", tc.n), 100)
			wantHeld := 0
			if tc.n > cfg.MaxDeletions {
				wantHeld = tc.n
			}
			if heldCount(p) != wantHeld {
				t.Fatalf("with its store back: %d held, want %d: %s", heldCount(p), wantHeld, p)
			}
			if n := storedHolds(t, ctx, b.JetStream()); n != min(wantHeld, 1) {
				t.Fatalf("with its store back: %d holds stored, want %d", n, min(wantHeld, 1))
			}
		})
	}
}

// Deletions already waiting in a hold are held again when they come back
// (a retried event, the next full reconcile) but not recorded twice.
func TestGuardRecordsAHeldDeletionOnce(t *testing.T) {
	g := newGuard(newClock().now)
	check(t, g, deletions(5), 0)
	if p := check(t, g, deletions(5), 0); heldCount(p) != 5 {
		t.Fatalf("held deletions came back and went through: %s", p)
	}
	if hs := g.pending(); len(hs) != 1 {
		t.Fatalf("holds = %d, want 1", len(hs))
	}
	// A new deletion among them is recorded on its own.
	if p := check(t, g, deletions(6), 0); heldCount(p) != 6 {
		t.Fatalf("plan %s", p)
	}
	hs := g.pending()
	if len(hs) != 2 || len(hs[1].Actions) != 1 || hs[1].Actions[0].TargetID != "t5" {
		t.Fatalf("holds = %+v", hs)
	}
}

// On the event path a guard without its state costs a retry, not a
// deletion: the event is not acknowledged with its deletion held (nothing
// would ever retry it), and once the bucket answers again the redelivered
// event deletes the group.
func TestGuardWithoutItsStateRetriesTheEvent(t *testing.T) {
	l := link("hub", "src", "tgt")
	l.Guard = planner.GuardConfig{MaxDeletions: 10, MaxPercent: 100, Window: time.Hour}
	c := config(l)
	c.FullReconcile.OnStart = false
	c.Consumer.Backoff = []time.Duration{100 * time.Millisecond, 300 * time.Millisecond}
	p := newPipeline(t, c, pipelineOpts{noRun: true})
	f := &flakyKV{KeyValue: p.svc.guard.kv}
	p.svc.guard.kv = f
	p.start()
	src, tgt := p.sites["src"], p.sites["tgt"]
	src.createGroup(t, "keep", "")
	gone := src.createGroup(t, "gone", "")
	p.converged("src", "tgt", 10*time.Second)

	f.down(true)
	ctx := context.Background()
	if _, err := src.human.DeleteGroup(ctx, gone, ""); err != nil {
		t.Fatal(err)
	}
	// Delivered and retried at least once while the bucket fails.
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := f.failures.Load(); n < 2 {
			return fmt.Errorf("the guard's store failed %d times, want 2 (a delivery and its retry)", n)
		}
		return nil
	})
	if n := len(tgt.emu.Groups()); n != 2 {
		t.Fatalf("target has %d groups while the guard has no state, want 2", n)
	}
	for _, r := range auditRecords(t, p.bus) {
		if r.Outcome == "held" {
			t.Errorf("a deletion was held for want of the guard's state: %v", r)
		}
	}

	f.down(false)
	p.converged("src", "tgt", 10*time.Second)
	if hs := p.svc.holds(ctx, "hub"); len(hs) != 0 {
		t.Fatalf("holds: %+v", hs)
	}
	// The audit record is published after the deletion the target shows.
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, r := range auditRecords(t, p.bus) {
			if r.Action == string(planner.ActDeleteGroup) && r.Outcome == "applied" {
				return nil
			}
		}
		return errors.New("no applied delete_group in the audit trail")
	})
	for _, r := range auditRecords(t, p.bus) {
		if r.Outcome == "held" && strings.Contains(r.Reason, "guard state") {
			t.Errorf("held for want of the guard's state: %v", r)
		}
	}
}

// A full reconcile whose guard has no state deletes nothing, holds nothing
// and says so; the next one, with the guard's bucket back, deletes.
func TestGuardWithoutItsStateFailsTheFullReconcile(t *testing.T) {
	l := link("hub", "src", "tgt")
	l.Guard = planner.GuardConfig{MaxDeletions: 10, MaxPercent: 100, Window: time.Hour}
	p := newPipeline(t, config(l), pipelineOpts{noRun: true})
	f := &flakyKV{KeyValue: p.svc.guard.kv}
	p.svc.guard.kv = f
	src, tgt := p.sites["src"], p.sites["tgt"]
	src.createGroup(t, "keep", "")
	gone := src.createGroup(t, "gone", "")
	ctx := context.Background()
	p.reconcileLink("hub", false)
	p.converged("src", "tgt", 5*time.Second)
	if _, err := src.human.DeleteGroup(ctx, gone, ""); err != nil {
		t.Fatal(err)
	}

	f.down(true)
	reps, err := p.svc.ReconcileLink(ctx, "hub", false)
	if !errors.Is(err, errGuardState) {
		t.Fatalf("full reconcile without the guard's state: %v, want errGuardState", err)
	}
	if len(reps) != 1 || reps[0].HeldDeletions != 0 || len(tgt.emu.Groups()) != 2 {
		t.Fatalf("report %v; target groups %d, want 2", reps, len(tgt.emu.Groups()))
	}
	f.down(false)
	if hs := p.svc.holds(ctx, "hub"); len(hs) != 0 {
		t.Fatalf("holds: %+v", hs)
	}
	p.reconcileLink("hub", false)
	p.converged("src", "tgt", 5*time.Second)
}
