package expiry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
)

// handleDue handles a fired deadline (a schedule, or the scan's due message).
func (s *Service) handleDue(ctx context.Context, m *bus.Msg) bus.Result {
	id := strings.TrimPrefix(m.Subject, dueSubject+".")
	if !validID(id) {
		return bus.Terminal(fmt.Errorf("due message on %s names no grant", m.Subject))
	}
	s.counters.fired.Add(1)
	byScan := m.Header.Get(dueSourceHeader) == dueByScan
	g, wait, err := s.end(ctx, id, iamflowv1.GrantState_GRANT_STATE_EXPIRED, Name, "deadline passed: membership removed", true, byScan)
	switch {
	case err == nil, errors.Is(err, errNotFound), errors.Is(err, errAlreadyEnded):
		return bus.Done()
	case errors.Is(err, errNotDue):
		if wait <= 5*time.Second {
			if wait < 20*time.Millisecond {
				wait = 20 * time.Millisecond
			}
			return bus.RetryAfter(wait, nil)
		}
		// An extended grant's old timer, or one that fired early: make
		// sure a timer is set for the deadline (the same schedule again
		// is a no-op), so no grant is left without one.
		if err := s.schedule(ctx, id, g.GetExpiresAt().AsTime()); err != nil {
			return bus.RetryAfter(time.Second, err)
		}
		return bus.Done()
	case errors.Is(err, errClaimed):
		return bus.RetryAfter(wait, err)
	}
	if m.NumDelivered+1 >= uint64(s.dueMaxDeliver) {
		// Do not dead-letter a deadline: the grant records the failure
		// (overdue, last_error) and the scan publishes it again.
		s.kit.Log().Warn("revocation failed; leaving it to the scan", "grant", id, "attempts", m.NumDelivered, "error", err)
		return bus.Done()
	}
	d := min(time.Duration(1<<min(m.NumDelivered, 4))*250*time.Millisecond, 2*time.Second)
	if _, ra := bus.RetryHint(err); ra > d {
		d = min(ra, 30*time.Second)
	}
	s.kit.Log().Warn("revocation failed; retrying", "grant", id, "attempt", m.NumDelivered, "retry_in", d, "error", err)
	return bus.RetryAfter(d, err)
}

// timerGrace is how long the safety scan leaves an open grant past its
// deadline to its timer before it publishes the due message itself. It is
// counted from the first scan that saw the grant late, and starts again
// after a scan that could not read the grants (NATS away: timers and their
// consumer need the server too, and get their chance once it is back). A
// grant the scan has to end that way shows no failed attempt: its timer did
// not end it (it was never set, or its due message was lost, e.g. delivered
// just before a single NATS server was killed and never redelivered). That
// is a fault, not a second path: the expiry is late by at least timerGrace,
// the grant's history says "late", the status counter timers_missed and
// iamflow_expiry_timers_missed_total count it, and the tests fail on it.
const timerGrace = 5 * time.Second

// noteTimerMissed ends the history note of a grant the scan had to expire.
const noteTimerMissed = "late: the deadline timer did not end it, the safety scan removed the membership"

// The header that marks a due message the scan published (not the timer).
const (
	dueSourceHeader = "Iamflow-Due-Source"
	dueByScan       = "scan"
)

// scheduleLead is how long before the deadline the server's timer fires.
// The server's scheduler runs on a timing wheel with one-second slots and
// fires up to ~1.5s after the time asked for (measured with nats-server
// 2.15.2); the due handler holds the message back (a delayed nak) until the
// deadline itself, which the consumer redelivers within milliseconds.
const scheduleLead = 1500 * time.Millisecond

// dueTTL is how long a due message is kept: the stream holds no history of
// handled deadlines (the grants hold it). One left unhandled that long (the
// service down) is lost with it; the scan then finds the grant past its
// deadline and, after timerGrace, publishes a new one (counted as a missed
// timer).
const dueTTL = "1h"

// schedule sets a durable timer that publishes iam.expiry.due.<id> shortly
// before deadline.
func (s *Service) schedule(ctx context.Context, id string, deadline time.Time) error {
	ms := strconv.FormatInt(deadline.UnixMilli(), 10)
	at := deadline.Add(-scheduleLead)
	if now := s.now(); at.Before(now) {
		at = now
	}
	m := nats.NewMsg(scheduleSubject + "." + id + "." + ms)
	m.Header.Set("Nats-Schedule", "@at "+at.UTC().Format(time.RFC3339Nano))
	m.Header.Set("Nats-Schedule-Target", dueSubject+"."+id)
	m.Header.Set("Nats-Schedule-TTL", dueTTL)
	m.Data = []byte(id)
	if _, err := s.bus.Publish(ctx, m, "schedule-"+id+"-"+ms); err != nil {
		return fmt.Errorf("schedule deadline of grant %s: %w", id, err)
	}
	return nil
}

// scheduleRetrying sets the deadline timer of grant id; when JetStream
// does not take it (a leader being elected), it keeps trying in the
// background (bus.Outlast) until it is stored, the
// deadline is timerGrace past or scheduleRetryFor has passed (then the scan
// ends the grant, timerGrace after its deadline). A timer
// stored late fires at once if its deadline has passed; a repeat of one
// stored but unanswered is de-duplicated by its message id.
func (s *Service) scheduleRetrying(ctx context.Context, id string, deadline time.Time) {
	err := s.schedule(ctx, id, deadline)
	if err == nil {
		return
	}
	s.kit.Error(err)
	s.kit.Log().Warn("deadline timer not set; retrying", "grant", id, "error", err)
	within := min(deadline.Sub(s.now())+timerGrace, scheduleRetryFor)
	go func() {
		if err := bus.Outlast(ctx, within, 0, func(ctx context.Context) error { return s.schedule(ctx, id, deadline) }); err != nil {
			s.kit.Log().Error("deadline timer not set; the scan will enforce it", "grant", id, "error", err)
			return
		}
		s.kit.Log().Info("deadline timer set after a retry", "grant", id)
	}()
}

// scheduleRetryFor is how long a deadline timer is tried again.
const scheduleRetryFor = 2 * time.Minute

// due publishes iam.expiry.due.<id> now, marked as the scan's; key
// de-duplicates concurrent scans.
func (s *Service) due(ctx context.Context, id, key string) error {
	m := nats.NewMsg(dueSubject + "." + id)
	m.Header.Set("Nats-TTL", dueTTL)
	m.Header.Set(dueSourceHeader, dueByScan)
	m.Data = []byte(id)
	if _, err := s.bus.Publish(ctx, m, "due-"+id+"-"+key); err != nil {
		return fmt.Errorf("publish due grant %s: %w", id, err)
	}
	return nil
}
