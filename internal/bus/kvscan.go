package bus

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// EachValue calls fn with every current value of kv whose key matches
// filter (a subject pattern: ">" for every key), in one pass over the
// bucket, and stops at fn's first error. Deleted keys are passed over. A
// full reconcile reads its id map this way instead of one read per key.
func EachValue(ctx context.Context, kv jetstream.KeyValue, filter string, fn func(jetstream.KeyValueEntry) error) error {
	w, err := kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watcher stopped before every value was read")
			}
			if e == nil { // every current value is delivered
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}
