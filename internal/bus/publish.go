package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/iamflow/iamflow/internal/telemetry"
)

// OutMsg is one message of a [Bus.PublishBatch] and its Nats-Msg-Id.
type OutMsg struct {
	// Msg is published as is, with Nats-Msg-Id and trace context added to its headers.
	Msg *nats.Msg
	// ID is the Nats-Msg-Id: the stream stores a message once per ID within
	// its duplicate window. Empty means no deduplication.
	ID string
}

// Publish stores msg in its stream and waits for the acknowledgement. It sets
// msg's Nats-Msg-Id header to msgID (unless msgID is empty) and writes the
// trace context of a producer span, a child of ctx's span, into msg's headers.
// A PubAck with Duplicate set means the stream already had msgID and kept
// the earlier message. Without a deadline in ctx, the JetStream default (5s) applies.
func (b *Bus) Publish(ctx context.Context, msg *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	ctx, span := b.startPublishSpan(ctx, msg, msgID)
	defer span.End()
	ack, err := b.js.PublishMsg(ctx, msg)
	b.endPublish(span, msg, ack, err)
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", msg.Subject, err)
	}
	return ack, nil
}

// PublishBatch publishes every message without waiting in between (a single
// message synchronously), then waits for every acknowledgement until ctx is done (the JetStream default timeout,
// 5s, if ctx has no deadline). acks[i] is msgs[i]'s acknowledgement, or nil if
// it did not arrive; the error says how many of the messages were acknowledged.
// Only a nil error means every message is stored: this is what the webhook
// answers 2xx on. A message not acknowledged may still have been stored;
// publishing it again with the same ID is deduplicated.
func (b *Bus) PublishBatch(ctx context.Context, msgs []OutMsg) ([]*jetstream.PubAck, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	for i, om := range msgs {
		if om.Msg == nil {
			return nil, fmt.Errorf("publish batch: message %d is nil", i)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.js.Options().DefaultTimeout)
		defer cancel()
	}

	if len(msgs) == 1 {
		// One event per request is the webhook's common case. Nothing to
		// overlap: the synchronous request costs less than a future's
		// channels and the asynchronous reply bookkeeping.
		om := msgs[0]
		ctx, span := b.startPublishSpan(ctx, om.Msg, om.ID)
		ack, err := b.js.PublishMsg(ctx, om.Msg)
		b.endPublish(span, om.Msg, ack, err)
		span.End()
		if err != nil {
			return []*jetstream.PubAck{nil}, fmt.Errorf("publish batch: 0 of 1 messages acknowledged: %w", err)
		}
		return []*jetstream.PubAck{ack}, nil
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	spans := make([]trace.Span, len(msgs))
	errs := make([]error, len(msgs))
	for i, om := range msgs {
		_, spans[i] = b.startPublishSpan(ctx, om.Msg, om.ID)
		futures[i], errs[i] = b.js.PublishMsgAsync(om.Msg)
	}

	acks := make([]*jetstream.PubAck, len(msgs))
	acked := 0
	for i, f := range futures {
		if errs[i] == nil {
			acks[i], errs[i] = awaitAck(ctx, f)
		}
		b.endPublish(spans[i], msgs[i].Msg, acks[i], errs[i])
		spans[i].End()
		if errs[i] == nil {
			acked++
		}
	}
	if acked < len(msgs) {
		return acks, fmt.Errorf("publish batch: %d of %d messages acknowledged: %w", acked, len(msgs), firstError(errs))
	}
	return acks, nil
}

func awaitAck(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		// An ack may have raced the deadline: prefer it.
		select {
		case ack := <-f.Ok():
			return ack, nil
		default:
			return nil, fmt.Errorf("waiting for the acknowledgement: %w", ctx.Err())
		}
	}
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return errors.New("no error")
}

// PublishAudit stores an audit record of service's action on
// iam.audit.<service>.<action> in IAM_AUDIT. hdr (may be nil) is copied into
// the message; a Nats-Msg-Id in it deduplicates the record.
func (b *Bus) PublishAudit(ctx context.Context, service, action string, data []byte, hdr nats.Header) error {
	if !validToken(service) {
		return Permanent(fmt.Errorf("publish audit: service %q: %w", service, errNotSubjectToken))
	}
	if !validToken(action) {
		return Permanent(fmt.Errorf("publish audit: action %q: %w", action, errNotSubjectToken))
	}
	msg := &nats.Msg{Subject: AuditSubject(service, action), Data: data, Header: cloneHeader(hdr)}
	if _, err := b.Publish(ctx, msg, ""); err != nil {
		return fmt.Errorf("publish audit: %w", err)
	}
	return nil
}

// errNotSubjectToken says a subject would be built from a name that is not
// one subject token; its errors are Permanent, repeating cannot help.
var errNotSubjectToken = errors.New("not a subject token (letters, digits, '-', '_')")

// validToken reports whether s can be one token of a subject we build.
func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

func cloneHeader(h nats.Header) nats.Header {
	c := make(nats.Header, len(h)+4)
	for k, v := range h {
		c[k] = append([]string(nil), v...)
	}
	return c
}

// startPublishSpan starts a producer span for msg and writes its context and
// msgID into msg's headers.
func (b *Bus) startPublishSpan(ctx context.Context, msg *nats.Msg, msgID string) (context.Context, trace.Span) {
	ctx, span := b.tracer.Start(ctx, publishSpanName(streamOf(msg.Subject)), producerSpan)
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("publish"),
			semconv.MessagingDestinationName(msg.Subject),
			semconv.MessagingMessageBodySize(len(msg.Data)),
		)
		if msgID != "" {
			span.SetAttributes(semconv.MessagingMessageID(msgID))
		}
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	b.propagator.Inject(ctx, telemetry.HeaderCarrier(msg.Header))
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	return ctx, span
}

// producerSpan is the kind of every publish span.
var producerSpan = trace.WithSpanKind(trace.SpanKindProducer)

// publishSpanName is "publish <stream>", without building it per message.
func publishSpanName(stream string) string {
	switch stream {
	case StreamEvents:
		return "publish " + StreamEvents
	case StreamDLQ:
		return "publish " + StreamDLQ
	case StreamAudit:
		return "publish " + StreamAudit
	}
	return "publish " + stream
}

// endPublish records the outcome of a publish on its span and in the metrics.
func (b *Bus) endPublish(span trace.Span, msg *nats.Msg, ack *jetstream.PubAck, err error) {
	b.metrics.publishedOne(msg.Subject, err == nil && ack != nil, ack != nil && ack.Duplicate)
	// A subject outside iamflow's streams finds no responder on every
	// server alike: nothing to learn from it about this one.
	if stream := streamOf(msg.Subject); stream != "other" {
		b.failover.note(reqPublish, stream, err)
	}
	switch {
	case !span.IsRecording():
		return
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return
	}
	span.SetAttributes(
		attribute.String("messaging.nats.stream", ack.Stream),
		attribute.Int64("messaging.nats.stream_sequence", int64(ack.Sequence)),
		attribute.Bool("messaging.nats.duplicate", ack.Duplicate),
	)
}

// headerValue makes s safe as a NATS header value: no line breaks, at most max bytes.
func headerValue(s string, max int) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
