package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/testutil"
)

// fast is a consumer config whose retries come quickly.
func fast(durable string) bus.ConsumerConfig {
	return bus.ConsumerConfig{Durable: durable, AckWait: time.Second, Backoff: []time.Duration{10 * time.Millisecond}}
}

func handled(t testing.TB, reg *prometheus.Registry, durable, result string) float64 {
	return metricValue(t, reg, "iamflow_bus_handled_messages_total", map[string]string{"consumer": durable, "result": result})
}

// waitHandled waits until the consumer durable has settled want messages
// with result.
func waitHandled(t testing.TB, reg *prometheus.Registry, durable, result string, want float64) {
	t.Helper()
	testutil.CheckFor(t, waitTotal, waitPoll, func() error {
		if n := handled(t, reg, durable, result); n != want {
			return fmt.Errorf("%s: %s %v, want %v", durable, result, n, want)
		}
		return nil
	})
}

// waitDeadLetters waits until the consumer durable has want dead letters
// and returns them.
func waitDeadLetters(t testing.TB, b *bus.Bus, durable string, want int) []*jetstream.RawStreamMsg {
	t.Helper()
	var dl []*jetstream.RawStreamMsg
	testutil.CheckFor(t, waitTotal, waitPoll, func() error {
		if dl = deadLetters(t, b, durable); len(dl) != want {
			return fmt.Errorf("%s: %d dead letters, want %d", durable, len(dl), want)
		}
		return nil
	})
	return dl
}

func TestRetryThenDone(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.RunServer(t).Open(t, bus.WithRegisterer(reg))
	var calls atomic.Int32
	var lastDelivered atomic.Uint64
	c := newConsumer(t, b, fast("retry"), func(ctx context.Context, m *bus.Msg) bus.Result {
		lastDelivered.Store(m.NumDelivered)
		if calls.Add(1) < 3 {
			return bus.Retry(errors.New("target busy"))
		}
		return bus.Done()
	})
	publish(t, b, testSubject, "evt-1", "x")
	run(t, c)

	waitHandled(t, reg, "retry", "done", 1)
	waitSettled(t, c)
	if calls.Load() != 3 || lastDelivered.Load() != 3 {
		t.Errorf("handler called %d times, last delivery %d; want 3 and 3", calls.Load(), lastDelivered.Load())
	}
	if n := handled(t, reg, "retry", "retry"); n != 2 {
		t.Errorf("retry metric = %v, want 2", n)
	}
	if dl := deadLetters(t, b, "retry"); len(dl) != 0 {
		t.Errorf("%d dead letters, want none", len(dl))
	}
	if n := metricValue(t, reg, "iamflow_bus_handler_duration_seconds", map[string]string{"consumer": "retry"}); n != 3 {
		t.Errorf("duration observations = %v, want 3", n)
	}
}

func TestTerminalDeadLettersWithReason(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	reason := "bad payload\nsecond line " + strings.Repeat("é", 1000) // 2 bytes a rune: over 1 KiB
	c := newConsumer(t, b, fast("term"), func(ctx context.Context, m *bus.Msg) bus.Result {
		return bus.Terminal(errors.New(reason))
	})
	publish(t, b, testSubject, "evt-1", "the payload", "X-Custom", "kept", "Content-Type", "application/x-protobuf")
	run(t, c)

	dl := waitDeadLetters(t, b, "term", 1)
	st := waitSettled(t, c)
	if st.DeadLettered != 1 {
		t.Errorf("DeadLettered = %d, want 1", st.DeadLettered)
	}

	m := dl[0]
	if m.Subject != "iam.dlq.term" || string(m.Data) != "the payload" {
		t.Errorf("dead letter = %s %q", m.Subject, m.Data)
	}
	h := m.Header
	if h.Get("X-Custom") != "kept" || h.Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("original headers lost: %v", h)
	}
	got := h.Get(bus.HeaderDLQReason)
	if !strings.HasPrefix(got, "bad payload second line é") || len(got) > bus.MaxDLQReasonLen || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("reason (%d bytes) = %.60q...", len(got), got)
	}
	want := map[string]string{
		bus.HeaderDLQConsumer:   "term",
		bus.HeaderDLQStream:     bus.StreamEvents,
		bus.HeaderDLQSubject:    testSubject,
		bus.HeaderDLQSeq:        "1",
		bus.HeaderDLQDeliveries: "1",
		bus.HeaderDLQMsgID:      "evt-1",
		jetstream.MsgIDHeader:   "IAM_EVENTS/1/term",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, h.Get(bus.HeaderDLQTime)); err != nil {
		t.Errorf("%s: %v", bus.HeaderDLQTime, err)
	}
}

