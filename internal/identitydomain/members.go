package identitydomain

import (
	"context"
	"errors"
	"fmt"
	"iter"
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
	_, etag, ci, err := patchResource(ctx, c, groups, groupID, "", []identitydomains.Operations{Add("members", memberValues(userIDs))})
	if err != nil {
		return Receipt{}, fmt.Errorf("add %d members to group %s in %s: %w", len(userIDs), groupID, c.domain, err)
	}
	return receipt(OutcomeUpdated, ci, etag), nil
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
	_, etag, ci, err := patchResource(ctx, c, groups, groupID, "", removeOps(userIDs))
	if err == nil {
		return receipt(OutcomeUpdated, ci, etag), nil
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
	_, etag, ci2, err := patchResource(ctx, c, groups, groupID, "", removeOps(still))
	if err != nil {
		return fail(err)
	}
	r := receipt(OutcomeUpdated, ci2, etag)
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

// GroupMembers lists a group's members pageSize at a time (at most 10,000,
// the default) with attributes=members[startIndex=S&count=N], the member
// paging of identity domains, so groups beyond the 10,000 members one
// response may carry are listed whole.
//
// Member paging is Oracle's, not SCIM's: a server that rejects it (400),
// ignores it (more members than asked, the same members again), or answers
// it with no members while a plain attributes=members read has some, is
// read with attributes=members instead, whole, and the client remembers to
// do so for the domain (a paging fault is counted and logged once). An empty
// first page is therefore confirmed by a plain read, until the domain has
// answered a member page with members. A short page ends the list: there is
// no member total to check it against.
func (c *Client) GroupMembers(ctx context.Context, groupID string, pageSize int) iter.Seq2[identitydomains.GroupMembers, error] {
	what := fmt.Sprintf("list members of group %s in %s", groupID, c.domain)
	if pageSize == 0 {
		pageSize = MaxMemberPageSize
	}
	if pageSize < 0 || pageSize > MaxMemberPageSize {
		return failed[identitydomains.GroupMembers](what, c.invalid("GetGroup",
			fmt.Errorf("member page size %d: want 1 to %d", pageSize, MaxMemberPageSize)))
	}
	return func(yield func(identitydomains.GroupMembers, error) bool) {
		r := &memberReader{c: c, groupID: groupID, pageSize: pageSize, what: what, yield: yield,
			yielded: map[string]struct{}{}, seen: map[string]struct{}{}}
		if c.membersWhole.Load() {
			r.whole(ctx)
			return
		}
		r.paged(ctx)
	}
}

// memberReader is one GroupMembers listing: paged while the domain pages
// members, whole once it has shown it does not.
type memberReader struct {
	c        *Client
	groupID  string
	pageSize int
	what     string // for errors
	yield    func(identitydomains.GroupMembers, error) bool
	yielded  map[string]struct{} // member values yielded, each once
	seen     map[string]struct{} // member values the pages answered
}

// emit yields the members not yielded yet; false when the caller stopped.
func (r *memberReader) emit(ms []identitydomains.GroupMembers) bool {
	for _, m := range ms {
		v := optString(m.Value)
		if _, dup := r.yielded[v]; dup {
			continue
		}
		r.yielded[v] = struct{}{}
		if !r.yield(m, nil) {
			return false
		}
	}
	return true
}

// whole reads the members with attributes=members.
func (r *memberReader) whole(ctx context.Context) {
	ms, err := r.c.wholeMembers(ctx, r.groupID)
	if err != nil {
		r.fail(err)
		return
	}
	r.emit(ms)
}

// fallBack records that the domain does not page members (a paging fault,
// logged once), remembers it, and reads them whole.
func (r *memberReader) fallBack(ctx context.Context, f ReadFault, detail string) {
	r.pagingIgnored(ctx, f, detail)
	r.whole(ctx)
}

// pagingIgnored records that the domain does not page members (a paging
// fault, logged once) and remembers it for the client's later reads.
func (r *memberReader) pagingIgnored(ctx context.Context, f ReadFault, detail string) {
	r.c.membersWhole.Store(true)
	r.c.pagingFault(ctx, f, detail)
	r.c.logOnce(ctx, "members-whole", "identity domain does not page group members; reading them whole from now on", "detail", detail)
}

// fail yields err, naming what was read, as the read's last value.
func (r *memberReader) fail(err error) {
	var zero identitydomains.GroupMembers
	r.yield(zero, fmt.Errorf("%s: %w", r.what, err))
}

// paged reads member pages until a short one, falling back to a whole read
// when the domain rejects or ignores member paging.
func (r *memberReader) paged(ctx context.Context) {
	var zero identitydomains.GroupMembers
	for start, page := 1, 1; ; page++ {
		// The SDK encodes the & as %26, as Oracle documents.
		attrs := fmt.Sprintf("members[startIndex=%d&count=%d]", start, r.pageSize)
		g, err := r.c.getGroup(ctx, r.groupID, &attrs)
		if err != nil {
			var e *Error
			if page == 1 && errors.As(err, &e) && e.Kind == KindInvalidRequest && !strings.EqualFold(e.SCIMType, "tooMany") {
				r.fallBack(ctx, FaultMemberPagingRejected, fmt.Sprintf("group %s refused attributes=%s: %v", r.groupID, attrs, err))
				return
			}
			r.yield(zero, fmt.Errorf("%s (from %d): %w", r.what, start, err))
			return
		}
		k := len(g.Members)
		if k > r.pageSize {
			r.fallBack(ctx, FaultMemberPagingIgnored, fmt.Sprintf("group %s answered %d members for count=%d", r.groupID, k, r.pageSize))
			return
		}
		if detail := r.repeated(g.Members, page, start); detail != "" {
			r.fallBack(ctx, FaultMemberPagingIgnored, detail)
			return
		}
		if k > 0 {
			r.c.membersPaged.Store(true)
		}
		if page == 1 && k == 0 && !r.c.membersPaged.Load() {
			r.confirmEmpty(ctx, attrs)
			return
		}
		if !r.emit(g.Members) || k < r.pageSize {
			return
		}
		start += k
	}
}

// repeated describes a member a page repeats (or one with no value), the
// sign of a server that ignores member paging; "" when there is none.
func (r *memberReader) repeated(ms []identitydomains.GroupMembers, page, start int) string {
	for _, m := range ms {
		v := optString(m.Value)
		if _, dup := r.seen[v]; dup || v == "" {
			return fmt.Sprintf("group %s repeated member %q on member page %d (startIndex=%d)", r.groupID, v, page, start)
		}
		r.seen[v] = struct{}{}
	}
	return ""
}

// confirmEmpty checks an empty first page with a plain read, until the
// domain has answered a member page with members (then it does not drop
// the paged attribute): members there mean the domain ignored the paged
// attribute, a paging fault, and they are yielded.
func (r *memberReader) confirmEmpty(ctx context.Context, attrs string) {
	ms, err := r.c.wholeMembers(ctx, r.groupID)
	if err != nil {
		r.fail(err)
		return
	}
	if len(ms) > 0 {
		r.pagingIgnored(ctx, FaultMemberPagingIgnored,
			fmt.Sprintf("group %s answered no members to attributes=%s but %d to attributes=members", r.groupID, attrs, len(ms)))
		r.emit(ms)
	}
}

// wholeMembers reads a group's members with attributes=members.
func (c *Client) wholeMembers(ctx context.Context, groupID string) ([]identitydomains.GroupMembers, error) {
	attrs := "members"
	g, err := c.getGroup(ctx, groupID, &attrs)
	return g.Members, err
}

func (c *Client) getGroup(ctx context.Context, id string, attributes *string) (identitydomains.Group, error) {
	return fetchResource(ctx, c, groups, id, attributes)
}

// GetGroupWithMembers reads the group with the given id and all its members:
// attributes plus members in one request where the domain allows it, and,
// when it refuses members in that answer (400, e.g. more than 10,000 of
// them), the group without them and its members paged by GroupMembers.
// With no attributes, the default set is read and the members paged.
func (c *Client) GetGroupWithMembers(ctx context.Context, id string, attributes ...string) (identitydomains.Group, error) {
	if len(attributes) > 0 {
		withMembers := attributes
		if !slices.ContainsFunc(attributes, func(a string) bool { return strings.EqualFold(a, "members") }) {
			withMembers = append(slices.Clone(attributes), "members")
		}
		g, err := c.GetGroup(ctx, id, withMembers...)
		if err == nil || !IsKind(err, KindInvalidRequest) {
			return g, err
		}
	}
	g, err := c.GetGroup(ctx, id, attributes...)
	if err != nil {
		return g, err
	}
	g.Members = nil
	for m, err := range c.GroupMembers(ctx, id, 0) {
		if err != nil {
			return identitydomains.Group{}, err
		}
		g.Members = append(g.Members, m)
	}
	return g, nil
}
