// Package lease serialises work on named objects across the goroutines of a
// process and across the replicas of a service, with leases in a JetStream
// KV bucket.
//
// A lease is a key's record: who holds it and until when. A holder renews
// it every TTL/3 while it works and frees it when done; a holder that dies
// stops renewing, and after TTL the next one takes it over. Within one
// process a local lock per key comes first, so goroutines of one replica
// queue without polling the bucket.
//
// Each record also keeps a watermark that outlives the leases: the newest
// read of the source that a holder acted on (see [Lease.Release]). A holder
// whose own read is older than the watermark ([Lease.Fresh] false) knows
// that another replica has acted on newer information since, and reads
// again before it acts.
package lease

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

// Defaults of [Config].
const (
	DefaultTTL    = 10 * time.Second
	DefaultMaxAge = 48 * time.Hour
)

// ErrBusy says a key's lease was not free within the wait: another holder
// is working on the object. Try again later.
var ErrBusy = errors.New("another holder is working on the object")

// Config describes a bucket of leases.
type Config struct {
	// Bucket is the KV bucket's name (created or updated by [Open]).
	Bucket string
	// Description is the bucket's description.
	Description string
	// TTL is how long a lease holds without renewal (default 10s): how
	// long a dead holder blocks its objects.
	TTL time.Duration
	// MaxAge is how long a key's record (its watermark) is kept after its
	// last change (default 48h).
	MaxAge time.Duration
	// Storage and Replicas place the bucket (as bus.Bus.Placement says).
	Storage  jetstream.StorageType
	Replicas int
}

func (c Config) withDefaults() Config {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Bucket == "" {
		errs = append(errs, errors.New("no bucket name"))
	}
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("ttl %s: must be positive", c.TTL))
	}
	if c.MaxAge < c.TTL {
		errs = append(errs, fmt.Errorf("max age %s: must be at least the ttl (%s)", c.MaxAge, c.TTL))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	return nil
}

// Option changes how Open builds a Set.
type Option func(*Set)

// WithClock sets the clock that dates leases. Default: time.Now.
func WithClock(now func() time.Time) Option { return func(s *Set) { s.now = now } }

// WithLogger sets the logger for leases that could not be renewed or
// released. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(s *Set) { s.log = l } }

// Set is one holder's view of a bucket of leases: every lease it takes is
// held in its name (a random id per Set), so two Sets in one process are
// two holders.
type Set struct {
	kv     jetstream.KeyValue
	ttl    time.Duration
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

// record is a key's value in the bucket.
type record struct {
	// Read is the watermark (Unix nanoseconds): the newest source read a
	// holder acted on.
	Read int64 `json:"read"`
	// Holder and Until describe the lease: who holds it, until when (Unix
	// nanoseconds); empty when free.
	Holder string `json:"holder,omitempty"`
	Until  int64  `json:"until,omitempty"`
}

// Open creates or updates the bucket cfg describes and returns a Set that
// takes leases in it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, opts ...Option) (*Set, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: cfg.Description,
		History: 1, TTL: cfg.MaxAge, Storage: cfg.Storage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("lease: create bucket %s: %w", cfg.Bucket, err)
	}
	s := &Set{kv: kv, ttl: cfg.TTL, holder: holderID(), now: time.Now, log: slog.New(slog.DiscardHandler), local: map[string]*localLock{}}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// holderID names a holder: host, process and a random part.
func holderID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	h, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", h, os.Getpid(), hex.EncodeToString(b))
}

// Lease is one held key. Release it when the work is done.
type Lease struct {
	s    *Set
	key  string
	mark int64

	mu    sync.Mutex
	rev   uint64
	valid time.Time // see renew
	stop  chan struct{}
	done  chan struct{}
	lost  chan struct{}
}

// Acquire takes the lease of key, waiting up to wait for it. It returns
// an error wrapping ErrBusy when the key stayed held (by this Set or
// another) for all of wait, and other errors when the bucket cannot be
// read or written. key must be a valid KV key.
func (s *Set) Acquire(ctx context.Context, key string, wait time.Duration) (*Lease, error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	busy := func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("lease %s: %w", key, ErrBusy)
	}
	if err := s.lockLocal(wctx, key); err != nil {
		return nil, busy()
	}
	l, err := s.acquireKV(wctx, key)
	if err != nil {
		s.unlockLocal(key)
		if wctx.Err() != nil {
			return nil, busy()
		}
		return nil, err
	}
	l.stop, l.done, l.lost = make(chan struct{}), make(chan struct{}), make(chan struct{})
	go l.renew()
	return l, nil
}

