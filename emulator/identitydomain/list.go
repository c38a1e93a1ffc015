package identitydomain

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/iamflow/iamflow/internal/scimfilter"
)

// Listing (GET /admin/v1/Users, POST /admin/v1/Users/.search, same for Groups):
//   - filter: SCIM filter (package scimfilter); a bad one is 400 invalidFilter;
//   - sortBy/sortOrder: any attribute; ascending (default) or descending
//     (case-insensitive); strings sort case-insensitively, resources without
//     a value sort last either way; without sortBy, resources come in
//     creation order (IDCS's default order is not documented);
//   - startIndex: 1-based, below 1 means 1 (docs/oci-sources.md §4);
//   - count: default 50 (the documented value for a negative count; the
//     default is not documented), negative means 50, above 1000 means 1000
//     (the SDK's documented maximum), 0 returns only totalResults;
//   - itemsPerPage is the page size used (the effective count), as in the
//     IDCS sample where itemsPerPage 10 came with one result; Resources is
//     always present, possibly empty;
//   - the SDK's page/limit (opc-next-page) parameters are ignored.
//
// Lookups by id, ocid, userName or displayName equality, and by group
// membership (groups.value / members.value equality), use indexes; any other
// filter scans, so lists stay fast at 50,000 users.

const (
	defaultCount = 50
	maxCount     = 1000
)

type listParams struct {
	filter     *scimfilter.Filter
	sortBy     *scimfilter.AttrPath
	descending bool
	startIndex int
	count      int
	proj       *projection
}

func parseCount(s string) (int, error) {
	if s == "" {
		return defaultCount, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errInvalidValue("Invalid count %q: want an integer.", s)
	}
	return clampCount(n), nil
}

func clampCount(n int) int {
	switch {
	case n < 0:
		return defaultCount
	case n > maxCount:
		return maxCount
	}
	return n
}

func parseStartIndex(s string) (int, error) {
	if s == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errInvalidValue("Invalid startIndex %q: want an integer.", s)
	}
	return max(n, 1), nil
}

func (lp *listParams) setFilter(s string) error {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	f, err := scimfilter.Parse(s)
	if err != nil {
		return errInvalidFilter(err)
	}
	lp.filter = f
	return nil
}

func (lp *listParams) setSort(by, order string) error {
	if by = strings.TrimSpace(by); by != "" {
		p, err := scimfilter.ParseAttrPath(by)
		if err != nil {
			return errInvalidValue("Invalid sortBy %q: %v", by, err)
		}
		lp.sortBy = &p
	}
	switch strings.ToLower(strings.TrimSpace(order)) {
	case "", "ascending":
	case "descending":
		lp.descending = true
	default:
		return errInvalidValue("Invalid sortOrder %q: want ascending or descending.", order)
	}
	return nil
}

// queryProjection reads the attribute selection from the URL query.
func queryProjection(rt *resourceType, r *request) (*projection, error) {
	q := r.URL.Query()
	return parseProjection(rt, q["attributes"], q["attributeSets"], q["excludedAttributes"])
}

func parseListQuery(rt *resourceType, r *request) (listParams, error) {
	q := r.URL.Query()
	var lp listParams
	var err error
	if err = lp.setFilter(q.Get("filter")); err != nil {
		return lp, err
	}
	if err = lp.setSort(q.Get("sortBy"), q.Get("sortOrder")); err != nil {
		return lp, err
	}
	if lp.startIndex, err = parseStartIndex(q.Get("startIndex")); err != nil {
		return lp, err
	}
	if lp.count, err = parseCount(q.Get("count")); err != nil {
		return lp, err
	}
	lp.proj, err = queryProjection(rt, r)
	return lp, err
}

// searchRequest is the body of POST /.search (the SDK's UserSearchRequest).
type searchRequest struct {
	Schemas            []string `json:"schemas"`
	Attributes         []string `json:"attributes"`
	AttributeSets      []string `json:"attributeSets"`
	ExcludedAttributes []string `json:"excludedAttributes"`
	Filter             string   `json:"filter"`
	SortBy             string   `json:"sortBy"`
	SortOrder          string   `json:"sortOrder"`
	StartIndex         *int     `json:"startIndex"`
	Count              *int     `json:"count"`
}

