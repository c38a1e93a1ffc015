package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// fetchWait is how long an idle consumer's pull request waits for a message.
	fetchWait = 5 * time.Second
	// settleTimeout bounds one ack or one dead-letter publish.
	settleTimeout = 5 * time.Second
	// maxFetchBackoff caps the pause between failed fetches.
	maxFetchBackoff = 5 * time.Second
)

// delivery is one fetched message, held until it is acked, nak'ed or dead-lettered.
type delivery struct {
	jm  jetstream.Msg
	msg *Msg
}

// group is what one handler call decides about: one message, or the
// messages of one coalescing key.
type group struct {
	key     string // "" when not coalesced
	expired bool   // delivered more than max_deliver times without a result
	ds      []*delivery
}

// keyState tracks a coalescing key that is queued or running.
type keyState struct {
	running bool
	// queued collects the key's messages that wait for a handler call: it is
	// in runner.queue when the key is not running, and is queued when the
	// running call ends.
	queued *group
}

// runner is the state of one Consumer.Run.
type runner struct {
	c   *Consumer
	cfg ConsumerConfig

	mu       sync.Mutex
	cond     *sync.Cond // signalled when queue grows or stopping is set
	held     map[*delivery]struct{}
	queue    []*group
	keys     map[string]*keyState
	stopping bool
	space    chan struct{} // receives when held shrinks

	runCtx  context.Context // values of Run's ctx, never cancelled
	hctx    context.Context // handlers' context, cancelled after a drain timeout
	hcancel context.CancelFunc
	workers sync.WaitGroup
}

// Run fetches messages and hands them to the handler until ctx is cancelled,
// then drains: it stops fetching, naks the messages no handler has started
// (so another replica takes them at once), waits up to drain_timeout for
// running handlers and settles their messages, and returns nil. It returns an
// error if the connection is closed. A Consumer runs once at a time.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return fmt.Errorf("consumer %s: already running", c.cfg.Durable)
	}
	defer c.running.Store(false)

	r := &runner{
		c:      c,
		cfg:    c.cfg,
		held:   make(map[*delivery]struct{}),
		keys:   make(map[string]*keyState),
		space:  make(chan struct{}, 1),
		runCtx: context.WithoutCancel(ctx),
	}
	r.cond = sync.NewCond(&r.mu)
	r.hctx, r.hcancel = context.WithCancel(r.runCtx)
	defer r.hcancel()

	for range c.cfg.Concurrency {
		r.workers.Add(1)
		go r.work()
	}
	stopHeartbeat := make(chan struct{})
	heartbeatDone := make(chan struct{})
	go func() {
		defer close(heartbeatDone)
		r.heartbeat(stopHeartbeat)
	}()

	c.log.Info("consumer running", "concurrency", c.cfg.Concurrency, "batch", c.cfg.Batch)
	err := r.fetchLoop(ctx)
	r.drain()
	close(stopHeartbeat)
	<-heartbeatDone
	c.log.Info("consumer stopped")
	return err
}

// fetchLoop fetches while there is room among the held messages, until ctx
// is cancelled or the connection is closed.
func (r *runner) fetchLoop(ctx context.Context) error {
	failures := 0
	for {
		n := r.waitForSpace(ctx)
		if n == 0 {
			return r.stopErr()
		}
		ds, err := r.fetch(ctx, n)
		r.enqueue(ds)
		if err == nil {
			failures = 0
			r.c.b.failover.note(reqFetch, r.cfg.Stream, nil)
			continue
		}
		// A closed connection is reported even when ctx ended too: the
		// caller should know its messages were not settled by this process.
		if err := r.stopErr(); err != nil || ctx.Err() != nil {
			return err
		}
		failures++
		r.c.log.Warn("fetch failed", "error", err, "failures", failures)
		r.c.b.failover.note(reqFetch, r.cfg.Stream, err)
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrNoResponders) {
			r.restoreConsumer(ctx)
		}
		pause := min(100*time.Millisecond<<min(failures, 10), maxFetchBackoff)
		select {
		case <-ctx.Done():
			return r.stopErr()
		case <-time.After(pause):
		}
	}
}

