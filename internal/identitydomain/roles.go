package identitydomain

import (
	"context"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// UserReader reads one user by SCIM id or by userName, asking for the
// attributes given. *Client is one; a service embeds it in the narrow
// interface of what it calls on a domain.
type UserReader interface {
	GetUser(ctx context.Context, id string, attributes ...string) (identitydomains.User, error)
	FindUserByName(ctx context.Context, userName string, attributes ...string) (identitydomains.User, bool, error)
}

var _ UserReader = (*Client)(nil)

// GroupNames are the displayNames of u's groups, as read with the "groups"
// attribute; a group without one is left out. It is never nil.
func GroupNames(u identitydomains.User) []string {
	names := make([]string, 0, len(u.Groups))
	for _, g := range u.Groups {
		if g.Display != nil && *g.Display != "" {
			names = append(names, *g.Display)
		}
	}
	return names
}
