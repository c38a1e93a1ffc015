package expiry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

var (
	errAlreadyEnded = errors.New("grant already ended")
	errNotDue       = errors.New("grant deadline not reached")
	errClaimed      = errors.New("grant being revoked by another worker")
)

// end removes the membership of an open grant and moves it to state `to`.
// With atDeadline it acts only once the deadline has passed (errNotDue and
// the time left otherwise). byScan says the safety scan asked for it: if the
// grant shows no failed attempt, its deadline timer did not end it, and the
// expiry is recorded as late by the scan (a fault, see timerGrace).
//
// It returns errAlreadyEnded (with the grant) when the grant is no longer
// open, errClaimed (with the claim's time left) when another worker is
// revoking it, and the domain's error when the membership could not be
// removed (the grant is then marked with the error, and overdue if its
// deadline passed).
func (s *Service) end(ctx context.Context, id string, to iamflowv1.GrantState, actor, note string, atDeadline, byScan bool) (*iamflowv1.Grant, time.Duration, error) {
	st := s.st
	token := s.instance + "/" + newID()[:8]
	var r *record
	var timerMissed bool
	for attempt := 0; ; attempt++ {
		var (
			rev uint64
			err error
		)
		r, rev, err = st.get(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		now := s.now()
		if !open(r.g) {
			return r.g, 0, errAlreadyEnded
		}
		if left := r.g.ExpiresAt.AsTime().Sub(now); atDeadline && left > 0 {
			return r.g, left, errNotDue
		}
		if r.claim != "" && now.Before(r.claimUntil) {
			return r.g, r.claimUntil.Sub(now), errClaimed
		}
		r.claim, r.claimUntil = token, now.Add(ClaimTTL)
		if _, err = st.update(ctx, r, rev); err == nil {
			timerMissed = byScan && r.g.LastError == "" && !r.g.Overdue
			break
		}
		if !errors.Is(err, errConflict) || attempt > 20 {
			return nil, 0, err
		}
	}
	g := r.g
	removeErr := s.removeMembership(ctx, g)
	r, err := s.transition(ctx, id, func(r *record) bool {
		if r.claim != token {
			return false
		}
		r.claim, r.claimUntil = "", time.Time{}
		t := s.now()
		if removeErr != nil {
			r.g.LastError = removeErr.Error()
			r.g.Overdue = atDeadline || !t.Before(r.g.ExpiresAt.AsTime())
			return true
		}
		from := r.g.State
		r.g.State, r.g.EndedAt, r.g.Overdue, r.g.LastError = to, timestamppb.New(t), false, ""
		if timerMissed {
			note += "; " + noteTimerMissed
		}
		addHistory(r.g, t, from, to, actor, note)
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	action := ActionRevoke
	if to == iamflowv1.GrantState_GRANT_STATE_EXPIRED {
		action = ActionExpire
	}
	if removeErr != nil {
		s.counters.failures.Add(1)
		s.metrics.revocations.WithLabelValues(action, "failed").Inc()
		s.recordError(removeErr)
		return r.g, 0, fmt.Errorf("remove %s from %s: %w", g.UserName, g.GroupName, removeErr)
	}
	s.st.releaseMembership(ctx, r.g)
	if to == iamflowv1.GrantState_GRANT_STATE_EXPIRED {
		s.counters.expired.Add(1)
		late := r.g.EndedAt.AsTime().Sub(r.g.ExpiresAt.AsTime())
		s.metrics.lateness.Observe(late.Seconds())
		if timerMissed {
			s.counters.timersMissed.Add(1)
			s.metrics.timersMissed.Inc()
			s.log.Error("deadline timer did not end the grant: the safety scan removed the membership late", "grant", r.g.Id,
				"domain", r.g.Domain, "group", r.g.GroupName, "user", r.g.UserName, "late", late)
		}
	} else {
		s.counters.revoked.Add(1)
	}
	s.metrics.revocations.WithLabelValues(action, "done").Inc()
	s.audit(ctx, action, audit.OutcomeDone, r.g, map[string]string{"state": stateName(iamflowv1.GrantState_GRANT_STATE_ACTIVE)}, actor, note)
	return r.g, 0, nil
}

// removeMembership removes the user from the group and verifies it is gone
// by reading the user's groups. A user that no longer exists has no
// membership: that is success.
func (s *Service) removeMembership(ctx context.Context, g *iamflowv1.Grant) error {
	c := s.clients[g.Domain]
	if c == nil {
		return fmt.Errorf("no client for domain %q", g.Domain)
	}
	if _, err := c.RemoveMembers(ctx, g.GroupId, g.UserId); err != nil && !errors.Is(err, identitydomain.ErrNotFound) {
		return err
	}
	member, err := isMember(ctx, c, g.GroupId, g.UserId)
	switch {
	case err != nil:
		return fmt.Errorf("verify removal: %w", err)
	case member:
		return fmt.Errorf("verify removal: %s is still a member of %s", g.UserName, g.GroupName)
	}
	return nil
}

// isMember reports whether the user is a direct member of the group now, by
// reading the user's groups. A user that no longer exists is a member of
// nothing.
func isMember(ctx context.Context, c *identitydomain.Client, groupID, userID string) (bool, error) {
	groups, err := c.UserGroups(ctx, userID)
	if errors.Is(err, identitydomain.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, ug := range groups {
		if ug.Value != nil && *ug.Value == groupID && ug.Type != "indirect" {
			return true, nil
		}
	}
	return false, nil
}

// handleDue handles a fired deadline (a schedule, or the scan's due message).
func (s *Service) handleDue(ctx context.Context, m *bus.Msg) bus.Result {
	id := strings.TrimPrefix(m.Subject, dueSubject+".")
	if !validID(id) {
		return bus.Terminal(fmt.Errorf("due message on %s names no grant", m.Subject))
	}
	s.counters.fired.Add(1)
	byScan := m.Header.Get(dueSourceHeader) == dueByScan
	_, wait, err := s.end(ctx, id, iamflowv1.GrantState_GRANT_STATE_EXPIRED, Name, "deadline passed: membership removed", true, byScan)
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
		return bus.Done() // an extended grant's old timer
	case errors.Is(err, errClaimed):
		return bus.RetryAfter(wait, err)
	}
	if m.NumDelivered+1 >= uint64(s.dueMaxDeliver) {
		// Do not dead-letter a deadline: the grant records the failure
		// (overdue, last_error) and the scan publishes it again.
		s.log.Warn("revocation failed; leaving it to the scan", "grant", id, "attempts", m.NumDelivered, "error", err)
		return bus.Done()
	}
	d := min(time.Duration(1<<min(m.NumDelivered, 4))*250*time.Millisecond, 2*time.Second)
	if ra := identitydomain.RetryAfter(err); ra > d {
		d = min(ra, 30*time.Second)
	}
	s.log.Warn("revocation failed; retrying", "grant", id, "attempt", m.NumDelivered, "retry_in", d, "error", err)
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

// scan counts the grants by state and sets the gauges. It publishes a due
// message for every open grant past its deadline whose revocation failed
// (overdue, last_error: the consumer may have given up), and for every one
// whose timer has not fired within timerGrace of healthy scans (lateSince,
// kept by scanLoop: grant id -> the first scan that saw it late).
func (s *Service) scan(ctx context.Context, lateSince map[string]time.Time) {
	if _, err := s.init(ctx); err != nil {
		s.recordError(err)
		clear(lateSince)
		return
	}
	now := s.now()
	var c stateCounts
	var late []string
	seen := map[string]bool{}
	err := s.st.all(ctx, func(r *record, rev uint64) {
		g := r.g
		c.add(g.State)
		if !open(g) {
			return
		}
		past := now.Sub(g.ExpiresAt.AsTime())
		if past > overdueAfter || g.Overdue {
			c.overdue++
		}
		if past <= 0 || (r.claim != "" && now.Before(r.claimUntil)) {
			return // not due, or being revoked right now
		}
		if g.LastError != "" || g.Overdue {
			// A revocation failed: try again (the timer's job is done).
			if past > 2*overdueAfter {
				late = append(late, g.Id+"\x00"+strconv.FormatUint(rev, 10))
			}
			return
		}
		seen[g.Id] = true
		first, ok := lateSince[g.Id]
		if !ok {
			lateSince[g.Id] = now
			return
		}
		if now.Sub(first) >= timerGrace {
			late = append(late, g.Id+"\x00"+strconv.FormatUint(rev, 10))
		}
	})
	if err != nil {
		clear(lateSince)
		if ctx.Err() == nil {
			s.recordError(err)
		}
		return
	}
	for id := range lateSince {
		if !seen[id] {
			delete(lateSince, id)
		}
	}
	s.setCounts(c)
	for _, l := range late {
		id, rev, _ := strings.Cut(l, "\x00")
		if err := s.due(ctx, id, rev); err != nil && ctx.Err() == nil {
			s.recordError(err)
		}
	}
}
