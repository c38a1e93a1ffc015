package expiry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

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
			s.kit.Log().DebugContext(ctx, "membership no longer exists; nothing to adopt", "group", groupName, "user", userID, "source", source)
		}
		return nil, err
	}
	addHistory(g, now, iamflowv1.GrantState_GRANT_STATE_UNSPECIFIED, g.State, requester,
		fmt.Sprintf("%s; default duration %v", note, tg.DefaultDuration))
	if _, err := st.create(ctx, &record{g: g}); err != nil {
		st.releaseMembership(ctx, g)
		return nil, err
	}
	s.moved(iamflowv1.GrantState_GRANT_STATE_UNSPECIFIED, g.State)
	if err := s.schedule(ctx, g.Id, g.ExpiresAt.AsTime()); err != nil {
		s.kit.Error(err)
		s.kit.Log().Error("deadline timer not set; the scan will enforce it", "grant", g.Id, "error", err)
	}
	s.counters.adopted.Add(1)
	s.kit.Log().Info("membership adopted as a grant", "grant", g.Id, "domain", g.Domain, "group", groupName, "user", userID,
		"source", source, "expires_at", g.ExpiresAt.AsTime())
	s.auditEvent(ctx, actionGrant, audit.OutcomeDone, g, nil, requester, note, eventID)
	return g, nil
}

// removeMembership removes the user from the group and verifies it is gone
// by reading the user's groups. A user that no longer exists has no
// membership: that is success.
func (s *Service) removeMembership(ctx context.Context, g *iamflowv1.Grant) error {
	c := s.clients[g.Domain]
	if c == nil {
		return fmt.Errorf("no client for domain %q", g.Domain)
	}
	if _, err := c.RemoveMembers(ctx, g.GroupId, g.UserId); err != nil && !errors.Is(err, identitydomain.ErrNotFound) {
		return err
	}
	member, err := isMember(ctx, c, g.GroupId, g.UserId)
	switch {
	case err != nil:
		return fmt.Errorf("verify removal: %w", err)
	case member:
		return fmt.Errorf("verify removal: %s is still a member of %s", g.UserName, g.GroupName)
	}
	return nil
}

// isMember reports whether the user is a direct member of the group now, by
// reading the user's groups. A user that no longer exists is a member of
// nothing.
func isMember(ctx context.Context, c Domain, groupID, userID string) (bool, error) {
	groups, err := c.UserGroups(ctx, userID)
	if errors.Is(err, identitydomain.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, ug := range groups {
		if ug.Value != nil && *ug.Value == groupID && ug.Type != "indirect" {
			return true, nil
		}
	}
	return false, nil
}

// domainClient checks a request's domain.
func (s *Service) domainClient(domain string) (Domain, error) {
	if domain == "" {
		return nil, refuse(errInvalid, "domain: required: the short name of a domain with temporary groups (%s)", s.groupNames())
	}
	c := s.clients[domain]
	if c == nil {
		return nil, refuse(errNoSuch, "domain %q has no temporary groups (temporary groups: %s)", domain, s.groupNames())
	}
	return c, nil
}

func (s *Service) resolveGroup(ctx context.Context, c Domain, domain, ref string) (id, name string, err error) {
	ref = strings.TrimSpace(ref)
	if identitydomain.LooksLikeID(ref) {
		g, err := c.GetGroup(ctx, ref)
		if err == nil && g.Id != nil && g.DisplayName != nil {
			return *g.Id, *g.DisplayName, nil
		}
		if err != nil && !errors.Is(err, identitydomain.ErrNotFound) {
			return "", "", err
		}
	}
	g, found, err := c.FindGroupByName(ctx, ref)
	if err != nil {
		return "", "", err
	}
	if !found || g.Id == nil {
		return "", "", refuse(errNoSuch, "group %q not found in domain %q", ref, domain)
	}
	name = ref
	if g.DisplayName != nil {
		name = *g.DisplayName
	}
	return *g.Id, name, nil
}

func (s *Service) resolveUser(ctx context.Context, c Domain, ref string) (id, name string, err error) {
	ref = strings.TrimSpace(ref)
	if identitydomain.LooksLikeID(ref) {
		u, err := c.GetUser(ctx, ref)
		if err == nil && u.Id != nil {
			n := ""
			if u.UserName != nil {
				n = *u.UserName
			}
			return *u.Id, n, nil
		}
		if err != nil && !errors.Is(err, identitydomain.ErrNotFound) {
			return "", "", err
		}
	}
	u, found, err := c.FindUserByName(ctx, ref)
	if err != nil {
		return "", "", err
	}
	if !found || u.Id == nil {
		return "", "", refuse(errNoSuch, "user %q not found in domain %q", ref, c.Domain())
	}
	return *u.Id, ref, nil
}