func parseSearchBody(rt *resourceType, r *request) (listParams, error) {
	var sr searchRequest
	var lp listParams
	if err := decodeBody(r, &sr); err != nil {
		return lp, err
	}
	if !slices.ContainsFunc(sr.Schemas, func(s string) bool { return strings.EqualFold(s, SchemaSearch) }) {
		return lp, errInvalidValue("schemas must include %s.", SchemaSearch)
	}
	if err := lp.setFilter(sr.Filter); err != nil {
		return lp, err
	}
	if err := lp.setSort(sr.SortBy, sr.SortOrder); err != nil {
		return lp, err
	}
	lp.startIndex, lp.count = 1, defaultCount
	if sr.StartIndex != nil {
		lp.startIndex = max(*sr.StartIndex, 1)
	}
	if sr.Count != nil {
		lp.count = clampCount(*sr.Count)
	}
	var err error
	lp.proj, err = parseProjection(rt, sr.Attributes, sr.AttributeSets, sr.ExcludedAttributes)
	return lp, err
}

// kindOps adapts users and groups to the generic listing, reading and
// deleting code.
type kindOps[T keyed] struct {
	rt         *resourceType // its name is the kind in a 404
	tab        *table[T]     // the store's users or groups
	candidates func(scimfilter.Expr) ([]T, bool)
	view       func(T) scimfilter.Object
	render     func(T, string, *projection) (map[string]any, error)
	snap       func(T) resSnap // the record as an event names it
	deleted    string          // the event type of a DELETE
	remove     func(T)         // takes the record out of the store
}

// listHandler answers a list (parse: parseListQuery) or a search (parse:
// parseSearchBody) of the resources of type rt that kind reads.
func listHandler[T keyed](d *Domain, rt *resourceType, kind func() kindOps[T], parse func(*resourceType, *request) (listParams, error)) handlerFunc {
	return func(w http.ResponseWriter, r *request) error {
		lp, err := parse(rt, r)
		if err != nil {
			return err
		}
		return listResources(d, w, r, kind(), lp)
	}
}

// getHandler answers a GET of one resource by id, rendered with the
// request's attributes or excludedAttributes.
func getHandler[T keyed](d *Domain, kind func() kindOps[T]) handlerFunc {
	return func(w http.ResponseWriter, r *request) error {
		k := kind()
		proj, err := queryProjection(k.rt, r)
		if err != nil {
			return err
		}
		d.store.mu.RLock()
		rec := k.tab.byID[r.id]
		var none T
		if rec == none {
			d.store.mu.RUnlock()
			return errNotFound(k.rt.name, r.id)
		}
		doc, err := k.render(rec, r.base, proj)
		version := rec.meta().version
		d.store.mu.RUnlock()
		if err != nil {
			return err
		}
		writeResource(w, http.StatusOK, proj.apply(k.rt, doc), version)
		return nil
	}
}

func listResources[T keyed](d *Domain, w http.ResponseWriter, r *request, k kindOps[T], lp listParams) error {
	d.store.mu.RLock()
	docs, total, err := func() ([]map[string]any, int, error) {
		defer d.store.mu.RUnlock()
		var items []T
		if lp.filter != nil {
			cands, ok := k.candidates(lp.filter.Expr())
			if !ok {
				cands = k.tab.order
			}
			items = make([]T, 0, len(cands))
			for _, c := range cands {
				m, err := lp.filter.Match(k.view(c))
				if err != nil {
					return nil, 0, errInvalidFilter(err)
				}
				if m {
					items = append(items, c)
				}
			}
		} else {
			items = k.tab.order
		}
		if lp.sortBy != nil {
			items = sortItems(items, k.view, *lp.sortBy, lp.descending)
		}
		total := len(items)
		lo := min(lp.startIndex-1, total)
		hi := min(lo+lp.count, total)
		page := items[lo:hi]
		docs := make([]map[string]any, len(page))
		for i, it := range page {
			doc, err := k.render(it, r.base, lp.proj)
			if err != nil {
				return nil, 0, err
			}
			docs[i] = doc
		}
		return docs, total, nil
	}()
	if err != nil {
		return err
	}
	resources := make([]any, len(docs))
	for i, doc := range docs {
		resources[i] = lp.proj.apply(k.rt, doc)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []string{SchemaListResponse},
		"totalResults": total,
		"Resources":    resources,
		"startIndex":   lp.startIndex,
		"itemsPerPage": lp.count,
	})
	return nil
}

func sortItems[T any](items []T, view func(T) scimfilter.Object, by scimfilter.AttrPath, desc bool) []T {
	type keyed struct {
		item T
		key  any
	}
	ks := make([]keyed, len(items))
	for i, it := range items {
		var key any
		if vs := scimfilter.Values(by, view(it)); len(vs) > 0 {
			key = vs[0]
		}
		ks[i] = keyed{it, key}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		switch {
		case a.key == nil && b.key == nil:
			return 0
		case a.key == nil:
			return 1
		case b.key == nil:
			return -1
		}
		c := scimfilter.CompareValues(a.key, b.key)
		if desc {
			return -c
		}
		return c
	})
	out := make([]T, len(ks))
	for i, k := range ks {
		out[i] = k.item
	}
	return out
}

