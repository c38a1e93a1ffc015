package bus

import (
	"context"
	"errors"
	"time"
)

// RetryHinter is implemented by errors that know whether the work that
// failed can succeed if it is tried again, and after how long. The errors of
// iamflow's API clients (internal/identitydomain, internal/ords) implement
// it, so a handler hands them to [ResultOf] as they are: the bus knows
// nothing of OCI or ORDS, and no service translates their errors again.
type RetryHinter interface {
	// RetryHint reports whether retrying can help and, when the server said
	// so (a Retry-After, a breaker's cooldown), after how long; 0 means the
	// consumer's backoff.
	RetryHint() (retry bool, after time.Duration)
}

// RetryHint returns the hint of the first error in err's chain that carries
// one (see [RetryHinter]). An error without a hint may succeed later: it
// is (true, 0).
func RetryHint(err error) (retry bool, after time.Duration) {
	var h RetryHinter
	if errors.As(err, &h) {
		retry, after = h.RetryHint()
		return retry, max(after, 0)
	}
	return true, 0
}

// Permanent marks err as one that retrying cannot fix: [ResultOf]
// dead-letters it at once, and [RetryHint] reports false. A service marks
// its own errors with it (a sentinel such as "permanent failure", a
// request that can never be valid); errors.Is and errors.As see through it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err}
}

// Transient marks err as one that a later attempt can get past (a race a
// fresh read resolves), after the consumer's backoff.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, retry: true}
}

// hinted is an error with a hint of its own.
type hinted struct {
	err   error
	retry bool
}

func (e *hinted) Error() string                    { return e.err.Error() }
func (e *hinted) Unwrap() error                    { return e.err }
func (e *hinted) RetryHint() (bool, time.Duration) { return e.retry, 0 }

// IsPermanent reports whether retrying cannot fix err: its [RetryHint]
// says so and it is not a cancelled or expired context (whatever wraps
// one: a stopping consumer is not a verdict on the work).
func IsPermanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	retry, _ := RetryHint(err)
	return !retry
}

// ResultOf is the [Result] of work that ended with err, the one mapping
// from errors to results every handler shares:
//
//   - nil: [Done];
//   - a cancelled or expired context (the consumer is stopping, or a call
//     ran out of time): [Retry];
//   - an error whose [RetryHint] says retrying cannot help: [Terminal], so
//     a person reads it in IAM_DLQ;
//   - any other error: [RetryAfter] the wait it asks for (the consumer's
//     backoff when none), dead-lettered after max_deliver like every retry.
//
// A handler decides first what its own errors mean (an entity that is gone
// may be done, a conflict may mean "read again"), and passes the rest here.
func ResultOf(err error) Result {
	if err == nil {
		return Done()
	}
	if IsPermanent(err) {
		return Terminal(err)
	}
	_, after := RetryHint(err)
	return RetryAfter(after, err)
}
