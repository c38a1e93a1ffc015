package identitydomain

import (
	"context"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// groups is how the client reads and writes groups.
var groups = &resourceKind[identitydomains.Group]{
	noun: "group", typ: "Group", nameAttr: "displayName",
	name:       func(g identitydomains.Group) *string { return g.DisplayName },
	externalID: func(g identitydomains.Group) *string { return g.ExternalId },
	id:         func(g identitydomains.Group) *string { return g.Id },
	get: func(ctx context.Context, c *Client, id string, attributes *string) (identitydomains.Group, error) {
		resp, err := c.sdk.GetGroup(ctx, identitydomains.GetGroupRequest{GroupId: &id, Attributes: attributes})
		return resp.Group, err
	},
	create: func(ctx context.Context, c *Client, g identitydomains.Group) (identitydomains.Group, *string, error) {
		resp, err := c.sdk.CreateGroup(ctx, identitydomains.CreateGroupRequest{Group: g})
		return resp.Group, resp.Etag, err
	},
	patch: func(ctx context.Context, c *Client, id string, op identitydomains.PatchOp, ifMatch *string) (identitydomains.Group, *string, error) {
		resp, err := c.sdk.PatchGroup(ctx, identitydomains.PatchGroupRequest{GroupId: &id, PatchOp: op, IfMatch: ifMatch})
		return resp.Group, resp.Etag, err
	},
	del: func(ctx context.Context, c *Client, id string, ifMatch *string) error {
		_, err := c.sdk.DeleteGroup(ctx, identitydomains.DeleteGroupRequest{GroupId: &id, IfMatch: ifMatch})
		return err
	},
	searchPage: func(ctx context.Context, c *Client, opts ListOptions, q pageQuery) (listPage[identitydomains.Group], error) {
		resp, err := c.sdk.SearchGroups(ctx, identitydomains.SearchGroupsRequest{GroupSearchRequest: identitydomains.GroupSearchRequest{
			Schemas: []string{SchemaSearchRequest}, Attributes: opts.Attributes, Filter: optPtr(opts.Filter),
			SortBy: optPtr(q.sortBy), SortOrder: identitydomains.SortOrderEnum(q.order),
			StartIndex: &q.start, Count: &q.count,
		}})
		return listPage[identitydomains.Group]{resp.Resources, resp.TotalResults, resp.StartIndex}, err
	},
	endpointPage: func(ctx context.Context, c *Client, q endpointQuery) (listPage[identitydomains.Group], error) {
		resp, err := c.sdk.ListGroups(ctx, identitydomains.ListGroupsRequest{
			Filter: q.filter, SortBy: q.sortBy, SortOrder: identitydomains.ListGroupsSortOrderEnum(q.order),
			StartIndex: q.start, Count: q.count, Attributes: q.attributes,
		})
		return listPage[identitydomains.Group]{resp.Resources, resp.TotalResults, resp.StartIndex}, err
	},
}

// GetGroup reads the group with the given id. attributes, if any, select
// what comes back; asking for "members" fails for a group with more than
// 10,000 of them: use GroupMembers.
func (c *Client) GetGroup(ctx context.Context, id string, attributes ...string) (identitydomains.Group, error) {
	return getResource(ctx, c, groups, id, attributes)
}

// FindGroupByName looks a group up by displayName (case-insensitive, as the
// domain compares it). found is false, with no error, when there is none.
func (c *Client) FindGroupByName(ctx context.Context, displayName string, attributes ...string) (g identitydomains.Group, found bool, err error) {
	return findResource(ctx, c, groups, "displayName", displayName, attributes)
}

// FindGroupByExternalID looks a group up by externalId. found is false, with
// no error, when there is none; more than one is a Conflict error.
func (c *Client) FindGroupByExternalID(ctx context.Context, externalID string, attributes ...string) (g identitydomains.Group, found bool, err error) {
	return findResource(ctx, c, groups, "externalId", externalID, attributes)
}

// CreateGroup creates g (displayName is required; schemas are completed).
// Like CreateUser, a retried create that meets 409 after a lost answer
// returns the group found by displayName with OutcomeExisted.
func (c *Client) CreateGroup(ctx context.Context, g identitydomains.Group) (identitydomains.Group, Receipt, error) {
	g.Schemas = withSchemas(g.Schemas, SchemaGroup)
	if g.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup != nil {
		g.Schemas = withSchemas(g.Schemas, SchemaGroupExtension)
	}
	return createResource(ctx, c, groups, g)
}

// PatchGroup applies ops to the group; ifMatch and a 204 answer are as for
// PatchUser. The answer does not carry the members.
func (c *Client) PatchGroup(ctx context.Context, id, ifMatch string, ops ...identitydomains.Operations) (identitydomains.Group, Receipt, error) {
	g, etag, ci, err := patchResource(ctx, c, groups, id, ifMatch, ops)
	return updated(c, groups, id, g, etag, ci, err)
}

// DeleteGroup deletes the group; a group that does not exist is not an
// error, as for DeleteUser.
func (c *Client) DeleteGroup(ctx context.Context, id, ifMatch string) (Receipt, error) {
	return deleteResource(ctx, c, groups, id, ifMatch)
}
