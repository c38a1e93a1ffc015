package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/testutil"
)

// A NATS server away for less than the threshold calls nothing; one away
// for longer calls fn once, when the connection is back, with how long it
// was down.
func TestWatchOutagesCallsOnceAfterALongOutage(t *testing.T) {
	const threshold = 5 * time.Second
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	ctx, cancel := context.WithCancel(t.Context())
	var (
		mu    sync.Mutex
		calls []time.Duration
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.WatchOutages(ctx, threshold, func(_ context.Context, down time.Duration) {
			mu.Lock()
			calls = append(calls, down)
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	got := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), calls...)
	}
	bounce := func(away time.Duration) {
		srv.Shutdown()
		testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			if b.Conn().Status() == nats.CONNECTED {
				return errors.New("still connected")
			}
			return nil
		})
		<-time.After(away) // the outage itself, not a wait for something to happen
		srv.Restart(t)
		testutil.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error { return b.Ready(ctx) })
	}

	bounce(0) // a restart: the client is back within its reconnect wait
	if c := got(); len(c) != 0 {
		t.Fatalf("a short outage called fn: %v", c)
	}
	bounce(threshold + 500*time.Millisecond)
	testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if len(got()) == 0 {
			return errors.New("fn not called after the long outage")
		}
		return nil
	})
	c := got()
	if len(c) != 1 || c[0] < threshold || c[0] > threshold+10*time.Second {
		t.Fatalf("calls after a long outage: %v, want one of %v or a little more", c, threshold)
	}
}