// eqValue returns the string compared for equality by e, if e is
// `<path> eq "<string>"` with the given path (lower case, "" sub for none).
func eqValue(e scimfilter.Expr, name, sub string) (string, bool) {
	c, ok := e.(*scimfilter.Compare)
	if !ok || c.Op != scimfilter.Eq {
		return "", false
	}
	urn, n, s := c.Path.Lower()
	if n != name || s != sub || (urn != "" && urn != lowerUserURN && urn != lowerGroupURN) {
		return "", false
	}
	v, ok := c.Value.(string)
	return v, ok
}

// refValue recognises `<attr>.value eq "x"` and `<attr>[value eq "x"]`.
func refValue(e scimfilter.Expr, attr string) (string, bool) {
	if v, ok := eqValue(e, attr, "value"); ok {
		return v, true
	}
	vp, ok := e.(*scimfilter.ValuePath)
	if !ok {
		return "", false
	}
	if urn, n, s := vp.Path.Lower(); n != attr || s != "" || urn != "" {
		return "", false
	}
	return eqValue(vp.Filter, "value", "")
}

// narrow applies index lookups through conjunctions.
func narrow[T any](e scimfilter.Expr, leaf func(scimfilter.Expr) ([]T, bool)) ([]T, bool) {
	if a, ok := e.(*scimfilter.And); ok {
		if c, ok := narrow(a.Left, leaf); ok {
			return c, true
		}
		return narrow(a.Right, leaf)
	}
	return leaf(e)
}

// indexed narrows a filter through one resource type's table: equality of
// id or of the unique name attribute nameAttr, or a reference refAttr to a
// resource of the other type, whose related resources come back in creation
// order (related returns nil when that resource does not exist). It reports
// false when the filter needs a scan.
func indexed[T keyed](e scimfilter.Expr, t *table[T], nameAttr, refAttr string, related func(id string) []T) ([]T, bool) {
	return narrow(e, func(e scimfilter.Expr) ([]T, bool) {
		if v, ok := eqValue(e, "id", ""); ok {
			if x, found := t.byID[v]; found {
				return []T{x}, true
			}
			return nil, false // ids compare case-insensitively: scan
		}
		if v, ok := eqValue(e, nameAttr, ""); ok {
			if x, found := t.byName[strings.ToLower(v)]; found {
				return []T{x}, true
			}
			return nil, true
		}
		if v, ok := refValue(e, refAttr); ok {
			out := related(v)
			slices.SortFunc(out, func(a, b T) int { return cmp.Compare(a.getSeq(), b.getSeq()) })
			return out, true
		}
		return nil, false
	})
}

func (d *Domain) userCandidates(e scimfilter.Expr) ([]*userRec, bool) {
	return indexed(e, &d.store.users, "username", "groups", func(id string) []*userRec {
		g := d.store.groups.byID[id]
		if g == nil {
			return nil
		}
		out := make([]*userRec, len(g.members))
		for i, m := range g.members {
			out[i] = m.user
		}
		return out
	})
}

func (d *Domain) groupCandidates(e scimfilter.Expr) ([]*groupRec, bool) {
	return indexed(e, &d.store.groups, "displayname", "members", func(id string) []*groupRec {
		u := d.store.users.byID[id]
		if u == nil {
			return nil
		}
		return slices.Collect(maps.Keys(u.groups))
	})
}

func (d *Domain) userKind() kindOps[*userRec] {
	return kindOps[*userRec]{
		rt:         userType,
		tab:        &d.store.users,
		candidates: d.userCandidates,
		view:       func(u *userRec) scimfilter.Object { return userView{d, u} },
		render: func(u *userRec, base string, p *projection) (map[string]any, error) {
			return d.renderUser(u, base, p), nil
		},
		snap:    userSnap,
		deleted: EventDeleteUser,
		remove:  d.store.deleteUser,
	}
}

func (d *Domain) groupKind() kindOps[*groupRec] {
	return kindOps[*groupRec]{
		rt:         groupType,
		tab:        &d.store.groups,
		candidates: d.groupCandidates,
		view:       func(g *groupRec) scimfilter.Object { return groupView{d, g} },
		render:     d.renderGroup,
		snap:       groupSnap,
		deleted:    EventDeleteGroup,
		remove:     d.store.deleteGroup,
	}
}
