package replicator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// backlog stores, while the replicator is away, the events of n users
// created in src and added to groups groups (n/groups members each), and
// waits until ingest has stored them all.
func backlog(t testing.TB, src *site, n, groups int) {
	t.Helper()
	emitted := src.emu.EventStats().Emitted
	groupWorld(t, src, n, groups, n/groups)
	testutil.CheckFor(t, time.Minute, 10*time.Millisecond, func() error {
		if st := src.emu.EventStats(); st.Pending != 0 || st.Emitted < emitted+int64(2*n) {
			return fmt.Errorf("events: %+v", st)
		}
		return nil
	})
}

// awayWithBacklog is a pipeline from src to tgt whose replicator, built
// but not running, has a backlog of users users added to one group, and
// catches up from 100 queued events.
func awayWithBacklog(t *testing.T, users int) (p *pipeline, src, tgt *site) {
	t.Helper()
	p = newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{noRun: true})
	p.svc.catchUpAt = 100
	src, tgt = p.sites["src"], p.sites["tgt"]
	backlog(t, src, users, 1)
	return p, src, tgt
}

// A backlog after an outage of the replicator: the first handler finds
// hundreds of events queued behind its own and catches the link up with one
// full reconcile, which creates the users through SCIM Bulk; the events
// queued behind it are acknowledged without a call. One by one, each user
// would cost a create of its own.
func TestBacklogIsCaughtUpInBulk(t *testing.T) {
	const users = 300
	p, src, tgt := awayWithBacklog(t, users)

	p.start()
	p.settledWithin(60*time.Second, 20*time.Millisecond)
	p.converged("src", "tgt", 10*time.Second)
	sameGroups(t, p, src, tgt)

	ctr := p.svc.Status(context.Background()).GetCounters()
	if ctr[counterCatchUps] != 1 {
		t.Errorf("catch-ups: %d, want 1 (counters %v)", ctr[counterCatchUps], ctr)
	}
	if ctr[counterCovered] < ctr[counterEvents]*9/10 {
		t.Errorf("%d of %d events covered by the catch-up, want 90%% or more", ctr[counterCovered], ctr[counterEvents])
	}
	st := tgt.emu.Stats()
	if st.BulkOperations < users {
		t.Errorf("%d operations through Bulk, want the %d users' creates at least", st.BulkOperations, users)
	}
	if n := calls(tgt.emu); n > users/10 {
		t.Errorf("%d requests to the target for %d users; one by one would be a create each", n, users)
	}
}

// Below the backlog that starts one, no catch-up: a trickle of events is
// reconciled event by event.
func TestNoCatchUpBelowTheBacklog(t *testing.T) {
	p, src, tgt := awayWithBacklog(t, 40)
	p.svc.catchUpAt = math.MaxUint64
	p.start()
	p.settled()
	sameGroups(t, p, src, tgt)
	if n := p.svc.Status(context.Background()).GetCounters()[counterCatchUps]; n != 0 {
		t.Errorf("catch-ups: %d, want none", n)
	}
	if n := tgt.emu.Stats().BulkOperations; n != 0 {
		t.Errorf("%d operations through Bulk for events reconciled one by one", n)
	}
}

// fullyCovered is the stream sequence up to which a full reconcile covered
// the events of source for target's consumer (0: none).
func fullyCovered(p *pipeline, source, target string) uint64 {
	c := p.svc.covers[target]
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all[source].seq
}

// Two replicas sharing a backlog catch it up once between them (claimed in
// KV); the replica that lost the claim reconciles its share of the events
// one by one, and the target still equals the source.
func TestReplicasCatchUpOnce(t *testing.T) {
	p, src, tgt := awayWithBacklog(t, 300)
	other := p.newService()
	other.catchUpAt = p.svc.catchUpAt
	p.start()
	pipelinetest.Run(t, other)
	p.settledWithin(60*time.Second, 20*time.Millisecond)
	p.converged("src", "tgt", 10*time.Second)
	sameGroups(t, p, src, tgt)
	ctx := context.Background()
	n := p.svc.Status(ctx).GetCounters()[counterCatchUps] + other.Status(ctx).GetCounters()[counterCatchUps]
	if n != 1 {
		t.Errorf("%d catch-ups between two replicas, want 1", n)
	}
}

