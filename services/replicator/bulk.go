package replicator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// bulkBatch is how many Bulk operations a full reconcile gathers before it
// sends them; the client splits them further by the target's advertised
// maxOperations and maxPayloadSize.
const bulkBatch = 200

// batchesInFlight is how many full batches may be out being sent at once
// (two keep the Bulk group's pace while one waits on its answers).
const batchesInFlight = 2

// batch gathers the plans a full reconcile sends as SCIM Bulk until they
// carry bulkBatch operations. A worker that fills it sends it; while
// batchesInFlight are out, the others wait to queue, so the reconcile holds
// a few batches, not one per worker (200 new groups with their members are
// 8,000 actions).
type batch struct {
	slots *semaphore.Weighted

	mu      sync.Mutex
	pending []planner.Plan
	ops     int
}

func newBatch() *batch { return &batch{slots: semaphore.NewWeighted(batchesInFlight)} }

// queue adds p, which carries n operations, and sends what is queued
// through apply once it carries bulkBatch operations.
func (q *batch) queue(ctx context.Context, p planner.Plan, n int, apply func(context.Context, []planner.Plan) error) error {
	if err := q.slots.Acquire(ctx, 1); err != nil {
		return err
	}
	defer q.slots.Release(1)
	return apply(ctx, q.add(p, n))
}

// add queues p, which carries n operations, and returns what is queued
// once it carries bulkBatch operations (nil before).
func (q *batch) add(p planner.Plan, n int) []planner.Plan {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, p)
	if q.ops += n; q.ops < bulkBatch {
		return nil
	}
	out := q.pending
	q.pending, q.ops = nil, 0
	return out
}

// take returns what is queued and empties the queue.
func (q *batch) take() []planner.Plan {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.pending
	q.pending, q.ops = nil, 0
	return out
}

