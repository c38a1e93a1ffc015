package expiry

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

// Grant sources.
const (
	SourceAPI       = "api"
	SourceEvent     = "event"
	SourceReconcile = "reconcile"
)

var errNotFound = errors.New("grant not found")

// GrantRequest asks for a temporary membership.
type GrantRequest struct {
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

var scimIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Grant adds the user to the temporary group until the deadline (adopting a
// membership that exists) and records the grant. It refuses with a gRPC
// status error: NotFound (domain, group or user), FailedPrecondition (not a
// temporary group), InvalidArgument (past deadline, over max_duration),
// AlreadyExists (the membership has an open grant: extend it).
func (s *Service) Grant(ctx context.Context, req GrantRequest) (*iamflowv1.Grant, error) {
	st, err := s.init(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	c, err := s.domainClient(req.Domain)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Group) == "" {
		return nil, status.Error(codes.InvalidArgument, "group: required: the group's displayName or SCIM id")
	}
	if strings.TrimSpace(req.User) == "" {
		return nil, status.Error(codes.InvalidArgument, "user: required: the user's userName or SCIM id")
	}
	groupID, groupName, err := s.resolveGroup(ctx, c, req.Domain, req.Group)
	if err != nil {
		return nil, err
	}
	tg, ok := s.group(req.Domain, groupName)
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "group %q of domain %q is not a temporary group (temporary groups: %s)",
			groupName, req.Domain, s.groupNames())
	}
	now := s.now()
	deadline, err := deadlineFor(tg, now, req.Duration, req.Until)
	if err != nil {
		return nil, err
	}
	userID, userName, err := s.resolveUser(ctx, c, req.User)
	if err != nil {
		return nil, err
	}
	g := &iamflowv1.Grant{
		Id: newID(), Domain: req.Domain, GroupId: groupID, GroupName: groupName, UserId: userID, UserName: userName,
		State: iamflowv1.GrantState_GRANT_STATE_PENDING, CreatedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(deadline),
		Reason: req.Reason, Requester: req.Requester, Source: SourceAPI,
	}
	addHistory(g, now, iamflowv1.GrantState_GRANT_STATE_UNSPECIFIED, g.State, req.Requester, "granted until "+deadline.UTC().Format(time.RFC3339))
	other, err := st.claimMembership(ctx, g.Domain, groupID, userID, g.Id)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	if other != "" {
		return nil, status.Errorf(codes.AlreadyExists, "user %q already holds grant %s in group %q; extend it instead", userName, other, groupName)
	}
	if _, err := st.create(ctx, &record{g: g}); err != nil {
		st.releaseMembership(ctx, g)
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	// The timer first: whatever happens next, the deadline is enforced.
	if err := s.schedule(ctx, g.Id, deadline); err != nil {
		s.recordError(err)
		s.log.Error("deadline timer not set; the scan will enforce it", "grant", g.Id, "error", err)
	}
	_, addErr := c.AddMembers(ctx, groupID, userID)
	r, err := s.transition(ctx, g.Id, func(r *record) bool {
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
	})
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	if addErr != nil {
		st.releaseMembership(ctx, r.g)
		s.counters.failures.Add(1)
		s.audit(ctx, ActionGrant, audit.OutcomeFailed, r.g, nil, req.Requester, addErr.Error())
		return nil, apiError(fmt.Errorf("add %s to %s: %w", userName, groupName, addErr))
	}
	s.counters.granted.Add(1)
	s.audit(ctx, ActionGrant, audit.OutcomeDone, r.g, nil, req.Requester, req.Reason)
	return s.view(r.g), nil
}

// deadlineFor computes and checks a grant's deadline.
func deadlineFor(tg TemporaryGroup, now time.Time, d time.Duration, until time.Time) (time.Time, error) {
	var deadline time.Time
	switch {
	case !until.IsZero() && d != 0:
		return time.Time{}, status.Error(codes.InvalidArgument, "give duration or until, not both")
	case !until.IsZero():
		if !until.After(now) {
			return time.Time{}, status.Errorf(codes.InvalidArgument, "until: %s is in the past", until.UTC().Format(time.RFC3339))
		}
		deadline = until
	case d < 0:
		return time.Time{}, status.Errorf(codes.InvalidArgument, "duration: %v is negative", d)
	case d == 0:
		deadline = now.Add(tg.DefaultDuration)
	default:
		deadline = now.Add(d)
	}
	if deadline.Sub(now) > tg.MaxDuration {
		return time.Time{}, status.Errorf(codes.InvalidArgument, "duration %v exceeds max_duration %v of temporary group %q",
			deadline.Sub(now).Round(time.Second), tg.MaxDuration, tg.Group)
	}
	return deadline, nil
}

// Extend moves an open grant's deadline to until (or now + d), within the
// group's max_duration from now.
func (s *Service) Extend(ctx context.Context, id string, d time.Duration, until time.Time, requester, reason string) (*iamflowv1.Grant, error) {
	if !validID(id) {
		return nil, status.Errorf(codes.InvalidArgument, "id: %q is not a grant id (32 hex digits)", id)
	}
	st, err := s.init(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	r, _, err := st.get(ctx, id)
	if err != nil {
		return nil, apiError(err)
	}
	if !open(r.g) {
		return nil, status.Errorf(codes.FailedPrecondition, "grant %s is %s; only an active grant can be extended", id, stateName(r.g.State))
	}
	tg, ok := s.group(r.g.Domain, r.g.GroupName)
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "group %q is no longer a temporary group", r.g.GroupName)
	}
	if d == 0 && until.IsZero() {
		return nil, status.Error(codes.InvalidArgument, "give duration or until: the new deadline")
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
		return nil, apiError(err)
	}
	if !open(r.g) {
		return nil, status.Errorf(codes.FailedPrecondition, "grant %s is %s; only an active grant can be extended", id, stateName(r.g.State))
	}
	if err := s.schedule(ctx, id, deadline); err != nil {
		s.recordError(err)
		s.log.Error("deadline timer not set; the scan will enforce it", "grant", id, "error", err)
	}
	s.counters.extended.Add(1)
	s.audit(ctx, ActionExtend, audit.OutcomeDone, r.g, map[string]string{"expires_at": before.UTC().Format(time.RFC3339Nano)}, requester, reason)
	return s.view(r.g), nil
}

