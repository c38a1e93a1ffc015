package servicekit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/nats-io/nats.go"
)

func TestScheduleRunsOnStartThenEveryInterval(t *testing.T) {
	var mu sync.Mutex
	var triggers []string
	repair := func(_ context.Context, trigger string) {
		mu.Lock()
		defer mu.Unlock()
		triggers = append(triggers, trigger)
	}
	// No interval: on start only, and Schedule returns.
	Schedule(context.Background(), true, 0, repair)
	if !slices.Equal(triggers, []string{"on_start"}) {
		t.Fatalf("triggers %v, want [on_start]", triggers)
	}
	triggers = nil
	Schedule(context.Background(), false, 0, repair)
	if len(triggers) != 0 {
		t.Fatalf("triggers %v without on_start or interval", triggers)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Schedule(ctx, false, time.Millisecond, repair); close(done) }()
	testutil.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(triggers) < 2 {
			return fmt.Errorf("%d scheduled runs", len(triggers))
		}
		return nil
	})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for _, tr := range triggers {
		if tr != "scheduled" {
			t.Fatalf("trigger %q, want scheduled", tr)
		}
	}
}

// Repair runs after an outage of NATS of after_outage or more, and only
// when after_outage is set.
func TestRepairRunsAfterAnOutage(t *testing.T) {
	var mu sync.Mutex
	var triggers []string
	repair := func(_ context.Context, trigger string) {
		mu.Lock()
		defer mu.Unlock()
		triggers = append(triggers, trigger)
	}
	if n := len(RepairConfig{OnStart: true}.Loops(nil, repair)); n != 1 {
		t.Fatalf("%d loops without after_outage, want the schedule's alone", n)
	}

	const threshold = time.Second
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, loop := range (RepairConfig{AfterOutage: threshold}).Loops(b, repair) {
		wg.Go(func() { loop(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	srv.Shutdown()
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if b.Conn().Status() == nats.CONNECTED {
			return errors.New("still connected")
		}
		return nil
	})
	<-time.After(threshold + 200*time.Millisecond) // the outage itself, not a wait for something to happen
	srv.Restart(t)
	testutil.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(triggers, []string{"after_outage"}) {
			return fmt.Errorf("triggers %v, want [after_outage]", triggers)
		}
		return nil
	})
}
