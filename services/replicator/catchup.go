package replicator

import (
	"context"
	"errors"
	"sync"
	"time"
)

// catchUpBacklog is the backlog (events of a target's consumer not yet
// delivered) at which a handler catches its link up with a full reconcile
// instead of reconciling its event alone. Events reconciled one by one cost
// two reads and a write or more each; a full reconcile reads both sides a
// page at a time (1,000 users or 200 groups a page) and writes through SCIM
// Bulk where the target takes it (50 users a request, in a rate-limit group
// of its own). A thousand queued events, after an outage of the replicator
// or of a target, are some 3,000 calls one by one: at OCI's Free tier (150
// calls a minute) 20 minutes, where the catch-up of the same changes takes
// a few Bulk requests (docs/performance.md).
const catchUpBacklog = 1000

// catchUpEvery: a link is caught up at most this often, by one replica
// (claimed in the state bucket). A backlog that builds up again meanwhile
// is reconciled event by event, or by the next catch-up.
const catchUpEvery = time.Minute

// catchUp is one direction's catch-up: at most one runs at once in a
// process, and the handlers of the direction's events wait for it.
type catchUp struct {
	mu      sync.Mutex
	running chan struct{} // closed when the catch-up under way ends
	last    time.Time     // when the last one began
}

// catchUp runs a full reconcile of d's link for a backlog of pending
// events, or waits for the one under way (a catch-up, or any full reconcile
// of the link in this process); it returns at once when a catch-up began
// within catchUpEvery. What the reconcile covers is noted by
// ReconcileLink: the handler then acknowledges its event without a call.
// A catch-up that cannot run (another replica claimed the link's reconcile,
// the reconcile fails, its deletions are held) leaves the events to be
// reconciled one by one, as they would have been without it.
func (s *Service) catchUp(ctx context.Context, d *direction, pending uint64) {
	cu := &d.catchUp
	cu.mu.Lock()
	if ch := cu.running; ch != nil {
		cu.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	now := s.kit.Now()
	if !cu.last.IsZero() && now.Sub(cu.last) < catchUpEvery {
		cu.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	cu.running, cu.last = ch, now
	cu.mu.Unlock()
	defer func() {
		cu.mu.Lock()
		cu.running = nil
		cu.mu.Unlock()
		close(ch)
	}()

	log := d.log.With("link", d.link.Name, "source", d.source, "target", d.target, "backlog", pending)
	if v, ok := s.running.Load(d.link.Name); ok {
		// A full reconcile of the link is under way here (the repair on
		// start, say): the backlog waits for it rather than race it.
		log.Info("backlog waits for the full reconcile of the link under way")
		select {
		case <-v.(chan struct{}):
		case <-ctx.Done():
		}
		return
	}
	won, err := s.state.claimCatchUp(ctx, d.link.Name, now, catchUpEvery)
	switch {
	case err != nil:
		log.Warn("backlog not caught up: the replicator's state bucket is not readable; its events are reconciled one by one", "error", err)
		return
	case !won:
		log.Info("backlog left to the catch-up of the link begun within the last minute (by another replica, or for the link's other direction); events it does not cover are reconciled one by one")
		return
	}
	d.stats.catchUps.Add(1)
	log.Info("catching up a backlog with a full reconcile (SCIM Bulk where the target takes it)")
	if _, err := s.ReconcileLink(ctx, d.link.Name, false); errors.Is(err, errReconcileRunning) {
		log.Info("backlog left to the full reconcile of the link under way")
	} else if err != nil {
		log.Warn("catch-up failed; its events are reconciled one by one", "error", err)
	}
}
