package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/testutil"
)

func TestPublishDeduplicatesByMsgID(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.RunServer(t).Open(t, bus.WithRegisterer(reg))

	first := publish(t, b, testSubject, "oci-event-1", "one")
	second := publish(t, b, testSubject, "oci-event-1", "one again")
	if first.Duplicate || !second.Duplicate {
		t.Errorf("Duplicate = %v then %v, want false then true", first.Duplicate, second.Duplicate)
	}
	if first.Stream != bus.StreamEvents || second.Sequence != first.Sequence {
		t.Errorf("acks = %+v and %+v, want the same IAM_EVENTS sequence", first, second)
	}
	publish(t, b, testSubject, "oci-event-2", "two")

	info, err := stream(t, b, bus.StreamEvents).Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("stream holds %d messages, want 2", info.State.Msgs)
	}
	stored := metricValue(t, reg, "iamflow_bus_published_messages_total", map[string]string{"stream": bus.StreamEvents, "outcome": "stored"})
	dup := metricValue(t, reg, "iamflow_bus_published_messages_total", map[string]string{"stream": bus.StreamEvents, "outcome": "duplicate"})
	if stored != 2 || dup != 1 {
		t.Errorf("published metric: stored %v, duplicate %v; want 2 and 1", stored, dup)
	}
}

func TestPublishSetsHeaders(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	msg := &nats.Msg{Subject: testSubject, Data: []byte("x")} // nil Header
	if _, err := b.Publish(testContext(t), msg, "id-1"); err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) != "id-1" {
		t.Errorf("Nats-Msg-Id = %q", msg.Header.Get(jetstream.MsgIDHeader))
	}
	if _, err := b.Publish(testContext(t), nats.NewMsg("nowhere.bound"), "x"); err == nil {
		t.Error("publish to a subject no stream stores: want an error")
	}
}

func batch(prefix string, n int) []bus.OutMsg {
	out := make([]bus.OutMsg, n)
	for i := range out {
		id := fmt.Sprintf("%s-%d", prefix, i)
		out[i] = bus.OutMsg{Msg: &nats.Msg{Subject: testSubject, Data: []byte(id)}, ID: id}
	}
	return out
}

func TestPublishBatchWaitsForEveryAck(t *testing.T) {
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	ctx := testContext(t)

	acks, err := b.PublishBatch(ctx, batch("before", 3))
	if err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	for i, a := range acks {
		if a == nil || a.Duplicate || a.Sequence != uint64(i+1) {
			t.Errorf("ack %d = %+v, want sequence %d", i, a, i+1)
		}
	}

	// JetStream goes away: the batch fails within the caller's deadline and
	// says how many were acknowledged.
	srv.Shutdown()
	const deadline = time.Second
	dctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	down := batch("during", 2)
	acks, err = b.PublishBatch(dctx, down)
	if err == nil {
		t.Fatal("PublishBatch with the server down: want an error")
	}
	if took := time.Since(start); took > deadline+3*time.Second {
		t.Errorf("PublishBatch took %v with a %v deadline", took, deadline)
	}
	mustContain(t, err.Error(), "0 of 2 messages acknowledged")
	if len(acks) != 2 || acks[0] != nil || acks[1] != nil {
		t.Errorf("acks = %v, want two nils", acks)
	}

	// JetStream comes back with its state; publishing works again.
	srv.Restart(t)
	testutil.CheckFor(t, waitTotal, waitPoll, func() error { return b.Ready(ctx) })
	publish(t, b, testSubject, "after", "after")
	// The webhook's client retries the failed batch with the same ids:
	// stored once whether or not the first attempt reached the stream.
	again := batch("during", 2)
	if _, err := b.PublishBatch(ctx, again); err != nil {
		t.Fatalf("retried batch: %v", err)
	}

	s := stream(t, b, bus.StreamEvents)
	for seq := uint64(1); seq <= 3; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d stored before the outage: %v", seq, err)
		}
		if want := fmt.Sprintf("before-%d", seq-1); m.Header.Get(jetstream.MsgIDHeader) != want {
			t.Errorf("message %d id = %q, want %q", seq, m.Header.Get(jetstream.MsgIDHeader), want)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 6 {
		t.Errorf("stream holds %d messages, want 6 (3 before, 1 after, 2 retried)", info.State.Msgs)
	}
}

func TestPublishAudit(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	ctx := testContext(t)
	hdr := nats.Header{}
	hdr.Set("Iamflow-Actor", "admin@example.com")
	if err := b.PublishAudit(ctx, "replicator", "user_created", []byte(`{"id":"u1"}`), hdr); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishAudit(ctx, "replicator", "user.created", nil, nil); err == nil {
		t.Error("action with a dot: want an error")
	}
	m, err := stream(t, b, bus.StreamAudit).GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "iam.audit.replicator.user_created" || string(m.Data) != `{"id":"u1"}` || m.Header.Get("Iamflow-Actor") != "admin@example.com" {
		t.Errorf("audit record = %s %q %v", m.Subject, m.Data, m.Header)
	}
	if len(hdr) != 1 {
		t.Errorf("caller's header was changed: %v", hdr)
	}
}

// An option given nil keeps the default: the bus still logs, traces and
// counts what it publishes.
func TestNilOptionsKeepTheDefaults(t *testing.T) {
	b := bustest.RunServer(t).Open(t, bus.WithLogger(nil), bus.WithTracerProvider(nil), bus.WithPropagator(nil), bus.WithRegisterer(nil))
	if ack := publish(t, b, testSubject, "nil-options", "one"); ack.Duplicate {
		t.Errorf("ack = %+v, want a stored message", ack)
	}
}
