package pipelinetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/testutil"
)

// Settled waits, polling every `every` for at most within, until every
// event the domains (by name) emitted was delivered to the webhook and svc's
// consumers (there must be this many) handled and acknowledged every
// message. Handlers write before they acknowledge, and a domain queues the
// event of a write before answering it, so nothing is in flight when the
// domains have emitted nothing new and delivered everything around a moment
// the consumers have nothing pending.
func Settled(t testing.TB, within, every time.Duration, svc Service, consumers int, domains map[string]*emu.Domain) {
	t.Helper()
	names := slices.Sorted(maps.Keys(domains))
	testutil.CheckFor(t, within, every, func() error {
		before := make([]emu.EventStats, len(names))
		for i, n := range names {
			before[i] = domains[n].EventStats()
		}
		st := svc.Status(context.Background())
		for i, n := range names {
			after := domains[n].EventStats()
			if before[i].Pending != 0 || after.Pending != 0 || before[i].Emitted != after.Emitted {
				return fmt.Errorf("%s events: %d pending, %d emitted", n, after.Pending, after.Emitted)
			}
		}
		if len(st.Consumers) != consumers {
			return fmt.Errorf("%d consumers in the status, want %d", len(st.Consumers), consumers)
		}
		for _, c := range st.Consumers {
			if c.Pending != 0 || c.AckPending != 0 {
				return fmt.Errorf("consumer %s: %d pending, %d ack pending", c.Name, c.Pending, c.AckPending)
			}
		}
		return nil
	})
}
