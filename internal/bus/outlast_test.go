package bus

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Outlast repeats a failing write until it succeeds, even after its
// caller's context ended; stops at once on a permanent error; and gives up
// after within, with the last error.
func TestOutlast(t *testing.T) {
	transient := errors.New("nats: no response from stream")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name     string
		failures int
		err      error
		within   time.Duration
		calls    int
		wantErr  bool
	}{
		{"succeeds after failures, caller gone", 3, transient, 5 * time.Second, 4, false},
		{"permanent: no repeat", 5, Permanent(transient), 5 * time.Second, 1, true},
		{"gives up after within", 1000, transient, 250 * time.Millisecond, 2, true}, // at 0 and 100 ms; the next would be at 300 ms
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := Outlast(cancelled, tc.within, 0, func(ctx context.Context) error {
				calls++
				if ctx.Err() != nil {
					t.Fatal("an attempt ran under the caller's ended context")
				}
				if calls <= tc.failures {
					return tc.err
				}
				return nil
			})
			if (err != nil) != tc.wantErr || calls != tc.calls {
				t.Fatalf("err %v after %d calls; want error %v after %d", err, calls, tc.wantErr, tc.calls)
			}
		})
	}
}
