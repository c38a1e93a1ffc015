package replicator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// clock is an injected clock tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)} }

// deletions returns a plan with n delete_user actions (of t0, t1, ...) and one update.
func deletions(n int) planner.Plan { return deletionsOf("t", n) }

// deletionsOf is deletions of the users prefix0, prefix1, ...
func deletionsOf(prefix string, n int) planner.Plan {
	p := planner.Plan{Link: "l", Source: "hub", Target: "spoke"}
	p.Actions = append(p.Actions, planner.Action{Kind: planner.ActUpdateUser, TargetID: "keep"})
	for i := range n {
		p.Actions = append(p.Actions, planner.Action{Kind: planner.ActDeleteUser, TargetID: fmt.Sprintf("%s%d", prefix, i)})
	}
	return p
}

func heldCount(p planner.Plan) int {
	n := 0
	for _, a := range p.Actions {
		if a.Held {
			n++
		}
	}
	return n
}

// check runs g.Check and fails the test on an error.
func check(t *testing.T, g *guard, p planner.Plan, count int) planner.Plan {
	t.Helper()
	out, err := g.Check(context.Background(), cfg, p, count)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var cfg = planner.GuardConfig{MaxDeletions: 3, MaxPercent: 50, Window: time.Hour}

// openShared opens a guard on the bucket js holds, as each replica does, on
// the clock now; an error fails the test.
func openShared(ctx context.Context, t testing.TB, js jetstream.JetStream, now func() time.Time) *guard {
	t.Helper()
	g, err := openGuard(ctx, js, "", Placement{}, now)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGuardLetsFewDeletionsThrough(t *testing.T) {
	g := newGuard(newClock().now)
	p := check(t, g, deletions(3), 100)
	if heldCount(p) != 0 || len(p.Writes()) != 4 || len(g.pending()) != 0 {
		t.Fatalf("plan %s\nholds %+v", p, g.pending())
	}
}

func TestGuardHoldsOverMaxInOneReconcile(t *testing.T) {
	g := newGuard(newClock().now)
	p := check(t, g, deletions(4), 100)
	if heldCount(p) != 4 || len(p.Writes()) != 1 || p.Writes()[0].Kind != planner.ActUpdateUser {
		t.Fatalf("plan %s", p)
	}
	hs := g.pending()
	if len(hs) != 1 || len(hs[0].Actions) != 4 || !strings.Contains(hs[0].Reason, "max_deletions 3") {
		t.Fatalf("holds = %+v", hs)
	}
}

func TestGuardCountsTheWindow(t *testing.T) {
	c := newClock()
	g := newGuard(c.now)
	if p := check(t, g, deletions(2), 0); heldCount(p) != 0 {
		t.Fatal("first two held")
	}
	c.advance(30 * time.Minute)
	if p := check(t, g, deletions(2), 0); heldCount(p) != 2 {
		t.Fatalf("2+2 in the window not held: %s", p)
	}
	if _, err := g.reject(context.Background(), g.pending()[0].ID); err != nil {
		t.Fatal(err)
	}
	c.advance(31 * time.Minute) // the first two leave the window
	if p := check(t, g, deletions(2), 0); heldCount(p) != 0 {
		t.Fatalf("held after the window moved: %s", p)
	}
}

func TestGuardHoldsOverPercent(t *testing.T) {
	g := newGuard(newClock().now)
	p := check(t, g, deletions(2), 3) // 67% of 3 objects
	if heldCount(p) != 2 || !strings.Contains(p.Actions[1].Reason, "max_percent") {
		t.Fatalf("plan %s", p)
	}
}

func TestGuardPausesWhileHeld(t *testing.T) {
	g := newGuard(newClock().now)
	check(t, g, deletions(5), 0)
	p := check(t, g, deletionsOf("other", 1), 0)
	if heldCount(p) != 1 || !strings.Contains(p.Actions[1].Reason, "paused") {
		t.Fatalf("a single deletion went through while others were held: %s", p)
	}
	if n := len(g.pending()); n != 2 {
		t.Fatalf("holds = %d", n)
	}
}

func TestGuardApprove(t *testing.T) {
	g := newGuard(newClock().now)
	check(t, g, deletions(5), 0)
	id := g.pending()[0].ID
	h, err := g.approve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Actions) != 5 || h.Actions[0].Held {
		t.Fatalf("approved = %+v", h)
	}
	if _, err := g.approve(context.Background(), id); !errors.Is(err, errNoHold) {
		t.Fatalf("second approve = %v", err)
	}
	if _, err := g.reject(context.Background(), "nope"); !errors.Is(err, errNoHold) {
		t.Fatalf("reject unknown = %v", err)
	}
	// Approved deletions count against the window.
	if p := check(t, g, deletions(1), 0); heldCount(p) != 1 {
		t.Fatalf("window ignores approved deletions: %s", p)
	}
}

func TestGuardDryRunRecordsNothing(t *testing.T) {
	g := newGuard(newClock().now)
	p := deletions(5)
	p.DryRun = true
	if got := check(t, g, p, 0); heldCount(got) != 5 {
		t.Fatalf("dry run not marked: %s", got)
	}
	if len(g.pending()) != 0 {
		t.Fatal("dry run recorded a hold")
	}
	p = deletions(3)
	p.DryRun = true
	check(t, g, p, 0)
	if got := check(t, g, deletions(3), 0); heldCount(got) != 0 {
		t.Fatal("dry-run deletions counted against the window")
	}
}

func TestGuardIsPerTarget(t *testing.T) {
	g := newGuard(newClock().now)
	check(t, g, deletions(5), 0)
	other := deletions(1)
	other.Target = "spoke-b"
	if p := check(t, g, other, 0); heldCount(p) != 0 {
		t.Fatal("a hold on one target paused another")
	}
}

func TestGuardDoesNotTouchTheInput(t *testing.T) {
	g := newGuard(newClock().now)
	in := deletions(5)
	check(t, g, in, 0)
	if heldCount(in) != 0 {
		t.Fatal("Check changed its input plan")
	}
}

func TestGuardHoldsSurviveRestart(t *testing.T) {
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClock()
	g := openShared(ctx, t, b.JetStream(), c.now)
	check(t, g, deletions(2), 0) // counted in the window
	check(t, g, deletions(2), 0) // 4 > 3: held
	held := g.pending()
	if len(held) != 1 {
		t.Fatalf("holds = %+v", held)
	}

	g2 := openShared(ctx, t, b.JetStream(), c.now)
	got := g2.pending()
	if len(got) != 1 || got[0].ID != held[0].ID || len(got[0].Actions) != 2 || !got[0].Actions[0].Held || !got[0].At.Equal(held[0].At) {
		t.Fatalf("reloaded holds = %+v", got)
	}
	if p := check(t, g2, deletions(1), 0); heldCount(p) != 1 {
		t.Fatal("reloaded guard is not paused by the reloaded hold")
	}
	for _, h := range g2.pending() {
		if _, err := g2.reject(ctx, h.ID); err != nil {
			t.Fatal(err)
		}
	}
	// The window survived too: 2 recorded + 2 more exceeds 3.
	if p := check(t, g2, deletions(2), 0); heldCount(p) != 2 {
		t.Fatalf("window forgotten across the restart: %s", p)
	}
	h := g2.pending()[0]
	if _, err := g2.approve(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	g3 := openShared(ctx, t, b.JetStream(), c.now)
	if n := len(g3.pending()); n != 0 {
		t.Fatalf("approved and rejected holds came back: %d", n)
	}
}

// Two replicas on one bucket: a hold one makes pauses the other's
// deletions, and the other can approve it.
func TestGuardIsSharedByReplicas(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClock()
	a := openShared(ctx, t, b.JetStream(), c.now)
	other := openShared(ctx, t, b.JetStream(), c.now)
	check(t, a, deletions(2), 0)
	if p := check(t, other, deletions(2), 0); heldCount(p) != 2 {
		t.Fatalf("the other replica ignored the first one's window: %s", p)
	}
	if p := check(t, a, deletionsOf("other", 1), 0); heldCount(p) != 1 {
		t.Fatalf("the first replica ignored the other's hold: %s", p)
	}
	if err := a.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	hs := a.pending()
	if len(hs) != 2 {
		t.Fatalf("holds seen by the first replica: %+v", hs)
	}
	for _, h := range hs {
		if _, err := other.approve(ctx, h.ID); err != nil {
			t.Fatalf("approve %s on the other replica: %v", h.ID, err)
		}
	}
	if err := a.refresh(ctx); err != nil || len(a.pending()) != 0 {
		t.Fatalf("after approval: %v %+v", err, a.pending())
	}
}

// Deletions checked at once, in one process and in two replicas of one
// bucket, never pass max_deletions together: the window is read, decided
// and grown as one step (a lock in the process, compare-and-set in the
// bucket).
func TestGuardConcurrentChecksStayUnderTheLimit(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClock()
	var replicas []*guard
	for range 2 {
		g := openShared(ctx, t, b.JetStream(), c.now)
		replicas = append(replicas, g)
	}
	one := planner.GuardConfig{MaxDeletions: 3, MaxPercent: 100, Window: time.Hour}
	const checks = 12
	passed := make(chan int, checks)
	var wg sync.WaitGroup
	for i := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := replicas[i%2].Check(ctx, one, deletions(1), 0)
			if err != nil {
				t.Error(err)
				return
			}
			passed <- 1 - heldCount(p)
		}()
	}
	wg.Wait()
	close(passed)
	n := 0
	for x := range passed {
		n += x
	}
	if n != one.MaxDeletions {
		t.Fatalf("%d deletions passed a guard of max_deletions %d", n, one.MaxDeletions)
	}
}
