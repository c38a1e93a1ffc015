package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/iamflow/iamflow/internal/telemetry"
)

// process runs the handler once for g and settles every message of g by its result.
func (r *runner) process(g *group) {
	if g.expired {
		for _, d := range g.ds {
			reason := fmt.Sprintf("gave up after %d deliveries: no result (the handler did not finish within ack_wait, or the process stopped)",
				d.msg.NumDelivered)
			r.deadLetter(d, reason, resultDeadLettered)
		}
		return
	}

	newest := g.ds[0]
	for _, d := range g.ds[1:] {
		if d.msg.StreamSeq > newest.msg.StreamSeq {
			newest = d
		}
	}
	b := r.c.b
	ctx := b.propagator.Extract(r.hctx, telemetry.HeaderCarrier(newest.msg.Header))
	var links []trace.Link
	for _, d := range g.ds {
		if d == newest {
			continue
		}
		sc := trace.SpanContextFromContext(b.propagator.Extract(context.Background(), telemetry.HeaderCarrier(d.msg.Header)))
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := b.tracer.Start(ctx, "process "+r.cfg.Durable,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(newest.msg.Subject),
			semconv.MessagingConsumerGroupName(r.cfg.Durable),
			semconv.MessagingMessageID(newest.msg.MsgID),
			attribute.String("messaging.nats.stream", newest.msg.Stream),
			attribute.Int64("messaging.nats.stream_sequence", int64(newest.msg.StreamSeq)),
			attribute.Int64("messaging.nats.num_delivered", int64(newest.msg.NumDelivered)),
			attribute.Int("iamflow.coalesced", len(g.ds)),
		))
	defer span.End()

	start := time.Now()
	res := r.c.h(ctx, newest.msg).normalize()
	r.c.duration.Observe(time.Since(start).Seconds())

	span.SetAttributes(attribute.String("iamflow.result", res.String()))
	if err := res.Err(); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	r.logResult(newest, len(g.ds), res)
	r.settle(g, res)
}

func (r *runner) logResult(d *delivery, n int, res Result) {
	log := r.c.log.With("subject", d.msg.Subject, "seq", d.msg.StreamSeq, "deliveries", d.msg.NumDelivered)
	if n > 1 {
		log = log.With("coalesced", n)
	}
	var pe *PanicError
	switch {
	case errors.As(res.Err(), &pe):
		log.Error("handler panicked", "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	case res.IsDone():
		log.Debug("handled")
	case res.IsTerminal():
		log.Warn("handler gave up", "error", res.Err())
	default:
		log.Info("handler asks for a retry", "error", res.Err(), "delay", res.Delay())
	}
}

// settle acks, naks or dead-letters every message of g by res.
func (r *runner) settle(g *group, res Result) {
	if res.IsDone() && len(g.ds) > 1 {
		r.ackAll(g.ds)
		return
	}
	for _, d := range g.ds {
		n := d.msg.NumDelivered
		switch {
		case res.IsDone():
			r.ack(d, resultDone)
		case res.IsTerminal():
			r.deadLetter(d, res.Err().Error(), resultTerminal)
		case n >= uint64(r.cfg.MaxDeliver):
			r.deadLetter(d, fmt.Sprintf("gave up after %d deliveries: %v", n, res.Err()), resultDeadLettered)
		default:
			delay := res.Delay()
			if delay == 0 {
				delay = r.cfg.backoff(n)
			}
			r.nak(d, delay)
		}
	}
}

func (r *runner) ack(d *delivery, result string) {
	r.release(d)
	ctx, cancel := context.WithTimeout(r.runCtx, settleTimeout)
	defer cancel()
	if err := d.jm.DoubleAck(ctx); err != nil {
		r.c.log.Warn("ack failed; the message will be redelivered", "error", err, "seq", d.msg.StreamSeq)
	}
	r.c.handled[result].Inc()
}

// maxParallelAcks bounds the acks of one coalesced group in flight at once.
const maxParallelAcks = 32

// ackAll acks the messages of a coalesced group concurrently. Each ack
// waits for the server's confirmation, one round trip, and a group can
// hold a whole batch (the membership events of one group after an outage,
// say): one after the other, they made the group's key wait, and with it
// every message of the key fetched meanwhile.
func (r *runner) ackAll(ds []*delivery) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelAcks)
	for _, d := range ds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r.ack(d, resultDone)
		})
	}
	wg.Wait()
}

func (r *runner) nak(d *delivery, delay time.Duration) {
	r.release(d)
	if err := d.jm.NakWithDelay(delay); err != nil {
		r.c.log.Warn("nak failed; the message will be redelivered after ack_wait", "error", err, "seq", d.msg.StreamSeq)
	}
	r.c.handled[resultRetry].Inc()
}
