// Package pause is the emulators' one way to wait: an injected latency
// before a request is handled, the backoff between webhook deliveries. A wait
// ends early when its context does (the client went away, the emulator
// closed), so no handler or delivery loop outlives what it serves.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx ends, and reports whether it waited the whole
// of d. A d of zero or less returns true at once, whatever the state of ctx.
func For(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
