package bus

import (
	"errors"
	"fmt"
	"time"
)

type resultKind uint8

const (
	kindUnset resultKind = iota // the zero Result
	kindDone
	kindRetry
	kindTerminal
)

// Result is what a [Handler] decided about a message. Build one with [Done],
// [Retry], [RetryAfter] or [Terminal]. The zero Result is treated as a Retry,
// so a handler that forgets to decide never loses a message.
type Result struct {
	kind  resultKind
	err   error
	delay time.Duration
}

// Done acknowledges the message: its work is finished.
func Done() Result { return Result{kind: kindDone} }

// Retry asks for the message again after the consumer's backoff for its
// delivery count; after max_deliver deliveries it is dead-lettered with err.
func Retry(err error) Result {
	if err == nil {
		err = errors.New("retry requested")
	}
	return Result{kind: kindRetry, err: err}
}

// RetryAfter is [Retry] with an explicit delay, such as a rate limit's
// Retry-After; d <= 0 means the consumer's backoff. max_deliver still applies.
func RetryAfter(d time.Duration, err error) Result {
	r := Retry(err)
	r.delay = max(d, 0)
	return r
}

// Terminal dead-letters the message at once: retrying cannot help (malformed,
// forbidden by policy, ...). err is the reason stored with the dead letter.
func Terminal(err error) Result {
	if err == nil {
		err = errors.New("terminal")
	}
	return Result{kind: kindTerminal, err: err}
}

// Err is the error a Retry or Terminal carries, nil for Done.
func (r Result) Err() error {
	if r.kind == kindUnset {
		return errUnsetResult
	}
	return r.err
}

// IsDone reports whether r acknowledges the message.
func (r Result) IsDone() bool { return r.kind == kindDone }

// IsTerminal reports whether r dead-letters the message at once.
func (r Result) IsTerminal() bool { return r.kind == kindTerminal }

// Delay is the delay asked by [RetryAfter], 0 otherwise.
func (r Result) Delay() time.Duration { return r.delay }

// String is "done", "retry: <err>", "retry after 5s: <err>" or "terminal: <err>".
func (r Result) String() string {
	switch r.kind {
	case kindDone:
		return "done"
	case kindRetry:
		if r.delay > 0 {
			return fmt.Sprintf("retry after %v: %v", r.delay, r.err)
		}
		return fmt.Sprintf("retry: %v", r.err)
	case kindTerminal:
		return fmt.Sprintf("terminal: %v", r.err)
	}
	return "retry: " + errUnsetResult.Error()
}

var errUnsetResult = errors.New("handler returned the zero Result")

// normalize turns the zero Result into the Retry it stands for.
func (r Result) normalize() Result {
	if r.kind == kindUnset {
		return Retry(errUnsetResult)
	}
	return r
}
