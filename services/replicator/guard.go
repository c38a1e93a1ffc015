package replicator

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// errNoHold is returned by approve and reject for an unknown hold id.
var errNoHold = errors.New("no such hold")

// guard is the mass-deletion guard. Check counts the deletions
// (delete_user, delete_group, deactivate_user) a plan would apply, per link
// and target: when they would exceed the link's guard.max_deletions within
// guard.window, or guard.max_percent of the target's objects in one
// reconcile, or when deletions are already held for that link and target,
// every deletion of the plan is held (Action.Held, with the reason) and
// recorded as a Hold for an operator to approve or reject. Other actions
// go ahead.
//
// newGuard keeps holds and the window in memory; openGuard keeps them in a
// JetStream KV bucket too (written through, loaded on each check), so holds
// survive restarts and replicas sharing a consumer share the window: it is
// grown by compare-and-set, so two replicas deleting at once cannot both
// pass max_deletions.
type guard struct {
	now func() time.Time
	kv  jetstream.KeyValue // nil: memory only

	// check serializes Check and approve in this process: each reads the
	// state, decides and writes it, and two at once would each count the
	// window without the other's deletions. Across replicas the window is
	// written by compare-and-set (growWindow).
	check sync.Mutex

	mu     sync.Mutex
	recent map[string][]time.Time // link/target -> times of applied deletions
	holds  map[string]hold
	seq    int
}

// hold is a set of deletions waiting for approval.
type hold struct {
	ID      string           `json:"id"`
	Link    string           `json:"link"`
	Target  string           `json:"target"`
	Reason  string           `json:"reason"`
	At      time.Time        `json:"at"`
	Actions []planner.Action `json:"actions"`
}

// defaultGuardBucket is the JetStream KV bucket of holds and windows.
const defaultGuardBucket = "iamflow_replicator_guard"

