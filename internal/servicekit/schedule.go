package servicekit

import (
	"context"
	"time"

	"github.com/iamflow/iamflow/internal/bus"
)

// RepairConfig schedules a service's periodic repair (a sweep, a full
// reconcile): at start, every interval, and after an outage of NATS long
// enough to lose events. The service documents its defaults and its
// shortest interval, and validates it.
type RepairConfig struct {
	// Interval between the start of one scheduled run and the next; 0 turns
	// scheduled runs off.
	Interval time.Duration `yaml:"interval"`
	// OnStart runs once when the service starts.
	OnStart bool `yaml:"on_start"`
	// AfterOutage runs when the connection to NATS comes back after being
	// down at least this long (events sent meanwhile may be lost for good:
	// OCI Notifications stops retrying after 2 hours); 0 turns it off.
	AfterOutage time.Duration `yaml:"after_outage"`
}

// Loops are the background loops ([Work.Loops]) that run repair as c says:
// [Schedule]'s, and, with AfterOutage set, one that runs it ("after_outage")
// each time b's connection is back after an outage that long.
func (c RepairConfig) Loops(b *bus.Bus, repair func(ctx context.Context, trigger string)) []func(ctx context.Context) {
	loops := []func(context.Context){func(ctx context.Context) { Schedule(ctx, c.OnStart, c.Interval, repair) }}
	if c.AfterOutage > 0 {
		loops = append(loops, func(ctx context.Context) {
			b.WatchOutages(ctx, c.AfterOutage, func(ctx context.Context, _ time.Duration) { repair(ctx, "after_outage") })
		})
	}
	return loops
}

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