// applyBatch applies plans through send, SCIM Bulk, unless off says the
// target cannot take it, stores the audit records of what Bulk did, and
// applies what it left the single way, calling after on each such plan
// once applied.
func (fr *fullRun) applyBatch(ctx context.Context, off *atomic.Bool, plans []planner.Plan,
	send func(context.Context, []planner.Plan) ([]planner.Plan, error), after func(planner.Plan)) error {
	if len(plans) == 0 {
		return nil
	}
	single := plans
	if !off.Load() {
		var err error
		single, err = send(ctx, plans)
		fr.storeRecords(ctx)
		if err != nil {
			return err
		}
	}
	var errs []error
	for _, p := range single {
		if err := fr.applyListed(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		if after != nil {
			after(p)
		}
	}
	return errors.Join(errs...)
}

// bulkWrites sends a full reconcile's one-action writes as SCIM Bulk
// (RFC 7644 §3.7) where the target supports it: user creates and updates in
// the user pass, deactivations and deletions of users and groups once the
// mass-deletion guard let them through. An initial sync is almost nothing
// but creates; one call per user costs a Free-tier domain (150 calls a
// minute) hours, while Bulk carries 50 operations a call under a rate-limit
// group of its own (docs/performance.md).
//
// Each batch is applied as applyListed applies a plan: under the leases of
// its objects, only plans still fresh against the newest reads, with the
// mapping validated. Every write Bulk made is audited as applied, one
// record per action like a single write, and its bookkeeping done as the
// single path does it: a created user is mapped and remembered as an own
// write, an updated one remembered in its new state, a retired or deleted
// one's mapping forgotten. A delete that finds its object gone is done.
// What the target refused (an attribute it does not take, a name taken
// meanwhile) or did not run goes the single way, which knows how to adopt,
// retry piecewise and record the failure; a create whose result is missing,
// or that met "already exists", is looked up by userName first and taken as
// made when it carries the source id as externalId. A target that does not
// support Bulk (its ServiceProviderConfig says so, or it answers a request
// as a whole with an error) gets single calls for the rest of the run.
type bulkWrites struct {
	fr  *fullRun
	off atomic.Bool
	q   *batch
}

// eligible reports whether p can go in a Bulk batch: one write Bulk
// carries, not held.
func (b *bulkWrites) eligible(p planner.Plan) bool {
	return !b.off.Load() && !p.DryRun && len(p.Actions) == 1 && !p.Actions[0].Held && bulkCarries(p.Actions[0])
}

// bulkCarries reports whether a is a write bulkWrites sends.
func bulkCarries(a planner.Action) bool {
	switch a.Kind {
	case planner.ActCreateUser:
		return a.User != nil
	case planner.ActUpdateUser, planner.ActDeactivateUser:
		return a.TargetID != "" && len(a.Ops) > 0
	case planner.ActDeleteUser, planner.ActDeleteGroup:
		return a.TargetID != ""
	}
	return false
}

// bulkOpOf is the Bulk operation that applies a (one bulkCarries takes).
func bulkOpOf(a planner.Action, bulkID string) identitydomain.BulkOperation {
	switch a.Kind {
	case planner.ActCreateUser:
		return identitydomain.BulkOperation{Method: "POST", Path: "/Users", BulkID: bulkID, Data: identitydomain.UserWithSchemas(a.User.SDKUser())}
	case planner.ActUpdateUser, planner.ActDeactivateUser:
		return identitydomain.BulkOperation{Method: "PATCH", Path: "/Users/" + a.TargetID, Data: identitydomain.PatchOf(a.Ops...)}
	case planner.ActDeleteUser:
		return identitydomain.BulkOperation{Method: "DELETE", Path: "/Users/" + a.TargetID}
	}
	return identitydomain.BulkOperation{Method: "DELETE", Path: "/Groups/" + a.TargetID}
}

// add queues p and, when a batch is full, applies it (in the caller's
// goroutine).
func (b *bulkWrites) add(ctx context.Context, p planner.Plan) error {
	return b.q.queue(ctx, p, 1, b.apply)
}

// flush applies what is queued.
func (b *bulkWrites) flush(ctx context.Context) error {
	return b.apply(ctx, b.q.take())
}

// apply sends one batch and falls back to single writes for what Bulk
// did not do.
func (b *bulkWrites) apply(ctx context.Context, plans []planner.Plan) error {
	fr := b.fr
	return fr.applyBatch(ctx, &b.off, plans, b.send, func(p planner.Plan) {
		fr.d.noteUser(ctx, fr.ix, &fr.mu, p.Actions[0], false)
	})
}

// send applies plans through Bulk under their objects' leases and returns
// the plans left for single calls.
func (b *bulkWrites) send(ctx context.Context, plans []planner.Plan) (single []planner.Plan, err error) {
	fr, d := b.fr, b.fr.d
	ls, lctx := d.fences.set(ctx)
	defer func() { err = ls.lost(err) }()
	sent, err := fr.fencedOnly(ctx, lctx, ls, plans)
	if err != nil {
		return nil, err
	}
	ops := make([]identitydomain.BulkOperation, 0, len(sent))
	for _, p := range sent {
		ops = append(ops, bulkOpOf(p.Actions[0], fmt.Sprintf("u%d", len(ops))))
	}
	results := fr.bulk(lctx, &b.off, "users", ops)
	var created []planner.Mapping
	for i, r := range results {
		mp, ok := b.mapBack(ctx, lctx, sent[i], r)
		if !ok {
			single = append(single, sent[i])
			continue
		}
		if mp != nil {
			created = append(created, *mp)
		}
	}
	// What Bulk did not do is left to single calls: its leases go back
	// without raising the watermark, or the single attempt would find its
	// own listing stale.
	for _, p := range single {
		ls.releaseKeys(ctx, d.writeKeys(p), time.Time{})
	}
	ls.release(ctx, d.now())
	for _, mp := range created {
		d.noteMapping(fr.ix, &fr.mu, mp, false)
	}
	return single, nil
}

// mapBack reads the result of one plan's write: it audits what Bulk did
// and does its bookkeeping, and reports whether the plan is done (false:
// it goes the single way). ctx is for the bookkeeping, lctx for reads
// under the batch's leases. A created user's mapping is returned once it
// is stored, for the index.
func (b *bulkWrites) mapBack(ctx, lctx context.Context, p planner.Plan, r identitydomain.BulkResult) (mapped *planner.Mapping, done bool) {
	fr, d := b.fr, b.fr.d
	a := p.Actions[0]
	var err error
	switch a.Kind {
	case planner.ActCreateUser:
		res := applied{created: map[planner.Kind]map[string]string{planner.KindUser: {}, planner.KindGroup: {}}}
		id, mp := fr.bulkCreatedUser(ctx, lctx, p, a, r, &res)
		return mp, id != ""
	case planner.ActDeleteUser, planner.ActDeleteGroup:
		// One already gone is deleted all the same.
		if r.Err != nil && !identitydomain.IsKind(r.Err, identitydomain.KindNotFound) {
			fr.refused(a, r.Err)
			return nil, false
		}
		d.stats.bulkDeletes.Add(1)
		err = d.forget(ctx, d.scope(a.Entity), a.SourceID)
	default: // an update or a deactivation
		if r.Err != nil {
			fr.refused(a, r.Err)
			return nil, false
		}
		d.stats.bulkUpdates.Add(1)
		if a.Kind == planner.ActDeactivateUser {
			err = d.retire(ctx, d.scope(planner.KindUser), a.SourceID, a.TargetID)
		} else if src, tgt := fr.sourceUser(a.SourceID), fr.ix.tgtUsers[a.TargetID]; src != nil && tgt != nil {
			fr.ownWrite(ctx, a.TargetID, d.rules.UpdatedUser(*src, *tgt, fr.declares))
		}
	}
	if err != nil {
		d.log.Warn("mapping not forgotten after a Bulk write; the next reconcile forgets it", "link", d.link.Name, "target", d.target, "action", a.Kind, "name", a.Name, "error", err)
	}
	d.stats.writes.Add(1)
	d.record(ctx, &fr.buf, p, a, fr.c, "applied", "")
	return mapped, true
}

// bulk sends ops through the target's SCIM Bulk and returns one result per
// operation. A call that fails as a whole (Bulk unsupported, a request
// refused) turns Bulk off for the rest of the run (off), so that what is
// left of the kind (users or groups) goes one call at a time; the results
// before the failure stand.
func (fr *fullRun) bulk(ctx context.Context, off *atomic.Bool, kind string, ops []identitydomain.BulkOperation) []identitydomain.BulkResult {
	d := fr.d
	results, err := d.tgt.Bulk(ctx, ops, identitydomain.BulkOptions{})
	if err != nil {
		off.Store(true)
		d.log.Warn("SCIM Bulk not usable for this target; writing "+kind+" one call at a time", "link", d.link.Name, "target", d.target, "error", err)
	}
	return results
}

// bulkCreatedUser does the bookkeeping of user create a of plan p, sent
// through Bulk with result r, as the single path does it: the new user is
// mapped (noted in res), remembered as an own write, counted and audited as
// applied. It returns the user's id ("" when it was not created: a goes
// the single way) and its mapping once stored, for the index. ctx is for
// the bookkeeping, lctx for the lookup under the batch's leases.
func (fr *fullRun) bulkCreatedUser(ctx, lctx context.Context, p planner.Plan, a planner.Action, r identitydomain.BulkResult, res *applied) (string, *planner.Mapping) {
	d := fr.d
	if a.TargetID = fr.createdUser(lctx, a, r); a.TargetID == "" {
		return "", nil
	}
	d.stats.bulkCreates.Add(1)
	d.stats.writes.Add(1)
	var mapped *planner.Mapping
	if err := d.remember(ctx, d.scope(planner.KindUser), a.SourceID, a.TargetID, planner.OriginCreated, res); err != nil {
		d.log.Warn("user created by Bulk, but its mapping not stored; the next reconcile adopts it", "link", d.link.Name, "target", d.target, "user", a.Name, "error", err)
	} else {
		mapped = &planner.Mapping{SourceID: a.SourceID, TargetID: a.TargetID, Origin: planner.OriginCreated}
	}
	fr.ownWrite(ctx, a.TargetID, *a.User)
	d.record(ctx, &fr.buf, p, a, fr.c, "applied", "")
	return a.TargetID, mapped
}

// createdUser reads the result of a user create: the new user's id, or ""
// when it was not created. One whose result is missing, or that met
// "already exists", may be made (its answer was lost, or an earlier
// create's was): a user carrying the source id as externalId is ours.
func (fr *fullRun) createdUser(ctx context.Context, a planner.Action, r identitydomain.BulkResult) string {
	d := fr.d
	if r.Err == nil && r.ID != "" {
		return r.ID
	}
	if errors.Is(r.Err, identitydomain.ErrNoResult) || identitydomain.IsKind(r.Err, identitydomain.KindConflict) {
		if u, found, err := d.tgt.FindUserByName(ctx, a.User.UserName, "externalId"); err == nil && found && str(u.ExternalId) == a.SourceID {
			return str(u.Id)
		}
	}
	fr.refused(a, r.Err)
	return ""
}

// refused logs an operation Bulk did not do, before it goes the single way.
func (fr *fullRun) refused(a planner.Action, err error) {
	d := fr.d
	if err != nil && !errors.Is(err, identitydomain.ErrNotRun) {
		d.log.Info("Bulk write refused; trying it alone", "link", d.link.Name, "target", d.target, "action", a.Kind, "name", a.Name, "error", err)
	}
}

// ownWrite remembers the state a Bulk write left target user id in, so the
// event the write causes in the target is known as its echo.
func (fr *fullRun) ownWrite(ctx context.Context, id string, u planner.UserState) {
	d := fr.d
	if err := d.writes.record(ctx, d.link.Name, d.target, planner.KindUser, id, d.rules.UserFingerprint(u)); err != nil {
		d.log.Warn("own writes not remembered; their echoes will be reconciled", "error", err)
	}
}

// fencedOnly returns the plans of batch that fenced lets through, under
// ls. On an error, every lease of ls goes back.
func (fr *fullRun) fencedOnly(ctx, lctx context.Context, ls *leaseSet, batch []planner.Plan) ([]planner.Plan, error) {
	var out []planner.Plan
	for _, p := range batch {
		p, ok, err := fr.fenced(lctx, ls, p)
		if err != nil {
			ls.release(ctx, time.Time{})
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// fenced takes the leases of p's objects and reports whether p is still
// fresh and its mappings hold; a plan that is not is counted as stale. A
// group plan stale only because it creates a member that has a copy now
// is fresh without that create (withMadeMembers), and returned so.
func (fr *fullRun) fenced(ctx context.Context, ls *leaseSet, p planner.Plan) (planner.Plan, bool, error) {
	ok, err := fr.fresh(ctx, ls, p)
	if err == nil && !ok {
		var made bool
		if p, made, err = fr.withMadeMembers(ctx, p); made {
			ok, err = fr.fresh(ctx, ls, p)
		}
	}
	if err == nil && !ok {
		fr.countStale(p)
	}
	return p, ok, err
}

// fresh takes the leases of p's objects and reports whether p is still
// fresh and its mappings hold.
func (fr *fullRun) fresh(ctx context.Context, ls *leaseSet, p planner.Plan) (bool, error) {
	d := fr.d
	for _, k := range d.writeKeys(p) {
		fresh, err := ls.take(ctx, k, primaryWait, fr.readAt)
		if err != nil || !fresh {
			return false, err
		}
	}
	if err := d.validate(ctx, p); err != nil {
		return false, ignoreStale(err)
	}
	return true, nil
}