// openGuard returns a guard whose holds and windows are kept in bucket
// (created or updated; "" is defaultGuardBucket) and loaded from it now.
func openGuard(ctx context.Context, js jetstream.JetStream, bucket string, pl Placement, now func() time.Time) (*guard, error) {
	if bucket == "" {
		bucket = defaultGuardBucket
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Description: "iamflow replicator: mass-deletion holds and windows", History: 1, Storage: pl.Storage, Replicas: pl.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("replicator: create bucket %s: %w", bucket, err)
	}
	g := newGuard(now)
	g.kv = kv
	if err := g.refresh(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// refresh reloads the holds and windows from the bucket, so replicas of the
// service see each other's holds and deletions (nothing without a bucket).
// Check, Approve and Reject refresh on their own; call it before Holds when
// another process may have changed them.
func (g *guard) refresh(ctx context.Context) error {
	if g.kv == nil {
		return nil
	}
	holds, recent := map[string]hold{}, map[string][]time.Time{}
	err := bus.EachValue(ctx, g.kv, ">", func(e jetstream.KeyValueEntry) error {
		k := e.Key()
		switch {
		case strings.HasPrefix(k, "hold."):
			var h hold
			if err := json.Unmarshal(e.Value(), &h); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			holds[h.ID] = h
		case strings.HasPrefix(k, "window."):
			var ts []time.Time
			if err := json.Unmarshal(e.Value(), &ts); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			recent[strings.TrimPrefix(k, "window.")] = ts
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replicator: read guard state: %w", err)
	}
	g.mu.Lock()
	g.holds, g.recent = holds, recent
	g.mu.Unlock()
	return nil
}

// save writes v at key (nothing without a bucket); v nil deletes the key.
func (g *guard) save(ctx context.Context, key string, v any) error {
	if g.kv == nil {
		return nil
	}
	if v == nil {
		if err := g.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("replicator: delete guard state %s: %w", key, err)
		}
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("replicator: encode guard state %s: %w", key, err)
	}
	if _, err := g.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("replicator: write guard state %s: %w", key, err)
	}
	return nil
}

// newGuard returns a guard reading the time from now (nil: time.Now).
func newGuard(now func() time.Time) *guard {
	if now == nil {
		now = time.Now
	}
	return &guard{now: now, recent: map[string][]time.Time{}, holds: map[string]hold{}}
}

// Check returns p with its deletions held when they trip the guard.
// targetCount is the number of objects of the kinds deleted the target
// holds (0 when unknown: the percentage is then not checked). A dry-run
// plan is marked the same way but nothing is recorded. Deletions already
// waiting in a hold of the link and target are held again but not recorded
// twice (a retried event or a full reconcile meets them again).
//
// When the guard's bucket cannot be read or written (no leader for a
// moment, say), Check decides nothing: it returns an error wrapping
// errGuardState and records no hold. The caller must then apply nothing of
// the plan and try again later (an event is retried), since the guard can
// neither count these deletions nor keep a hold of them. The plan returned
// with the error has every deletion marked held, so a caller that applies
// it anyway deletes nothing.
func (g *guard) Check(ctx context.Context, cfg planner.GuardConfig, p planner.Plan, targetCount int) (planner.Plan, error) {
	cfg = planner.Link{Guard: cfg}.WithDefaults().Guard
	n := p.Deletions()
	if n == 0 {
		return p, nil
	}
	g.check.Lock()
	defer g.check.Unlock()
	if err := g.refresh(ctx); err != nil && !p.DryRun {
		return holdAll(p, "guard state not readable"), fmt.Errorf("%w: %w", errGuardState, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	key := p.Link + "." + p.Target
	now := g.now()
	recent := g.prune(key, now, cfg.Window)

	reason := g.tripReason(cfg, p, len(recent), n, targetCount)
	p.Actions = slices.Clone(p.Actions)
	if reason == "" {
		if p.DryRun {
			return p, nil
		}
		var done bool
		var err error
		reason, done, err = g.countDeletions(ctx, cfg, key, now, n)
		if err != nil {
			return holdAll(p, "guard state not saved"), err
		}
		if done {
			return p, nil
		}
	}
	p = holdAll(p, reason)
	if p.DryRun {
		return p, nil
	}
	return p, g.recordHold(ctx, p, reason, now)
}

// pendingHeld counts the deletions already held for approval on link and
// target. The caller holds g.mu.
func (g *guard) pendingHeld(link, target string) int {
	pending := 0
	for _, h := range g.holds {
		if h.Link == link && h.Target == target {
			pending += len(h.Actions)
		}
	}
	return pending
}

// tripReason says why n deletions of p trip the guard, given the recent
// deletions already counted in the window and the target's size (0: not
// known), or "" when they do not. The caller holds g.mu.
func (g *guard) tripReason(cfg planner.GuardConfig, p planner.Plan, recent, n, targetCount int) string {
	pending := g.pendingHeld(p.Link, p.Target)
	switch {
	case pending > 0:
		return fmt.Sprintf("deletions paused: %d held for approval on this link and target", pending)
	case recent+n > cfg.MaxDeletions:
		return fmt.Sprintf("%d deletions (%d already in the last %v) exceed guard.max_deletions %d",
			recent+n, recent, cfg.Window, cfg.MaxDeletions)
	case targetCount > 0 && float64(n)*100/float64(targetCount) > cfg.MaxPercent:
		return fmt.Sprintf("%d deletions of %d objects (%.1f%%) exceed guard.max_percent %v",
			n, targetCount, float64(n)*100/float64(targetCount), cfg.MaxPercent)
	}
	return ""
}

// countDeletions adds n deletions to the shared window of key. It reports
// done when they fit and are counted, or the reason to hold them when other
// replicas filled the window meanwhile; an error (wrapping errGuardState)
// when the window could not be saved. The caller holds g.mu.
func (g *guard) countDeletions(ctx context.Context, cfg planner.GuardConfig, key string, now time.Time, n int) (reason string, done bool, err error) {
	grown, err := g.growWindow(ctx, key, now, cfg.Window, cfg.MaxDeletions, n)
	switch {
	case errors.Is(err, errWindowFull):
		return fmt.Sprintf("%d deletions (%d already in the last %v, counted by another replica) exceed guard.max_deletions %d",
			len(grown)+n, len(grown), cfg.Window, cfg.MaxDeletions), false, nil
	case err != nil:
		return "", false, fmt.Errorf("%w: %w", errGuardState, err)
	}
	g.recent[key] = grown
	return "", true, nil
}

// recordHold saves a hold of p's held deletions that no hold of its link
// and target already waits with, so that a person can approve them. The
// caller holds g.mu.
func (g *guard) recordHold(ctx context.Context, p planner.Plan, reason string, now time.Time) error {
	held := g.notYetHeld(p)
	if len(held) == 0 {
		return nil // every one of them already waits for approval
	}
	g.seq++
	// The random part keeps ids of replicas sharing the bucket apart.
	id := fmt.Sprintf("%s.%s.%d.%d-%s", p.Link, p.Target, now.UnixNano(), g.seq, rand.Text()[:8])
	h := hold{ID: id, Link: p.Link, Target: p.Target, Reason: reason, At: now, Actions: held}
	if err := g.save(ctx, "hold."+id, h); err != nil {
		// A hold kept only here would vanish at the next refresh: the
		// caller retries, and the retry holds the deletions again.
		return fmt.Errorf("%w: %w", errGuardState, err)
	}
	g.holds[id] = h
	return nil
}

// notYetHeld returns p's held actions that no hold of its link and target
// already waits with. The caller holds g.mu.
func (g *guard) notYetHeld(p planner.Plan) []planner.Action {
	waiting := map[deletionKey]bool{}
	for _, h := range g.holds {
		if h.Link == p.Link && h.Target == p.Target {
			for _, a := range h.Actions {
				waiting[keyOf(a)] = true
			}
		}
	}
	var held []planner.Action
	for _, a := range p.Actions {
		if a.Held && !waiting[keyOf(a)] {
			held = append(held, a)
		}
	}
	return held
}

// errGuardState: the guard could not read or save its state, so it decided
// nothing about a plan's deletions; the work is to be tried again.
var errGuardState = errors.New("mass-deletion guard state unavailable")

// deletionKey names a deletion independently of the plan it is in.
type deletionKey struct {
	kind               planner.ActionKind
	sourceID, targetID string
}

func keyOf(a planner.Action) deletionKey {
	return deletionKey{kind: a.Kind, sourceID: a.SourceID, targetID: a.TargetID}
}

// errWindowFull: the deletions in the bucket's window (another replica's
// included) leave no room for the plan's.
var errWindowFull = errors.New("deletion window full")

// growWindow adds n deletions at now to the window of key (dropping those
// older than window, when it is positive), by compare-and-set on the
// bucket: if another replica's deletions left no room under limit (negative:
// no limit) since it was read, it returns the window as it is and
// errWindowFull. Without a bucket the window is the memory's. Call with
// g.mu held.
func (g *guard) growWindow(ctx context.Context, key string, now time.Time, window time.Duration, limit, n int) ([]time.Time, error) {
	add := func(ts []time.Time) []time.Time {
		grown := slices.Clone(ts)
		for range n {
			grown = append(grown, now)
		}
		return grown
	}
	if g.kv == nil {
		return add(g.recent[key]), nil
	}
	k := "window." + key
	for attempt := 0; ; attempt++ {
		var cur []time.Time
		var rev uint64
		e, err := g.kv.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, fmt.Errorf("replicator: read guard state %s: %w", k, err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &cur); err != nil {
				return nil, fmt.Errorf("replicator: decode guard state %s: %w", k, err)
			}
		}
		if window > 0 {
			cur = slices.DeleteFunc(cur, func(t time.Time) bool { return !t.After(now.Add(-window)) })
		}
		if limit >= 0 && len(cur)+n > limit {
			return cur, errWindowFull
		}
		grown := add(cur)
		b, err := json.Marshal(grown)
		if err != nil {
			return nil, fmt.Errorf("replicator: encode guard state %s: %w", k, err)
		}
		if rev == 0 {
			_, err = g.kv.Create(ctx, k, b)
		} else {
			_, err = g.kv.Update(ctx, k, b, rev)
		}
		if err == nil {
			return grown, nil
		}
		if !bus.IsWrongRevision(err) || attempt >= 10 {
			return nil, fmt.Errorf("replicator: write guard state %s: %w", k, err)
		}
	}
}

// holdAll marks every deletion of p held with reason.
func holdAll(p planner.Plan, reason string) planner.Plan {
	for i, a := range p.Actions {
		if a.IsDeletion() {
			a.Held, a.Reason = true, joinReason(a.Reason, "held: "+reason)
			p.Actions[i] = a
		}
	}
	return p
}

// prune drops deletions older than window and returns the rest.
func (g *guard) prune(key string, now time.Time, window time.Duration) []time.Time {
	ts := g.recent[key]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-window)) {
		i++
	}
	ts = ts[i:]
	g.recent[key] = ts
	return ts
}

// pending returns the pending holds, oldest first.
func (g *guard) pending() []hold {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]hold, 0, len(g.holds))
	for _, h := range g.holds {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b hold) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return compareIDs(a.ID, b.ID)
	})
	return out
}

