package scimserver

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/scimfilter"
)

// render is the SCIM representation of a live resource, projected.
func (h *request) render(k kind, e *entry, proj projection) map[string]any {
	rec := e.rec
	out := rec.attrs()
	schemas := []string{k.coreSchema()}
	for urn := range k.extensions() {
		if _, ok := out[urn]; ok {
			schemas = append(schemas, urn)
		}
	}
	for key := range out {
		if strings.HasPrefix(strings.ToLower(key), "urn:") && !slices.Contains(schemas, key) {
			schemas = append(schemas, key) // an extension the IdP sent that no schema here names
		}
	}
	out["schemas"] = schemas
	out["id"] = rec.ID
	base := h.base()
	out["meta"] = map[string]any{
		"resourceType": k.String(),
		"created":      rec.Created.UTC().Format(time.RFC3339Nano),
		"lastModified": rec.Modified.UTC().Format(time.RFC3339Nano),
		"location":     base + k.endpoint() + "/" + rec.ID,
		"version":      rec.etag(),
	}
	dir := h.src.dir
	switch k {
	case kindUser:
		if proj.wants("groups") {
			var groups []any
			for _, gid := range dir.groupsOf(rec.ID) {
				g, _ := dir.get(kindGroup, gid)
				if g == nil {
					continue
				}
				groups = append(groups, map[string]any{"value": gid, "$ref": base + "/Groups/" + gid, "display": g.rec.Name, "type": "direct"})
			}
			if len(groups) > 0 {
				out["groups"] = groups
			}
		}
	case kindGroup:
		if proj.wants("members") {
			ids := dir.membersOf(rec.ID)
			if proj.memberPage != nil {
				from := min(max(proj.memberPage[0]-1, 0), len(ids))
				ids = ids[from:min(from+proj.memberPage[1], len(ids))]
			}
			var members []any
			for _, uid := range ids {
				m := map[string]any{"value": uid, "$ref": base + "/Users/" + uid, "type": "User"}
				if u, _ := dir.get(kindUser, uid); u != nil {
					m["display"] = displayOf(u.rec)
				}
				members = append(members, m)
			}
			if len(members) > 0 || proj.memberPage != nil {
				out["members"] = members
			}
		}
	}
	return proj.apply(k, out)
}

// displayOf is how a member is displayed: its displayName, else userName.
func displayOf(r *record) string {
	if d := stringAttr(r.attrs(), "displayName"); d != "" {
		return d
	}
	return r.Name
}

// projection is what attributes and excludedAttributes ask for
// (RFC 7644 §3.4.2.5), plus Oracle's member paging,
// attributes=members[startIndex=S&count=N].
type projection struct {
	include, exclude []scimfilter.AttrPath
	memberPage       *[2]int
}

var memberPageRE = regexp.MustCompile(`(?i)^members\[startIndex=(\d+)&count=(\d+)\]$`)

// parseProjection reads the two parameters; each is a comma-separated list.
func parseProjection(k kind, attributes, excluded string) (projection, *Error) {
	var p projection
	parse := func(param, list string) ([]scimfilter.AttrPath, *Error) {
		var out []scimfilter.AttrPath
		for _, a := range strings.Split(list, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if m := memberPageRE.FindStringSubmatch(a); m != nil && param == "attributes" && k == kindGroup {
				start, _ := strconv.Atoi(m[1])
				count, _ := strconv.Atoi(m[2])
				p.memberPage = &[2]int{start, count}
				out = append(out, scimfilter.NewAttrPath("", "members", ""))
				continue
			}
			if urn, ok := extensionURN(k.extensions(), a); ok {
				out = append(out, scimfilter.NewAttrPath(urn, "", ""))
				continue
			}
			ap, err := scimfilter.ParseAttrPath(a)
			if err != nil {
				return nil, invalidValue("%s: %q is not an attribute path: %v", param, a, err)
			}
			if strings.EqualFold(ap.URN, k.coreSchema()) {
				ap = scimfilter.NewAttrPath("", ap.Name, ap.Sub)
			}
			out = append(out, ap)
		}
		return out, nil
	}
	var err *Error
	if p.include, err = parse("attributes", attributes); err != nil {
		return p, err
	}
	if p.exclude, err = parse("excludedAttributes", excluded); err != nil {
		return p, err
	}
	return p, nil
}