// A full reconcile does not cover the events of an object whose plan it
// did not apply because a newer read of it was reconciled meanwhile: that
// reconcile may have failed, and its event, retried, is the one that still
// has the change to make. Here an event reconcile of carol is made to look
// newer than the full reconcile's listing (its watermark, as a reconcile
// that read carol and failed to write leaves it); carol's queued event is
// then handled after the full reconcile, and carol is copied.
func TestFullReconcileDoesNotCoverWhatItLeftStale(t *testing.T) {
	p := newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{noRun: true})
	src, tgt := p.sites["src"], p.sites["tgt"]
	emitted := src.emu.EventStats().Emitted
	src.createUser(t, "alice", "Alice")
	carol := src.createUser(t, "carol", "Carol")
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if st := src.emu.EventStats(); st.Pending != 0 || st.Emitted < emitted+2 {
			return fmt.Errorf("events: %+v", st)
		}
		return nil
	})
	ctx := context.Background()
	d := p.svc.direction("src", "tgt")
	ls, lctx := d.fences.set(ctx)
	if _, err := ls.take(lctx, d.scope(planner.KindUser).key(carol), time.Second, time.Time{}); err != nil {
		t.Fatal(err)
	}
	newer := time.Now().Add(2 * time.Second) // after the listing below, before the event is handled
	ls.release(lctx, newer)

	reps := p.reconcileLink("hub", false)
	if n := reps[0].Actions[actionStale]; n != 1 {
		t.Fatalf("stale plans: %d, want carol's (actions %v)", n, reps[0].Actions)
	}
	if _, ok := tgt.emu.UserByName("carol"); ok {
		t.Fatal("carol was copied by the full reconcile: the test proves nothing")
	}
	// The event is handled from a read after that reconcile of carol, as
	// it would be: a clock has to pass, nothing to synchronise with.
	time.Sleep(time.Until(newer))
	p.start()
	p.settled()
	if _, ok := tgt.emu.UserByName("carol"); !ok {
		t.Error("carol's event was taken as covered by a full reconcile that left carol stale: carol was never copied")
	}
	if _, ok := tgt.emu.UserByName("alice"); !ok {
		t.Error("alice was not copied")
	}
	if n := p.svc.Status(ctx).GetCounters()[counterCovered]; n != 1 {
		t.Errorf("%d events covered, want alice's", n)
	}
}

// A backlog found while a full reconcile of the link runs in this process
// (the repair on start, say) waits for that reconcile instead of racing it
// with calls of its own, and what it covered is then acknowledged.
func TestBacklogWaitsForTheFullReconcileUnderWay(t *testing.T) {
	const users = 300
	p, _, tgt := awayWithBacklog(t, users)
	// A full reconcile of the link is under way: the handlers find it.
	underWay := make(chan struct{})
	p.svc.running.Store("hub", underWay)
	p.start()
	ctx := context.Background()
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		c, ok := p.svc.consumers.Load("tgt")
		if !ok {
			return errors.New("no consumer yet")
		}
		st, err := c.(*bus.Consumer).Stats(ctx)
		if err != nil || st.AckPending == 0 {
			return fmt.Errorf("no event delivered yet: %+v %v", st, err)
		}
		return nil
	})
	// It runs (here, now) and ends.
	p.svc.running.Delete("hub")
	p.reconcileLink("hub", false)
	close(underWay)

	p.settledWithin(60*time.Second, 20*time.Millisecond)
	p.converged("src", "tgt", 10*time.Second)
	ctr := p.svc.Status(ctx).GetCounters()
	if ctr[counterCatchUps] != 0 {
		t.Errorf("catch-ups: %d, want none beside the reconcile under way", ctr[counterCatchUps])
	}
	if ctr[counterCovered] < ctr[counterEvents]*9/10 {
		t.Errorf("%d of %d events covered by the reconcile under way, want 90%% or more", ctr[counterCovered], ctr[counterEvents])
	}
	if n := tgt.emu.Stats().BulkOperations; n < users {
		t.Errorf("%d operations through Bulk: the events raced the reconcile with calls of their own", n)
	}
}
