package identitydomain

import (
	"net/url"
	"strconv"
	"strings"
)

// Attribute selection (RFC 7644 §3.9 and the SDK's parameter docs):
//   - with neither attributes nor attributeSets, returned=always and
//     returned=default attributes come back;
//   - attributes=a,b,c returns the listed attributes plus returned=always
//     ones; names are case-insensitive and may be sub-attributes
//     (name.givenName), extension attributes (urn:...:User:isFederatedUser)
//     or whole extensions (urn:...:capabilities:User);
//   - attributeSets (all|always|default|request|never, case-insensitive,
//     repeated or comma-separated) selects by the returned characteristic,
//     and is united with attributes; "never" attributes are never returned;
//   - excludedAttributes (RFC 7644) removes attributes that are not
//     returned=always;
//   - schemas is always returned (RFC 7643 §3; the SDK marks it default).
//
// Group members come back only when asked for (returned=request). At most
// maxMembers members come back in one response; a group with more fails the
// request with 400 tooMany (docs/oci-sources.md §4 says the request fails; the status is
// not documented, and tooMany is RFC 7644's error for "more than the server
// is willing to process"). attributes=members[startIndex=S&count=N] (with the
// & sent as %26, as Oracle documents) returns members S..S+N-1 only; S below
// 1 means 1, and N is at most maxMembers (absent: the rest, up to maxMembers).

const maxMembers = 10000

const (
	setDefault uint8 = 1 << iota
	setRequest
)

// sel is a tree of explicitly requested attribute names (lower case).
type sel struct {
	kids map[string]*sel
}

func (s *sel) child(name string) *sel {
	if s == nil {
		return nil
	}
	return s.kids[name]
}

func (s *sel) add(path []string) {
	n := s
	for _, p := range path {
		if n.kids == nil {
			n.kids = map[string]*sel{}
		}
		c := n.kids[p]
		if c == nil {
			c = &sel{}
			n.kids[p] = c
		}
		n = c
	}
}

type memberPage struct {
	start, count int // count < 0: to the end
}

type projection struct {
	sets       uint8
	sel        *sel // nil when no attributes were listed
	excluded   *sel
	memberPage *memberPage
}

var defaultProjection = &projection{sets: setDefault}

// wants reports whether a top-level returned=request attribute is to be
// rendered: listed, or in a requested set.
func (p *projection) wants(lname string) bool {
	return p.sets&setRequest != 0 || p.sel.child(lname) != nil
}

// parseProjection reads attributes, attributeSets and excludedAttributes.
func parseProjection(rt *resourceType, attributes, sets, excluded []string) (*projection, error) {
	p := &projection{}
	var names, setNames []string
	for _, a := range attributes {
		names = append(names, splitAttributes(a)...)
	}
	for _, s := range sets {
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				setNames = append(setNames, x)
			}
		}
	}
	if len(setNames) == 0 && len(names) == 0 {
		p.sets = setDefault
	}
	for _, s := range setNames {
		switch strings.ToLower(s) {
		case "all":
			p.sets |= setDefault | setRequest
		case "default":
			p.sets |= setDefault
		case "request":
			p.sets |= setRequest
		case "always", "never":
		default:
			return nil, errInvalidValue("Invalid attributeSets value %q: want all, always, default, request or never.", s)
		}
	}
	if len(names) > 0 {
		p.sel = &sel{}
	}
	for _, n := range names {
		if rt == groupType && strings.HasPrefix(strings.ToLower(n), "members[") {
			mp, err := parseMemberPage(n)
			if err != nil {
				return nil, err
			}
			p.memberPage = mp
			p.sel.add([]string{"members"})
			continue
		}
		path, err := resolveAttrPath(rt, n)
		if err != nil {
			return nil, err
		}
		p.sel.add(path)
	}
	for _, x := range excluded {
		for _, n := range splitAttributes(x) {
			path, err := resolveAttrPath(rt, n)
			if err != nil {
				return nil, err
			}
			if p.excluded == nil {
				p.excluded = &sel{}
			}
			p.excluded.add(path)
		}
	}
	return p, nil
}

// splitAttributes splits a comma-separated attribute list, keeping commas
// inside brackets.
func splitAttributes(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch s[i] {
			case '[':
				depth++
				continue
			case ']':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		if a := strings.TrimSpace(s[start:i]); a != "" {
			out = append(out, a)
		}
		start = i + 1
	}
	return out
}

func parseMemberPage(s string) (*memberPage, error) {
	inner, ok := strings.CutSuffix(s[len("members["):], "]")
	if !ok {
		return nil, errInvalidValue("Invalid attributes value %q: want members[startIndex=1%%26count=10].", s)
	}
	q, err := url.ParseQuery(inner)
	if err != nil {
		return nil, errInvalidValue("Invalid attributes value %q: %v.", s, err)
	}
	mp := &memberPage{start: 1, count: -1}
	for k, v := range q {
		n, err := strconv.Atoi(v[len(v)-1])
		if err != nil {
			return nil, errInvalidValue("Invalid attributes value %q: %s is not an integer.", s, k)
		}
		switch strings.ToLower(k) {
		case "startindex":
			mp.start = max(n, 1)
		case "count":
			if n < 0 {
				n = maxMembers
			}
			mp.count = min(n, maxMembers)
		default:
			return nil, errInvalidValue("Invalid attributes value %q: unknown member paging parameter %q.", s, k)
		}
	}
	return mp, nil
}

