package identitydomain

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// Paging limits (docs/oci-sources.md §4).
const (
	// MaxPageSize is the largest count of a list request.
	MaxPageSize = 1000
	// MaxMemberPageSize is the most members one response may carry.
	MaxMemberPageSize = 10000
)

// SchemaSearchRequest is the schema of a POST /.search body.
const SchemaSearchRequest = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

// ListOptions select and order the resources of Users and Groups.
type ListOptions struct {
	// Filter is a SCIM filter; build values into it with Quote or Eq.
	Filter string
	// Attributes are the attributes to return (plus those always returned);
	// none means the default set.
	Attributes []string
	// SortBy is the attribute to sort by; empty keeps the server's order.
	SortBy string
	// Descending sorts in descending order.
	Descending bool
	// PageSize is how many resources one request asks for: 1 to 1000,
	// default 1000.
	PageSize int
}

func (o ListOptions) pageSize() (int, error) {
	switch {
	case o.PageSize == 0:
		return MaxPageSize, nil
	case o.PageSize < 0 || o.PageSize > MaxPageSize:
		return 0, fmt.Errorf("page size %d: want 1 to %d", o.PageSize, MaxPageSize)
	}
	return o.PageSize, nil
}

// sortOrder is the sortOrder to send: RFC 7644 §3.4.2.3 spells it in lower
// case (the SDK's enum constants are upper case, which IDCS accepts but
// stricter servers ignore).
func (o ListOptions) sortOrder() string {
	switch {
	case o.Descending:
		return "descending"
	case strings.TrimSpace(o.SortBy) != "":
		return "ascending"
	}
	return ""
}

// Users lists the users matching opts, page by page (one page in memory,
// plus the ids read so far). Iteration stops at the first error, which is
// yielded, or when the loop breaks.
//
// Every page is checked against the paging invariants (see pages); a list
// that breaks them is read again another way, and when no way reads it
// whole the iteration ends with a KindInconsistentRead error. A user may
// then have been yielded that the final read did not contain (it existed
// when its page was read), never one twice. Users added or removed while
// listing change totalResults and make the read inconsistent too.
func (c *Client) Users(ctx context.Context, opts ListOptions) iter.Seq2[identitydomains.User, error] {
	what := "list users in " + c.domain
	size, err := opts.pageSize()
	if err != nil {
		return failed[identitydomains.User](what, c.invalid("ListUsers", err))
	}
	l := &lister[identitydomains.User]{c: c, what: what, endpoint: "Users", size: size, ordered: opts.SortBy != "",
		id: func(u identitydomains.User) string { return optString(u.Id) },
		fetch: func(s strategy, start, count int) (listPage[identitydomains.User], error) {
			if s == strategySearch {
				var resp identitydomains.SearchUsersResponse
				_, err := c.call(ctx, "SearchUsers", true, func(ctx context.Context) error {
					var err error
					resp, err = c.sdk.SearchUsers(ctx, identitydomains.SearchUsersRequest{UserSearchRequest: identitydomains.UserSearchRequest{
						Schemas: []string{SchemaSearchRequest}, Attributes: opts.Attributes, Filter: optPtr(opts.Filter),
						SortBy: optPtr(opts.SortBy), SortOrder: identitydomains.SortOrderEnum(opts.sortOrder()),
						StartIndex: &start, Count: &count,
					}})
					return err
				})
				return listPage[identitydomains.User]{resp.Resources, resp.TotalResults, resp.StartIndex}, err
			}
			sortBy, order := opts.SortBy, opts.sortOrder()
			if s == strategySorted {
				sortBy, order = "id", "ascending"
			}
			var resp identitydomains.ListUsersResponse
			_, err := c.call(ctx, "ListUsers", true, func(ctx context.Context) error {
				var err error
				resp, err = c.sdk.ListUsers(ctx, identitydomains.ListUsersRequest{
					Filter: optPtr(opts.Filter), SortBy: optPtr(sortBy), SortOrder: identitydomains.ListUsersSortOrderEnum(order),
					StartIndex: &start, Count: &count, Attributes: attrList(opts.Attributes),
				})
				return err
			})
			return listPage[identitydomains.User]{resp.Resources, resp.TotalResults, resp.StartIndex}, err
		}}
	return l.all(ctx)
}

// Groups lists the groups matching opts, page by page, like Users. Asking
// for members here fails for a group with more than 10,000 of them in an
// identity domain (use GroupMembers or GetGroupWithMembers), and a server
// that does not return members in a list leaves them empty.
func (c *Client) Groups(ctx context.Context, opts ListOptions) iter.Seq2[identitydomains.Group, error] {
	what := "list groups in " + c.domain
	size, err := opts.pageSize()
	if err != nil {
		return failed[identitydomains.Group](what, c.invalid("ListGroups", err))
	}
	l := &lister[identitydomains.Group]{c: c, what: what, endpoint: "Groups", size: size, ordered: opts.SortBy != "",
		id: func(g identitydomains.Group) string { return optString(g.Id) },
		fetch: func(s strategy, start, count int) (listPage[identitydomains.Group], error) {
			if s == strategySearch {
				var resp identitydomains.SearchGroupsResponse
				_, err := c.call(ctx, "SearchGroups", true, func(ctx context.Context) error {
					var err error
					resp, err = c.sdk.SearchGroups(ctx, identitydomains.SearchGroupsRequest{GroupSearchRequest: identitydomains.GroupSearchRequest{
						Schemas: []string{SchemaSearchRequest}, Attributes: opts.Attributes, Filter: optPtr(opts.Filter),
						SortBy: optPtr(opts.SortBy), SortOrder: identitydomains.SortOrderEnum(opts.sortOrder()),
						StartIndex: &start, Count: &count,
					}})
					return err
				})
				return listPage[identitydomains.Group]{resp.Resources, resp.TotalResults, resp.StartIndex}, err
			}
			sortBy, order := opts.SortBy, opts.sortOrder()
			if s == strategySorted {
				sortBy, order = "id", "ascending"
			}
			var resp identitydomains.ListGroupsResponse
			_, err := c.call(ctx, "ListGroups", true, func(ctx context.Context) error {
				var err error
				resp, err = c.sdk.ListGroups(ctx, identitydomains.ListGroupsRequest{
					Filter: optPtr(opts.Filter), SortBy: optPtr(sortBy), SortOrder: identitydomains.ListGroupsSortOrderEnum(order),
					StartIndex: &start, Count: &count, Attributes: attrList(opts.Attributes),
				})
				return err
			})
			return listPage[identitydomains.Group]{resp.Resources, resp.TotalResults, resp.StartIndex}, err
		}}
	return l.all(ctx)
}

// failed is an iterator yielding only err.
func failed[T any](what string, err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, fmt.Errorf("%s: %w", what, err))
	}
}

func (c *Client) invalid(op string, err error) *Error {
	return &Error{Kind: KindInvalidRequest, Op: op, Domain: c.domain, Detail: err.Error()}
}

// unsupported reports whether err says the server does not offer what was
// asked (400, 404, 405, 501): a fallback strategy that meets it is skipped.
func unsupported(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Kind == KindInvalidRequest || e.Kind == KindNotFound)
}