func TestMaxDeliverDeadLetters(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.RunServer(t).Open(t, bus.WithRegisterer(reg))
	cfg := fast("maxdel")
	cfg.MaxDeliver = 3
	var calls atomic.Int32
	c := newConsumer(t, b, cfg, func(ctx context.Context, m *bus.Msg) bus.Result {
		calls.Add(1)
		return bus.Retry(errors.New("still failing"))
	})
	publish(t, b, testSubject, "evt-1", "x")
	run(t, c)

	dl := waitDeadLetters(t, b, "maxdel", 1)
	waitSettled(t, c)
	if got := dl[0].Header.Get(bus.HeaderDLQReason); got != "gave up after 3 deliveries: still failing" {
		t.Errorf("reason = %q", got)
	}
	if got := dl[0].Header.Get(bus.HeaderDLQDeliveries); got != "3" {
		t.Errorf("deliveries = %q, want 3", got)
	}
	if calls.Load() != 3 {
		t.Errorf("handler called %d times, want 3", calls.Load())
	}
	// The server sees the ack before the runner counts it: poll.
	waitHandled(t, reg, "maxdel", "dead_lettered", 1)
	if n := metricValue(t, reg, "iamflow_bus_published_messages_total", map[string]string{"stream": bus.StreamDLQ, "outcome": "stored"}); n != 1 {
		t.Errorf("published to DLQ metric = %v, want 1", n)
	}
}

func TestRedeliveryAfterCrash(t *testing.T) {
	srv := bustest.RunServer(t)
	cfg := fast("crash")

	// The first process takes the message and hangs in its handler.
	b1 := srv.Open(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	c1 := newConsumer(t, b1, cfg, func(ctx context.Context, m *bus.Msg) bus.Result {
		close(started)
		<-release
		return bus.Done()
	})
	publish(t, b1, testSubject, "evt-1", "survives")
	r1 := run(t, c1)
	<-started

	// It dies: its connection goes away without an ack.
	b1.Conn().Close()

	// Another process on the same durable gets the message after ack_wait.
	b2 := srv.Open(t)
	got := make(chan *bus.Msg, 1)
	c2 := newConsumer(t, b2, cfg, func(ctx context.Context, m *bus.Msg) bus.Result {
		got <- m
		return bus.Done()
	})
	run(t, c2)
	select {
	case m := <-got:
		if string(m.Data) != "survives" || m.NumDelivered < 2 {
			t.Errorf("redelivered %q, delivery %d; want the message, delivery >= 2", m.Data, m.NumDelivered)
		}
	case <-time.After(waitTotal):
		t.Fatal("message not redelivered to the second consumer")
	}
	waitSettled(t, c2)

	// The dead process's Run notices its connection is gone.
	unblock()
	if err := r1.stop(t); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("Run on a closed connection = %v, want ErrConnectionClosed", err)
	}
}

func TestCoalescePerEntity(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.RunServer(t).Open(t, bus.WithRegisterer(reg))
	// More of one key than a group acks at once (maxParallelAcks).
	for i := range 40 {
		publish(t, b, testSubject, fmt.Sprintf("u1-%d", i), fmt.Sprintf("u1 v%d", i), "Entity", "user-1")
	}
	for _, e := range []string{"user-2", "user-3", "user-4"} {
		publish(t, b, testSubject, e, e, "Entity", e)
	}

	var mu sync.Mutex
	seen := map[string][]string{}
	var overlap overlapCheck
	cfg := bus.ConsumerConfig{Durable: "coalesce", Coalesce: func(m *bus.Msg) string { return m.Header.Get("Entity") }}
	c := newConsumer(t, b, cfg, func(ctx context.Context, m *bus.Msg) bus.Result {
		key := m.Header.Get("Entity")
		overlap.enter(key)
		defer overlap.leave(key)
		mu.Lock()
		seen[key] = append(seen[key], string(m.Data))
		mu.Unlock()
		return bus.Done()
	})
	run(t, c)

	waitHandled(t, reg, "coalesce", "done", 43)
	waitSettled(t, c)
	mu.Lock()
	defer mu.Unlock()
	if got := seen["user-1"]; len(got) != 1 || got[0] != "u1 v39" {
		t.Errorf("user-1 handled with %q, want once with the newest (u1 v39)", got)
	}
	for _, e := range []string{"user-2", "user-3", "user-4"} {
		if got := seen[e]; len(got) != 1 || got[0] != e {
			t.Errorf("%s handled with %q, want once", e, got)
		}
	}
	if overlap.seen.Load() {
		t.Error("one key was handled concurrently")
	}
}

