package identitydomain

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// GetUser reads the user with the given id. attributes, if any, select what
// comes back (plus what is always returned); "groups" adds the user's group
// memberships.
func (c *Client) GetUser(ctx context.Context, id string, attributes ...string) (identitydomains.User, error) {
	var resp identitydomains.GetUserResponse
	_, err := c.call(ctx, "GetUser", true, func(ctx context.Context) error {
		var err error
		resp, err = c.sdk.GetUser(ctx, identitydomains.GetUserRequest{UserId: &id, Attributes: attrList(attributes)})
		return err
	})
	if err != nil {
		return identitydomains.User{}, fmt.Errorf("get user %s in %s: %w", id, c.domain, err)
	}
	return resp.User, nil
}

// FindUserByName looks a user up by userName (case-insensitive, as the
// domain compares it). found is false, with no error, when there is none.
func (c *Client) FindUserByName(ctx context.Context, userName string, attributes ...string) (u identitydomains.User, found bool, err error) {
	u, found, err = c.findUser(ctx, "userName", userName, attributes)
	if err != nil {
		return u, false, fmt.Errorf("find user %q in %s: %w", userName, c.domain, err)
	}
	return u, found, nil
}

// FindUserByExternalID looks a user up by externalId. found is false, with
// no error, when there is none; more than one is a Conflict error.
func (c *Client) FindUserByExternalID(ctx context.Context, externalID string, attributes ...string) (u identitydomains.User, found bool, err error) {
	u, found, err = c.findUser(ctx, "externalId", externalID, attributes)
	if err != nil {
		return u, false, fmt.Errorf("find user with externalId %q in %s: %w", externalID, c.domain, err)
	}
	return u, found, nil
}

func (c *Client) findUser(ctx context.Context, attr, value string, attributes []string) (identitydomains.User, bool, error) {
	filter := Eq(attr, value)
	attributes = withAttribute(attributes, attr)
	var resp identitydomains.ListUsersResponse
	ci, err := c.call(ctx, "ListUsers", true, func(ctx context.Context) error {
		var err error
		resp, err = c.sdk.ListUsers(ctx, identitydomains.ListUsersRequest{
			Filter: &filter, Count: intPtr(2), Attributes: attrList(attributes),
		})
		return err
	})
	if err != nil {
		return identitydomains.User{}, false, err
	}
	for _, u := range resp.Resources {
		got := optString(u.UserName)
		if attr == "externalId" {
			got = optString(u.ExternalId)
		}
		if err := c.checkMatch(ctx, ci, "ListUsers", attr, value, got, optString(u.Id)); err != nil {
			return identitydomains.User{}, false, err
		}
	}
	return one(c, ci, "ListUsers", filter, resp.Resources)
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
	name := optString(u.UserName)
	fail := func(err error) (identitydomains.User, Receipt, error) {
		return identitydomains.User{}, Receipt{}, fmt.Errorf("create user %q in %s: %w", name, c.domain, err)
	}
	if strings.TrimSpace(name) == "" {
		return fail(c.invalid("CreateUser", errors.New("userName is required")))
	}
	u = UserWithSchemas(u)
	var resp identitydomains.CreateUserResponse
	ci, err := c.call(ctx, "CreateUser", false, func(ctx context.Context) error {
		var err error
		resp, err = c.sdk.CreateUser(ctx, identitydomains.CreateUserRequest{User: u})
		return err
	})
	if err == nil {
		return resp.User, receipt(OutcomeCreated, ci, resp.Etag), nil
	}
	if !IsKind(err, KindConflict) || !ci.ambiguous {
		return fail(err)
	}
	existing, found, ferr := c.FindUserByName(ctx, name)
	if ferr != nil || !found {
		return fail(err)
	}
	c.log.InfoContext(ctx, "identity domain create answered 409 after a lost response; the user exists",
		"domain", c.domain, "userName", name, "id", optString(existing.Id))
	r := receipt(OutcomeExisted, ci, nil)
	r.RequestID = strings.Join(ci.requestIDs, ",")
	return existing, r, nil
}

// PatchUser applies ops (see Add, Replace, Remove, ReplaceAttributes) to the
// user. ifMatch, when not empty, is the ETag or meta.version the user must
// still have; a stale one is a PreconditionFailed error. It is not sent to a
// domain whose discovery says it has no ETags. The user returned is the
// answer's: a server that answers 204 No Content (RFC 7644 §3.5.2) returns
// the zero User.
func (c *Client) PatchUser(ctx context.Context, id, ifMatch string, ops ...identitydomains.Operations) (identitydomains.User, Receipt, error) {
	im := c.ifMatch(ctx, ifMatch)
	var resp identitydomains.PatchUserResponse
	ci, err := c.call(ctx, "PatchUser", true, func(ctx context.Context) error {
		var err error
		resp, err = c.sdk.PatchUser(ctx, identitydomains.PatchUserRequest{UserId: &id, PatchOp: patchOp(ops), IfMatch: im})
		return err
	})
	if err != nil {
		return identitydomains.User{}, Receipt{}, fmt.Errorf("patch user %s in %s: %w", id, c.domain, err)
	}
	return resp.User, receipt(OutcomeUpdated, ci, resp.Etag), nil
}

// DeleteUser deletes the user. A user that does not exist (404) is not an
// error: the receipt says OutcomeAlreadyGone, or OutcomeDeleted when an
// earlier attempt's answer was lost (so the delete was most likely ours).
// ifMatch is as for PatchUser.
func (c *Client) DeleteUser(ctx context.Context, id, ifMatch string) (Receipt, error) {
	im := c.ifMatch(ctx, ifMatch)
	ci, err := c.call(ctx, "DeleteUser", true, func(ctx context.Context) error {
		_, err := c.sdk.DeleteUser(ctx, identitydomains.DeleteUserRequest{UserId: &id, IfMatch: im})
		return err
	})
	switch {
	case err == nil:
		return receipt(OutcomeDeleted, ci, nil), nil
	case IsKind(err, KindNotFound):
		return deleteGone(ci), nil
	}
	return Receipt{}, fmt.Errorf("delete user %s in %s: %w", id, c.domain, err)
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

// deleteGone is the receipt of a delete that met 404.
func deleteGone(ci *callInfo) Receipt {
	if ci.ambiguous {
		return receipt(OutcomeDeleted, ci, nil)
	}
	return receipt(OutcomeAlreadyGone, ci, nil)
}