func (s *Set) acquireKV(ctx context.Context, key string) (*Lease, error) {
	delay := 5 * time.Millisecond
	for {
		now := s.now()
		e, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			b, _ := json.Marshal(record{Holder: s.holder, Until: now.Add(s.ttl).UnixNano()})
			rev, err := s.kv.Create(ctx, key, b)
			if err == nil {
				return &Lease{s: s, key: key, rev: rev, valid: now.Add(s.validFor())}, nil
			}
			if !bus.IsWrongRevision(err) {
				return nil, fmt.Errorf("lease %s: %w", key, err)
			}
			continue // created meanwhile: read it
		case err != nil:
			return nil, fmt.Errorf("lease %s: %w", key, err)
		}
		var rec record
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			rec = record{} // unreadable: free, with no watermark
		}
		if rec.Holder == "" || rec.Holder == s.holder || rec.Until < now.UnixNano() {
			mark := rec.Read
			rec.Holder, rec.Until = s.holder, now.Add(s.ttl).UnixNano()
			b, _ := json.Marshal(rec)
			rev, err := s.kv.Update(ctx, key, b, e.Revision())
			if err == nil {
				return &Lease{s: s, key: key, rev: rev, mark: mark, valid: now.Add(s.validFor())}, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !bus.IsWrongRevision(err) {
				return nil, fmt.Errorf("lease %s: %w", key, err)
			}
			continue // changed meanwhile: read again
		}
		// Held by another holder: wait for it to free or expire.
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

// renew extends the lease every TTL/3 until it is released, retrying a
// failed renewal every TTL/20. The lease is lost, and Lost closed, when
// another holder took it over, or when its validity (the Until of its
// last stored write, less a margin of 3/10 of the TTL, by this holder's
// clock) passes without a renewal stored: from Until on another holder may
// take it, and work under it must have stopped by then.
func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTimer(l.s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		now := l.s.now()
		l.mu.Lock()
		valid := l.valid
		l.mu.Unlock()
		if !now.Before(valid) {
			l.s.log.Warn("lease lost: not renewed in time", "key", l.key)
			close(l.lost)
			return
		}
		b, _ := json.Marshal(record{Read: l.mark, Holder: l.s.holder, Until: now.Add(l.s.ttl).UnixNano()})
		ctx, cancel := context.WithTimeout(context.Background(), valid.Sub(now))
		l.mu.Lock()
		rev, err := l.s.kv.Update(ctx, l.key, b, l.rev)
		if bus.IsWrongRevision(err) && l.resync(ctx) {
			rev, err = l.s.kv.Update(ctx, l.key, b, l.rev)
		}
		if err == nil {
			l.rev, l.valid = rev, now.Add(l.s.validFor())
		}
		next := max(0, min(l.s.ttl/3, l.valid.Sub(l.s.now())))
		l.mu.Unlock()
		cancel()
		if bus.IsWrongRevision(err) {
			// Another holder took the lease over (this one was late to
			// renew it): stop, and say so to whoever watches Lost.
			l.s.log.Warn("lease lost to another holder", "key", l.key)
			close(l.lost)
			return
		}
		if err != nil {
			l.s.log.Warn("lease not renewed", "key", l.key, "error", err)
			next = min(next, l.s.ttl/20)
		}
		t.Reset(next)
	}
}

// resync is called (l.mu held) when a write of the lease met another
// revision than the last it knows: an earlier write whose answer was lost
// (a timeout while a JetStream leader changed) may have been stored. If
// the record still names this holder, it takes that revision and reports
// true; otherwise the lease is someone else's.
func (l *Lease) resync(ctx context.Context) bool {
	e, err := l.s.kv.Get(ctx, l.key)
	if err != nil {
		return false
	}
	var rec record
	if json.Unmarshal(e.Value(), &rec) != nil || rec.Holder != l.s.holder {
		return false
	}
	l.rev = e.Revision()
	return true
}

// validFor is how long after a stored write (by its Until's clock) the
// holder trusts its lease: the TTL less a margin for the work in flight.
func (s *Set) validFor() time.Duration { return s.ttl - s.ttl*3/10 }

// Lost is closed when the lease lapsed (this holder could not renew it in
// time, so another holder may take it over) or another holder has taken it
// over; work under it should stop and be retried.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Watermark is the key's watermark when the lease was taken: the newest
// source read a holder acted on (zero if none is recorded).
func (l *Lease) Watermark() time.Time {
	if l.mark == 0 {
		return time.Time{}
	}
	return time.Unix(0, l.mark)
}

// Fresh reports whether work based on a read at readAt may go ahead: no
// holder has acted on a newer read.
func (l *Lease) Fresh(readAt time.Time) bool { return l.mark == 0 || readAt.UnixNano() >= l.mark }

// Release frees the lease and raises the watermark to read (a zero read
// leaves it). A failure is logged: the lease then expires by itself.
func (l *Lease) Release(ctx context.Context, read time.Time) {
	close(l.stop)
	<-l.done
	mark := l.mark
	if !read.IsZero() && read.UnixNano() > mark {
		mark = read.UnixNano()
	}
	select {
	case <-l.lost:
		// Someone else holds it now: leave their record alone.
	default:
		b, _ := json.Marshal(record{Read: mark})
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.s.ttl)
		l.mu.Lock()
		_, err := l.s.kv.Update(ctx, l.key, b, l.rev)
		if bus.IsWrongRevision(err) && l.resync(ctx) {
			_, err = l.s.kv.Update(ctx, l.key, b, l.rev)
		}
		l.mu.Unlock()
		cancel()
		if err != nil {
			l.s.log.Warn("lease not released; it expires by itself", "key", l.key, "error", err)
		}
	}
	l.s.unlockLocal(l.key)
}

func (s *Set) lockLocal(ctx context.Context, key string) error {
	s.mu.Lock()
	ll := s.local[key]
	if ll == nil {
		ll = &localLock{ch: make(chan struct{}, 1)}
		s.local[key] = ll
	}
	ll.refs++
	s.mu.Unlock()
	select {
	case ll.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		ll.refs--
		if ll.refs == 0 {
			delete(s.local, key)
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

func (s *Set) unlockLocal(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ll := s.local[key]
	<-ll.ch
	ll.refs--
	if ll.refs == 0 {
		delete(s.local, key)
	}
}
