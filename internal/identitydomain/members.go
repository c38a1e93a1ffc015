package identitydomain

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// memberCheckChunk is how many user ids one membership query names.
const memberCheckChunk = 50

// AddMembers adds the users to the group in one PATCH
// ({"op":"add","path":"members","value":[{"value":id,"type":"User"},...]}).
// Adding a user who is already a member changes nothing and is not an error.
func (c *Client) AddMembers(ctx context.Context, groupID string, userIDs ...string) (Receipt, error) {
	if len(userIDs) == 0 {
		return Receipt{Outcome: OutcomeUnchanged}, nil
	}
	resp, ci, err := c.patchGroup(ctx, groupID, "", []identitydomains.Operations{Add("members", memberValues(userIDs))})
	if err != nil {
		return Receipt{}, fmt.Errorf("add %d members to group %s in %s: %w", len(userIDs), groupID, c.domain, err)
	}
	return receipt(OutcomeUpdated, ci, resp.Etag), nil
}

// RemoveMembers removes the users from the group in one PATCH, one
// {"op":"remove","path":"members[value eq \"<id>\"]"} per user. Removing a
// user who is not a member is success: the domain answers such a PATCH with
// 400 (scimType noTarget, RFC 7644 §3.5.2.2), and then the client asks which
// of the users are still members and removes just those. OutcomeUnchanged
// says none was a member.
func (c *Client) RemoveMembers(ctx context.Context, groupID string, userIDs ...string) (Receipt, error) {
	fail := func(err error) (Receipt, error) {
		return Receipt{}, fmt.Errorf("remove %d members from group %s in %s: %w", len(userIDs), groupID, c.domain, err)
	}
	userIDs = slices.Compact(slices.Sorted(slices.Values(userIDs)))
	if len(userIDs) == 0 {
		return Receipt{Outcome: OutcomeUnchanged}, nil
	}
	resp, ci, err := c.patchGroup(ctx, groupID, "", removeOps(userIDs))
	if err == nil {
		return receipt(OutcomeUpdated, ci, resp.Etag), nil
	}
	if !noTarget(err) {
		return fail(err)
	}
	ids := []string{ci.requestID}
	// Some of the users are not members. Which still are?
	var still []string
	for chunk := range slices.Chunk(userIDs, memberCheckChunk) {
		filter := Eq("groups.value", groupID) + " and (" + idsFilter(chunk) + ")"
		for u, err := range c.Users(ctx, ListOptions{Filter: filter, Attributes: []string{"id"}}) {
			if err != nil {
				return fail(err)
			}
			still = append(still, optString(u.Id))
		}
	}
	if len(still) == 0 {
		o := OutcomeUnchanged
		if ci.ambiguous { // an earlier attempt probably removed them
			o = OutcomeUpdated
		}
		r := receipt(o, ci, nil)
		r.RequestID = strings.Join(ids, ",")
		return r, nil
	}
	resp, ci2, err := c.patchGroup(ctx, groupID, "", removeOps(still))
	if err != nil {
		return fail(err)
	}
	r := receipt(OutcomeUpdated, ci2, resp.Etag)
	r.RequestID = strings.Join(append(ids, ci2.requestID), ",")
	r.Attempts += ci.attempts
	return r, nil
}

func removeOps(userIDs []string) []identitydomains.Operations {
	ops := make([]identitydomains.Operations, len(userIDs))
	for i, id := range userIDs {
		ops[i] = Remove("members[" + Eq("value", id) + "]")
	}
	return ops
}

func idsFilter(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = Eq("id", id)
	}
	return strings.Join(parts, " or ")
}

// noTarget reports whether err is the 400 a PATCH gets when a path filter
// matches nothing. IDCS's published error samples show no scimType, so a 400
// without one counts too; the membership check that follows sorts it out.
func noTarget(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		return false
	}
	return e.SCIMType == "" || strings.EqualFold(e.SCIMType, "noTarget")
}
