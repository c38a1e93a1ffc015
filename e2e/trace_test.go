//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/event"
)

// traceLine is one thing that happened to an object, for a timeline.
type traceLine struct {
	at   time.Time
	text string
}

// traceObjects returns, for source objects the event path left behind,
// what JetStream holds about them: their events in IAM_EVENTS (when stored,
// subject, id) and the audit records of what iamflow did to them, in time
// order; what a person needs to see where the event path lost them.
func (s *stackT) traceObjects(ctx context.Context, sourceIDs []string) string {
	want := map[string]bool{}
	for _, id := range sourceIDs {
		if id != "" {
			want[id] = true
		}
	}
	if len(want) == 0 {
		return ""
	}
	var lines []traceLine
	var evs []storedEvent
	var recs []auditEntry
	if err := waitFor(time.Minute, time.Second, func() error {
		var err error
		if evs, err = readEvents(ctx, s.natsURL()); err != nil {
			return err
		}
		recs, err = readAudit(ctx, s.natsURL())
		return err
	}); err != nil {
		return "IAM_EVENTS or IAM_AUDIT unreadable: " + err.Error()
	}
	for _, e := range evs {
		if want[e.resource] || want[e.related] {
			lines = append(lines, traceLine{e.stored, fmt.Sprintf("event %s seq %d %s (resource %s, related %s)", e.subject, e.seq, e.id, e.resource, e.related)})
		}
	}
	for _, e := range recs {
		r := e.r
		if !want[r.GetAfter()["source_id"]] && !want[r.GetAfter()["member_source_id"]] {
			continue
		}
		lines = append(lines, traceLine{r.GetTime().AsTime(), fmt.Sprintf("audit seq %d %s %s %s %s -> %s: %s (event %s) %v",
			e.seq, r.GetService(), r.GetAction(), r.GetOutcome(), r.GetResource().GetName(), r.GetTarget(), r.GetReason(), r.GetEventId(), r.GetAfter())})
	}
	slices.SortStableFunc(lines, func(a, b traceLine) int { return a.at.Compare(b.at) })
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "  %s %s\n", l.at.Format("15:04:05.000"), l.text)
	}
	return b.String()
}

// storedEvent is one message of IAM_EVENTS.
type storedEvent struct {
	seq               uint64
	stored            time.Time
	subject, id       string
	resource, related string
}

// readEvents reads every event in IAM_EVENTS.
func readEvents(ctx context.Context, natsURL string) ([]storedEvent, error) {
	return readStream(ctx, natsURL, "IAM_EVENTS", "events", func(m jetstream.Msg, meta *jetstream.MsgMetadata) (storedEvent, error) {
		se := storedEvent{seq: meta.Sequence.Stream, stored: meta.Timestamp, subject: m.Subject(), id: m.Headers().Get(jetstream.MsgIDHeader)}
		if ev, err := event.Unmarshal(m.Data()); err == nil {
			se.resource, se.related = ev.GetResource().GetId(), ev.GetRelated().GetId()
		}
		return se, nil
	})
}

// readStream reads every message of a stream, in order, through an ordered
// consumer, each turned into a T by decode; what (e.g. "events") names the
// messages in the error when the stream stops delivering before its count.
func readStream[T any](ctx context.Context, natsURL, stream, what string, decode func(jetstream.Msg, *jetstream.MsgMetadata) (T, error)) ([]T, error) {
	nc, err := nats.Connect(natsURL, nats.Name("e2e-checker"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	total := info.State.Msgs
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var out []T
	for uint64(len(out)) < total {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			v, err := decode(m, meta)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: read %d of %d %s, then nothing", stream, len(out), total, what)
		}
	}
	return out, nil
}
