package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/lease"
)

// fenceBucket is the JetStream KV bucket of the replicator's per-object
// leases and watermarks.
const fenceBucket = "iamflow_replicator_fence"

// fenceMaxAge bounds how long a watermark is kept after its object was last
// reconciled: longer than any plan can wait (a full reconcile of a large
// directory on a slow tier), so no stale plan outlives the record that
// refuses it.
const fenceMaxAge = 48 * time.Hour

// Lease timings.
const (
	// leaseTTL is how long a lease holds without renewal; the holder renews
	// it every leaseTTL/3 while it works, and stops writing when it could
	// not for most of leaseTTL (internal/lease).
	leaseTTL = 10 * time.Second
	// primaryWait is how long a reconcile waits for the lease of the object
	// it reconciles; secondaryWait how long it waits for the other objects
	// its plan writes (short, so two reconciles that each hold what the
	// other wants give up and retry instead of waiting for ever).
	primaryWait   = 30 * time.Second
	secondaryWait = 2 * time.Second
)

// errStale says a plan was made from a read older than one another
// reconcile has applied since, so it must not be applied: read and plan again.
var errStale = errors.New("plan is older than a change already applied: read again")

// errBusy says an object's lease was not free in time.
var errBusy = lease.ErrBusy

// errLeaseLost says a lease could not be renewed in time (JetStream did
// not answer, or another replica took it over): the holder stopped writing
// the object, since another replica may be writing it now; the work is
// retried from a fresh read.
var errLeaseLost = errors.New("lease lost: the object's lease could not be renewed in time")

// fences serialises the writes to each replicated object, across the
// goroutines of this process (a local lock) and across replicas (a lease in
// KV), and remembers per object the time of the newest source read that a
// reconcile of it was based on (the watermark).
//
// The rule it enforces: every write to an object happens under the
// object's lease, and only when the read it is based on is not older than
// the watermark. An event reconcile reads under the lease, so it is always
// fresh; a plan made from an older read (a full reconcile's listing, a group
// reconcile that read a member before that member's own reconcile ran) is
// refused and planned again. Without this, a reconcile delayed by retries
// would apply what it read seconds ago over what a newer reconcile already
// applied: a deleted user created again, a rename reverted.
type fences struct{ leases *lease.Set }

func openFences(ctx context.Context, js jetstream.JetStream, pl Placement, now func() time.Time, log *slog.Logger) (*fences, error) {
	set, err := lease.Open(ctx, js, lease.Config{Bucket: fenceBucket, Description: "iamflow replicator: per-object leases and watermarks",
		TTL: leaseTTL, MaxAge: fenceMaxAge, Storage: pl.Storage, Replicas: pl.Replicas}, lease.WithClock(now), lease.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("replicator: %w", err)
	}
	return &fences{leases: set}, nil
}

// leaseSet is the leases one plan holds, and the context its writes run
// under: cancelled, with cause errLeaseLost, as soon as one of its leases
// lapses, so that no write starts (and none in flight continues) once
// another replica may hold the object.
type leaseSet struct {
	f      *fences
	held   map[string]*lease.Lease
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// set starts a lease set whose writes run under the returned context.
func (f *fences) set(ctx context.Context) (*leaseSet, context.Context) {
	lctx, cancel := context.WithCancelCause(ctx)
	return &leaseSet{f: f, held: map[string]*lease.Lease{}, ctx: lctx, cancel: cancel}, lctx
}

// take acquires key unless held already, and reports whether a plan read at
// readAt is still fresh for it (no reconcile of the object was applied
// from a newer read since).
func (s *leaseSet) take(ctx context.Context, key string, wait time.Duration, readAt time.Time) (bool, error) {
	if l := s.held[key]; l != nil {
		return l.Fresh(readAt), nil
	}
	l, err := s.f.leases.Acquire(ctx, key, wait)
	if err != nil {
		return false, err
	}
	s.held[key] = l
	go func() {
		select {
		case <-l.Lost():
			s.cancel(fmt.Errorf("lease %s: %w", key, errLeaseLost))
		case <-s.ctx.Done():
		}
	}()
	return l.Fresh(readAt), nil
}

// lost wraps err with errLeaseLost when one of the set's leases lapsed
// (the error of a write it stopped is then a context cancellation).
func (s *leaseSet) lost(err error) error {
	if cause := context.Cause(s.ctx); err != nil && errors.Is(cause, errLeaseLost) && !errors.Is(err, errLeaseLost) {
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

// releaseKeys releases the set's leases of keys, raising each watermark to
// read.
func (s *leaseSet) releaseKeys(ctx context.Context, keys []string, read time.Time) {
	for _, k := range keys {
		if l := s.held[k]; l != nil {
			l.Release(ctx, read)
			delete(s.held, k)
		}
	}
}

// release releases every lease, raising each watermark to read, and ends
// the set's context.
func (s *leaseSet) release(ctx context.Context, read time.Time) {
	for k, l := range s.held {
		l.Release(ctx, read)
		delete(s.held, k)
	}
	s.cancel(context.Canceled)
}