// Revoke ends an open grant now, removing the membership.
func (s *Service) Revoke(ctx context.Context, id, requester, reason string) (*iamflowv1.Grant, error) {
	if !validID(id) {
		return nil, status.Errorf(codes.InvalidArgument, "id: %q is not a grant id (32 hex digits)", id)
	}
	if _, err := s.init(ctx); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	note := "revoked"
	if reason != "" {
		note += ": " + reason
	}
	g, _, err := s.end(ctx, id, iamflowv1.GrantState_GRANT_STATE_REVOKED, requester, note, false, false)
	switch {
	case errors.Is(err, errAlreadyEnded):
		return nil, status.Errorf(codes.FailedPrecondition, "grant %s is already %s", id, stateName(g.State))
	case errors.Is(err, errClaimed):
		return nil, status.Errorf(codes.Aborted, "grant %s is being revoked right now; read it again", id)
	case err != nil:
		return nil, apiError(err)
	}
	return s.view(g), nil
}

// Get returns one grant.
func (s *Service) Get(ctx context.Context, id string) (*iamflowv1.Grant, error) {
	st, err := s.init(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	if !validID(id) {
		return nil, status.Errorf(codes.InvalidArgument, "id: %q is not a grant id (32 hex digits)", id)
	}
	r, _, err := st.get(ctx, id)
	if err != nil {
		return nil, apiError(err)
	}
	return s.view(r.g), nil
}

func validID(id string) bool { return scimIDRE.MatchString(id) }

// view is the grant as the API shows it: overdue when open past its deadline.
func (s *Service) view(g *iamflowv1.Grant) *iamflowv1.Grant {
	if open(g) && s.now().After(g.ExpiresAt.AsTime().Add(overdueAfter)) {
		g.Overdue = true
	}
	return g
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

// domainClient checks a request's domain.
func (s *Service) domainClient(domain string) (*identitydomain.Client, error) {
	if domain == "" {
		return nil, status.Errorf(codes.InvalidArgument, "domain: required: the short name of a domain with temporary groups (%s)", s.groupNames())
	}
	c := s.clients[domain]
	if c == nil {
		return nil, status.Errorf(codes.NotFound, "domain %q has no temporary groups (temporary groups: %s)", domain, s.groupNames())
	}
	return c, nil
}

func (s *Service) resolveGroup(ctx context.Context, c *identitydomain.Client, domain, ref string) (id, name string, err error) {
	ref = strings.TrimSpace(ref)
	if scimIDRE.MatchString(ref) {
		g, err := c.GetGroup(ctx, ref)
		if err == nil && g.Id != nil && g.DisplayName != nil {
			return *g.Id, *g.DisplayName, nil
		}
		if err != nil && !errors.Is(err, identitydomain.ErrNotFound) {
			return "", "", apiError(err)
		}
	}
	g, found, err := c.FindGroupByName(ctx, ref)
	if err != nil {
		return "", "", apiError(err)
	}
	if !found || g.Id == nil {
		return "", "", status.Errorf(codes.NotFound, "group %q not found in domain %q", ref, domain)
	}
	name = ref
	if g.DisplayName != nil {
		name = *g.DisplayName
	}
	return *g.Id, name, nil
}

func (s *Service) resolveUser(ctx context.Context, c *identitydomain.Client, ref string) (id, name string, err error) {
	ref = strings.TrimSpace(ref)
	if scimIDRE.MatchString(ref) {
		u, err := c.GetUser(ctx, ref)
		if err == nil && u.Id != nil {
			n := ""
			if u.UserName != nil {
				n = *u.UserName
			}
			return *u.Id, n, nil
		}
		if err != nil && !errors.Is(err, identitydomain.ErrNotFound) {
			return "", "", apiError(err)
		}
	}
	u, found, err := c.FindUserByName(ctx, ref)
	if err != nil {
		return "", "", apiError(err)
	}
	if !found || u.Id == nil {
		return "", "", status.Errorf(codes.NotFound, "user %q not found in domain %q", ref, c.Domain())
	}
	return *u.Id, ref, nil
}

func stateName(s iamflowv1.GrantState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "GRANT_STATE_"))
}

// apiError maps an error to a gRPC status.
func apiError(err error) error {
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, errNotFound), errors.Is(err, identitydomain.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}