// resolveAttrPath turns attribute notation into lower-cased path segments;
// an extension attribute's first segment is its schema URN.
func resolveAttrPath(rt *resourceType, s string) ([]string, error) {
	ls := strings.ToLower(strings.TrimSpace(s))
	var parts []string
	switch {
	case rt.ext(ls) != nil:
		return []string{ls}, nil
	case strings.HasPrefix(ls, strings.ToLower(rt.core.urn)+":"):
		parts = strings.Split(ls[len(rt.core.urn)+1:], ".")
	case strings.HasPrefix(ls, "urn:"):
		for _, e := range rt.extOrder {
			if lu := strings.ToLower(e.urn); strings.HasPrefix(ls, lu+":") {
				parts = append([]string{lu}, strings.Split(ls[len(lu)+1:], ".")...)
				break
			}
		}
		if parts == nil {
			i := strings.LastIndexByte(ls, ':')
			parts = append([]string{ls[:i]}, strings.Split(ls[i+1:], ".")...)
		}
	default:
		parts = strings.Split(ls, ".")
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "[] ") {
			return nil, errInvalidValue("Invalid attribute name %q.", s)
		}
	}
	return parts, nil
}

// selection modes for a child attribute.
const (
	modeSets   = iota // judged by the requested sets
	modeWhole         // its parent was requested as a whole
	modeNarrow        // its parent was requested with a list of children
)

func (p *projection) includes(ret returned, explicit bool, mode int) bool {
	switch {
	case ret == retNever:
		return false
	case explicit || ret == retAlways:
		return true
	case mode == modeNarrow:
		return false
	case mode == modeWhole:
		return ret != retRequest || p.sets&setRequest != 0
	case ret == retDefault:
		return p.sets&setDefault != 0
	case ret == retRequest:
		return p.sets&setRequest != 0
	}
	return false
}

// apply trims a fully rendered resource to the requested attributes and
// sets its schemas.
func (p *projection) apply(rt *resourceType, doc map[string]any) map[string]any {
	out := make(map[string]any, len(doc))
	var exts []string
	for k, v := range doc {
		lk := lowerName(k)
		if lk == "schemas" {
			continue
		}
		s := p.sel.child(lk)
		ext := rt.ext(lk)
		if ext != nil || strings.HasPrefix(lk, "urn:") {
			if sub, ok := p.extension(ext, lk, v, s); ok {
				out[k] = sub
				exts = append(exts, k)
			}
			continue
		}
		if val, ok := p.attr(rt.core.attrs[lk], v, s, modeSets, p.excluded.child(lk)); ok {
			out[k] = val
		}
	}
	if p.sets&setDefault == 0 && p.sel.child("schemas") == nil {
		// Oracle's search example: resources projected to the attributes
		// asked for carry no schemas.
		return out
	}
	out["schemas"] = schemasOf(rt, out, exts)
	return out
}

// extension trims the value v of the schema extension lk (ext: its schema,
// nil when unknown) selected by s, and reports whether anything of it is
// returned.
func (p *projection) extension(ext *schema, lk string, v any, s *sel) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	if s == nil && ext != nil && ext.plain && len(m) > 0 && p.sets&setDefault != 0 && p.excluded.child(lk) == nil {
		return m, true // nothing to trim: share the (immutable) stored value
	}
	var defs map[string]*attrDef
	if ext != nil {
		defs = ext.attrs
	}
	mode := modeSets
	if s != nil {
		mode = modeWhole
		if len(s.kids) > 0 {
			mode = modeNarrow
		}
	}
	sub := p.object(defs, m, s, mode, p.excluded.child(lk))
	return sub, len(sub) > 0
}

// schemasOf lists the schemas of a projected resource: the core schema,
// the known extensions it holds in their order, then the unknown ones
// (exts: the extension keys it holds).
func schemasOf(rt *resourceType, out map[string]any, exts []string) []any {
	schemas := []any{rt.core.urn}
	for _, e := range rt.extOrder {
		if _, ok := out[e.urn]; ok {
			schemas = append(schemas, e.urn)
		}
	}
	for _, k := range exts {
		if rt.ext(strings.ToLower(k)) == nil {
			schemas = append(schemas, k)
		}
	}
	return schemas
}

// object trims the attributes of a complex value or extension.
func (p *projection) object(defs map[string]*attrDef, m map[string]any, s *sel, mode int, ex *sel) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		lk := lowerName(k)
		if val, ok := p.attr(defs[lk], v, s.child(lk), mode, ex.child(lk)); ok {
			out[k] = val
		}
	}
	return out
}

// attr decides whether one attribute (def nil: unknown, treated as
// returned=default) is returned and trims its sub-attributes.
func (p *projection) attr(def *attrDef, v any, s *sel, mode int, ex *sel) (any, bool) {
	ret := retDefault
	if def != nil {
		ret = def.ret
	}
	if !p.includes(ret, s != nil, mode) {
		return nil, false
	}
	if ex != nil && len(ex.kids) == 0 && ret != retAlways {
		return nil, false
	}
	if def == nil || def.typ != typeComplex {
		return v, true
	}
	if def.plain && ex == nil && (s == nil || len(s.kids) == 0) {
		return v, true // nothing to trim: share the (immutable) stored value
	}
	child := modeWhole
	if s != nil && len(s.kids) > 0 {
		child = modeNarrow
	}
	trim := func(x any) any {
		m, ok := x.(map[string]any)
		if !ok {
			return x
		}
		return p.object(def.subs, m, s, child, ex)
	}
	if list, ok := v.([]any); ok {
		out := make([]any, len(list))
		for i, x := range list {
			out[i] = trim(x)
		}
		return out, true
	}
	return trim(v), true
}