// stopErr is the error Run ends with when it stops: ErrConnectionClosed if
// the connection is gone, else nil.
func (r *runner) stopErr() error {
	if r.c.b.nc.IsClosed() {
		return fmt.Errorf("consumer %s: %w", r.cfg.Durable, nats.ErrConnectionClosed)
	}
	return nil
}

// restoreConsumer creates the consumer again if the server no longer has it
// (deleted by hand, or lost with a memory stream), and the streams with it.
// Its messages are then delivered again from the start of the stream, which
// is harmless since events are triggers.
func (r *runner) restoreConsumer(ctx context.Context) {
	_, err := r.c.consumer().Info(ctx)
	if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return
	}
	r.c.log.Warn("consumer missing on the server; creating it again", "error", err)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if err := ensureStreams(ctx, r.c.b.js, r.c.b.cfg.Streams); err != nil {
			r.c.log.Error("recreate streams", "error", err)
			return
		}
	}
	if err := r.c.ensure(ctx); err != nil {
		r.c.log.Error("recreate consumer", "error", err)
	}
}

// waitForSpace blocks until fewer than batch messages are held and returns
// how many more may be fetched, or 0 when ctx is done.
func (r *runner) waitForSpace(ctx context.Context) int {
	for {
		if ctx.Err() != nil {
			return 0
		}
		r.mu.Lock()
		n := r.cfg.Batch - len(r.held)
		r.mu.Unlock()
		if n > 0 {
			return n
		}
		select {
		case <-ctx.Done():
			return 0
		case <-r.space:
		}
	}
}

// fetch returns up to n messages: those available at once, or else the first
// to arrive within fetchWait together with those available right after it.
func (r *runner) fetch(ctx context.Context, n int) ([]*delivery, error) {
	cons := r.c.consumer()
	ds, err := r.collect(cons.FetchNoWait(n))
	if err != nil || len(ds) > 0 {
		return ds, err
	}
	wctx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	first, err := r.collect(cons.Fetch(1, jetstream.FetchContext(wctx)))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = nil // nothing arrived
		}
		return first, err
	}
	if len(first) == 0 || n == 1 {
		return first, nil
	}
	rest, err := r.collect(cons.FetchNoWait(n - 1))
	return append(first, rest...), err
}

func (r *runner) collect(batch jetstream.MessageBatch, err error) ([]*delivery, error) {
	if err != nil {
		return nil, err
	}
	var ds []*delivery
	for jm := range batch.Messages() {
		d, err := newDelivery(jm)
		if err != nil {
			r.c.log.Error("message without JetStream metadata; nak", "error", err, "subject", jm.Subject())
			_ = jm.Nak()
			continue
		}
		ds = append(ds, d)
	}
	return ds, batch.Error()
}

func newDelivery(jm jetstream.Msg) (*delivery, error) {
	meta, err := jm.Metadata()
	if err != nil {
		return nil, err
	}
	h := jm.Headers()
	return &delivery{jm: jm, msg: &Msg{
		Subject:      jm.Subject(),
		Data:         jm.Data(),
		Header:       cloneHeader(h),
		Stream:       meta.Stream,
		StreamSeq:    meta.Sequence.Stream,
		ConsumerSeq:  meta.Sequence.Consumer,
		NumDelivered: meta.NumDelivered,
		Timestamp:    meta.Timestamp,
		MsgID:        h.Get(jetstream.MsgIDHeader),
		Pending:      meta.NumPending,
	}}, nil
}