// wants reports whether the top-level attribute name is returned.
func (p projection) wants(name string) bool {
	for _, a := range p.exclude {
		if a.URN == "" && a.Sub == "" && strings.EqualFold(a.Name, name) {
			return false
		}
	}
	if p.include == nil {
		return true
	}
	for _, a := range p.include {
		if a.URN == "" && strings.EqualFold(a.Name, name) {
			return true
		}
	}
	return false
}

// alwaysReturned are kept whatever the projection says.
var alwaysReturned = []string{"id", "schemas", "meta"}

// apply projects a rendered resource.
func (p projection) apply(k kind, out map[string]any) map[string]any {
	if p.include != nil {
		kept := map[string]any{}
		for _, key := range alwaysReturned {
			kept[key] = out[key]
		}
		for _, a := range p.include {
			copyPath(out, kept, a)
		}
		out = kept
	}
	for _, a := range p.exclude {
		if slices.ContainsFunc(alwaysReturned, func(s string) bool { return a.URN == "" && strings.EqualFold(s, a.Name) }) {
			continue
		}
		removePath(out, a)
	}
	return out
}

// splitExt returns the object a path's URN selects in obj (obj itself
// without one) and its key in obj.
func pathHome(obj map[string]any, a scimfilter.AttrPath) (map[string]any, string, bool) {
	if a.URN == "" {
		return obj, "", true
	}
	key, ok := findKey(obj, a.URN)
	if !ok {
		return nil, "", false
	}
	ext, ok := obj[key].(map[string]any)
	return ext, key, ok
}

func copyPath(from, to map[string]any, a scimfilter.AttrPath) {
	src, extKey, ok := pathHome(from, a)
	if !ok {
		return
	}
	dst := to
	if a.URN != "" {
		if a.Name == "" { // the whole extension
			to[extKey] = src
			return
		}
		d, _ := to[extKey].(map[string]any)
		if d == nil {
			d = map[string]any{}
			to[extKey] = d
		}
		dst = d
	}
	key, ok := findKey(src, a.Name)
	if !ok {
		return
	}
	if a.Sub == "" {
		dst[key] = src[key]
		return
	}
	switch v := src[key].(type) {
	case map[string]any:
		if sk, ok := findKey(v, a.Sub); ok {
			d, _ := dst[key].(map[string]any)
			if d == nil {
				d = map[string]any{}
				dst[key] = d
			}
			d[sk] = v[sk]
		}
	case []any:
		var list []any
		for _, x := range v {
			if m, ok := x.(map[string]any); ok {
				if sk, ok := findKey(m, a.Sub); ok {
					list = append(list, map[string]any{sk: m[sk]})
				}
			}
		}
		if list != nil {
			dst[key] = list
		}
	}
}

func removePath(obj map[string]any, a scimfilter.AttrPath) {
	home, extKey, ok := pathHome(obj, a)
	if !ok {
		return
	}
	if a.URN != "" && a.Name == "" {
		delete(obj, extKey)
		return
	}
	key, ok := findKey(home, a.Name)
	if !ok {
		return
	}
	if a.Sub == "" {
		delete(home, key)
		return
	}
	switch v := home[key].(type) {
	case map[string]any:
		if sk, ok := findKey(v, a.Sub); ok {
			delete(v, sk)
		}
	case []any:
		for _, x := range v {
			if m, ok := x.(map[string]any); ok {
				if sk, ok := findKey(m, a.Sub); ok {
					delete(m, sk)
				}
			}
		}
	}
}

// filterObject is a resource as a filter reads it.
type filterObject struct {
	k     kind
	rec   *record
	attrs scimfilter.Map
	dir   *directory
}

