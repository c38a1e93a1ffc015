package servicekit

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
)

// Status starts the service's status: name, version, uptime, state and
// counters (nil: none yet). Finish it with [Kit.Report].
func (k *Kit) Status(counters map[string]int64) *iamflowv1.ServiceStatus {
	if counters == nil {
		counters = map[string]int64{}
	}
	return &iamflowv1.ServiceStatus{
		Name:     k.name,
		Version:  k.version,
		Uptime:   durationpb.New(k.now().Sub(k.started).Round(time.Second)),
		State:    k.State(),
		Counters: counters,
	}
}

// Report finishes st: each consumer's progress read from the server (see
// [AddConsumers]; one that cannot be read becomes the last error) and the
// last event and error. It returns st.
func (k *Kit) Report(ctx context.Context, st *iamflowv1.ServiceStatus, consumers ...*bus.Consumer) *iamflowv1.ServiceStatus {
	if err := AddConsumers(ctx, st, consumers...); err != nil {
		k.Error(err)
	}
	k.last.Fill(st)
	return st
}

// Last remembers an event and an error with their times. The zero value is
// ready; it is safe for concurrent use. A Kit keeps the service's; a
// service keeps more (one per database, say) where its status shows them.
type Last struct {
	mu        sync.Mutex
	eventID   string
	eventTime time.Time
	err       string
	errTime   time.Time
}

// Event records the event handled last.
func (l *Last) Event(id string, at time.Time) {
	l.mu.Lock()
	l.eventID, l.eventTime = id, at
	l.mu.Unlock()
}

// Error records err as the last error. Callers pass errors they built from
// names, ids and API messages, never credentials.
func (l *Last) Error(err error, at time.Time) {
	l.mu.Lock()
	l.err, l.errTime = err.Error(), at
	l.mu.Unlock()
}

// Fill sets st's last event and last error fields.
func (l *Last) Fill(st *iamflowv1.ServiceStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.eventID != "" {
		st.LastEventId, st.LastEventTime = l.eventID, timestamppb.New(l.eventTime)
	}
	if l.err != "" {
		st.LastError, st.LastErrorTime = l.err, timestamppb.New(l.errTime)
	}
}

// AddConsumers appends each consumer's progress, read from the server, to
// st. A consumer whose numbers cannot be read is left out and turns a
// running service DEGRADED; the last such error is returned for the caller
// to record. Nil consumers (not started yet) are skipped.
func AddConsumers(ctx context.Context, st *iamflowv1.ServiceStatus, consumers ...*bus.Consumer) error {
	var lastErr error
	for _, c := range consumers {
		if c == nil {
			continue
		}
		cs, err := c.Stats(ctx)
		if err != nil {
			if st.State == iamflowv1.State_STATE_RUNNING {
				st.State = iamflowv1.State_STATE_DEGRADED
			}
			lastErr = err
			continue
		}
		st.Consumers = append(st.Consumers, &iamflowv1.ConsumerStatus{
			Stream: cs.Stream, Name: cs.Name, Delivered: cs.Delivered, AckPending: uint64(max(cs.AckPending, 0)),
			Pending: cs.Pending, Redelivered: uint64(max(cs.Redelivered, 0)), DeadLettered: cs.DeadLettered,
		})
	}
	return lastErr
}
