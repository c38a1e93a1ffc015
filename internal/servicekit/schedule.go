package servicekit

import (
	"context"
	"time"
)

// Schedule runs repair at start when onStart ("on_start"), then every
// interval ("scheduled") until ctx ends; interval 0 or less means never on
// a schedule. A run still going when the next is due delays it: runs never
// overlap. It is the loop of a service's periodic repair (its resync.go).
func Schedule(ctx context.Context, onStart bool, interval time.Duration, repair func(ctx context.Context, trigger string)) {
	if onStart {
		repair(ctx, "on_start")
	}
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			repair(ctx, "scheduled")
		}
	}
}
