package replicator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
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
	// it every leaseTTL/3 while it works.
	leaseTTL = 10 * time.Second
	// primaryWait is how long a reconcile waits for the lease of the object
	// it reconciles; secondaryWait how long it waits for the other objects
	// its plan writes (short, so two reconciles that each hold what the
	// other wants give up and retry instead of waiting for ever).
	primaryWait   = 30 * time.Second
	secondaryWait = 2 * time.Second
	// leaseMargin is how long before its lease would expire for the
	// others the holder stops writing: another replica may take the lease
	// over at Until (by its own clock), and a write the holder starts must
	// be over by then.
	leaseMargin = 3 * time.Second
	// renewRetry is how soon a renewal that failed is tried again.
	renewRetry = 500 * time.Millisecond
)

// errStale says a plan was made from a read older than one another
// reconcile has applied since, so it must not be applied: read and plan again.
var errStale = errors.New("plan is older than a change already applied: read again")

// errBusy says an object's lease was not free in time.
var errBusy = errors.New("another reconcile of the object is in progress")

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
type fences struct {
	kv     jetstream.KeyValue
	holder string
	now    func() time.Time
	log    *slog.Logger

	mu    sync.Mutex
	local map[string]*localLock
}

type localLock struct {
	ch   chan struct{}
	refs int
}

// fenceState is an object's record in the bucket.
type fenceState struct {
	// Read is the newest source read (Unix nanoseconds) a reconcile of the
	// object was based on.
	Read int64 `json:"read"`
	// Holder and Until describe the lease: who holds it, until when.
	Holder string `json:"holder,omitempty"`
	Until  int64  `json:"until,omitempty"`
}

func openFences(ctx context.Context, js jetstream.JetStream, pl Placement, now func() time.Time, log *slog.Logger) (*fences, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: fenceBucket, Description: "iamflow replicator: per-object leases and watermarks",
		History: 1, TTL: fenceMaxAge, Storage: pl.Storage, Replicas: pl.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("replicator: create bucket %s: %w", fenceBucket, err)
	}
	return &fences{kv: kv, holder: holderID(), now: now, log: log, local: map[string]*localLock{}}, nil
}

// holderID names this process in leases.
func holderID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	h, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", h, os.Getpid(), hex.EncodeToString(b))
}

// lease is one held object.
type lease struct {
	f    *fences
	key  string
	mark int64 // the watermark (Unix nanoseconds) when the lease was taken

	mu   sync.Mutex
	rev  uint64
	stop chan struct{}
	done chan struct{}

	// valid is when the holder stops trusting the lease: leaseMargin
	// before the Until of its last successful write (by f.now).
	valid time.Time
	// lost is called (from the renewal goroutine) once valid has passed
	// without a successful renewal.
	lost func(error)
}

// acquire takes the lease of key, waiting up to wait for it. lost, if not
// nil, is called when the lease lapses before it is released.
func (f *fences) acquire(ctx context.Context, key string, wait time.Duration, lost func(error)) (*lease, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := f.lockLocal(ctx, key); err != nil {
		return nil, fmt.Errorf("lease %s: %w", key, errBusy)
	}
	l, err := f.acquireKV(ctx, key)
	if err != nil {
		f.unlockLocal(key)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lease %s: %w", key, errBusy)
		}
		return nil, err
	}
	l.stop, l.done, l.lost = make(chan struct{}), make(chan struct{}), lost
	go l.renew()
	return l, nil
}

