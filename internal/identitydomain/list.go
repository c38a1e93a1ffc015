package identitydomain

import (
	"context"
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
	return listResources(ctx, c, users, opts)
}

// Groups lists the groups matching opts, page by page, like Users. Asking
// for members here fails for a group with more than 10,000 of them in an
// identity domain (use GroupMembers or GetGroupWithMembers), and a server
// that does not return members in a list leaves them empty.
func (c *Client) Groups(ctx context.Context, opts ListOptions) iter.Seq2[identitydomains.Group, error] {
	return listResources(ctx, c, groups, opts)
}

// pageQuery is one page request of a list: where it starts, how many it
// asks for, and the order the lister's strategy wants.
type pageQuery struct {
	start, count  int
	sortBy, order string
}

// listResources lists the resources of kind k matching opts, page by page,
// in the strategies of lister: the list endpoint in the caller's order,
// /.search, and the list endpoint sorted by id.
func listResources[T any](ctx context.Context, c *Client, k *resourceKind[T], opts ListOptions) iter.Seq2[T, error] {
	what := "list " + k.noun + "s in " + c.domain
	size, err := opts.pageSize()
	if err != nil {
		return failed[T](what, c.invalid("List"+k.typ+"s", err))
	}
	l := &lister[T]{c: c, what: what, endpoint: k.typ + "s", size: size, ordered: opts.SortBy != "",
		id: func(v T) string { return optString(k.id(v)) },
		fetch: func(s strategy, start, count int) (listPage[T], error) {
			q := pageQuery{start: start, count: count, sortBy: opts.SortBy, order: opts.sortOrder()}
			op, fetch := "List"+k.typ+"s", func(ctx context.Context) (listPage[T], error) {
				return k.endpointPage(ctx, c, endpointQuery{filter: optPtr(opts.Filter), sortBy: optPtr(q.sortBy), order: q.order,
					start: &q.start, count: &q.count, attributes: attrList(opts.Attributes)})
			}
			switch s {
			case strategySearch:
				op, fetch = "Search"+k.typ+"s", func(ctx context.Context) (listPage[T], error) { return k.searchPage(ctx, c, opts, q) }
			case strategySorted:
				q.sortBy, q.order = "id", "ascending"
			}
			p, _, err := callFor(ctx, c, op, true, fetch)
			return p, err
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
	k, ok := kindOf(err)
	return ok && (k == KindInvalidRequest || k == KindNotFound)
}