// overlapCheck notes whether a key was entered while it was in flight.
type overlapCheck struct {
	mu       sync.Mutex
	inFlight map[string]bool
	seen     atomic.Bool
}

func (o *overlapCheck) enter(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inFlight == nil {
		o.inFlight = map[string]bool{}
	}
	if o.inFlight[key] {
		o.seen.Store(true)
	}
	o.inFlight[key] = true
}

func (o *overlapCheck) leave(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inFlight[key] = false
}

func TestCoalesceNeverRunsOneKeyConcurrently(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	var overlap overlapCheck
	var calls atomic.Int32
	cfg := bus.ConsumerConfig{Durable: "serial", Concurrency: 8, Batch: 4,
		Coalesce: func(m *bus.Msg) string { return m.Header.Get("Entity") }}
	c := newConsumer(t, b, cfg, func(ctx context.Context, m *bus.Msg) bus.Result {
		key := m.Header.Get("Entity")
		overlap.enter(key)
		calls.Add(1)
		overlap.leave(key)
		return bus.Done()
	})
	run(t, c)
	for i := range 200 {
		publish(t, b, testSubject, fmt.Sprint(i), "x", "Entity", fmt.Sprint("user-", i%3))
	}
	testutil.CheckFor(t, waitTotal, waitPoll, func() error {
		st, err := c.Stats(context.Background())
		if err != nil {
			return err
		}
		if st.Delivered < 200 || st.Pending != 0 || st.AckPending != 0 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
	if overlap.seen.Load() {
		t.Error("one key was handled concurrently")
	}
	if calls.Load() == 0 || calls.Load() > 200 {
		t.Errorf("%d handler calls for 200 messages", calls.Load())
	}
}

func TestTracePropagatesFromPublishToHandler(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := bustest.RunServer(t).Open(t, bus.WithTracerProvider(tp))

	ctx, root := tp.Tracer("webhook").Start(testContext(t), "POST /v1/events")
	if _, err := b.Publish(ctx, nats.NewMsg(testSubject), "evt-1"); err != nil {
		t.Fatal(err)
	}
	root.End()

	inHandler := make(chan trace.SpanContext, 1)
	c := newConsumer(t, b, fast("traced"), func(ctx context.Context, m *bus.Msg) bus.Result {
		inHandler <- trace.SpanContextFromContext(ctx)
		return bus.Done()
	})
	run(t, c)

	var producer, consumer tracetest.SpanStub
	testutil.CheckFor(t, waitTotal, waitPoll, func() error {
		for _, s := range exp.GetSpans() {
			switch s.SpanKind {
			case trace.SpanKindProducer:
				producer = s
			case trace.SpanKindConsumer:
				consumer = s
			}
		}
		if !consumer.SpanContext.IsValid() {
			return errors.New("no consumer span yet")
		}
		return nil
	})
	rootSC := root.SpanContext()
	hsc := <-inHandler
	if hsc.TraceID() != rootSC.TraceID() || consumer.SpanContext.TraceID() != rootSC.TraceID() {
		t.Errorf("trace ids: root %s, consumer span %s, handler ctx %s; want one trace",
			rootSC.TraceID(), consumer.SpanContext.TraceID(), hsc.TraceID())
	}
	if producer.Parent.SpanID() != rootSC.SpanID() {
		t.Errorf("producer span's parent = %s, want the span active at publish %s", producer.Parent.SpanID(), rootSC.SpanID())
	}
	if consumer.Parent.SpanID() != producer.SpanContext.SpanID() || !consumer.Parent.IsRemote() {
		t.Errorf("consumer span's parent = %s (remote %v), want the producer span %s",
			consumer.Parent.SpanID(), consumer.Parent.IsRemote(), producer.SpanContext.SpanID())
	}
	if hsc.SpanID() != consumer.SpanContext.SpanID() {
		t.Errorf("handler ctx span = %s, want the consumer span %s", hsc.SpanID(), consumer.SpanContext.SpanID())
	}
}

func TestPanicIsRecoveredAndRetried(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.RunServer(t).Open(t, bus.WithRegisterer(reg))
	var calls atomic.Int32
	c := newConsumer(t, b, fast("panicky"), func(ctx context.Context, m *bus.Msg) bus.Result {
		if calls.Add(1) == 1 {
			var nilMap map[string]int
			nilMap["boom"]++ // a real runtime panic
		}
		return bus.Done()
	})
	publish(t, b, testSubject, "evt-1", "x")
	run(t, c)
	waitHandled(t, reg, "panicky", "done", 1)
	waitSettled(t, c)
	if calls.Load() != 2 {
		t.Errorf("handler called %d times, want 2", calls.Load())
	}
	if n := handled(t, reg, "panicky", "retry"); n != 1 {
		t.Errorf("retry metric = %v, want 1", n)
	}
	if dl := deadLetters(t, b, "panicky"); len(dl) != 0 {
		t.Errorf("%d dead letters, want none", len(dl))
	}
}

func TestRecoverMiddleware(t *testing.T) {
	var order []string
	mw := func(name string) bus.Middleware {
		return func(next bus.Handler) bus.Handler {
			return func(ctx context.Context, m *bus.Msg) bus.Result {
				order = append(order, name)
				return next(ctx, m)
			}
		}
	}
	h := bus.Recover(bus.Chain(mw("a"), mw("b"))(func(context.Context, *bus.Msg) bus.Result { panic("kaput") }))
	res := h(context.Background(), &bus.Msg{})
	var pe *bus.PanicError
	if res.IsDone() || res.IsTerminal() || !errors.As(res.Err(), &pe) || pe.Value != "kaput" || len(pe.Stack) == 0 {
		t.Errorf("result = %v, want a retry with the panic", res)
	}
	if strings.Join(order, ",") != "a,b" {
		t.Errorf("middleware order = %v, want a,b", order)
	}
	if (bus.Result{}).IsDone() || (bus.Result{}).Err() == nil {
		t.Error("the zero Result must not acknowledge")
	}
}

func TestGracefulDrain(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	var handlerCtxErr atomic.Value
	cfg := bus.ConsumerConfig{Durable: "drain", Concurrency: 1}
	c := newConsumer(t, b, cfg, func(ctx context.Context, m *bus.Msg) bus.Result {
		if m.MsgID == "slow" {
			close(started)
			<-release
			handlerCtxErr.Store(fmt.Sprint(ctx.Err()))
			finished.Store(true)
		}
		return bus.Done()
	})
	publish(t, b, testSubject, "slow", "x")
	publish(t, b, testSubject, "queued", "y") // held behind the slow one (concurrency 1)
	r := run(t, c)
	<-started
	r.cancel()

	// Run waits for the running handler...
	select {
	case <-r.done:
		t.Fatal("Run returned while a handler was running")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if !finished.Load() {
		t.Fatal("Run returned before the handler finished")
	}
	if got := handlerCtxErr.Load(); got != "<nil>" {
		t.Errorf("handler ctx was cancelled during the drain: %v", got)
	}
	// ...and its message is acked by the time Run returns; the queued one
	// was handed back (after the runner's pull requests have expired), so a
	// new Run gets it well before ack_wait.
	jc, err := b.JetStream().Consumer(testContext(t), bus.StreamEvents, "drain")
	if err != nil {
		t.Fatal(err)
	}
	info, err := jc.Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 1 {
		t.Errorf("after Run: ack floor %d, want 1 (the slow message acked)", info.AckFloor.Stream)
	}
	run(t, c)
	waitSettled(t, c)
}

func TestReplayDeadLetters(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	var failing atomic.Bool
	failing.Store(true)
	var mu sync.Mutex
	var replayed []*bus.Msg
	c := newConsumer(t, b, fast("replay"), func(ctx context.Context, m *bus.Msg) bus.Result {
		if failing.Load() {
			return bus.Terminal(errors.New("target rejected it"))
		}
		mu.Lock()
		replayed = append(replayed, m)
		mu.Unlock()
		return bus.Done()
	})
	for i := range 3 {
		publish(t, b, testSubject, fmt.Sprint("evt-", i), fmt.Sprint("payload ", i), "X-Custom", "kept")
	}
	run(t, c)
	dl := waitDeadLetters(t, b, "replay", 3)
	waitSettled(t, c)
	failing.Store(false)

	ctx := testContext(t)
	n, err := b.ReplayDeadLetters(ctx, "replay", 1)
	if err != nil || n != 1 {
		t.Fatalf("ReplayDeadLetters(max 1) = %d, %v; want 1", n, err)
	}
	if left := deadLetters(t, b, "replay"); len(left) != 2 {
		t.Errorf("%d dead letters left, want 2", len(left))
	}
	n, err = b.ReplayDeadLetters(ctx, "replay", 0)
	if err != nil || n != 2 {
		t.Fatalf("ReplayDeadLetters(all) = %d, %v; want 2", n, err)
	}
	if left := deadLetters(t, b, "replay"); len(left) != 0 {
		t.Errorf("%d dead letters left, want none", len(left))
	}
	if n, err := b.ReplayDeadLetters(ctx, "replay", 0); n != 0 || err != nil {
		t.Errorf("replay of an empty DLQ = %d, %v", n, err)
	}

	testutil.CheckFor(t, waitTotal, waitPoll, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(replayed) != 3 {
			return fmt.Errorf("%d replayed messages handled", len(replayed))
		}
		return nil
	})
	waitSettled(t, c)
	mu.Lock()
	defer mu.Unlock()
	// Handlers run concurrently, so the dead letters (and the replays) need
	// not be in publish order: match each replay to its dead letter by id.
	want := map[string]string{} // replay id -> payload
	for _, d := range dl {
		orig := d.Header.Get(bus.HeaderDLQMsgID)
		want[fmt.Sprintf("%s/replay/%d", orig, d.Sequence)] = "payload " + strings.TrimPrefix(orig, "evt-")
	}
	for i, m := range replayed {
		payload, ok := want[m.MsgID]
		if !ok || string(m.Data) != payload || m.Subject != testSubject || m.Header.Get("X-Custom") != "kept" {
			t.Errorf("replayed %d = %s %q id %q, want one of %v with its own payload", i, m.Subject, m.Data, m.MsgID, want)
		}
		delete(want, m.MsgID)
		for k := range m.Header {
			if strings.HasPrefix(k, bus.HeaderDLQPrefix) {
				t.Errorf("replayed message kept %s", k)
			}
		}
	}
}

func TestConsumerRejectsBadConfig(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	ok := func(context.Context, *bus.Msg) bus.Result { return bus.Done() }
	if _, err := b.Consumer(testContext(t), bus.ConsumerConfig{Durable: "has space"}, ok); err == nil || !strings.Contains(err.Error(), "durable") {
		t.Errorf("err = %v, want one naming durable", err)
	}
	if _, err := b.Consumer(testContext(t), bus.ConsumerConfig{Durable: "c", Stream: "NOPE"}, ok); err == nil || !strings.Contains(err.Error(), "NOPE") {
		t.Errorf("err = %v, want one naming the missing stream", err)
	}
	if _, err := b.Consumer(testContext(t), bus.ConsumerConfig{Durable: "c"}, nil); err == nil {
		t.Error("nil handler: want an error")
	}
	c := newConsumer(t, b, bus.ConsumerConfig{Durable: "c"}, ok)
	run(t, c)
	publish(t, b, testSubject, "evt-1", "x")
	waitSettled(t, c) // the first Run is running
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Run(cancelled); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v, want already running", err)
	}
}

func TestHeartbeatKeepsLongHandlerAlive(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	// Watch the in-progress acks the runner sends (every ack_wait/2).
	progress := make(chan struct{}, 100)
	sub, err := b.Conn().Subscribe("$JS.ACK."+bus.StreamEvents+".hb.>", func(m *nats.Msg) {
		if string(m.Data) == "+WPI" {
			progress <- struct{}{}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	started := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	c := newConsumer(t, b, fast("hb"), func(ctx context.Context, m *bus.Msg) bus.Result {
		if calls.Add(1) == 1 {
			close(started)
		}
		<-release
		return bus.Done()
	})
	publish(t, b, testSubject, "evt-1", "x")
	run(t, c)
	<-started
	// Three heartbeats take 1.5 ack_wait: without them the server would
	// have redelivered by now.
	for i := range 3 {
		select {
		case <-progress:
		case <-time.After(waitTotal):
			t.Fatalf("heartbeat %d not sent", i+1)
		}
	}
	st, err := c.Stats(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Redelivered != 0 || st.Delivered != 1 {
		t.Errorf("stats while the handler runs = %+v, want one delivery", st)
	}
	close(release)
	waitSettled(t, c)
	if calls.Load() != 1 {
		t.Errorf("handler called %d times, want 1", calls.Load())
	}
}

func TestPoisonMessageDeadLetteredWithoutAResult(t *testing.T) {
	srv := bustest.RunServer(t)
	cfg := fast("poison")
	cfg.MaxDeliver = 1

	// A message whose handler never returns (it would crash the process) ...
	b1 := srv.Open(t)
	started := make(chan struct{})
	release := make(chan struct{})
	c1 := newConsumer(t, b1, cfg, func(ctx context.Context, m *bus.Msg) bus.Result {
		close(started)
		<-release
		return bus.Done()
	})
	publish(t, b1, testSubject, "evt-1", "poison")
	run(t, c1)
	t.Cleanup(func() { close(release) }) // before run's cleanup waits for Run
	<-started
	b1.Conn().Close()

	// ... is dead-lettered by the next process once it exceeds max_deliver,
	// without calling the handler again.
	b2 := srv.Open(t)
	var calls atomic.Int32
	c2 := newConsumer(t, b2, cfg, func(ctx context.Context, m *bus.Msg) bus.Result {
		calls.Add(1)
		return bus.Done()
	})
	run(t, c2)
	dl := waitDeadLetters(t, b2, "poison", 1)
	waitSettled(t, c2)
	mustContain(t, dl[0].Header.Get(bus.HeaderDLQReason), "gave up after 2 deliveries", "no result")
	if calls.Load() != 0 {
		t.Errorf("handler called %d times, want 0", calls.Load())
	}
}

func TestConsumerRecreatedAfterDeletion(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	got := make(chan string, 10)
	c := newConsumer(t, b, fast("phoenix"), func(ctx context.Context, m *bus.Msg) bus.Result {
		got <- m.MsgID
		return bus.Done()
	})
	run(t, c)
	publish(t, b, testSubject, "evt-1", "x")
	if id := <-got; id != "evt-1" {
		t.Fatalf("got %q", id)
	}
	if err := b.JetStream().DeleteConsumer(testContext(t), bus.StreamEvents, "phoenix"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, testSubject, "evt-2", "x")
	// The new consumer starts from the beginning of the stream: evt-1 again
	// (harmless, events are triggers), then evt-2.
	timeout := time.After(waitTotal)
	for {
		select {
		case id := <-got:
			if id == "evt-2" {
				waitSettled(t, c)
				return
			}
		case <-timeout:
			t.Fatal("consumer not recreated: evt-2 not handled")
		}
	}
}

// A handler sees how many messages still wait behind its own: a backlog
// published before the consumer runs counts down to none.
func TestHandlerSeesTheBacklog(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.RunServer(t).Open(t, bus.WithRegisterer(reg))
	const n = 50
	var mu sync.Mutex
	pending := map[uint64]uint64{} // stream sequence -> Pending
	cfg := fast("backlog")
	cfg.Batch, cfg.Concurrency = 1, 1
	c := newConsumer(t, b, cfg, func(ctx context.Context, m *bus.Msg) bus.Result {
		mu.Lock()
		pending[m.StreamSeq] = m.Pending
		mu.Unlock()
		return bus.Done()
	})
	for i := range n {
		publish(t, b, testSubject, fmt.Sprintf("evt-%d", i), "x")
	}
	run(t, c)
	waitHandled(t, reg, "backlog", "done", n)
	mu.Lock()
	defer mu.Unlock()
	if got := pending[1]; got < n/2 {
		t.Errorf("the first of %d messages saw %d pending behind it", n, got)
	}
	if got := pending[n]; got != 0 {
		t.Errorf("the last message saw %d pending behind it, want 0", got)
	}
}
