package dbprovisioner

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/lease"
	"github.com/iamflow/iamflow/internal/ords"
)

// leaseBucket is the JetStream KV bucket of the per-account leases.
const leaseBucket = "iamflow_dbprovisioner_leases"

// Lease timings.
const (
	// leaseWait is how long a reconcile of an account waits for its lease:
	// longer than the lease's TTL (lease.DefaultTTL), so the lease of a
	// replica that died is taken over within one delivery.
	leaseWait = 15 * time.Second
	// busyRetry is how soon an event whose account stayed held for all
	// of leaseWait is tried again.
	busyRetry = time.Second
)

// errLeaseLost says the lease of the account was taken over by another
// replica while this one worked (it could not renew it in time): the
// work stopped and is retried.
var errLeaseLost = errors.New("the account's lease was taken over by another replica")

// openLeases opens the bucket of per-account leases. Replicas of the
// service (processes sharing one durable consumer) take a lease per
// (database, account) before they read an account and hold it until its
// statements have run, so two of them never plan the same account from the
// same catalog: without it both grant the same role, both lock the same
// account, and the second CREATE USER fails (ORA-01920).
func openLeases(ctx context.Context, b *bus.Bus, now func() time.Time, opts ...lease.Option) (*lease.Set, error) {
	storage, replicas := b.Placement()
	set, err := lease.Open(ctx, b.JetStream(), lease.Config{
		Bucket: leaseBucket, Description: "iamflow dbprovisioner: per-account leases across replicas",
		Storage: storage, Replicas: replicas,
	}, append([]lease.Option{lease.WithClock(now)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dbprovisioner: %w", err)
	}
	return set, nil
}

// leaseKey is the lease of one account (or role, or shared schema) of one
// database. Users and roles share one namespace in Oracle, so the object's
// name is the key.
func leaseKey(db string, subject ords.Identifier) string {
	return db + "." + base64.RawURLEncoding.EncodeToString([]byte(subject.Name()))
}

// userLeaseKey is the lease of one IAM user (by id) in one database's
// book: held from the read of the book and the user to the write of the
// book, so that two replicas syncing one user (its create and its rename,
// delivered to each) take turns. Without it, the replica with the older
// read could make the account of the user's old name after the other had
// synced the new one, and record the old name last: the old name's
// account stayed open. Its key has three tokens, an account's two.
func userLeaseKey(db, userID string) string {
	return db + ".id." + base64.RawURLEncoding.EncodeToString([]byte(userID))
}

// held is a lease on one database object, or none (a dry run, or a
// service built without a bus for tests of its logic).
type held struct {
	l    *lease.Lease
	stop context.CancelCauseFunc
}

// lock takes the lease of subject in r's database, waiting up to
// leaseWait, and returns a context that ends when the lease is lost (so a
// holder taken over stops before its next statement). A dry run changes
// nothing and takes no lease. An error matching lease.ErrBusy means
// another replica kept the account all along.
func (s *Service) lock(ctx context.Context, r *dbRuntime, subject ords.Identifier, c cause) (context.Context, *held, error) {
	return s.lockKey(ctx, r, leaseKey(r.cfg.Name, subject), "account "+subject.Name(), c)
}

// lockUser takes the lease of the IAM user userID's entry in r's book
// (userLeaseKey), as lock does an account's.
func (s *Service) lockUser(ctx context.Context, r *dbRuntime, userID string, c cause) (context.Context, *held, error) {
	return s.lockKey(ctx, r, userLeaseKey(r.cfg.Name, userID), "user "+userID, c)
}

func (s *Service) lockKey(ctx context.Context, r *dbRuntime, key, what string, c cause) (context.Context, *held, error) {
	if s.leases == nil || c.dryRun {
		return ctx, &held{}, nil
	}
	l, err := s.leases.Acquire(ctx, key, s.leaseWait)
	if err != nil {
		if errors.Is(err, lease.ErrBusy) {
			r.counters.busy.Add(1)
		}
		return ctx, nil, fmt.Errorf("database %s: %s: %w", r.cfg.Name, what, err)
	}
	ctx, stop := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-l.Lost():
			stop(errLeaseLost)
		case <-ctx.Done():
		}
	}()
	return ctx, &held{l: l, stop: stop}, nil
}

// fresh reports whether a read of the domain at readAt is not older than
// one another replica acted on for the same account.
func (h *held) fresh(readAt time.Time) bool { return h.l == nil || h.l.Fresh(readAt) }

// unlock releases the lease; when the work succeeded the account's
// watermark rises to read (the domain read it was based on).
func (h *held) unlock(ctx context.Context, read time.Time, err error) {
	if h.l == nil {
		return
	}
	h.stop(nil)
	if err != nil {
		read = time.Time{}
	}
	h.l.Release(ctx, read)
}

// leaseErr is the error a context ended by a lost lease left behind, or
// err as it is.
func leaseErr(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errLeaseLost) {
		return fmt.Errorf("%w: %w", errLeaseLost, err)
	}
	return err
}
