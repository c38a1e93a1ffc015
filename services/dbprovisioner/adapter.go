package dbprovisioner

import (
	"context"
	"fmt"
	"iter"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// NewDirectory adapts an Identity Domains client to Directory. Reads ask only
// for userName, active and groups; rate limiting, retries and the circuit
// breaker are the client's.
func NewDirectory(c Domain) Directory { return &clientDirectory{c: c} }

// Domain is what the directory calls on an identity domain;
// *identitydomain.Client is one.
type Domain interface {
	identitydomain.UserReader
	FindGroupByName(ctx context.Context, displayName string, attributes ...string) (identitydomains.Group, bool, error)
	GroupMembers(ctx context.Context, groupID string, pageSize int) iter.Seq2[identitydomains.GroupMembers, error]
}

var _ Domain = (*identitydomain.Client)(nil)

type clientDirectory struct{ c Domain }

var _ Directory = (*clientDirectory)(nil)

var userAttributes = []string{"userName", "active", "groups"}

// ReadUser reads the user by SCIM id (GetUser) or userName (FindUserByName).
func (d *clientDirectory) ReadUser(ctx context.Context, ref UserRef) (User, error) {
	switch {
	case ref.ID != "":
		u, err := d.c.GetUser(ctx, ref.ID, userAttributes...)
		if err != nil {
			return User{}, err
		}
		return userFrom(u), nil
	case ref.Name != "":
		u, found, err := d.c.FindUserByName(ctx, ref.Name, userAttributes...)
		if err != nil {
			return User{}, err
		}
		if !found {
			return User{}, fmt.Errorf("user %q: %w", ref.Name, ErrNotFound)
		}
		return userFrom(u), nil
	}
	return User{}, fmt.Errorf("read user: no id or userName: %w", ErrPermanent)
}

// GroupMembers finds the group by displayName and lists its user members
// (by SCIM id).
func (d *clientDirectory) GroupMembers(ctx context.Context, group string) iter.Seq2[UserRef, error] {
	return func(yield func(UserRef, error) bool) {
		g, found, err := d.c.FindGroupByName(ctx, group, "displayName")
		if err != nil {
			yield(UserRef{}, err)
			return
		}
		if !found || g.Id == nil {
			yield(UserRef{}, fmt.Errorf("group %q: %w", group, ErrNotFound))
			return
		}
		for m, err := range d.c.GroupMembers(ctx, *g.Id, 0) {
			if err != nil {
				yield(UserRef{}, err)
				return
			}
			if m.Value == nil || (m.Type != "" && m.Type != identitydomains.GroupMembersTypeUser) {
				continue
			}
			if !yield(UserRef{ID: *m.Value}, nil) {
				return
			}
		}
	}
}

func userFrom(u identitydomains.User) User {
	return User{ID: deref(u.Id), UserName: deref(u.UserName), Active: u.Active == nil || *u.Active, Groups: identitydomain.GroupNames(u)}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
