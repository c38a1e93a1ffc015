package replicator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// bulkBatch is how many user creates a full reconcile gathers before it
// sends them as SCIM Bulk; the client splits them further by the target's
// advertised maxOperations and maxPayloadSize.
const bulkBatch = 200

// bulkCreates sends a full reconcile's user creates as SCIM Bulk
// (RFC 7644 §3.7) where the target supports it. An initial sync is almost
// nothing but creates; one call per user costs a Free-tier domain (150
// calls a minute) hours, while Bulk carries 50 creates a call under a
// rate-limit group of its own (docs/performance.md).
//
// Each batch is applied as applyListed applies a plan: under the leases of
// its users, only plans still fresh against the newest reads, with the
// mapping validated. Every created user is mapped, remembered and audited
// as applied, one record per user, like a single create. A create the
// target refused (an attribute it does not take, a name taken meanwhile)
// or did not run goes the single way, which knows how to adopt, retry
// piecewise and record the failure; one whose result is missing, or that
// met "already exists", is looked up by userName first and taken as
// created when it carries the source id as externalId. A target that does not support Bulk
// (its ServiceProviderConfig says so, or it answers the request as a whole
// with an error) gets single calls for the rest of the run.
type bulkCreates struct {
	fr  *fullRun
	off atomic.Bool

	mu      sync.Mutex
	pending []planner.Plan
}

// eligible reports whether p can go in a Bulk batch: one user create.
func (b *bulkCreates) eligible(p planner.Plan) bool {
	return !b.off.Load() && !p.DryRun && len(p.Actions) == 1 && p.Actions[0].Kind == planner.ActCreateUser && p.Actions[0].User != nil
}

// add queues p and, when a batch is full, applies it (in the caller's
// goroutine).
func (b *bulkCreates) add(ctx context.Context, p planner.Plan) error {
	b.mu.Lock()
	b.pending = append(b.pending, p)
	var batch []planner.Plan
	if len(b.pending) >= bulkBatch {
		batch, b.pending = b.pending, nil
	}
	b.mu.Unlock()
	if batch == nil {
		return nil
	}
	return b.apply(ctx, batch)
}

// flush applies what is queued.
func (b *bulkCreates) flush(ctx context.Context) error {
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	return b.apply(ctx, batch)
}

// apply sends one batch and falls back to single creates for what Bulk
// did not do.
func (b *bulkCreates) apply(ctx context.Context, batch []planner.Plan) error {
	fr, d := b.fr, b.fr.d
	var single []planner.Plan
	if b.off.Load() {
		single = batch
	} else {
		var err error
		single, err = b.send(ctx, batch)
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
		d.noteUser(ctx, fr.ix, &fr.mu, p.Actions[0], false)
	}
	return errors.Join(errs...)
}

// send applies batch through Bulk under its users' leases and returns the
// plans left for single calls.
func (b *bulkCreates) send(ctx context.Context, batch []planner.Plan) (single []planner.Plan, err error) {
	fr, d := b.fr, b.fr.d
	ls, lctx := d.fences.set(ctx)
	defer func() { err = ls.lost(err) }()
	var (
		sent []planner.Plan
		ops  []identitydomain.BulkOperation
	)
	for _, p := range batch {
		ok, err := fr.fenced(lctx, ls, p)
		if err != nil {
			ls.release(ctx, time.Time{})
			return nil, err
		}
		if !ok {
			continue
		}
		a := p.Actions[0]
		ops = append(ops, identitydomain.BulkOperation{Method: "POST", Path: "/Users", BulkID: fmt.Sprintf("u%d", len(ops)), Data: identitydomain.UserWithSchemas(a.User.SDKUser())})
		sent = append(sent, p)
	}
	results, berr := d.tgt.Bulk(lctx, ops, identitydomain.BulkOptions{})
	if berr != nil {
		// Unsupported, or a request refused as a whole: single calls from
		// now on. Results before it stand.
		b.off.Store(true)
		d.log.Warn("SCIM Bulk not usable for this target; creating users one call at a time", "link", d.link.Name, "target", d.target, "error", berr)
	}
	var created []planner.Action
	for i, r := range results {
		p, a := sent[i], sent[i].Actions[0]
		if r.Err != nil && (errors.Is(r.Err, identitydomain.ErrNoResult) || identitydomain.IsKind(r.Err, identitydomain.KindConflict)) {
			// It may be made (its answer was lost, or an earlier create's
			// was): a user carrying the source id as externalId is ours.
			if u, found, err := d.tgt.FindUserByName(lctx, a.User.UserName, "externalId"); err == nil && found && str(u.ExternalId) == a.SourceID {
				r.Err, r.ID = nil, str(u.Id)
			}
		}
		if r.Err != nil || r.ID == "" {
			if !errors.Is(r.Err, identitydomain.ErrNotRun) {
				d.log.Info("Bulk create refused; trying it alone", "link", d.link.Name, "target", d.target, "user", a.Name, "error", r.Err)
			}
			single = append(single, p)
			continue
		}
		d.stats.bulkCreates.Add(1)
		d.stats.writes.Add(1)
		var res applied
		res.created = map[planner.Kind]map[string]string{planner.KindUser: {}, planner.KindGroup: {}}
		a.TargetID = r.ID
		if err := d.remember(lctx, d.scope(planner.KindUser), a.SourceID, r.ID, planner.OriginCreated, &res); err != nil {
			d.log.Warn("user created by Bulk, but its mapping not stored; the next reconcile adopts it", "link", d.link.Name, "target", d.target, "user", a.Name, "error", err)
		} else {
			created = append(created, a)
		}
		d.record(ctx, &fr.buf, p, a, fr.c, "applied", "")
		if err := d.writes.record(ctx, d.link.Name, d.target, planner.KindUser, r.ID, d.rules.UserFingerprint(*a.User)); err != nil {
			d.log.Warn("own writes not remembered; their echoes will be reconciled", "error", err)
		}
	}
	// What Bulk did not make is left to single calls: its leases go back
	// without raising the watermark, or the single attempt would find its
	// own listing stale.
	for _, p := range single {
		ls.releaseKeys(ctx, d.writeKeys(p), time.Time{})
	}
	ls.release(ctx, d.now())
	for _, a := range created {
		d.noteUser(ctx, fr.ix, &fr.mu, a, false)
	}
	return single, nil
}

// fenced takes the leases of p's objects and reports whether p is still
// fresh and its mappings hold; a plan that is not is counted as stale.
func (fr *fullRun) fenced(ctx context.Context, ls *leaseSet, p planner.Plan) (bool, error) {
	d := fr.d
	for _, k := range d.writeKeys(p) {
		fresh, err := ls.take(ctx, k, primaryWait, fr.readAt)
		if err != nil {
			return false, err
		}
		if !fresh {
			fr.countStale()
			return false, nil
		}
	}
	if err := d.validate(ctx, p); err != nil {
		if errors.Is(err, errStale) {
			fr.countStale()
			return false, nil
		}
		return false, err
	}
	return true, nil
}
