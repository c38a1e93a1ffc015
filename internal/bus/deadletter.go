package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Headers a dead letter carries besides the original message's headers.
const (
	// HeaderDLQPrefix starts every dead-letter header; replay removes them.
	HeaderDLQPrefix = "Iamflow-Dlq-"
	// HeaderDLQReason says why the message was dead-lettered (at most MaxDLQReasonLen bytes).
	HeaderDLQReason = HeaderDLQPrefix + "Reason"
	// HeaderDLQConsumer is the durable name of the consumer that gave up.
	HeaderDLQConsumer = HeaderDLQPrefix + "Consumer"
	// HeaderDLQStream is the stream the original message is stored in.
	HeaderDLQStream = HeaderDLQPrefix + "Stream"
	// HeaderDLQSubject is the original subject; replay publishes there.
	HeaderDLQSubject = HeaderDLQPrefix + "Subject"
	// HeaderDLQSeq is the original message's stream sequence.
	HeaderDLQSeq = HeaderDLQPrefix + "Seq"
	// HeaderDLQDeliveries is how many times the original was delivered.
	HeaderDLQDeliveries = HeaderDLQPrefix + "Deliveries"
	// HeaderDLQTime is when it was dead-lettered (RFC 3339, UTC).
	HeaderDLQTime = HeaderDLQPrefix + "Time"
	// HeaderDLQMsgID is the original Nats-Msg-Id, if it had one: the dead
	// letter's own Nats-Msg-Id is <stream>/<seq>/<durable>.
	HeaderDLQMsgID = HeaderDLQPrefix + "Msg-Id"

	// MaxDLQReasonLen bounds HeaderDLQReason.
	MaxDLQReasonLen = 1024
)

// deadLetter stores d in IAM_DLQ with reason, then acks it. If the dead
// letter is not stored, d is nak'ed instead: a message is never acked
// without its dead letter.
func (r *runner) deadLetter(d *delivery, reason string, result string) {
	c, m := r.c, d.msg
	hdr := cloneHeader(d.jm.Headers())
	if id := hdr.Get(jetstream.MsgIDHeader); id != "" {
		hdr.Set(HeaderDLQMsgID, id)
	}
	hdr.Set(HeaderDLQReason, headerValue(reason, MaxDLQReasonLen))
	hdr.Set(HeaderDLQConsumer, r.cfg.Durable)
	hdr.Set(HeaderDLQStream, m.Stream)
	hdr.Set(HeaderDLQSubject, m.Subject)
	hdr.Set(HeaderDLQSeq, strconv.FormatUint(m.StreamSeq, 10))
	hdr.Set(HeaderDLQDeliveries, strconv.FormatUint(m.NumDelivered, 10))
	hdr.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	hdr.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/%d/%s", m.Stream, m.StreamSeq, r.cfg.Durable))
	dl := &nats.Msg{Subject: DLQSubject(r.cfg.Durable), Data: m.Data, Header: hdr}

	ctx, cancel := context.WithTimeout(r.runCtx, settleTimeout)
	defer cancel()
	ack, err := c.b.js.PublishMsg(ctx, dl)
	c.b.metrics.publishedOne(dl.Subject, err == nil, ack != nil && ack.Duplicate)
	if err != nil {
		c.log.Error("dead letter not stored; nak to try again", "error", err, "seq", m.StreamSeq, "reason", reason)
		r.nak(d, r.cfg.backoff(m.NumDelivered))
		return
	}
	if !ack.Duplicate {
		c.deadLettered.Add(1)
	}
	c.log.Warn("dead-lettered", "seq", m.StreamSeq, "subject", m.Subject, "deliveries", m.NumDelivered,
		"dlq_seq", ack.Sequence, "reason", reason)
	r.ack(d, result)
}

// ReplayDeadLetters republishes up to max (all if max <= 0) dead letters of
// the consumer durable, oldest first, to their original subjects, and deletes
// each from IAM_DLQ once its republish is acknowledged. The republished
// message has the original payload and headers (Iamflow-Dlq-* removed) and
// Nats-Msg-Id <original id>/replay/<dlq seq>, so replaying again after a
// crash does not store it twice. Every consumer of the original subject sees
// the replayed message, which is harmless since events are triggers.
// It returns how many were replayed.
func (b *Bus) ReplayDeadLetters(ctx context.Context, durable string, max int) (n int, err error) {
	if !nameRE.MatchString(durable) {
		return 0, fmt.Errorf("replay dead letters: %q is not a consumer name", durable)
	}
	ctx, span := b.tracer.Start(ctx, "replay dead letters "+durable,
		trace.WithAttributes(semconv.MessagingConsumerGroupName(durable)))
	defer func() {
		span.SetAttributes(attribute.Int("iamflow.replayed", n))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()

	stream, err := b.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return 0, fmt.Errorf("replay dead letters of %s: stream %s: %w", durable, StreamDLQ, err)
	}
	subject := DLQSubject(durable)
	for seq := uint64(1); max <= 0 || n < max; {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("replay dead letters of %s: read from seq %d: %w", durable, seq, err)
		}
		seq = raw.Sequence + 1
		ok, err := b.replayOne(ctx, stream, raw)
		if err != nil {
			return n, fmt.Errorf("replay dead letters of %s: %w", durable, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// replayOne republishes one dead letter to its original subject and deletes
// it from IAM_DLQ once the republish is acknowledged. A dead letter without
// its original subject is left in place (false, nil).
func (b *Bus) replayOne(ctx context.Context, stream jetstream.Stream, raw *jetstream.RawStreamMsg) (bool, error) {
	durable := strings.TrimPrefix(raw.Subject, DLQSubjectPrefix+".")
	target := raw.Header.Get(HeaderDLQSubject)
	if target == "" {
		b.log.Error("dead letter without "+HeaderDLQSubject+"; left in place", "dlq_seq", raw.Sequence, "consumer", durable)
		return false, nil
	}
	orig := raw.Header.Get(HeaderDLQMsgID)
	if orig == "" {
		orig = raw.Header.Get(HeaderDLQStream) + "/" + raw.Header.Get(HeaderDLQSeq)
	}
	hdr := make(nats.Header, len(raw.Header))
	for k, v := range raw.Header {
		if !strings.HasPrefix(strings.ToLower(k), strings.ToLower(HeaderDLQPrefix)) {
			hdr[k] = v
		}
	}
	hdr.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/replay/%d", orig, raw.Sequence))
	msg := &nats.Msg{Subject: target, Data: raw.Data, Header: hdr}

	ack, err := b.js.PublishMsg(ctx, msg)
	b.metrics.publishedOne(target, err == nil, ack != nil && ack.Duplicate)
	if err != nil {
		return false, fmt.Errorf("republish dlq seq %d to %s: %w", raw.Sequence, target, err)
	}
	if err := stream.DeleteMsg(ctx, raw.Sequence); err != nil {
		return false, fmt.Errorf("delete dlq seq %d after republish: %w", raw.Sequence, err)
	}
	b.log.Info("dead letter replayed", "consumer", durable, "dlq_seq", raw.Sequence, "subject", target, "seq", ack.Sequence)
	return true, nil
}
