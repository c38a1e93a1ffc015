package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// hint is a client error with a retry hint, as internal/identitydomain's
// and internal/ords's errors are.
type hint struct {
	retry bool
	after time.Duration
}

func (h hint) Error() string                    { return fmt.Sprintf("hint %v %v", h.retry, h.after) }
func (h hint) RetryHint() (bool, time.Duration) { return h.retry, h.after }

func TestResultOf(t *testing.T) {
	other := errors.New("something else")
	for _, tc := range []struct {
		name     string
		err      error
		done     bool
		terminal bool
		delay    time.Duration
	}{
		{name: "nil", err: nil, done: true},
		{name: "canceled", err: fmt.Errorf("read: %w", context.Canceled)},
		{name: "deadline inside a permanent error", err: Permanent(fmt.Errorf("call: %w", context.DeadlineExceeded))},
		{name: "retryable after", err: fmt.Errorf("wrapped: %w", hint{retry: true, after: 3 * time.Second}), delay: 3 * time.Second},
		{name: "retryable, negative wait", err: hint{retry: true, after: -time.Second}},
		{name: "not retryable", err: fmt.Errorf("wrapped: %w", hint{retry: false}), terminal: true},
		{name: "no hint", err: other},
		{name: "permanent", err: Permanent(other), terminal: true},
		{name: "transient over a permanent cause", err: Transient(fmt.Errorf("race: %w", hint{retry: false}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ResultOf(tc.err)
			if r.IsDone() != tc.done || r.IsTerminal() != tc.terminal || r.Delay() != tc.delay {
				t.Fatalf("ResultOf(%v) = %v, want done=%v terminal=%v delay=%v", tc.err, r, tc.done, tc.terminal, tc.delay)
			}
			if tc.err != nil && !errors.Is(r.Err(), tc.err) {
				t.Errorf("result error %v does not wrap %v", r.Err(), tc.err)
			}
		})
	}
}

func TestPermanentKeepsTheChain(t *testing.T) {
	sentinel := errors.New("sentinel")
	err := fmt.Errorf("outer: %w", Permanent(sentinel))
	if !errors.Is(err, sentinel) || err.Error() != "outer: sentinel" {
		t.Fatalf("%v: chain or message lost", err)
	}
	if retry, _ := RetryHint(err); retry {
		t.Fatal("a permanent error hints a retry")
	}
	if Permanent(nil) != nil || Transient(nil) != nil {
		t.Fatal("marking nil made an error")
	}
}
