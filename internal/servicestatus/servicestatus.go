// Package servicestatus holds what every service's Status has in common:
// the last event and last error it saw, and its consumers' progress.
package servicestatus

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
)

// Last remembers a service's last event and last error. The zero value is
// ready; it is safe for concurrent use.
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
