package replicator

import (
	"context"
	"iter"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// Domain is what the replicator needs from one identity domain: the
// methods of *identitydomain.Client it calls (the real one; tests use it
// against the emulator).
type Domain interface {
	Domain() string
	BreakerState() identitydomain.BreakerState
	// Capabilities is what the domain has shown it supports (its
	// /ServiceProviderConfig, /ResourceTypes and /Schemas).
	Capabilities(ctx context.Context) (identitydomain.Capabilities, error)

	GetUser(ctx context.Context, id string, attributes ...string) (identitydomains.User, error)
	FindUserByName(ctx context.Context, userName string, attributes ...string) (identitydomains.User, bool, error)
	FindUserByExternalID(ctx context.Context, externalID string, attributes ...string) (identitydomains.User, bool, error)
	Users(ctx context.Context, opts identitydomain.ListOptions) iter.Seq2[identitydomains.User, error]
	CreateUser(ctx context.Context, u identitydomains.User) (identitydomains.User, identitydomain.Receipt, error)
	PatchUser(ctx context.Context, id, ifMatch string, ops ...identitydomains.Operations) (identitydomains.User, identitydomain.Receipt, error)
	DeleteUser(ctx context.Context, id, ifMatch string) (identitydomain.Receipt, error)

	GetGroup(ctx context.Context, id string, attributes ...string) (identitydomains.Group, error)
	GetGroupWithMembers(ctx context.Context, id string, attributes ...string) (identitydomains.Group, error)
	FindGroupByName(ctx context.Context, displayName string, attributes ...string) (identitydomains.Group, bool, error)
	FindGroupByExternalID(ctx context.Context, externalID string, attributes ...string) (identitydomains.Group, bool, error)
	Groups(ctx context.Context, opts identitydomain.ListOptions) iter.Seq2[identitydomains.Group, error]
	GroupMembers(ctx context.Context, groupID string, pageSize int) iter.Seq2[identitydomains.GroupMembers, error]
	CreateGroup(ctx context.Context, g identitydomains.Group) (identitydomains.Group, identitydomain.Receipt, error)
	PatchGroup(ctx context.Context, id, ifMatch string, ops ...identitydomains.Operations) (identitydomains.Group, identitydomain.Receipt, error)
	DeleteGroup(ctx context.Context, id, ifMatch string) (identitydomain.Receipt, error)
	AddMembers(ctx context.Context, groupID string, userIDs ...string) (identitydomain.Receipt, error)
	RemoveMembers(ctx context.Context, groupID string, userIDs ...string) (identitydomain.Receipt, error)
	// Bulk sends SCIM Bulk operations (identitydomain.ErrBulkUnsupported
	// where the domain does not offer it).
	Bulk(ctx context.Context, ops []identitydomain.BulkOperation, opts identitydomain.BulkOptions) ([]identitydomain.BulkResult, error)
}

var _ Domain = (*identitydomain.Client)(nil)

// userAttributes are the attributes read for a user: everything a link may
// copy, match on or scope by.
var userAttributes = []string{"id", "userName", "externalId", "displayName", "name", "emails", "active",
	identitydomain.SchemaEnterpriseUser, identitydomain.SchemaUserExtension + ":isFederatedUser"}

// groupAttributes are the attributes read for a group, without members.
var groupAttributes = []string{"id", "displayName", "externalId", identitydomain.SchemaGroupExtension + ":description"}

// withMembers is groupAttributes plus members.
var withMembers = append(append([]string{}, groupAttributes...), "members")
