package bus

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// WatchOutages calls fn, in the calling goroutine, each time the connection
// to NATS comes back after being down for at least min (measured on the
// monotonic clock), until ctx ends. down is how long it was away.
//
// An outage that long may have outlasted what the sender of an event
// retries (OCI Notifications gives up after 2 hours): a service that keeps
// state derived from events repairs what it may have missed in fn. While
// fn runs, later outages are noted; one that ends meanwhile calls fn again
// once fn returns (several are merged into one call).
func (b *Bus) WatchOutages(ctx context.Context, min time.Duration, fn func(ctx context.Context, down time.Duration)) {
	ch := b.nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CONNECTED)
	defer b.nc.RemoveStatusListener(ch)
	recovered := make(chan time.Duration, 1)
	go func() {
		var since time.Time // zero while connected
		if b.nc.Status() != nats.CONNECTED {
			since = time.Now()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case st, ok := <-ch:
				if !ok {
					return
				}
				switch {
				case st != nats.CONNECTED:
					if since.IsZero() {
						since = time.Now()
					}
				case !since.IsZero():
					down := time.Since(since)
					since = time.Time{}
					if down < min {
						continue
					}
					select {
					case recovered <- down:
					default: // a call is already due: it repairs this outage too
					}
				}
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case down := <-recovered:
			b.log.Info("nats back after an outage", "down", down.Round(time.Millisecond))
			fn(ctx, down)
		}
	}
}
