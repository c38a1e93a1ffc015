package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoDeadLetter is returned by ReplayDeadLetter for a sequence that holds
// no dead letter (never stored, replayed already, or expired).
var ErrNoDeadLetter = errors.New("no such dead letter")

// DeadLetter is one message in IAM_DLQ, as a person reads it: who gave up,
// why, and the original message.
type DeadLetter struct {
	// Seq is the dead letter's sequence in IAM_DLQ.
	Seq uint64
	// Consumer is the durable name of the consumer that gave up.
	Consumer string
	// Reason says why (Iamflow-Dlq-Reason).
	Reason string
	// Time is when it was dead-lettered.
	Time time.Time
	// Stream, Subject and StreamSeq locate the original message.
	Stream    string
	Subject   string
	StreamSeq uint64
	// Deliveries is how many times the original was delivered.
	Deliveries uint64
	// MsgID is the original Nats-Msg-Id, if it had one.
	MsgID string
	// Header is the original message's headers (Iamflow-Dlq-* removed).
	Header nats.Header
	// Data is the original payload.
	Data []byte
}

// DeadLetterCounts returns how many dead letters each consumer has in
// IAM_DLQ, by durable name.
func (b *Bus) DeadLetterCounts(ctx context.Context) (map[string]uint64, error) {
	stream, err := b.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("count dead letters: stream %s: %w", StreamDLQ, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(DLQSubjects))
	if err != nil {
		return nil, fmt.Errorf("count dead letters: stream %s info: %w", StreamDLQ, err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		if c, ok := strings.CutPrefix(subj, DLQSubjectPrefix+"."); ok {
			out[c] += n
		}
	}
	return out, nil
}

// ListDeadLetters returns up to limit dead letters, oldest first: those of
// the consumer durable, or of every consumer when durable is empty. more
// says whether there are others after them.
func (b *Bus) ListDeadLetters(ctx context.Context, durable string, limit int) (out []DeadLetter, more bool, err error) {
	subject := DLQSubjects
	if durable != "" {
		if !nameRE.MatchString(durable) {
			return nil, false, fmt.Errorf("list dead letters: %q is not a consumer name", durable)
		}
		subject = DLQSubject(durable)
	}
	if limit <= 0 {
		return nil, false, fmt.Errorf("list dead letters: limit %d: give a positive number", limit)
	}
	stream, err := b.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, false, fmt.Errorf("list dead letters: stream %s: %w", StreamDLQ, err)
	}
	for seq := uint64(1); ; {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, false, nil
		}
		if err != nil {
			return out, false, fmt.Errorf("list dead letters: read from seq %d: %w", seq, err)
		}
		if len(out) == limit {
			return out, true, nil
		}
		seq = raw.Sequence + 1
		out = append(out, deadLetterOf(raw))
	}
}

// ReplayDeadLetter republishes the dead letter stored at seq in IAM_DLQ to
// its original subject and removes it, like ReplayDeadLetters does for a
// whole consumer; it returns the dead letter as it was. A sequence that
// holds no dead letter gives ErrNoDeadLetter.
func (b *Bus) ReplayDeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	stream, err := b.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("replay dead letter %d: stream %s: %w", seq, StreamDLQ, err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && !strings.HasPrefix(raw.Subject, DLQSubjectPrefix+".")) {
		return DeadLetter{}, fmt.Errorf("replay dead letter %d: %w", seq, ErrNoDeadLetter)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	dl := deadLetterOf(raw)
	ok, err := b.replayOne(ctx, stream, raw)
	if err != nil {
		return dl, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	if !ok {
		return dl, fmt.Errorf("replay dead letter %d: it does not say where it came from (%s missing)", seq, HeaderDLQSubject)
	}
	return dl, nil
}

// deadLetterOf reads a dead letter's headers.
func deadLetterOf(raw *jetstream.RawStreamMsg) DeadLetter {
	h := raw.Header
	dl := DeadLetter{
		Seq:      raw.Sequence,
		Consumer: h.Get(HeaderDLQConsumer),
		Reason:   h.Get(HeaderDLQReason),
		Stream:   h.Get(HeaderDLQStream),
		Subject:  h.Get(HeaderDLQSubject),
		MsgID:    h.Get(HeaderDLQMsgID),
		Data:     raw.Data,
		Time:     raw.Time,
		Header:   make(nats.Header, len(h)),
	}
	if dl.Consumer == "" {
		dl.Consumer = strings.TrimPrefix(raw.Subject, DLQSubjectPrefix+".")
	}
	dl.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderDLQSeq), 10, 64)
	dl.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDLQDeliveries), 10, 64)
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDLQTime)); err == nil {
		dl.Time = t
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if !strings.HasPrefix(strings.ToLower(k), strings.ToLower(HeaderDLQPrefix)) && k != jetstream.MsgIDHeader {
			dl.Header[k] = h[k]
		}
	}
	return dl
}
