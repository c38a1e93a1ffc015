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

// triggers records the runs of a repair.
type triggers struct {
	mu   sync.Mutex
	runs []string
}

func (tr *triggers) repair(_ context.Context, trigger string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.runs = append(tr.runs, trigger)
}

func (tr *triggers) all() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.runs)
}

func TestScheduleRunsOnStartThenEveryInterval(t *testing.T) {
	// No interval: on start only, and Schedule returns.
	tr := &triggers{}
	Schedule(context.Background(), true, 0, tr.repair)
	if got := tr.all(); !slices.Equal(got, []string{"on_start"}) {
		t.Fatalf("triggers %v, want [on_start]", got)
	}
	tr = &triggers{}
	Schedule(context.Background(), false, 0, tr.repair)
	if got := tr.all(); len(got) != 0 {
		t.Fatalf("triggers %v without on_start or interval", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Schedule(ctx, false, time.Millisecond, tr.repair); close(done) }()
	testutil.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		if n := len(tr.all()); n < 2 {
			return fmt.Errorf("%d scheduled runs", n)
		}
		return nil
	})
	cancel()
	<-done
	for _, run := range tr.all() {
		if run != "scheduled" {
			t.Fatalf("trigger %q, want scheduled", run)
		}
	}
}

// Repair runs after an outage of NATS of after_outage or more, and only
// when after_outage is set.
func TestRepairRunsAfterAnOutage(t *testing.T) {
	tr := &triggers{}
	if n := len(RepairConfig{OnStart: true}.Loops(nil, tr.repair)); n != 1 {
		t.Fatalf("%d loops without after_outage, want the schedule's alone", n)
	}

	const threshold = time.Second
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, loop := range (RepairConfig{AfterOutage: threshold}).Loops(b, tr.repair) {
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
		if got := tr.all(); !slices.Equal(got, []string{"after_outage"}) {
			return fmt.Errorf("triggers %v, want [after_outage]", got)
		}
		return nil
	})
}