// Attr implements scimfilter.Object.
func (o filterObject) Attr(name string) any {
	switch name {
	case "id":
		return scimfilter.CaseExact(o.rec.ID)
	case "externalid":
		if o.rec.External == "" {
			return nil
		}
		return scimfilter.CaseExact(o.rec.External)
	case "meta":
		return scimfilter.Map{"created": o.rec.Created, "lastmodified": o.rec.Modified,
			"resourcetype": o.k.String(), "version": o.rec.etag()}
	case strings.ToLower(o.k.coreSchema()):
		return o
	case "groups":
		if o.k != kindUser {
			break
		}
		return valueRefs(o.dir.groupsOf(o.rec.ID))
	case "members":
		if o.k != kindGroup {
			break
		}
		return valueRefs(o.dir.membersOf(o.rec.ID))
	}
	return o.attrs.Attr(name)
}

// valueRefs is a multi-valued reference attribute (a user's groups, a
// group's members) as a filter sees it: one {"value": id} per id, nil for
// none.
func valueRefs(ids []string) []any {
	var out []any
	for _, id := range ids {
		out = append(out, scimfilter.Map{"value": scimfilter.CaseExact(id)})
	}
	return out
}

// candidates narrows a filter to the resources it can match, through the
// indexes: eq on userName/displayName, externalId, id, a user's
// groups.value and a group's members.value, and or/and of those. ok is
// false when the filter needs a scan.
func (d *directory) candidates(k kind, e scimfilter.Expr) (ids []string, ok bool) {
	switch e := e.(type) {
	case *scimfilter.Compare:
		return d.compareCandidates(k, e)
	case *scimfilter.Or:
		l, lok := d.candidates(k, e.Left)
		r, rok := d.candidates(k, e.Right)
		if lok && rok {
			return append(l, r...), true
		}
	case *scimfilter.And:
		if l, ok := d.candidates(k, e.Left); ok {
			return l, true
		}
		return d.candidates(k, e.Right)
	}
	return nil, false
}

// compareCandidates answers candidates for one comparison: only eq on an
// indexed attribute of k's core schema narrows.
func (d *directory) compareCandidates(k kind, e *scimfilter.Compare) (ids []string, ok bool) {
	s, isStr := e.Value.(string)
	if e.Op != scimfilter.Eq || !isStr || (e.Path.URN != "" && !strings.EqualFold(e.Path.URN, k.coreSchema())) {
		return nil, false
	}
	_, name, sub := e.Path.Lower()
	return d.indexed(k, name, sub, s)
}

// indexed looks value up in the index of attribute name (sub-attribute sub,
// both lower case) of k; ok is false when no index covers the attribute.
func (d *directory) indexed(k kind, name, sub, value string) (ids []string, ok bool) {
	one := func(x *entry) ([]string, bool) {
		if x == nil || x.rec.Deleted {
			return nil, true
		}
		return []string{x.rec.ID}, true
	}
	switch {
	case sub == "" && name == strings.ToLower(nameAttr(k)):
		return one(d.byNameOf(k, value))
	case sub == "" && name == "externalid":
		return one(d.byExtOf(k, value))
	case sub == "" && name == "id":
		x, _ := d.get(k, value)
		return one(x)
	case k == kindUser && name == "groups" && (sub == "value" || sub == ""):
		return d.membersOf(value), true
	case k == kindGroup && name == "members" && (sub == "value" || sub == ""):
		return d.groupsOf(value), true
	}
	return nil, false
}

// listParams are the parameters of a list or search.
type listParams struct {
	filter               string
	startIndex, count    int
	attributes, excluded string
	hasCount             bool
}

func (h *request) queryParams() listParams {
	q := h.r.URL.Query()
	return listParams{filter: q.Get("filter"), attributes: q.Get("attributes"), excluded: q.Get("excludedAttributes"),
		startIndex: -1, count: -1, hasCount: q.Has("count")}
}

