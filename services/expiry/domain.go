package expiry

import (
	"context"
	"iter"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// Domain is what the service calls on an identity domain with temporary
// groups: it resolves groups and users, adds and removes members, and reads
// a user's groups to verify a removal. *identitydomain.Client is one.
type Domain interface {
	Domain() string
	GetGroup(ctx context.Context, id string, attributes ...string) (identitydomains.Group, error)
	FindGroupByName(ctx context.Context, displayName string, attributes ...string) (identitydomains.Group, bool, error)
	GroupMembers(ctx context.Context, groupID string, pageSize int) iter.Seq2[identitydomains.GroupMembers, error]
	AddMembers(ctx context.Context, groupID string, userIDs ...string) (identitydomain.Receipt, error)
	RemoveMembers(ctx context.Context, groupID string, userIDs ...string) (identitydomain.Receipt, error)
	identitydomain.UserReader
	UserGroups(ctx context.Context, userID string) ([]identitydomains.UserGroups, error)
}

var _ Domain = (*identitydomain.Client)(nil)
