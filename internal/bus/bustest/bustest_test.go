package bustest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/testutil"
)

func TestRestartKeepsJetStreamState(t *testing.T) {
	srv := bustest.RunServer(t)
	url := srv.URL()
	b := srv.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, err := b.Publish(ctx, nats.NewMsg("iam.event.dev.user.created"), "evt-1"); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	if srv.NATSServer() != nil {
		t.Error("NATSServer after Shutdown: want nil")
	}
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if b.Ready(rctx) == nil {
			return errors.New("still ready")
		}
		return nil
	})

	srv.Restart(t)
	if srv.URL() != url {
		t.Errorf("URL after Restart = %s, want %s", srv.URL(), url)
	}
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error { return b.Ready(ctx) })
	ack, err := b.Publish(ctx, nats.NewMsg("iam.event.dev.user.created"), "evt-1")
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Duplicate || ack.Sequence != 1 {
		t.Errorf("ack after restart = %+v, want the stored message (duplicate, seq 1)", ack)
	}

	// A second bus with a custom config on the same server.
	cfg := srv.Config()
	cfg.Streams.EventsMaxAge = 24 * time.Hour
	cfg.Streams.DuplicateWindow = 3 * time.Hour
	b2 := srv.OpenConfig(t, cfg)
	s, err := b2.JetStream().Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 24*time.Hour {
		t.Errorf("max age = %v, want 24h", got)
	}
}
