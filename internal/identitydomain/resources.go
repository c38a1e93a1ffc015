package identitydomain

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// resourceKind is what the client's reads and writes of users and groups
// differ in: names in errors and operations, the attribute that names a
// resource, and the SDK calls. users.go and groups.go each define one.
type resourceKind[T any] struct {
	noun     string // "user": in errors
	typ      string // "User": operation names are Get<typ>, List<typ>s, ...
	nameAttr string // "userName": the unique name lookups and creates use

	name, externalID, id func(T) *string

	get    func(ctx context.Context, c *Client, id string, attributes *string) (T, error)
	create func(ctx context.Context, c *Client, v T) (T, *string, error)
	patch  func(ctx context.Context, c *Client, id string, op identitydomains.PatchOp, ifMatch *string) (T, *string, error)
	del    func(ctx context.Context, c *Client, id string, ifMatch *string) error

	// searchPage reads one page of a list through /.search (see
	// listResources).
	searchPage func(ctx context.Context, c *Client, opts ListOptions, q pageQuery) (listPage[T], error)
	// endpointPage sends one request to the list endpoint: a page of a list
	// (listResources) or a lookup by filter (findOne).
	endpointPage func(ctx context.Context, c *Client, q endpointQuery) (listPage[T], error)
}

// endpointQuery is one request to a list endpoint (/Users, /Groups): a nil
// field, or an empty order, is not sent.
type endpointQuery struct {
	filter, sortBy, attributes *string
	order                      string
	start, count               *int
}

// getResource reads the resource of kind k with the given id.
func getResource[T any](ctx context.Context, c *Client, k *resourceKind[T], id string, attributes []string) (T, error) {
	v, err := fetchResource(ctx, c, k, id, attrList(attributes))
	if err != nil {
		var zero T
		return zero, fmt.Errorf("get %s %s in %s: %w", k.noun, id, c.domain, err)
	}
	return v, nil
}

// fetchResource is the call of getResource, its error not wrapped;
// attributes is the attributes parameter as sent, nil for the default set.
func fetchResource[T any](ctx context.Context, c *Client, k *resourceKind[T], id string, attributes *string) (T, error) {
	v, _, err := callFor(ctx, c, "Get"+k.typ, true, func(ctx context.Context) (T, error) { return k.get(ctx, c, id, attributes) })
	return v, err
}

// findResource looks a resource of kind k up by its name attribute or
// externalId (attr); found is false, with no error, when there is none.
func findResource[T any](ctx context.Context, c *Client, k *resourceKind[T], attr, value string, attributes []string) (v T, found bool, err error) {
	v, found, err = findOne(ctx, c, k, attr, value, attributes)
	if err == nil {
		return v, found, nil
	}
	if attr == "externalId" {
		return v, false, fmt.Errorf("find %s with externalId %q in %s: %w", k.noun, value, c.domain, err)
	}
	return v, false, fmt.Errorf("find %s %q in %s: %w", k.noun, value, c.domain, err)
}

// findOne lists the resources of kind k with attr eq value, checks that
// the server applied the filter, and picks the single one found.
func findOne[T any](ctx context.Context, c *Client, k *resourceKind[T], attr, value string, attributes []string) (T, bool, error) {
	filter := Eq(attr, value)
	attributes = withAttribute(attributes, attr)
	op := "List" + k.typ + "s"
	p, ci, err := callFor(ctx, c, op, true, func(ctx context.Context) (listPage[T], error) {
		return k.endpointPage(ctx, c, endpointQuery{filter: &filter, count: intPtr(2), attributes: attrList(attributes)})
	})
	if err != nil {
		var zero T
		return zero, false, err
	}
	items := p.items
	for _, v := range items {
		got := optString(k.name(v))
		if attr == "externalId" {
			got = optString(k.externalID(v))
		}
		if err := c.checkMatch(ctx, ci, op, attr, value, got, optString(k.id(v))); err != nil {
			var zero T
			return zero, false, err
		}
	}
	return one(c, ci, op, filter, items)
}

