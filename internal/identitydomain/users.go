package identitydomain

import (
	"context"
	"fmt"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// users is how the client reads and writes users.
var users = &resourceKind[identitydomains.User]{
	noun: "user", typ: "User", nameAttr: "userName",
	name:       func(u identitydomains.User) *string { return u.UserName },
	externalID: func(u identitydomains.User) *string { return u.ExternalId },
	id:         func(u identitydomains.User) *string { return u.Id },
	get: func(ctx context.Context, c *Client, id string, attributes *string) (identitydomains.User, error) {
		resp, err := c.sdk.GetUser(ctx, identitydomains.GetUserRequest{UserId: &id, Attributes: attributes})
		return resp.User, err
	},
	create: func(ctx context.Context, c *Client, u identitydomains.User) (identitydomains.User, *string, error) {
		resp, err := c.sdk.CreateUser(ctx, identitydomains.CreateUserRequest{User: u})
		return resp.User, resp.Etag, err
	},
	patch: func(ctx context.Context, c *Client, id string, op identitydomains.PatchOp, ifMatch *string) (identitydomains.User, *string, error) {
		resp, err := c.sdk.PatchUser(ctx, identitydomains.PatchUserRequest{UserId: &id, PatchOp: op, IfMatch: ifMatch})
		return resp.User, resp.Etag, err
	},
	del: func(ctx context.Context, c *Client, id string, ifMatch *string) error {
		_, err := c.sdk.DeleteUser(ctx, identitydomains.DeleteUserRequest{UserId: &id, IfMatch: ifMatch})
		return err
	},
	searchPage: func(ctx context.Context, c *Client, opts ListOptions, q pageQuery) (listPage[identitydomains.User], error) {
		resp, err := c.sdk.SearchUsers(ctx, identitydomains.SearchUsersRequest{UserSearchRequest: identitydomains.UserSearchRequest{
			Schemas: []string{SchemaSearchRequest}, Attributes: opts.Attributes, Filter: optPtr(opts.Filter),
			SortBy: optPtr(q.sortBy), SortOrder: identitydomains.SortOrderEnum(q.order),
			StartIndex: &q.start, Count: &q.count,
		}})
		return listPage[identitydomains.User]{resp.Resources, resp.TotalResults, resp.StartIndex}, err
	},
	endpointPage: func(ctx context.Context, c *Client, q endpointQuery) (listPage[identitydomains.User], error) {
		resp, err := c.sdk.ListUsers(ctx, identitydomains.ListUsersRequest{
			Filter: q.filter, SortBy: q.sortBy, SortOrder: identitydomains.ListUsersSortOrderEnum(q.order),
			StartIndex: q.start, Count: q.count, Attributes: q.attributes,
		})
		return listPage[identitydomains.User]{resp.Resources, resp.TotalResults, resp.StartIndex}, err
	},
}

// GetUser reads the user with the given id. attributes, if any, select what
// comes back (plus what is always returned); "groups" adds the user's group
// memberships.
func (c *Client) GetUser(ctx context.Context, id string, attributes ...string) (identitydomains.User, error) {
	return getResource(ctx, c, users, id, attributes)
}

// FindUserByName looks a user up by userName (case-insensitive, as the
// domain compares it). found is false, with no error, when there is none.
func (c *Client) FindUserByName(ctx context.Context, userName string, attributes ...string) (u identitydomains.User, found bool, err error) {
	return findResource(ctx, c, users, "userName", userName, attributes)
}

// FindUserByExternalID looks a user up by externalId. found is false, with
// no error, when there is none; more than one is a Conflict error.
func (c *Client) FindUserByExternalID(ctx context.Context, externalID string, attributes ...string) (u identitydomains.User, found bool, err error) {
	return findResource(ctx, c, users, "externalId", externalID, attributes)
}

// checkMatch verifies that a resource a lookup by attr eq value answered
// matches it: userName and displayName compare case-insensitively (as the
// domain compares them), externalId exactly. A resource that does not match
// means the server ignored the filter. The attribute must be among those
// asked for (it is: lookups return the default set, or what the caller
// asked plus it).
func (c *Client) checkMatch(ctx context.Context, ci *callInfo, op, attr, value, got, id string) error {
	if got == value || (attr != "externalId" && strings.EqualFold(got, value)) {
		return nil
	}
	detail := fmt.Sprintf("ignored filter %s: answered %s with %s %q", Eq(attr, value), id, attr, got)
	c.pagingFault(ctx, FaultFilterIgnored, detail)
	return &Error{Kind: KindInconsistentRead, Op: op, Domain: c.domain, RequestID: ci.requestID, Fault: FaultFilterIgnored,
		Detail: "the server " + detail}
}

// one picks the single resource a lookup found.
func one[T any](c *Client, ci *callInfo, op, filter string, items []T) (T, bool, error) {
	var zero T
	switch len(items) {
	case 0:
		return zero, false, nil
	case 1:
		return items[0], true, nil
	}
	return zero, false, &Error{Kind: KindConflict, Op: op, Domain: c.domain, RequestID: ci.requestID,
		Detail: "more than one resource matches " + filter}
}

// UserWithSchemas returns u with the schemas its attributes need: the
// body of a create, single or in a Bulk operation.
func UserWithSchemas(u identitydomains.User) identitydomains.User {
	u.Schemas = withSchemas(u.Schemas, SchemaUser)
	if u.UrnIetfParamsScimSchemasOracleIdcsExtensionUserUser != nil {
		u.Schemas = withSchemas(u.Schemas, SchemaUserExtension)
	}
	if u.UrnIetfParamsScimSchemasExtensionEnterprise2_0User != nil {
		u.Schemas = withSchemas(u.Schemas, SchemaEnterpriseUser)
	}
	return u
}

// CreateUser creates u (userName is required; schemas are completed). When
// a retried create meets 409 because the first attempt's answer was lost
// (the user was created), the user is read back by userName and returned with
// OutcomeExisted. A 409 on the first attempt is a Conflict error.
func (c *Client) CreateUser(ctx context.Context, u identitydomains.User) (identitydomains.User, Receipt, error) {
	return createResource(ctx, c, users, UserWithSchemas(u))
}

// PatchUser applies ops (see Add, Replace, Remove, ReplaceAttributes) to the
// user. ifMatch, when not empty, is the ETag or meta.version the user must
// still have; a stale one is a PreconditionFailed error. It is not sent to a
// domain whose discovery says it has no ETags. The user returned is the
// answer's: a server that answers 204 No Content (RFC 7644 §3.5.2) returns
// the zero User.
func (c *Client) PatchUser(ctx context.Context, id, ifMatch string, ops ...identitydomains.Operations) (identitydomains.User, Receipt, error) {
	u, etag, ci, err := patchResource(ctx, c, users, id, ifMatch, ops)
	return updated(c, users, id, u, etag, ci, err)
}

// DeleteUser deletes the user. A user that does not exist (404) is not an
// error: the receipt says OutcomeAlreadyGone, or OutcomeDeleted when an
// earlier attempt's answer was lost (so the delete was most likely ours).
// ifMatch is as for PatchUser.
func (c *Client) DeleteUser(ctx context.Context, id, ifMatch string) (Receipt, error) {
	return deleteResource(ctx, c, users, id, ifMatch)
}

// UserGroups returns the groups the user is a member of (the user's groups
// attribute: group id in Value, display name in Display).
func (c *Client) UserGroups(ctx context.Context, userID string) ([]identitydomains.UserGroups, error) {
	u, err := c.GetUser(ctx, userID, "groups")
	if err != nil {
		return nil, err
	}
	return u.Groups, nil
}

func intPtr(n int) *int { return &n }
