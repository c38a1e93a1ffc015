package expiry

import (
	"context"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// audit records one transition of g.
func (s *Service) audit(ctx context.Context, action, outcome string, g *iamflowv1.Grant, before map[string]string, requester, reason string) {
	s.auditEvent(ctx, action, outcome, g, before, requester, reason, "")
}

func (s *Service) auditEvent(ctx context.Context, action, outcome string, g *iamflowv1.Grant, before map[string]string, requester, reason, eventID string) {
	after := map[string]string{
		"grant": g.Id, "state": stateName(g.State), "expires_at": g.ExpiresAt.AsTime().UTC().Format(time.RFC3339Nano),
		"source": g.Source, "requester": requester,
	}
	if g.EndedAt != nil {
		after["ended_at"] = g.EndedAt.AsTime().UTC().Format(time.RFC3339Nano)
	}
	rec := &iamflowv1.AuditRecord{
		Action: action, Domain: g.Domain, Outcome: outcome, Reason: reason, Before: before, After: after, EventId: eventID,
		Resource: &iamflowv1.Resource{Id: g.GroupId, Name: g.GroupName, Type: "Group"},
		Related:  &iamflowv1.Resource{Id: g.UserId, Name: g.UserName, Type: "User"},
	}
	if s.kit.Audit(ctx, rec, "action", action, "grant", g.Id) != nil {
		s.counters.auditFailed.Add(1)
	}
}