func (f *fences) acquireKV(ctx context.Context, key string) (*lease, error) {
	delay := 5 * time.Millisecond
	for {
		now := f.now()
		var st fenceState
		e, err := f.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			b, _ := json.Marshal(fenceState{Holder: f.holder, Until: now.Add(leaseTTL).UnixNano()})
			rev, err := f.kv.Create(ctx, key, b)
			if err == nil {
				return &lease{f: f, key: key, rev: rev, valid: now.Add(leaseTTL - leaseMargin)}, nil
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return nil, fmt.Errorf("lease %s: %w", key, err)
			}
			continue // someone created it meanwhile: read it
		case err != nil:
			return nil, fmt.Errorf("lease %s: %w", key, err)
		}
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			st = fenceState{} // unreadable: treat as free, with no watermark
		}
		if st.Holder == "" || st.Holder == f.holder || st.Until < now.UnixNano() {
			mark := st.Read
			st.Holder, st.Until = f.holder, now.Add(leaseTTL).UnixNano()
			b, _ := json.Marshal(st)
			rev, err := f.kv.Update(ctx, key, b, e.Revision())
			if err == nil {
				return &lease{f: f, key: key, rev: rev, mark: mark, valid: now.Add(leaseTTL - leaseMargin)}, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue // changed meanwhile: read again
		}
		// Held by another replica: wait for it.
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// renew extends the lease every leaseTTL/3 until released, retrying a
// failed renewal every renewRetry. When the lease's validity passes
// without a successful renewal, it calls lost once and stops: the holder
// must not write under it any more.
func (l *lease) renew() {
	defer close(l.done)
	t := time.NewTimer(leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		now := l.f.now()
		l.mu.Lock()
		valid := l.valid
		l.mu.Unlock()
		if !now.Before(valid) {
			l.f.log.Warn("replicator lease lost: not renewed in time; its work stops and is retried", "key", l.key)
			if l.lost != nil {
				l.lost(fmt.Errorf("lease %s: %w", l.key, errLeaseLost))
			}
			return
		}
		st := fenceState{Read: l.mark, Holder: l.f.holder, Until: now.Add(leaseTTL).UnixNano()}
		b, _ := json.Marshal(st)
		ctx, cancel := context.WithTimeout(context.Background(), valid.Sub(now))
		l.mu.Lock()
		rev, err := l.f.kv.Update(ctx, l.key, b, l.rev)
		if bus.IsWrongRevision(err) && l.resync(ctx) {
			rev, err = l.f.kv.Update(ctx, l.key, b, l.rev)
		}
		if err == nil {
			l.rev, l.valid = rev, now.Add(leaseTTL-leaseMargin)
		}
		l.mu.Unlock()
		cancel()
		next := leaseTTL / 3
		if err != nil {
			l.f.log.Warn("replicator lease not renewed", "key", l.key, "error", err)
			next = renewRetry
		}
		l.mu.Lock()
		// Wake at the latest when the lease's validity passes.
		next = max(0, min(next, l.valid.Sub(l.f.now())))
		l.mu.Unlock()
		t.Reset(next)
	}
}

// resync is called (l.mu held) when a write of the lease met another
// revision than the last it knows: an earlier write whose answer was lost
// (a timeout while a JetStream leader changed) may have been stored. If
// the record still names this holder, it takes that revision and reports
// true; otherwise the lease is someone else's.
func (l *lease) resync(ctx context.Context) bool {
	e, err := l.f.kv.Get(ctx, l.key)
	if err != nil {
		return false
	}
	var st fenceState
	if json.Unmarshal(e.Value(), &st) != nil || st.Holder != l.f.holder {
		return false
	}
	l.rev = e.Revision()
	return true
}

// watermark is the object's watermark when the lease was taken: the newest
// source read a reconcile of it was based on (zero if none is recorded).
func (l *lease) watermark() time.Time {
	if l.mark == 0 {
		return time.Time{}
	}
	return time.Unix(0, l.mark)
}

// fresh reports whether a plan based on a read at readAt may be applied.
func (l *lease) fresh(readAt time.Time) bool { return l.mark == 0 || readAt.UnixNano() >= l.mark }

// release frees the lease and raises the watermark to read (a zero read
// leaves it). A failure is logged: the lease then expires by itself.
func (l *lease) release(ctx context.Context, read time.Time) {
	close(l.stop)
	<-l.done
	mark := l.mark
	if !read.IsZero() && read.UnixNano() > mark {
		mark = read.UnixNano()
	}
	b, _ := json.Marshal(fenceState{Read: mark})
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseTTL)
	defer cancel()
	l.mu.Lock()
	_, err := l.f.kv.Update(ctx, l.key, b, l.rev)
	if bus.IsWrongRevision(err) && l.resync(ctx) {
		_, err = l.f.kv.Update(ctx, l.key, b, l.rev)
	}
	l.mu.Unlock()
	if err != nil {
		l.f.log.Warn("replicator lease not released; it expires by itself", "key", l.key, "error", err)
	}
	l.f.unlockLocal(l.key)
}

func (f *fences) lockLocal(ctx context.Context, key string) error {
	f.mu.Lock()
	ll := f.local[key]
	if ll == nil {
		ll = &localLock{ch: make(chan struct{}, 1)}
		f.local[key] = ll
	}
	ll.refs++
	f.mu.Unlock()
	select {
	case ll.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		ll.refs--
		if ll.refs == 0 {
			delete(f.local, key)
		}
		f.mu.Unlock()
		return ctx.Err()
	}
}

func (f *fences) unlockLocal(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ll := f.local[key]
	<-ll.ch
	ll.refs--
	if ll.refs == 0 {
		delete(f.local, key)
	}
}

// leaseSet is the leases one plan holds, and the context its writes run
// under: cancelled, with cause errLeaseLost, as soon as one of its leases
// lapses, so that no write starts (and none in flight continues) once
// another replica may hold the object.
type leaseSet struct {
	f      *fences
	held   map[string]*lease
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// set starts a lease set whose writes run under the returned context.
func (f *fences) set(ctx context.Context) (*leaseSet, context.Context) {
	lctx, cancel := context.WithCancelCause(ctx)
	return &leaseSet{f: f, held: map[string]*lease{}, ctx: lctx, cancel: cancel}, lctx
}

// take acquires key unless held already, and reports whether a plan read at
// readAt is still fresh for it.
func (s *leaseSet) take(ctx context.Context, key string, wait time.Duration, readAt time.Time) (bool, error) {
	if l := s.held[key]; l != nil {
		return l.fresh(readAt), nil
	}
	l, err := s.f.acquire(ctx, key, wait, s.cancel)
	if err != nil {
		return false, err
	}
	s.held[key] = l
	return l.fresh(readAt), nil
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
			l.release(ctx, read)
			delete(s.held, k)
		}
	}
}

// release releases every lease, raising each watermark to read, and ends
// the set's context.
func (s *leaseSet) release(ctx context.Context, read time.Time) {
	for k, l := range s.held {
		l.release(ctx, read)
		delete(s.held, k)
	}
	s.cancel(context.Canceled)
}
