package servicekit

import (
	"context"
	"fmt"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
)

// EventHandler is a consumer's handler of identity events: each message is
// decoded and recorded as the event handled last ([Kit.Event]) before
// handle sees it. A message that is no identity event can never be
// handled: it is terminal ("<name>: ..."), so it is dead-lettered at once.
func (k *Kit) EventHandler(handle func(ctx context.Context, m *bus.Msg, ev *iamflowv1.IdentityEvent) bus.Result) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) bus.Result {
		ev, err := event.Unmarshal(m.Data)
		if err != nil {
			return bus.Terminal(fmt.Errorf("%s: %w", k.name, err))
		}
		k.Event(ev.GetId())
		return handle(ctx, m, ev)
	}
}

// CoalesceEvents is a consumer's Coalesce (bus.ConsumerConfig) by key, the
// entity an identity event is about ("" for none). A message that cannot
// be decoded is handled alone.
func CoalesceEvents(key func(ev *iamflowv1.IdentityEvent) string) func(*bus.Msg) string {
	return func(m *bus.Msg) string {
		ev, err := event.Unmarshal(m.Data)
		if err != nil {
			return ""
		}
		return key(ev)
	}
}
