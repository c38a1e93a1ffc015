package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/testutil"
)

// Dead letters are listed with their reason and original, counted per
// consumer (in the API and as a gauge), and replayed one at a time.
func TestListAndReplayOneDeadLetter(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.RunServer(t).Open(t, bus.WithRegisterer(reg))
	var failing atomic.Bool
	failing.Store(true)
	var handledOK atomic.Int32
	c := newConsumer(t, b, fast("listing"), func(ctx context.Context, m *bus.Msg) bus.Result {
		if failing.Load() {
			return bus.Terminal(errors.New("target refused group " + string(m.Data)))
		}
		handledOK.Add(1)
		return bus.Done()
	})
	for i := range 3 {
		publish(t, b, testSubject, fmt.Sprint("evt-", i), fmt.Sprint("g", i), "X-Custom", "kept")
	}
	run(t, c)
	testutil.CheckFor(t, waitTotal, waitPoll, func() error {
		if n := len(deadLetters(t, b, "listing")); n != 3 {
			return fmt.Errorf("%d dead letters", n)
		}
		return nil
	})
	waitSettled(t, c)
	ctx := testContext(t)

	got, more, err := b.ListDeadLetters(ctx, "listing", 2)
	if err != nil || len(got) != 2 || !more {
		t.Fatalf("ListDeadLetters(listing, 2) = %d, more %v, %v; want 2 and more", len(got), more, err)
	}
	for _, dl := range got {
		if dl.Consumer != "listing" || dl.Subject != testSubject || dl.Stream != bus.StreamEvents || dl.StreamSeq == 0 ||
			dl.Deliveries != 1 || dl.Time.IsZero() || dl.Header.Get("X-Custom") != "kept" || dl.Header.Get(bus.HeaderDLQReason) != "" {
			t.Errorf("dead letter %+v", dl)
		}
		if want := "target refused group " + string(dl.Data); dl.Reason != want {
			t.Errorf("reason %q, want %q", dl.Reason, want)
		}
		if dl.MsgID != "evt-"+string(dl.Data[1:]) {
			t.Errorf("msg id %q for payload %q", dl.MsgID, dl.Data)
		}
	}
	all, more, err := b.ListDeadLetters(ctx, "", 10)
	if err != nil || len(all) != 3 || more {
		t.Fatalf("ListDeadLetters(all) = %d, more %v, %v", len(all), more, err)
	}
	if _, _, err := b.ListDeadLetters(ctx, "no.such", 10); err == nil {
		t.Error("a consumer name with a dot was accepted")
	}
	counts, err := b.DeadLetterCounts(ctx)
	if err != nil || counts["listing"] != 3 || len(counts) != 1 {
		t.Fatalf("DeadLetterCounts = %v, %v", counts, err)
	}
	if v := metricValue(t, reg, "iamflow_bus_dead_letters", map[string]string{"consumer": "listing"}); v != 3 {
		t.Errorf("iamflow_bus_dead_letters = %v, want 3", v)
	}

	failing.Store(false)
	second := all[1]
	dl, err := b.ReplayDeadLetter(ctx, second.Seq)
	if err != nil || dl.Seq != second.Seq || dl.Reason != second.Reason {
		t.Fatalf("ReplayDeadLetter(%d) = %+v, %v", second.Seq, dl, err)
	}
	testutil.CheckFor(t, waitTotal, waitPoll, func() error {
		if n := handledOK.Load(); n != 1 {
			return fmt.Errorf("%d replayed messages handled", n)
		}
		return nil
	})
	left, _, err := b.ListDeadLetters(ctx, "listing", 10)
	if err != nil || len(left) != 2 || left[0].Seq != all[0].Seq || left[1].Seq != all[2].Seq {
		t.Fatalf("after replaying one: %v, %v", left, err)
	}
	if _, err := b.ReplayDeadLetter(ctx, second.Seq); !errors.Is(err, bus.ErrNoDeadLetter) {
		t.Errorf("replaying it again: %v, want ErrNoDeadLetter", err)
	}
	if _, err := b.ReplayDeadLetter(ctx, 9999); !errors.Is(err, bus.ErrNoDeadLetter) {
		t.Errorf("replaying seq 9999: %v, want ErrNoDeadLetter", err)
	}
	if v := metricValue(t, reg, "iamflow_bus_dead_letters", map[string]string{"consumer": "listing"}); v != 2 {
		t.Errorf("iamflow_bus_dead_letters = %v after a replay, want 2", v)
	}
}

// The lag gauge is the age of the oldest unacknowledged message, and 0 once
// the consumer has caught up; pending and ack pending come from JetStream.
func TestConsumerLagGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.RunServer(t).Open(t, bus.WithRegisterer(reg))
	release := make(chan struct{})
	c := newConsumer(t, b, bus.ConsumerConfig{Durable: "laggy", FilterSubjects: []string{"iam.event.dev.>"}},
		func(ctx context.Context, m *bus.Msg) bus.Result {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return bus.Done()
		})
	labels := map[string]string{"stream": bus.StreamEvents, "consumer": "laggy"}
	if v := metricValue(t, reg, "iamflow_bus_consumer_lag_seconds", labels); v != 0 {
		t.Fatalf("lag of an idle consumer = %v", v)
	}
	publish(t, b, "iam.event.other.user.created", "evt-other", "x") // not the consumer's: no lag
	publish(t, b, testSubject, "evt-1", "x")
	run(t, c)
	testutil.CheckFor(t, waitTotal, waitPoll, func() error {
		ack := metricValue(t, reg, "iamflow_bus_consumer_ack_pending_messages", labels)
		lag := metricValue(t, reg, "iamflow_bus_consumer_lag_seconds", labels)
		if ack != 1 || lag <= 0.05 {
			return fmt.Errorf("ack pending %v, lag %vs", ack, lag)
		}
		return nil
	})
	if v := metricValue(t, reg, "iamflow_bus_dead_letters", map[string]string{"consumer": "laggy"}); v != 0 {
		t.Errorf("dead letters of a consumer without any = %v, want a 0 series", v)
	}
	close(release)
	waitSettled(t, c)
	if v := metricValue(t, reg, "iamflow_bus_consumer_lag_seconds", labels); v != 0 {
		t.Errorf("lag after catching up = %v, want 0", v)
	}
}