// approve releases a hold: its actions are returned, no longer held, for
// the caller to apply (a level-triggered caller may instead reconcile the
// entities again), and count against the window.
func (g *guard) approve(ctx context.Context, id string) (hold, error) {
	g.check.Lock()
	defer g.check.Unlock()
	if err := g.refresh(ctx); err != nil {
		return hold{}, fmt.Errorf("approve hold %q: %w", id, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	h, ok := g.holds[id]
	if !ok {
		return hold{}, fmt.Errorf("approve hold %q: %w", id, errNoHold)
	}
	key := h.Link + "." + h.Target
	now := g.now()
	h.Actions = slices.Clone(h.Actions)
	for i := range h.Actions {
		h.Actions[i].Held = false
	}
	grown, err := g.growWindow(ctx, key, now, 0, -1, len(h.Actions))
	if err != nil {
		return hold{}, fmt.Errorf("approve hold %q: %w", id, err)
	}
	if err := g.save(ctx, "hold."+id, nil); err != nil {
		return hold{}, fmt.Errorf("approve hold %q: %w", id, err)
	}
	g.recent[key] = grown
	delete(g.holds, id)
	return h, nil
}

// reject drops a hold: its deletions are not applied. The objects stay in
// the target; a later reconcile plans them again (and the guard judges
// them again), so a rejection is best followed by a fix in the source or
// the link's scope.
func (g *guard) reject(ctx context.Context, id string) (hold, error) {
	if err := g.refresh(ctx); err != nil {
		return hold{}, fmt.Errorf("reject hold %q: %w", id, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	h, ok := g.holds[id]
	if !ok {
		return hold{}, fmt.Errorf("reject hold %q: %w", id, errNoHold)
	}
	if err := g.save(ctx, "hold."+id, nil); err != nil {
		return hold{}, fmt.Errorf("reject hold %q: %w", id, err)
	}
	delete(g.holds, id)
	return h, nil
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// compareIDs orders hold ids by length then text, so "x-10" follows "x-9".
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
