package capabilities

import (
	"context"
	"errors"
	"fmt"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
)

// coalesceKey groups the events about one user: the user of a user event,
// the member of a membership event (the user is what is reconciled). The
// runner handles the newest message of a group; should a user.created be
// coalesced with a newer event of a user that is not readable yet, the JIT
// retry is lost and the next sweep covers the user.
func coalesceKey(ev *iamflowv1.IdentityEvent) string {
	ref, ok := userOf(ev)
	if !ok || ref.IsZero() {
		return ""
	}
	return ev.GetDomain() + "/user/" + ref.String()
}

// userOf returns the user an event asks to reconcile, and false for events
// that ask nothing (deletions, deactivations, group events).
func userOf(ev *iamflowv1.IdentityEvent) (UserRef, bool) {
	switch ev.GetKind() {
	case iamflowv1.Kind_KIND_USER:
		switch ev.GetAction() {
		case iamflowv1.Action_ACTION_CREATED, iamflowv1.Action_ACTION_UPDATED,
			iamflowv1.Action_ACTION_ACTIVATED, iamflowv1.Action_ACTION_CAPABILITIES_CHANGED:
			return refOf(ev.GetResource()), true
		}
	case iamflowv1.Kind_KIND_MEMBERSHIP:
		switch ev.GetAction() {
		case iamflowv1.Action_ACTION_MEMBER_ADDED, iamflowv1.Action_ACTION_MEMBER_REMOVED:
			return refOf(ev.GetRelated()), true
		}
	}
	return UserRef{}, false
}

func refOf(r *iamflowv1.Resource) UserRef {
	return UserRef{ID: r.GetId(), OCID: r.GetOcid(), Name: r.GetName()}
}

// handle is the consumer's handler: one event, one user reconciled.
func (s *Service) handle(ctx context.Context, m *bus.Msg) bus.Result {
	return s.kit.EventHandler(s.handleEvent)(ctx, m)
}

func (s *Service) handleEvent(ctx context.Context, m *bus.Msg, ev *iamflowv1.IdentityEvent) bus.Result {
	s.counters.events.Add(1)
	ref, ok := userOf(ev)
	if !ok {
		return bus.Done()
	}
	if ev.GetKind() == iamflowv1.Kind_KIND_MEMBERSHIP && !s.policy.readsGroups() {
		return bus.Done() // no rule looks at groups
	}
	dir := s.dirs[ev.GetDomain()]
	if dir == nil {
		return bus.Done() // not an enforced domain
	}
	if ref.IsZero() {
		return bus.Terminal(fmt.Errorf("capabilities: event %s (%s) names no user", ev.GetId(), ev.GetType()))
	}
	c := cause{source: "event", eventID: ev.GetId(), eventType: ev.GetType(), actor: ev.GetActor().GetName(),
		drift: ev.GetAction() == iamflowv1.Action_ACTION_CAPABILITIES_CHANGED}
	_, _, err := s.reconcile(ctx, ev.GetDomain(), dir, ref, c)
	switch {
	case err == nil:
		return bus.Done()
	case errors.Is(err, ErrNotFound) && ev.GetAction() == iamflowv1.Action_ACTION_CREATED && ev.GetKind() == iamflowv1.Kind_KIND_USER:
		// The just-in-time provisioning race: the event can come before the
		// user is readable.
		if m.NumDelivered < uint64(s.cfg.JITMaxAttempts) {
			s.counters.jitRetries.Add(1)
			return bus.RetryAfter(s.cfg.JITRetryAfter, err)
		}
		// Never readable: the user was deleted right after it was created
		// (or the event is stale). What no longer exists has nothing to
		// enforce; should it appear after all, the sweep covers it.
		s.counters.jitGone.Add(1)
		s.kit.Log().InfoContext(ctx, "created user never became readable; treated as deleted", "domain", ev.GetDomain(),
			"user", ref.String(), "attempts", m.NumDelivered, "event", ev.GetId())
		return bus.Done()
	case errors.Is(err, ErrNotFound):
		s.kit.Log().DebugContext(ctx, "user gone; nothing to enforce", "domain", ev.GetDomain(), "user", ref.String(), "event", ev.GetType())
		return bus.Done()
	}
	s.kit.Error(err)
	return bus.ResultOf(err)
}
