package identitydomain

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// GetGroup reads the group with the given id. attributes, if any, select
// what comes back; asking for "members" fails for a group with more than
// 10,000 of them: use GroupMembers.
func (c *Client) GetGroup(ctx context.Context, id string, attributes ...string) (identitydomains.Group, error) {
	var resp identitydomains.GetGroupResponse
	_, err := c.call(ctx, "GetGroup", true, func(ctx context.Context) error {
		var err error
		resp, err = c.sdk.GetGroup(ctx, identitydomains.GetGroupRequest{GroupId: &id, Attributes: attrList(attributes)})
		return err
	})
	if err != nil {
		return identitydomains.Group{}, fmt.Errorf("get group %s in %s: %w", id, c.domain, err)
	}
	return resp.Group, nil
}

// FindGroupByName looks a group up by displayName (case-insensitive, as the
// domain compares it). found is false, with no error, when there is none.
func (c *Client) FindGroupByName(ctx context.Context, displayName string, attributes ...string) (g identitydomains.Group, found bool, err error) {
	g, found, err = c.findGroup(ctx, "displayName", displayName, attributes)
	if err != nil {
		return g, false, fmt.Errorf("find group %q in %s: %w", displayName, c.domain, err)
	}
	return g, found, nil
}

// FindGroupByExternalID looks a group up by externalId. found is false, with
// no error, when there is none; more than one is a Conflict error.
func (c *Client) FindGroupByExternalID(ctx context.Context, externalID string, attributes ...string) (g identitydomains.Group, found bool, err error) {
	g, found, err = c.findGroup(ctx, "externalId", externalID, attributes)
	if err != nil {
		return g, false, fmt.Errorf("find group with externalId %q in %s: %w", externalID, c.domain, err)
	}
	return g, found, nil
}

func (c *Client) findGroup(ctx context.Context, attr, value string, attributes []string) (identitydomains.Group, bool, error) {
	filter := Eq(attr, value)
	attributes = withAttribute(attributes, attr)
	var resp identitydomains.ListGroupsResponse
	ci, err := c.call(ctx, "ListGroups", true, func(ctx context.Context) error {
		var err error
		resp, err = c.sdk.ListGroups(ctx, identitydomains.ListGroupsRequest{
			Filter: &filter, Count: intPtr(2), Attributes: attrList(attributes),
		})
		return err
	})
	if err != nil {
		return identitydomains.Group{}, false, err
	}
	for _, g := range resp.Resources {
		got := optString(g.DisplayName)
		if attr == "externalId" {
			got = optString(g.ExternalId)
		}
		if err := c.checkMatch(ctx, ci, "ListGroups", attr, value, got, optString(g.Id)); err != nil {
			return identitydomains.Group{}, false, err
		}
	}
	return one(c, ci, "ListGroups", filter, resp.Resources)
}

// CreateGroup creates g (displayName is required; schemas are completed).
// Like CreateUser, a retried create that meets 409 after a lost answer
// returns the group found by displayName with OutcomeExisted.
func (c *Client) CreateGroup(ctx context.Context, g identitydomains.Group) (identitydomains.Group, Receipt, error) {
	name := optString(g.DisplayName)
	fail := func(err error) (identitydomains.Group, Receipt, error) {
		return identitydomains.Group{}, Receipt{}, fmt.Errorf("create group %q in %s: %w", name, c.domain, err)
	}
	if strings.TrimSpace(name) == "" {
		return fail(c.invalid("CreateGroup", errors.New("displayName is required")))
	}
	g.Schemas = withSchemas(g.Schemas, SchemaGroup)
	if g.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup != nil {
		g.Schemas = withSchemas(g.Schemas, SchemaGroupExtension)
	}
	var resp identitydomains.CreateGroupResponse
	ci, err := c.call(ctx, "CreateGroup", false, func(ctx context.Context) error {
		var err error
		resp, err = c.sdk.CreateGroup(ctx, identitydomains.CreateGroupRequest{Group: g})
		return err
	})
	if err == nil {
		return resp.Group, receipt(OutcomeCreated, ci, resp.Etag), nil
	}
	if !IsKind(err, KindConflict) || !ci.ambiguous {
		return fail(err)
	}
	existing, found, ferr := c.FindGroupByName(ctx, name)
	if ferr != nil || !found {
		return fail(err)
	}
	c.log.InfoContext(ctx, "identity domain create answered 409 after a lost response; the group exists",
		"domain", c.domain, "displayName", name, "id", optString(existing.Id))
	r := receipt(OutcomeExisted, ci, nil)
	r.RequestID = strings.Join(ci.requestIDs, ",")
	return existing, r, nil
}

// PatchGroup applies ops to the group; ifMatch and a 204 answer are as for
// PatchUser. The answer does not carry the members.
func (c *Client) PatchGroup(ctx context.Context, id, ifMatch string, ops ...identitydomains.Operations) (identitydomains.Group, Receipt, error) {
	resp, ci, err := c.patchGroup(ctx, id, ifMatch, ops)
	if err != nil {
		return identitydomains.Group{}, Receipt{}, fmt.Errorf("patch group %s in %s: %w", id, c.domain, err)
	}
	return resp.Group, receipt(OutcomeUpdated, ci, resp.Etag), nil
}

func (c *Client) patchGroup(ctx context.Context, id, ifMatch string, ops []identitydomains.Operations) (identitydomains.PatchGroupResponse, *callInfo, error) {
	im := c.ifMatch(ctx, ifMatch)
	var resp identitydomains.PatchGroupResponse
	ci, err := c.call(ctx, "PatchGroup", true, func(ctx context.Context) error {
		var err error
		resp, err = c.sdk.PatchGroup(ctx, identitydomains.PatchGroupRequest{GroupId: &id, PatchOp: patchOp(ops), IfMatch: im})
		return err
	})
	return resp, ci, err
}

// DeleteGroup deletes the group; a group that does not exist is not an
// error, as for DeleteUser.
func (c *Client) DeleteGroup(ctx context.Context, id, ifMatch string) (Receipt, error) {
	im := c.ifMatch(ctx, ifMatch)
	ci, err := c.call(ctx, "DeleteGroup", true, func(ctx context.Context) error {
		_, err := c.sdk.DeleteGroup(ctx, identitydomains.DeleteGroupRequest{GroupId: &id, IfMatch: im})
		return err
	})
	switch {
	case err == nil:
		return receipt(OutcomeDeleted, ci, nil), nil
	case IsKind(err, KindNotFound):
		return deleteGone(ci), nil
	}
	return Receipt{}, fmt.Errorf("delete group %s in %s: %w", id, c.domain, err)
}
