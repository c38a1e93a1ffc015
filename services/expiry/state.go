package expiry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
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
//
// The grant is claimed in the name of the process (its instance id), so a
// retry of this process takes over its own claim at once, whatever became
// of the attempt that made it; attempts within the process are kept apart
// by s.ending. The outcome is written until it is stored (see storeEnd); a
// revocation that fails all the same releases its claim.
func (s *Service) end(ctx context.Context, id string, to iamflowv1.GrantState, actor, note string, atDeadline, byScan bool) (*iamflowv1.Grant, time.Duration, error) {
	if atDeadline {
		// A timer that fires before the deadline (it fires scheduleLead
		// early) only looks: it does not mark the grant as being ended, so
		// a revoke meanwhile is not refused as "being revoked right now".
		// claim checks again under the mark.
		r, _, err := s.st.get(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		if !open(r.g) {
			return r.g, 0, errAlreadyEnded
		}
		if left := r.g.ExpiresAt.AsTime().Sub(s.now()); left > 0 {
			return r.g, left, errNotDue
		}
	}
	done, ok := s.ending.try(id)
	if !ok {
		return nil, endingWait, errClaimed
	}
	defer done()
	r, wait, err := s.claim(ctx, id, atDeadline)
	if err != nil {
		if r == nil {
			return nil, wait, err
		}
		return r.g, wait, err
	}
	g := r.g
	timerMissed := byScan && g.LastError == "" && !g.Overdue
	if timerMissed {
		note += "; " + noteTimerMissed
	}
	removeErr := s.removeMembership(ctx, g)
	// What the removal did is recorded even if the caller has gone.
	ctx = context.WithoutCancel(ctx)
	r, err = s.storeEnd(ctx, id, r.claimUntil, endOutcome(to, actor, note, atDeadline, s.now(), removeErr))
	if err != nil {
		s.releaseClaim(ctx, id)
		return nil, 0, err
	}
	if removeErr != nil {
		s.counters.failures.Add(1)
		s.metrics.revocations.WithLabelValues(endAction(to), "failed").Inc()
		s.kit.Error(removeErr)
		return r.g, 0, fmt.Errorf("remove %s from %s: %w", g.UserName, g.GroupName, removeErr)
	}
	s.recordEnd(ctx, r.g, to, actor, note, timerMissed)
	return r.g, 0, nil
}

// claim claims an open grant for the process (see end). It returns the
// claimed record, or the grant (in a record) with errAlreadyEnded,
// errNotDue or errClaimed and the time left, or the store's error. A claim
// that may have been stored although its write failed is released.
func (s *Service) claim(ctx context.Context, id string, atDeadline bool) (*record, time.Duration, error) {
	for attempt := 0; ; attempt++ {
		r, rev, err := s.st.get(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		now := s.now()
		if !open(r.g) {
			return r, 0, errAlreadyEnded
		}
		if left := r.g.ExpiresAt.AsTime().Sub(now); atDeadline && left > 0 {
			return r, left, errNotDue
		}
		if r.claim != "" && r.claim != s.instance && now.Before(r.claimUntil) {
			return r, r.claimUntil.Sub(now), errClaimed
		}
		r.claim, r.claimUntil = s.instance, now.Add(claimTTL)
		_, err = s.st.update(ctx, r, rev)
		switch {
		case err == nil:
			return r, 0, nil
		case !errors.Is(err, errConflict):
			// The claim may have been stored all the same.
			s.releaseClaim(ctx, id)
			return nil, 0, err
		case attempt > 20:
			return nil, 0, err
		}
	}
}

// endOutcome is what a revocation stores at time t (for storeEnd): the
// grant moved to state `to`, or, if the membership could not be removed,
// marked with the error (and overdue when atDeadline or past the deadline);
// and the claim cleared.
func endOutcome(to iamflowv1.GrantState, actor, note string, atDeadline bool, t time.Time, removeErr error) func(*record) {
	return func(r *record) {
		r.claim, r.claimUntil = "", time.Time{}
		if removeErr != nil {
			r.g.LastError = removeErr.Error()
			r.g.Overdue = atDeadline || !t.Before(r.g.ExpiresAt.AsTime())
			return
		}
		from := r.g.State
		r.g.State, r.g.EndedAt, r.g.Overdue, r.g.LastError = to, timestamppb.New(t), false, ""
		addHistory(r.g, t, from, to, actor, note)
	}
}

// endAction is the audit action of a revocation that ends a grant in state to.
func endAction(to iamflowv1.GrantState) string {
	if to == iamflowv1.GrantState_GRANT_STATE_EXPIRED {
		return actionExpire
	}
	return actionRevoke
}

// recordEnd counts, logs and audits a grant ended in state to, and frees
// its membership for a new grant.
func (s *Service) recordEnd(ctx context.Context, g *iamflowv1.Grant, to iamflowv1.GrantState, actor, note string, timerMissed bool) {
	s.st.releaseMembership(ctx, g)
	if to == iamflowv1.GrantState_GRANT_STATE_EXPIRED {
		s.counters.expired.Add(1)
		late := g.EndedAt.AsTime().Sub(g.ExpiresAt.AsTime())
		s.metrics.lateness.Observe(late.Seconds())
		if timerMissed {
			s.counters.timersMissed.Add(1)
			s.metrics.timersMissed.Inc()
			s.kit.Log().Error("deadline timer did not end the grant: the safety scan removed the membership late", "grant", g.Id,
				"domain", g.Domain, "group", g.GroupName, "user", g.UserName, "late", late)
		}
	} else {
		s.counters.revoked.Add(1)
	}
	action := endAction(to)
	s.metrics.revocations.WithLabelValues(action, "done").Inc()
	s.audit(ctx, action, audit.OutcomeDone, g, map[string]string{"state": stateName(iamflowv1.GrantState_GRANT_STATE_ACTIVE)}, actor, note)
}

// endingWait is how long a revocation of a grant that this process is
// revoking already is asked to wait.
const endingWait = time.Second

// Bounds of the retries of a revocation's outcome (storeEnd).
const (
	storeEndFirstWait = 50 * time.Millisecond
	storeEndMaxWait   = time.Second
	// claimMargin is how long before the claim lapses storeEnd gives up: a
	// write after that could race another replica taking over.
	claimMargin = 5 * time.Second
)

// errClaimLost is a revocation whose claim another worker took over before
// its outcome was stored.
var errClaimLost = fmt.Errorf("claim lapsed before the outcome was stored: %w", errClaimed)

// storeEnd stores the outcome of a revocation: fn applied to the grant the
// process holds claimed (fn must give the same result for the same grant,
// and clear the claim). Its write is retried, with backoff, until it is
// stored or the claim (held until claimUntil) is about to lapse: the
// membership is already removed (or could not be), and an outcome lost now
// would be recorded later as something else (a revoke as an expiry, an
// expiry on time as a late one). So the retries are bounded by the claim,
// not by ctx's cancellation: a caller that gives up (a CLI's timeout) does
// not lose the outcome of a removal already made. A write whose answer was
// lost may have been stored: a grant read back exactly as written is that
// write.
func (s *Service) storeEnd(ctx context.Context, id string, claimUntil time.Time, fn func(*record)) (*record, error) {
	giveUp := claimUntil.Add(-claimMargin)
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), time.Now().Add(giveUp.Sub(s.now())))
	defer cancel()
	var sent *iamflowv1.Grant // the last write whose outcome is not known
	wait := storeEndFirstWait
	for {
		var wrote *iamflowv1.Grant
		r, err := s.transition(ctx, id, func(r *record) bool {
			wrote = nil
			if r.claim != s.instance {
				return false
			}
			fn(r)
			wrote = proto.Clone(r.g).(*iamflowv1.Grant)
			return true
		})
		switch {
		case err == nil && wrote != nil:
			return r, nil
		case err == nil && sent != nil && r.claim == "" && proto.Equal(r.g, sent):
			return r, nil // the lost answer's write was stored
		case err == nil:
			return nil, fmt.Errorf("store the end of grant %s: %w", id, errClaimLost)
		}
		if wrote != nil {
			sent = wrote
		}
		if s.now().Add(wait).After(giveUp) {
			return nil, fmt.Errorf("store the end of grant %s (giving up before the claim lapses): %w", id, err)
		}
		s.kit.Log().Warn("could not store the end of a revocation; retrying", "grant", id, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("store the end of grant %s: %w (after %w)", id, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, storeEndMaxWait)
	}
}

// releaseClaim removes the process's claim on a grant whose revocation
// failed, so another replica need not wait for it to lapse. It tries once,
// also when ctx has ended (a shutdown): the store may be what failed, and
// the claim then lapses after claimTTL.
func (s *Service) releaseClaim(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	_, err := s.transition(ctx, id, func(r *record) bool {
		if r.claim != s.instance {
			return false
		}
		r.claim, r.claimUntil = "", time.Time{}
		return true
	})
	if err != nil {
		s.kit.Log().Warn("could not release the claim of a failed revocation; it lapses on its own", "grant", id,
			"claim_ttl", claimTTL, "error", err)
	}
}

// releaseTimeout bounds releaseClaim.
const releaseTimeout = 2 * time.Second

// grantSet is the set of grants the process is revoking right now. The
// claim in the store names the process, not the attempt, so it does not
// keep two of the process's own attempts apart: this does.
type grantSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

// try adds id and returns the function that removes it, or false if id is
// in the set.
func (gs *grantSet) try(id string) (func(), bool) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.ids[id] {
		return nil, false
	}
	if gs.ids == nil {
		gs.ids = map[string]bool{}
	}
	gs.ids[id] = true
	return func() {
		gs.mu.Lock()
		delete(gs.ids, id)
		gs.mu.Unlock()
	}, true
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
		from := r.g.GetState()
		if !fn(r) {
			return r, nil
		}
		if _, err := st.update(ctx, r, cur); err == nil {
			s.moved(from, r.g.GetState())
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