// enqueue holds ds and queues them for the workers, merging messages of a
// key that is already queued or running.
func (r *runner) enqueue(ds []*delivery) {
	if len(ds) == 0 {
		return
	}
	keys := make([]string, len(ds))
	expired := make([]bool, len(ds))
	for i, d := range ds {
		if d.msg.NumDelivered > uint64(r.cfg.MaxDeliver) {
			expired[i] = true
			continue
		}
		keys[i] = r.coalesceKey(d.msg)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for i, d := range ds {
		r.held[d] = struct{}{}
		key := keys[i]
		if key == "" {
			r.queue = append(r.queue, &group{expired: expired[i], ds: []*delivery{d}})
			continue
		}
		ks := r.keys[key]
		switch {
		case ks == nil:
			g := &group{key: key, ds: []*delivery{d}}
			r.keys[key] = &keyState{queued: g}
			r.queue = append(r.queue, g)
		case ks.queued != nil:
			ks.queued.ds = append(ks.queued.ds, d)
		default: // running, nothing waiting yet
			ks.queued = &group{key: key, ds: []*delivery{d}}
		}
	}
	r.cond.Broadcast()
}

func (r *runner) coalesceKey(m *Msg) (key string) {
	if r.cfg.Coalesce == nil {
		return ""
	}
	defer func() {
		if v := recover(); v != nil {
			r.c.log.Error("coalesce hook panicked; handling the message alone", "panic", v, "seq", m.StreamSeq)
			key = ""
		}
	}()
	return r.cfg.Coalesce(m)
}

// work runs groups from the queue until the runner stops.
func (r *runner) work() {
	defer r.workers.Done()
	for {
		r.mu.Lock()
		for len(r.queue) == 0 && !r.stopping {
			r.cond.Wait()
		}
		if r.stopping {
			r.mu.Unlock()
			return
		}
		g := r.queue[0]
		r.queue[0] = nil
		r.queue = r.queue[1:]
		if g.key != "" {
			ks := r.keys[g.key]
			ks.queued = nil
			ks.running = true
		}
		r.mu.Unlock()

		r.process(g)

		if g.key != "" {
			r.mu.Lock()
			ks := r.keys[g.key]
			ks.running = false
			switch {
			case ks.queued != nil && !r.stopping:
				r.queue = append(r.queue, ks.queued)
				r.cond.Signal()
			case ks.queued == nil:
				delete(r.keys, g.key)
			}
			r.mu.Unlock()
		}
	}
}

// drain stops the workers from starting groups, naks the groups not started,
// and waits up to drain_timeout for running handlers.
func (r *runner) drain() {
	r.mu.Lock()
	r.stopping = true
	var unstarted []*delivery
	for _, g := range r.queue {
		unstarted = append(unstarted, g.ds...)
	}
	r.queue = nil
	for _, ks := range r.keys {
		if ks.running && ks.queued != nil {
			unstarted = append(unstarted, ks.queued.ds...)
		}
		ks.queued = nil
	}
	r.cond.Broadcast()
	r.mu.Unlock()

	// Hand unstarted messages back, delayed by fetchWait: the last pull
	// request this runner made may still be registered on the server (the
	// client drops a cancelled fetch's subscription asynchronously), and an
	// immediate redelivery could go to it and sit there until ack_wait. After
	// fetchWait that request has expired and a live consumer gets the message.
	for _, d := range unstarted {
		r.release(d)
		if err := d.jm.NakWithDelay(fetchWait); err != nil {
			r.c.log.Warn("nak unstarted message on stop", "error", err, "seq", d.msg.StreamSeq)
		}
	}

	done := make(chan struct{})
	go func() {
		r.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(r.cfg.DrainTimeout):
		r.mu.Lock()
		n := len(r.held)
		r.mu.Unlock()
		r.c.log.Warn("handlers still running after drain timeout; cancelling them, their messages will be redelivered",
			"drain_timeout", r.cfg.DrainTimeout, "held", n)
		r.hcancel()
	}
}

// heartbeat tells the server every ack_wait/2 that held messages are in
// progress, so long handlers and queued messages are not redelivered.
func (r *runner) heartbeat(stop <-chan struct{}) {
	t := time.NewTicker(r.cfg.AckWait / 2)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		ds := make([]*delivery, 0, len(r.held))
		for d := range r.held {
			ds = append(ds, d)
		}
		r.mu.Unlock()
		for _, d := range ds {
			if err := d.jm.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				r.c.log.Debug("in-progress heartbeat", "error", err, "seq", d.msg.StreamSeq)
			}
		}
	}
}

// release stops holding d: no more heartbeats, room for one more fetch.
func (r *runner) release(d *delivery) {
	r.mu.Lock()
	delete(r.held, d)
	r.mu.Unlock()
	select {
	case r.space <- struct{}{}:
	default:
	}
}