// list answers GET /Users or /Groups: filtered, paged, projected.
func (h *request) list(k kind, p listParams) error {
	q := h.r.URL.Query()
	if p.startIndex == -1 {
		var err *Error
		if p.startIndex, err = intParam(q.Get("startIndex"), "startIndex", 1); err != nil {
			return err
		}
		if p.count, err = intParam(q.Get("count"), "count", 100); err != nil {
			return err
		}
	}
	p.startIndex = max(p.startIndex, 1)
	p.count = min(max(p.count, 0), h.s.maxResults)
	proj, perr := parseProjection(k, p.attributes, p.excluded)
	if perr != nil {
		return perr
	}
	d := h.src.dir
	var ids []string
	if strings.TrimSpace(p.filter) == "" {
		ids = d.ids(k)
	} else {
		f, err := scimfilter.Parse(p.filter)
		if err != nil {
			return errorf(http.StatusBadRequest, TypeInvalidFilter, "filter %q: %v", p.filter, err)
		}
		cands, indexed := d.candidates(k, f.Expr())
		if !indexed {
			cands = d.ids(k)
		} else {
			slices.Sort(cands)
			cands = slices.Compact(cands)
		}
		for _, id := range cands {
			e, _ := d.get(k, id)
			if e == nil {
				continue
			}
			ok, err := f.Match(filterObject{k: k, rec: e.rec, attrs: scimfilter.Map(e.rec.attrs()), dir: d})
			if err != nil {
				return errorf(http.StatusBadRequest, TypeInvalidFilter, "filter %q: %v", p.filter, err)
			}
			if ok {
				ids = append(ids, id)
			}
		}
	}
	total := len(ids)
	from := min(p.startIndex-1, total)
	page := ids[from:min(from+p.count, total)]
	resources := make([]any, 0, len(page))
	for _, id := range page {
		if e, _ := d.get(k, id); e != nil {
			resources = append(resources, h.render(k, e, proj))
		}
	}
	return h.json(http.StatusOK, map[string]any{
		"schemas":      []string{SchemaListResponse},
		"totalResults": total,
		"startIndex":   p.startIndex,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	})
}

// searchRequest is the body of POST /.search (RFC 7644 §3.4.3).
type searchRequest struct {
	Schemas            []string `json:"schemas"`
	Attributes         []string `json:"attributes"`
	ExcludedAttributes []string `json:"excludedAttributes"`
	Filter             string   `json:"filter"`
	StartIndex         *int     `json:"startIndex"`
	Count              *int     `json:"count"`
}

func (h *request) search(k kind) error {
	var sr searchRequest
	if err := h.body(&sr); err != nil {
		return err
	}
	p := listParams{filter: sr.Filter, attributes: strings.Join(sr.Attributes, ","), excluded: strings.Join(sr.ExcludedAttributes, ","),
		startIndex: 1, count: 100}
	if sr.StartIndex != nil {
		p.startIndex = *sr.StartIndex
	}
	if sr.Count != nil {
		p.count = *sr.Count
	}
	return h.list(k, p)
}

func intParam(s, name string, def int) (int, *Error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, invalidValue("%s: %q is not an integer", name, s)
	}
	return n, nil
}

// get answers GET /Users/{id} or /Groups/{id}.
func (h *request) get(k kind, id string) error {
	e, _ := h.src.dir.get(k, id)
	if e == nil {
		return notFound("%s %s not found", k, id)
	}
	proj, err := h.projection(k)
	if err != nil {
		return err
	}
	h.w.Header().Set("ETag", e.rec.etag())
	if inm := h.r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, e.rec.etag()) {
		h.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return h.json(http.StatusOK, h.render(k, e, proj))
}

// projection is what the query's attributes and excludedAttributes select
// of a resource of kind k.
func (h *request) projection(k kind) (projection, *Error) {
	q := h.r.URL.Query()
	return parseProjection(k, q.Get("attributes"), q.Get("excludedAttributes"))
}

// etagMatches reports whether header (an If-Match or If-None-Match list)
// names etag, weakly compared, or is "*".
func etagMatches(header, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}
