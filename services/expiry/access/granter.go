package access

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// Grants adapts the expiry service's API (called in process, so every grant
// goes through the same validation, audit and timers as an operator's) to
// the Granter the workflow needs.
func Grants(s iamflowv1.ExpiryServiceServer) Granter { return expiryGrants{s} }

type expiryGrants struct{ s iamflowv1.ExpiryServiceServer }

func (e expiryGrants) Grant(ctx context.Context, domain, group, user string, d time.Duration, requester, reason string) (*iamflowv1.Grant, error) {
	resp, err := e.s.GrantMembership(ctx, &iamflowv1.GrantMembershipRequest{Domain: domain, Group: group, User: user,
		Duration: durationpb.New(d), Requester: requester, Reason: reason})
	if err != nil {
		return nil, fmt.Errorf("grant %s in %s to %s: %w", group, domain, user, err)
	}
	return resp.GetGrant(), nil
}

func (e expiryGrants) Extend(ctx context.Context, id string, d time.Duration, requester, reason string) (*iamflowv1.Grant, error) {
	resp, err := e.s.ExtendGrant(ctx, &iamflowv1.ExtendGrantRequest{Id: id, Duration: durationpb.New(d), Requester: requester, Reason: reason})
	if err != nil {
		return nil, fmt.Errorf("extend grant %s: %w", id, err)
	}
	return resp.GetGrant(), nil
}

func (e expiryGrants) GetGrant(ctx context.Context, id string) (*iamflowv1.Grant, error) {
	resp, err := e.s.GetGrant(ctx, &iamflowv1.GetGrantRequest{Id: id})
	if err != nil {
		return nil, fmt.Errorf("read grant %s: %w", id, err)
	}
	return resp.GetGrant(), nil
}

// OpenGrant is the user's pending or active grant of the group.
func (e expiryGrants) OpenGrant(ctx context.Context, domain, group, user string) (*iamflowv1.Grant, error) {
	for _, st := range []iamflowv1.GrantState{iamflowv1.GrantState_GRANT_STATE_ACTIVE, iamflowv1.GrantState_GRANT_STATE_PENDING} {
		resp, err := e.s.ListGrants(ctx, &iamflowv1.ListGrantsRequest{State: st, Domain: domain, Group: group, User: user, PageSize: 1})
		if err != nil {
			return nil, fmt.Errorf("look up %s's grant of %s in %s: %w", user, group, domain, err)
		}
		if gs := resp.GetGrants(); len(gs) > 0 {
			return gs[0], nil
		}
	}
	return nil, nil
}
