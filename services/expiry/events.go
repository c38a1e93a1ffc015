package expiry

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

// handleEvent turns a membership added to a temporary group outside
// iamflow into a grant with the group's default duration.
func (s *Service) handleEvent(ctx context.Context, m *bus.Msg) bus.Result {
	e, err := event.Unmarshal(m.Data)
	if err != nil {
		return bus.Terminal(err)
	}
	s.counters.events.Add(1)
	s.last.Event(e.GetId(), s.now())
	if e.GetAction() != iamflowv1.Action_ACTION_MEMBER_ADDED || e.GetResource().GetId() == "" || e.GetRelated().GetId() == "" {
		return bus.Done()
	}
	c := s.clients[e.GetDomain()]
	if c == nil {
		return bus.Done()
	}
	// The event says where to look; the names come from the domain, so an
	// event whose names are stale or forged cannot make a grant on another
	// group, or label one with another user's name.
	groupID, userID := e.GetResource().GetId(), e.GetRelated().GetId()
	g, err := c.GetGroup(ctx, groupID, "id", "displayName")
	if errors.Is(err, identitydomain.ErrNotFound) {
		return bus.Done()
	}
	if err != nil {
		return retry(err)
	}
	if g.DisplayName == nil {
		return bus.Done()
	}
	groupName := *g.DisplayName
	tg, ok := s.group(e.GetDomain(), groupName)
	if !ok {
		return bus.Done()
	}
	u, err := c.GetUser(ctx, userID, "id", "userName")
	if errors.Is(err, identitydomain.ErrNotFound) {
		return bus.Done() // the user is gone: no membership to adopt
	}
	if err != nil {
		return retry(err)
	}
	userName := ""
	if u.UserName != nil {
		userName = *u.UserName
	}
	requester := e.GetActor().GetName()
	if requester == "" {
		requester = e.GetActor().GetId()
	}
	if _, err := s.adopt(ctx, tg, groupID, groupName, userID, userName, SourceEvent,
		requester, "membership added outside iamflow (event "+e.GetId()+")", e.GetId()); err != nil {
		return retry(err)
	}
	return bus.Done()
}

func retry(err error) bus.Result {
	if ra := identitydomain.RetryAfter(err); ra > 0 {
		return bus.RetryAfter(ra, err)
	}
	return bus.Retry(err)
}

// adopt opens a grant with the group's default duration for an existing
// membership, unless the membership has an open grant. It returns the new
// grant, or nil.
func (s *Service) adopt(ctx context.Context, tg TemporaryGroup, groupID, groupName, userID, userName, source, requester, note, eventID string) (*iamflowv1.Grant, error) {
	st, err := s.init(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	g := &iamflowv1.Grant{
		Id: newID(), Domain: tg.Domain, GroupId: groupID, GroupName: groupName, UserId: userID, UserName: userName,
		State: iamflowv1.GrantState_GRANT_STATE_ACTIVE, CreatedAt: timestamppb.New(now),
		ExpiresAt: timestamppb.New(now.Add(tg.DefaultDuration)), Reason: note, Requester: requester, Source: source,
	}
	c := s.clients[tg.Domain]
	if c == nil {
		return nil, fmt.Errorf("adopt %s in %s: no client for domain %q", userID, groupName, tg.Domain)
	}
	// The trigger (an event, or a member list read a moment ago) may be
	// stale: the membership may have been removed since, e.g. by a revoke.
	// A membership that is gone is not claimed at all (a claim, even a
	// short one, would refuse a new grant for it meanwhile) ...
	if member, err := isMember(ctx, c, groupID, userID); err != nil || !member {
		return nil, err
	}
	other, err := st.claimMembership(ctx, g.Domain, groupID, userID, g.Id)
	if err != nil {
		return nil, err
	}
	if other != "" {
		s.counters.adoptSkipped.Add(1)
		return nil, nil // level-triggered: the membership has its grant
	}
	// ... and it is checked again while holding the claim, so a revoke
	// cannot slip between the check and the claim.
	member, err := isMember(ctx, c, groupID, userID)
	if err != nil || !member {
		st.releaseMembership(ctx, g)
		if err == nil {
			s.log.DebugContext(ctx, "membership no longer exists; nothing to adopt", "group", groupName, "user", userID, "source", source)
		}
		return nil, err
	}
	addHistory(g, now, iamflowv1.GrantState_GRANT_STATE_UNSPECIFIED, g.State, requester,
		fmt.Sprintf("%s; default duration %v", note, tg.DefaultDuration))
	if _, err := st.create(ctx, &record{g: g}); err != nil {
		st.releaseMembership(ctx, g)
		return nil, err
	}
	if err := s.schedule(ctx, g.Id, g.ExpiresAt.AsTime()); err != nil {
		s.recordError(err)
		s.log.Error("deadline timer not set; the scan will enforce it", "grant", g.Id, "error", err)
	}
	s.counters.adopted.Add(1)
	s.log.Info("membership adopted as a grant", "grant", g.Id, "domain", g.Domain, "group", groupName, "user", userID,
		"source", source, "expires_at", g.ExpiresAt.AsTime())
	s.auditEvent(ctx, ActionGrant, audit.OutcomeDone, g, nil, requester, note, eventID)
	return g, nil
}

// reconcile opens a grant for every member of a temporary group that has none.
func (s *Service) reconcile(ctx context.Context) error {
	var errs []error
	for _, tg := range s.cfg.Groups {
		c := s.clients[tg.Domain]
		g, found, err := c.FindGroupByName(ctx, tg.Group)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s/%s: %w", tg.Domain, tg.Group, err))
			continue
		}
		if !found || g.Id == nil {
			s.log.Warn("temporary group not found", "domain", tg.Domain, "group", tg.Group)
			continue
		}
		name := tg.Group
		if g.DisplayName != nil {
			name = *g.DisplayName
		}
		n := 0
		for m, err := range c.GroupMembers(ctx, *g.Id, 100) {
			if err != nil {
				errs = append(errs, fmt.Errorf("reconcile %s/%s: %w", tg.Domain, tg.Group, err))
				break
			}
			if m.Value == nil || (m.Type != "" && m.Type != "User") {
				continue
			}
			userName := ""
			if m.Name != nil {
				userName = *m.Name
			} else if m.Display != nil {
				userName = *m.Display
			}
			ng, err := s.adopt(ctx, tg, *g.Id, name, *m.Value, userName, SourceReconcile, Name,
				"member of a temporary group without a grant (reconcile on start)", "")
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ng != nil {
				n++
			}
		}
		s.log.Info("temporary group reconciled", "domain", tg.Domain, "group", name, "grants_opened", n)
	}
	return errors.Join(errs...)
}
