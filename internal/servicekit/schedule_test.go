package servicekit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
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
