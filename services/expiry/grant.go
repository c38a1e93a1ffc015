package expiry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
)

// Grant sources.
const (
	sourceAPI       = "api"
	sourceEvent     = "event"
	sourceReconcile = "reconcile"
)

// What a request to the service can be refused with. Refusals keep their
// message; api.go maps their kinds to status codes.
var (
	errInvalid      = errors.New("invalid request")                   // the request is wrong as asked
	errNoSuch       = errors.New("no such domain, group or user")     // what it names does not exist
	errNotFound     = errors.New("grant not found")                   // the grant does not exist
	errPrecondition = errors.New("not possible in the grant's state") // not a temporary group, not open
	errHeld         = errors.New("membership already held")           // an open grant holds it: extend that
)

// refusal is an error a request is refused with: its message, and its kind
// for errors.Is.
type refusal struct {
	kind error
	msg  string
}

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == r.kind }

// grantRequest asks for a temporary membership.
type grantRequest struct {
	// Domain is the domain's short name.
	Domain string
	// Group and User by SCIM id or by displayName / userName.
	Group, User string
	// Duration, or Until (absolute); neither: the group's default duration.
	Duration time.Duration
	Until    time.Time
	// Reason and Requester are recorded with the grant.
	Reason, Requester string
}

// grant adds the user to the temporary group until the deadline (adopting a
// membership that exists) and records the grant. It refuses when the
// domain, group or user does not exist (errNoSuch), the group is not a
// temporary group (errPrecondition), the deadline is past or over
// max_duration (errInvalid), or the membership has an open grant (errHeld:
// extend that one).
func (s *Service) grant(ctx context.Context, req grantRequest) (*iamflowv1.Grant, error) {
	st, err := s.init(ctx)
	if err != nil {
		return nil, err
	}
	c, g, err := s.newGrant(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := s.recordPending(ctx, st, g); err != nil {
		return nil, err
	}
	_, addErr := c.AddMembers(ctx, g.GroupId, g.UserId)
	r, err := s.activateRetrying(ctx, g.Id, addErr)
	if err != nil {
		if addErr == nil {
			// The member is added though its grant could not be marked
			// active (the scan ends the pending grant): the change is
			// audited all the same, or counted as a record not stored.
			s.audit(ctx, actionGrant, audit.OutcomeDone, g, nil, req.Requester,
				fmt.Sprintf("%s; the member is added, its grant's record not updated: %v", req.Reason, err))
		}
		return nil, err
	}
	if addErr != nil {
		st.releaseMembership(ctx, r.g)
		s.counters.failures.Add(1)
		s.audit(ctx, actionGrant, audit.OutcomeFailed, r.g, nil, req.Requester, addErr.Error())
		return nil, fmt.Errorf("add %s to %s: %w", g.UserName, g.GroupName, addErr)
	}
	s.counters.granted.Add(1)
	s.audit(ctx, actionGrant, audit.OutcomeDone, r.g, nil, req.Requester, req.Reason)
	return s.view(r.g), nil
}

// newGrant checks a grant request against the domain and the temporary
// groups and returns the domain's client and the pending grant it asks
// for (refusals: see grant).
func (s *Service) newGrant(ctx context.Context, req grantRequest) (Domain, *iamflowv1.Grant, error) {
	c, err := s.domainClient(req.Domain)
	if err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(req.Group) == "" {
		return nil, nil, refuse(errInvalid, "group: required: the group's displayName or SCIM id")
	}
	if strings.TrimSpace(req.User) == "" {
		return nil, nil, refuse(errInvalid, "user: required: the user's userName or SCIM id")
	}
	groupID, groupName, err := s.resolveGroup(ctx, c, req.Domain, req.Group)
	if err != nil {
		return nil, nil, err
	}
	tg, ok := s.group(req.Domain, groupName)
	if !ok {
		return nil, nil, refuse(errPrecondition, "group %q of domain %q is not a temporary group (temporary groups: %s)",
			groupName, req.Domain, s.groupNames())
	}
	now := s.now()
	deadline, err := deadlineFor(tg, now, req.Duration, req.Until)
	if err != nil {
		return nil, nil, err
	}
	userID, userName, err := s.resolveUser(ctx, c, req.User)
	if err != nil {
		return nil, nil, err
	}
	g := &iamflowv1.Grant{
		Id: newID(), Domain: req.Domain, GroupId: groupID, GroupName: groupName, UserId: userID, UserName: userName,
		State: iamflowv1.GrantState_GRANT_STATE_PENDING, CreatedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(deadline),
		Reason: req.Reason, Requester: req.Requester, Source: sourceAPI,
	}
	addHistory(g, now, iamflowv1.GrantState_GRANT_STATE_UNSPECIFIED, g.State, req.Requester, "granted until "+deadline.UTC().Format(time.RFC3339))
	return c, g, nil
}

// recordPending records a pending grant as its membership's open grant
// (errHeld if the membership has one) and sets its deadline timer.
func (s *Service) recordPending(ctx context.Context, st *store, g *iamflowv1.Grant) error {
	other, err := st.claimMembership(ctx, g.Domain, g.GroupId, g.UserId, g.Id)
	if err != nil {
		return err
	}
	if other != "" {
		return refuse(errHeld, "user %q already holds grant %s in group %q; extend it instead", g.UserName, other, g.GroupName)
	}
	if _, err := st.create(ctx, &record{g: g}); err != nil {
		st.releaseMembership(ctx, g)
		return err
	}
	s.moved(iamflowv1.GrantState_GRANT_STATE_UNSPECIFIED, g.State)
	// The timer first: whatever happens next, the deadline is enforced.
	s.scheduleRetrying(ctx, g.Id, g.ExpiresAt.AsTime())
	return nil
}

// activate is the transition of a pending grant once the member was added
// (active), or could not be (failed, with addErr).
func (s *Service) activate(addErr error) func(*record) bool {
	return func(r *record) bool {
		if r.g.State != iamflowv1.GrantState_GRANT_STATE_PENDING {
			return false
		}
		t := s.now()
		if addErr != nil {
			addHistory(r.g, t, r.g.State, iamflowv1.GrantState_GRANT_STATE_FAILED, Name, "add member: "+addErr.Error())
			r.g.State, r.g.EndedAt, r.g.LastError = iamflowv1.GrantState_GRANT_STATE_FAILED, timestamppb.New(t), addErr.Error()
			return true
		}
		addHistory(r.g, t, r.g.State, iamflowv1.GrantState_GRANT_STATE_ACTIVE, Name, "member added")
		r.g.State = iamflowv1.GrantState_GRANT_STATE_ACTIVE
		return true
	}
}

// activateRetrying stores the outcome of a grant's member add. The member
// is added (or refused) already, so the write is tried again through a
// JetStream election, for activateRetryFor even when the caller has gone:
// otherwise the membership would stay without its grant's record and audit.
// A write whose answer was lost is found stored on the next attempt (the
// grant is no longer pending).
func (s *Service) activateRetrying(ctx context.Context, id string, addErr error) (*record, error) {
	var r *record
	err := bus.Outlast(ctx, activateRetryFor, 0, func(ctx context.Context) error {
		var err error
		if r, err = s.transition(ctx, id, s.activate(addErr)); err != nil {
			s.kit.Log().Warn("grant's member added, its record not stored yet; retrying", "grant", id, "error", err)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record grant %s after its member add: %w", id, err)
	}
	return r, nil
}

// activateRetryFor bounds activateRetrying.
const activateRetryFor = 10 * time.Second

// deadlineFor computes and checks a grant's deadline.
func deadlineFor(tg TemporaryGroup, now time.Time, d time.Duration, until time.Time) (time.Time, error) {
	var deadline time.Time
	switch {
	case !until.IsZero() && d != 0:
		return time.Time{}, refuse(errInvalid, "give duration or until, not both")
	case !until.IsZero():
		if !until.After(now) {
			return time.Time{}, refuse(errInvalid, "until: %s is in the past", until.UTC().Format(time.RFC3339))
		}
		deadline = until
	case d < 0:
		return time.Time{}, refuse(errInvalid, "duration: %v is negative", d)
	case d == 0:
		deadline = now.Add(tg.DefaultDuration)
	default:
		deadline = now.Add(d)
	}
	if deadline.Sub(now) > tg.MaxDuration {
		return time.Time{}, refuse(errInvalid, "duration %v exceeds max_duration %v of temporary group %q",
			deadline.Sub(now).Round(time.Second), tg.MaxDuration, tg.Group)
	}
	return deadline, nil
}

// extend moves an open grant's deadline to until (or now + d), within the
// group's max_duration from now.
func (s *Service) extend(ctx context.Context, id string, d time.Duration, until time.Time, requester, reason string) (*iamflowv1.Grant, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	st, err := s.init(ctx)
	if err != nil {
		return nil, err
	}
	r, _, err := st.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !open(r.g) {
		return nil, refuse(errPrecondition, "grant %s is %s; only an active grant can be extended", id, stateName(r.g.State))
	}
	tg, ok := s.group(r.g.Domain, r.g.GroupName)
	if !ok {
		return nil, refuse(errPrecondition, "group %q is no longer a temporary group", r.g.GroupName)
	}
	if d == 0 && until.IsZero() {
		return nil, refuse(errInvalid, "give duration or until: the new deadline")
	}
	now := s.now()
	deadline, err := deadlineFor(tg, now, d, until)
	if err != nil {
		return nil, err
	}
	before := r.g.ExpiresAt.AsTime()
	r, err = s.transition(ctx, id, func(r *record) bool {
		if !open(r.g) {
			return false
		}
		addHistory(r.g, s.now(), r.g.State, r.g.State, requester, fmt.Sprintf("extended from %s to %s: %s",
			r.g.ExpiresAt.AsTime().UTC().Format(time.RFC3339), deadline.UTC().Format(time.RFC3339), reason))
		r.g.ExpiresAt = timestamppb.New(deadline)
		r.g.Overdue = false
		return true
	})
	if err != nil {
		return nil, err
	}
	if !open(r.g) {
		return nil, refuse(errPrecondition, "grant %s is %s; only an active grant can be extended", id, stateName(r.g.State))
	}
	s.scheduleRetrying(ctx, id, deadline)
	s.counters.extended.Add(1)
	s.audit(ctx, actionExtend, audit.OutcomeDone, r.g, map[string]string{"expires_at": before.UTC().Format(time.RFC3339Nano)}, requester, reason)
	return s.view(r.g), nil
}

// revoke ends an open grant now, removing the membership.
func (s *Service) revoke(ctx context.Context, id, requester, reason string) (*iamflowv1.Grant, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if _, err := s.init(ctx); err != nil {
		return nil, err
	}
	note := "revoked"
	if reason != "" {
		note += ": " + reason
	}
	g, _, err := s.end(ctx, id, iamflowv1.GrantState_GRANT_STATE_REVOKED, requester, note, false, false)
	switch {
	case errors.Is(err, errAlreadyEnded):
		return nil, refuse(errPrecondition, "grant %s is already %s", id, stateName(g.State))
	case errors.Is(err, errClaimed):
		return nil, refuse(errClaimed, "grant %s is being revoked right now; read it again", id)
	case err != nil:
		return nil, err
	}
	return s.view(g), nil
}

// get returns one grant.
func (s *Service) get(ctx context.Context, id string) (*iamflowv1.Grant, error) {
	st, err := s.init(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	r, _, err := st.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.view(r.g), nil
}

// checkID refuses (errInvalid) an id that is no grant id.
func checkID(id string) error {
	if !validID(id) {
		return refuse(errInvalid, "id: %q is not a grant id (32 hex digits)", id)
	}
	return nil
}

// view is the grant as the API shows it: overdue when open past its deadline.
func (s *Service) view(g *iamflowv1.Grant) *iamflowv1.Grant {
	if open(g) && s.now().After(g.ExpiresAt.AsTime().Add(overdueAfter)) {
		g.Overdue = true
	}
	return g
}

// filter selects grants for list; zero fields match all.
type filter struct {
	State                       iamflowv1.GrantState
	Domain                      string
	Group, User                 string // SCIM id or name
	ExpiresAfter, ExpiresBefore time.Time
}

func (f filter) match(g *iamflowv1.Grant) bool {
	eq := func(want, id, name string) bool {
		return want == "" || want == id || strings.EqualFold(want, name)
	}
	exp := g.ExpiresAt.AsTime()
	return (f.State == 0 || g.State == f.State) && (f.Domain == "" || f.Domain == g.Domain) &&
		eq(f.Group, g.GroupId, g.GroupName) && eq(f.User, g.UserId, g.UserName) &&
		(f.ExpiresAfter.IsZero() || !exp.Before(f.ExpiresAfter)) && (f.ExpiresBefore.IsZero() || exp.Before(f.ExpiresBefore))
}

// list returns the grants f selects, newest first.
func (s *Service) list(ctx context.Context, f filter) ([]*iamflowv1.Grant, error) {
	st, err := s.init(ctx)
	if err != nil {
		return nil, err
	}
	var out []*iamflowv1.Grant
	if err := st.all(ctx, func(r *record, _ uint64) {
		if f.match(r.g) {
			out = append(out, s.view(r.g))
		}
	}); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].CreatedAt.AsTime(), out[j].CreatedAt.AsTime()
		if !a.Equal(b) {
			return a.After(b)
		}
		return out[i].Id < out[j].Id
	})
	return out, nil
}
