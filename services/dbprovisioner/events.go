package dbprovisioner

import (
	"context"
	"errors"
	"fmt"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/lease"
)

// coalesceKey groups the events about one user (the user of a user event,
// the member of a membership event) or one group (group events).
func coalesceKey(ev *iamflowv1.IdentityEvent) string {
	if ref, ok := userOf(ev); ok && !ref.IsZero() {
		return ev.GetDomain() + "/user/" + ref.String()
	}
	if ev.GetKind() == iamflowv1.Kind_KIND_GROUP {
		return event.EntityKey(ev)
	}
	return ""
}

// userOf returns the user an event asks to reconcile.
func userOf(ev *iamflowv1.IdentityEvent) (UserRef, bool) {
	switch ev.GetKind() {
	case iamflowv1.Kind_KIND_USER:
		r := ev.GetResource()
		return UserRef{ID: r.GetId(), Name: r.GetName()}, true
	case iamflowv1.Kind_KIND_MEMBERSHIP:
		switch ev.GetAction() {
		case iamflowv1.Action_ACTION_MEMBER_ADDED, iamflowv1.Action_ACTION_MEMBER_REMOVED:
			// A membership event names the member by display name, not
			// userName: only the id says who it is.
			r := ev.GetRelated()
			return UserRef{ID: r.GetId()}, true
		}
	}
	return UserRef{}, false
}

// handler is the consumer's handler for one database.
func (s *Service) handler(r *dbRuntime) bus.Handler {
	return s.kit.EventHandler(func(ctx context.Context, _ *bus.Msg, ev *iamflowv1.IdentityEvent) bus.Result {
		r.counters.events.Add(1)
		if ev.GetDomain() != r.cfg.Domain {
			return bus.Done()
		}
		c := cause{source: "event", eventID: ev.GetId(), eventType: ev.GetType()}
		if r.m.Mode() != modeUser {
			return s.result(r, s.handleGroupEvent(ctx, r, ev, c))
		}
		ref, ok := userOf(ev)
		if !ok {
			return bus.Done()
		}
		if ref.IsZero() {
			return bus.Terminal(fmt.Errorf("dbprovisioner: event %s (%s) names no user", ev.GetId(), ev.GetType()))
		}
		_, err := s.syncUser(ctx, r, ref, c)
		if errors.Is(err, errUserGone) {
			s.kit.Log().DebugContext(ctx, "user gone and no userName; left to the next reconcile", "database", r.cfg.Name, "user", ref.String())
			return bus.Done()
		}
		return s.result(r, err)
	})
}

// result is what becomes of an event whose sync ended with err: an unsafe
// name is done (listed in the status and audited once, see refuse); an
// account another replica held all along is tried again soon (not a
// failure: the other replica is working on it); the rest as bus.ResultOf
// says (permanent failures dead-lettered at once, others retried after the
// wait they ask for).
func (s *Service) result(r *dbRuntime, err error) bus.Result {
	switch {
	case err == nil:
		return bus.Done()
	case errors.Is(err, errUnsafeName):
		return bus.Done()
	case errors.Is(err, lease.ErrBusy):
		return bus.RetryAfter(busyRetry, err)
	}
	s.recordError(r, err)
	return bus.ResultOf(err)
}

// handleGroupEvent ensures the objects of every mapped group (shared,
// global_role) when a group changes: the event's group name is not trusted
// to say which, and there are few mapped groups to check.
func (s *Service) handleGroupEvent(ctx context.Context, r *dbRuntime, ev *iamflowv1.IdentityEvent, c cause) error {
	if ev.GetKind() != iamflowv1.Kind_KIND_GROUP || ev.GetAction() == iamflowv1.Action_ACTION_DELETED {
		return nil // a global mapping to a deleted group grants nothing; it is left for an administrator
	}
	for i := range r.m.groupCount() {
		if _, err := s.syncGroup(ctx, r, i, c); err != nil {
			return err
		}
	}
	return nil
}