// createResource creates v, whose schemas are complete. When a retried
// create meets 409 because the first attempt's answer was lost (the
// resource was created), it is read back by name and returned with
// OutcomeExisted. A 409 on the first attempt is a Conflict error.
func createResource[T any](ctx context.Context, c *Client, k *resourceKind[T], v T) (T, Receipt, error) {
	name := optString(k.name(v))
	op := "Create" + k.typ
	fail := func(err error) (T, Receipt, error) {
		var zero T
		return zero, Receipt{}, fmt.Errorf("create %s %q in %s: %w", k.noun, name, c.domain, err)
	}
	if strings.TrimSpace(name) == "" {
		return fail(c.invalid(op, errors.New(k.nameAttr+" is required")))
	}
	var created T
	var etag *string
	ci, err := c.call(ctx, op, false, func(ctx context.Context) error {
		var err error
		created, etag, err = k.create(ctx, c, v)
		return err
	})
	if err == nil {
		return created, receipt(OutcomeCreated, ci, etag), nil
	}
	if !IsKind(err, KindConflict) || !ci.ambiguous {
		return fail(err)
	}
	existing, found, ferr := findResource(ctx, c, k, k.nameAttr, name, nil)
	if ferr != nil || !found {
		return fail(err)
	}
	c.log.InfoContext(ctx, "identity domain create answered 409 after a lost response; the "+k.noun+" exists",
		"domain", c.domain, k.nameAttr, name, "id", optString(k.id(existing)))
	r := receipt(OutcomeExisted, ci, nil)
	r.RequestID = strings.Join(ci.requestIDs, ",")
	return existing, r, nil
}

// patchResource applies ops to the resource of kind k with the given id,
// sending ifMatch when the domain has ETags. It returns the answer and
// its ETag.
func patchResource[T any](ctx context.Context, c *Client, k *resourceKind[T], id, ifMatch string, ops []identitydomains.Operations) (T, *string, *callInfo, error) {
	im := c.ifMatch(ctx, ifMatch)
	var v T
	var etag *string
	ci, err := c.call(ctx, "Patch"+k.typ, true, func(ctx context.Context) error {
		var err error
		v, etag, err = k.patch(ctx, c, id, patchOp(ops), im)
		return err
	})
	return v, etag, ci, err
}

// updated is the answer of a PATCH of a resource of kind k, its error
// naming what was patched.
func updated[T any](c *Client, k *resourceKind[T], id string, v T, etag *string, ci *callInfo, err error) (T, Receipt, error) {
	if err != nil {
		var zero T
		return zero, Receipt{}, fmt.Errorf("patch %s %s in %s: %w", k.noun, id, c.domain, err)
	}
	return v, receipt(OutcomeUpdated, ci, etag), nil
}

// deleteResource deletes the resource of kind k with the given id. One
// that does not exist (404) is not an error: the receipt says
// OutcomeAlreadyGone, or OutcomeDeleted when an earlier attempt's answer
// was lost (so the delete was most likely ours).
func deleteResource[T any](ctx context.Context, c *Client, k *resourceKind[T], id, ifMatch string) (Receipt, error) {
	im := c.ifMatch(ctx, ifMatch)
	ci, err := c.call(ctx, "Delete"+k.typ, true, func(ctx context.Context) error {
		return k.del(ctx, c, id, im)
	})
	switch {
	case err == nil:
		return receipt(OutcomeDeleted, ci, nil), nil
	case IsKind(err, KindNotFound):
		return deleteGone(ci), nil
	}
	return Receipt{}, fmt.Errorf("delete %s %s in %s: %w", k.noun, id, c.domain, err)
}

// deleteGone is the receipt of a delete that met 404.
func deleteGone(ci *callInfo) Receipt {
	if ci.ambiguous {
		return receipt(OutcomeDeleted, ci, nil)
	}
	return receipt(OutcomeAlreadyGone, ci, nil)
}
