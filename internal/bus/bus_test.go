package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
)

func streamConfig(t *testing.T, b *bus.Bus, name string) jetstream.StreamConfig {
	t.Helper()
	return stream(t, b, name).CachedInfo().Config
}

func TestOpenCreatesStreamsIdempotently(t *testing.T) {
	srv := bustest.RunServer(t)
	cfg := srv.Config()
	b := srv.OpenConfig(t, cfg)
	srv.OpenConfig(t, cfg) // the same config again: no error, nothing changes

	want := map[string]struct {
		subject string
		maxAge  time.Duration
	}{
		bus.StreamEvents: {"iam.event.>", 168 * time.Hour},
		bus.StreamDLQ:    {"iam.dlq.>", 720 * time.Hour},
		bus.StreamAudit:  {"iam.audit.>", 2160 * time.Hour},
	}
	for name, w := range want {
		sc := streamConfig(t, b, name)
		if len(sc.Subjects) != 1 || sc.Subjects[0] != w.subject {
			t.Errorf("%s subjects = %v, want %s", name, sc.Subjects, w.subject)
		}
		if sc.MaxAge != w.maxAge || sc.Duplicates != 2*time.Hour+15*time.Minute ||
			sc.Storage != jetstream.FileStorage || sc.Replicas != 1 {
			t.Errorf("%s = max age %v, duplicates %v, storage %v, replicas %d", name, sc.MaxAge, sc.Duplicates, sc.Storage, sc.Replicas)
		}
	}

	// A changed config is applied to the existing streams.
	cfg.Streams.EventsMaxAge = 200 * time.Hour
	cfg.Streams.DuplicateWindow = 3 * time.Hour
	cfg.Streams.DLQMaxAge = 100 * time.Hour
	srv.OpenConfig(t, cfg)
	ev := streamConfig(t, b, bus.StreamEvents)
	if ev.MaxAge != 200*time.Hour || ev.Duplicates != 3*time.Hour {
		t.Errorf("%s after update = max age %v, duplicates %v", bus.StreamEvents, ev.MaxAge, ev.Duplicates)
	}
	if dlq := streamConfig(t, b, bus.StreamDLQ); dlq.MaxAge != 100*time.Hour {
		t.Errorf("%s max age after update = %v", bus.StreamDLQ, dlq.MaxAge)
	}

	// Storage cannot change in place: Open says which stream refused.
	cfg.Streams.Storage = bus.StorageMemory
	_, err := bus.Open(testContext(t), cfg)
	if err == nil {
		t.Fatal("changing storage of existing streams: want an error")
	}
	mustContain(t, err.Error(), "stream "+bus.StreamEvents)
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Streams.DuplicateWindow = time.Minute
	_, err := bus.Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "streams.duplicate_window") {
		t.Fatalf("err = %v, want one naming streams.duplicate_window", err)
	}
}

func TestOpenEmbeddedKeepsStateAcrossRestarts(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Embedded.StoreDir = t.TempDir()
	cfg.Embedded.Port = -1
	ctx := testContext(t)

	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.ClientURL(), "nats://127.0.0.1:") {
		t.Errorf("ClientURL = %q", b.ClientURL())
	}
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	publish(t, b, testSubject, "evt-1", "payload")
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Ready(ctx); err == nil {
		t.Error("Ready after Close: want an error")
	}

	b, err = bus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer b.Close()
	m, err := stream(t, b, bus.StreamEvents).GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("message stored before the restart: %v", err)
	}
	if string(m.Data) != "payload" || m.Header.Get(jetstream.MsgIDHeader) != "evt-1" {
		t.Errorf("message after restart = %q, id %q", m.Data, m.Header.Get(jetstream.MsgIDHeader))
	}
	if ack := publish(t, b, testSubject, "evt-1", "payload"); !ack.Duplicate {
		t.Error("the duplicate window did not survive the restart")
	}
}
