package expiry

import (
	"context"
	"errors"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
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
	s.kit.Event(e.GetId())
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
	if _, err := s.adopt(ctx, tg, groupID, groupName, userID, userName, sourceEvent,
		requester, "membership added outside iamflow (event "+e.GetId()+")", e.GetId()); err != nil {
		return retry(err)
	}
	return bus.Done()
}

// retry asks for the event again, after the wait the domain asked for (the
// consumer's backoff when none): a membership that cannot be adopted now is
// adopted by a later delivery, and after max_deliver the dead letter says so.
func retry(err error) bus.Result {
	_, after := bus.RetryHint(err)
	return bus.RetryAfter(after, err)
}
