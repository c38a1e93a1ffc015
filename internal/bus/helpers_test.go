package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/testutil"
)

// Waits in tests: generous totals, short polls.
const (
	waitTotal = 15 * time.Second
	waitPoll  = 10 * time.Millisecond
)

const testSubject = "iam.event.dev.user.updated"

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// publish stores one message on subject with id and header pairs k, v, ...
func publish(t testing.TB, b *bus.Bus, subject, id, data string, kv ...string) *jetstream.PubAck {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(data)
	for i := 0; i+1 < len(kv); i += 2 {
		msg.Header.Set(kv[i], kv[i+1])
	}
	ack, err := b.Publish(testContext(t), msg, id)
	if err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
	return ack
}

// running is a Consumer.Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// run starts c.Run; the test's cleanup stops it and waits for it.
func run(t testing.TB, c *bus.Consumer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = c.Run(ctx)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(waitTotal):
		t.Fatalf("Run did not return %v after its context was cancelled", waitTotal)
	}
	return r.err
}

func newConsumer(t testing.TB, b *bus.Bus, cfg bus.ConsumerConfig, h bus.Handler) *bus.Consumer {
	t.Helper()
	c, err := b.Consumer(testContext(t), cfg, h)
	if err != nil {
		t.Fatalf("consumer %s: %v", cfg.Durable, err)
	}
	return c
}

// waitSettled waits until the consumer has nothing pending and nothing unacked.
func waitSettled(t testing.TB, c *bus.Consumer) bus.ConsumerStats {
	t.Helper()
	var st bus.ConsumerStats
	testutil.CheckFor(t, waitTotal, waitPoll, func() error {
		var err error
		if st, err = c.Stats(context.Background()); err != nil {
			return err
		}
		if st.Pending != 0 || st.AckPending != 0 {
			return fmt.Errorf("pending %d, ack pending %d", st.Pending, st.AckPending)
		}
		return nil
	})
	return st
}

// stream is b's stream name; a stream that cannot be read fails the test.
func stream(t testing.TB, b *bus.Bus, name string) jetstream.Stream {
	t.Helper()
	s, err := b.JetStream().Stream(testContext(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s
}

// deadLetters reads the dead letters of durable, oldest first.
func deadLetters(t testing.TB, b *bus.Bus, durable string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := testContext(t)
	s := stream(t, b, bus.StreamDLQ)
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(bus.DLQSubject(durable)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("read dead letters: %v", err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

// metricValue is the value of the counter or gauge name with labels in reg
// (a histogram's sample count), 0 if absent.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := testutil.Metric(t, reg, name, labels)
	return v
}

func mustContain(t testing.TB, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%q does not contain %q", s, sub)
		}
	}
}
