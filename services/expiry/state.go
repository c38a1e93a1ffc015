package expiry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
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
		r.claim, r.claimUntil = token, now.Add(claimTTL)
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
	action := actionRevoke
	if to == iamflowv1.GrantState_GRANT_STATE_EXPIRED {
		action = actionExpire
	}
	if removeErr != nil {
		s.counters.failures.Add(1)
		s.metrics.revocations.WithLabelValues(action, "failed").Inc()
		s.kit.Error(removeErr)
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
			s.kit.Log().Error("deadline timer did not end the grant: the safety scan removed the membership late", "grant", r.g.Id,
				"domain", r.g.Domain, "group", r.g.GroupName, "user", r.g.UserName, "late", late)
		}
	} else {
		s.counters.revoked.Add(1)
	}
	s.metrics.revocations.WithLabelValues(action, "done").Inc()
	s.audit(ctx, action, audit.OutcomeDone, r.g, map[string]string{"state": stateName(iamflowv1.GrantState_GRANT_STATE_ACTIVE)}, actor, note)
	return r.g, 0, nil
}

// overdueAfter is how long past its deadline an open grant counts as overdue.
const overdueAfter = time.Second

// transition applies fn to the grant as stored now and stores the result by
// compare-and-set, re-reading and re-applying fn on conflict. fn returns
// false to store nothing.
func (s *Service) transition(ctx context.Context, id string, fn func(*record) bool) (*record, error) {
	st := s.st
	for attempt := 0; ; attempt++ {
		r, cur, err := st.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if !fn(r) {
			return r, nil
		}
		if _, err := st.update(ctx, r, cur); err == nil {
			return r, nil
		} else if !errors.Is(err, errConflict) || attempt > 20 {
			return nil, err
		}
	}
}

// addHistory appends a transition to the grant's history.
func addHistory(g *iamflowv1.Grant, t time.Time, from, to iamflowv1.GrantState, actor, note string) {
	g.History = append(g.History, &iamflowv1.GrantTransition{Time: timestamppb.New(t), From: from, To: to, Actor: actor, Note: note})
}

func stateName(s iamflowv1.GrantState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "GRANT_STATE_"))
}

// open reports whether the grant still holds (or is about to hold) the membership.
func open(g *iamflowv1.Grant) bool {
	return g.GetState() == iamflowv1.GrantState_GRANT_STATE_PENDING || g.GetState() == iamflowv1.GrantState_GRANT_STATE_ACTIVE
}
