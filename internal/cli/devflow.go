package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
)

// flowPrinter writes one line for every change that flows through a dev
// process: each event stored in IAM_EVENTS, each action a service recorded
// in IAM_AUDIT (with the time since its event was received), and each dead
// letter in IAM_DLQ.
type flowPrinter struct {
	mu       sync.Mutex
	w        io.Writer
	received map[string]time.Time // event id -> when ingest received it
}

// maxTrackedEvents bounds flowPrinter.received: older events lose their
// latency, nothing else.
const maxTrackedEvents = 10000

// watchFlow prints the flow of every stream from since on, until ctx ends;
// the channel closes once it has stopped.
func watchFlow(ctx context.Context, js jetstream.JetStream, since time.Time, w io.Writer, log *slog.Logger) <-chan struct{} {
	p := &flowPrinter{w: w, received: map[string]time.Time{}}
	done := make(chan struct{})
	var stops []func()
	for stream, handle := range map[string]func(jetstream.Msg){
		bus.StreamEvents: p.event, bus.StreamAudit: p.audit, bus.StreamDLQ: p.deadLetter,
	} {
		c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
		})
		if err != nil {
			log.Warn("dev: not printing the flow of a stream", "stream", stream, "error", err)
			continue
		}
		cc, err := c.Consume(handle)
		if err != nil {
			log.Warn("dev: not printing the flow of a stream", "stream", stream, "error", err)
			continue
		}
		stops = append(stops, cc.Stop)
	}
	go func() {
		defer close(done)
		<-ctx.Done()
		for _, stop := range stops {
			stop()
		}
	}()
	return done
}

func (p *flowPrinter) line(at time.Time, who, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s  %-13s  %s\n", at.Local().Format("15:04:05.000"), who, what)
}

func (p *flowPrinter) event(m jetstream.Msg) {
	e, err := event.Unmarshal(m.Data())
	if err != nil {
		return
	}
	at := e.GetReceivedAt().AsTime()
	p.mu.Lock()
	if len(p.received) >= maxTrackedEvents {
		clear(p.received)
	}
	p.received[e.GetId()] = at
	p.mu.Unlock()
	what := name(e.GetResource())
	if e.GetKind() == iamflowv1.Kind_KIND_MEMBERSHIP {
		what = fmt.Sprintf("%s in %s", name(e.GetRelated()), name(e.GetResource()))
	}
	p.line(at, "ingest", fmt.Sprintf("received %s %s from %s", e.GetType(), what, e.GetDomain()))
}

func (p *flowPrinter) audit(m jetstream.Msg) {
	r, err := audit.Decode(m.Data())
	if err != nil || r.GetOutcome() == audit.OutcomeSkipped || r.GetOutcome() == audit.OutcomeDryRun {
		return
	}
	var b strings.Builder
	b.WriteString(r.GetAction())
	if role := r.GetAfter()["role"]; role != "" {
		b.WriteString(" " + role + " to")
	}
	if n := name(r.GetResource()); n != "" {
		b.WriteString(" " + n)
	}
	if n := name(r.GetRelated()); n != "" {
		b.WriteString(" for " + n)
	}
	if where := firstNonEmpty(r.GetTarget(), r.GetDomain()); where != "" {
		b.WriteString(" in " + where)
	}
	if r.GetOutcome() == audit.OutcomeFailed {
		b.WriteString(" FAILED: " + r.GetReason())
	}
	p.mu.Lock()
	received, ok := p.received[r.GetEventId()]
	p.mu.Unlock()
	if ok && r.GetTime() != nil {
		fmt.Fprintf(&b, ", %s after it was received", r.GetTime().AsTime().Sub(received).Round(time.Millisecond))
	}
	p.line(r.GetTime().AsTime(), r.GetService(), b.String())
}

func (p *flowPrinter) deadLetter(m jetstream.Msg) {
	h := m.Headers()
	at, err := time.Parse(time.RFC3339Nano, h.Get(bus.HeaderDLQTime))
	if err != nil {
		at = time.Now()
	}
	consumer := strings.TrimPrefix(m.Subject(), bus.DLQSubjectPrefix+".")
	p.line(at, "DEAD LETTER", fmt.Sprintf("%s could not handle %s: %s (a person must act: iamflow status)",
		consumer, h.Get(bus.HeaderDLQSubject), h.Get(bus.HeaderDLQReason)))
}

// name is how a resource is shown: its name, else its id.
func name(r *iamflowv1.Resource) string {
	return firstNonEmpty(r.GetName(), r.GetId(), r.GetOcid())
}
