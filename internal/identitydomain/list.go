package identitydomain

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// Paging limits (oci.md §4).
const (
	// MaxPageSize is the largest count of a list request.
	MaxPageSize = 1000
	// MaxMemberPageSize is the most members one response may carry.
	MaxMemberPageSize = 10000
)

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

// page is one page of a list: its resources and the total, if given.
type page[T any] struct {
	items []T
	total *int
}

// pages iterates over a paged list, one page in memory at a time: fetch gets
// the page starting at start (1-based). It stops after the last page, at the
// first error (yielded with what) or when the caller stops.
func pages[T any](size int, what string, fetch func(start, count int) (page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		start := 1
		for {
			p, err := fetch(start, size)
			if err != nil {
				yield(zero, fmt.Errorf("%s (from %d): %w", what, start, err))
				return
			}
			n := len(p.items)
			for i := range p.items {
				if !yield(p.items[i], nil) {
					return
				}
			}
			if n == 0 || (p.total != nil && start+n-1 >= *p.total) || (p.total == nil && n < size) {
				return
			}
			start += n
		}
	}
}

// Users lists the users matching opts, page by page (bounded memory).
// Iteration stops at the first error, which is yielded, or when the loop
// breaks. Resources added or removed while listing may be missed or seen
// twice (SCIM paging is by index); reconcile tolerates that.
func (c *Client) Users(ctx context.Context, opts ListOptions) iter.Seq2[identitydomains.User, error] {
	what := "list users in " + c.domain
	size, err := opts.pageSize()
	if err != nil {
		return failed[identitydomains.User](what, c.invalid("ListUsers", err))
	}
	return pages(size, what, func(start, count int) (page[identitydomains.User], error) {
		var resp identitydomains.ListUsersResponse
		_, err := c.call(ctx, "ListUsers", true, func(ctx context.Context) error {
			var err error
			resp, err = c.sdk.ListUsers(ctx, identitydomains.ListUsersRequest{
				Filter: optPtr(opts.Filter), SortBy: optPtr(opts.SortBy), SortOrder: listUsersOrder(opts),
				StartIndex: &start, Count: &count, Attributes: attrList(opts.Attributes),
			})
			return err
		})
		return page[identitydomains.User]{items: resp.Resources, total: resp.TotalResults}, err
	})
}

// Groups lists the groups matching opts, page by page, like Users. Asking
// for members here fails for a group with more than 10,000 of them: use
// GroupMembers.
func (c *Client) Groups(ctx context.Context, opts ListOptions) iter.Seq2[identitydomains.Group, error] {
	what := "list groups in " + c.domain
	size, err := opts.pageSize()
	if err != nil {
		return failed[identitydomains.Group](what, c.invalid("ListGroups", err))
	}
	return pages(size, what, func(start, count int) (page[identitydomains.Group], error) {
		var resp identitydomains.ListGroupsResponse
		_, err := c.call(ctx, "ListGroups", true, func(ctx context.Context) error {
			var err error
			resp, err = c.sdk.ListGroups(ctx, identitydomains.ListGroupsRequest{
				Filter: optPtr(opts.Filter), SortBy: optPtr(opts.SortBy), SortOrder: listGroupsOrder(opts),
				StartIndex: &start, Count: &count, Attributes: attrList(opts.Attributes),
			})
			return err
		})
		return page[identitydomains.Group]{items: resp.Resources, total: resp.TotalResults}, err
	})
}

// GroupMembers lists a group's members pageSize at a time (at most 10,000,
// the default), with attributes=members[startIndex=S&count=N], so groups
// beyond the 10,000 members one response may carry are listed whole.
func (c *Client) GroupMembers(ctx context.Context, groupID string, pageSize int) iter.Seq2[identitydomains.GroupMembers, error] {
	what := fmt.Sprintf("list members of group %s in %s", groupID, c.domain)
	if pageSize == 0 {
		pageSize = MaxMemberPageSize
	}
	if pageSize < 0 || pageSize > MaxMemberPageSize {
		return failed[identitydomains.GroupMembers](what, c.invalid("GetGroup",
			fmt.Errorf("member page size %d: want 1 to %d", pageSize, MaxMemberPageSize)))
	}
	return pages(pageSize, what, func(start, count int) (page[identitydomains.GroupMembers], error) {
		// The SDK encodes the & as %26, as Oracle documents.
		attrs := fmt.Sprintf("members[startIndex=%d&count=%d]", start, count)
		var resp identitydomains.GetGroupResponse
		_, err := c.call(ctx, "GetGroup", true, func(ctx context.Context) error {
			var err error
			resp, err = c.sdk.GetGroup(ctx, identitydomains.GetGroupRequest{GroupId: &groupID, Attributes: &attrs})
			return err
		})
		return page[identitydomains.GroupMembers]{items: resp.Members}, err
	})
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

func listUsersOrder(o ListOptions) identitydomains.ListUsersSortOrderEnum {
	if o.Descending {
		return identitydomains.ListUsersSortOrderDescending
	}
	if strings.TrimSpace(o.SortBy) != "" {
		return identitydomains.ListUsersSortOrderAscending
	}
	return ""
}

func listGroupsOrder(o ListOptions) identitydomains.ListGroupsSortOrderEnum {
	if o.Descending {
		return identitydomains.ListGroupsSortOrderDescending
	}
	if strings.TrimSpace(o.SortBy) != "" {
		return identitydomains.ListGroupsSortOrderAscending
	}
	return ""
}
