package scimserver

import (
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/iamflow/iamflow/internal/scimfilter"
)

// PATCH (RFC 7644 §3.5.2). Operations apply in order to a copy of the
// resource and take effect together or not at all. What IdPs send beyond the
// RFC's examples is accepted (docs/scim-push.md):
//   - op in any case ("Add", "Replace", "Remove": Entra ID);
//   - add or replace without a path, the value an object of attributes,
//     whose keys may themselves be paths ("name.givenName",
//     "urn:...:enterprise:2.0:User:department") (Entra ID, Okta);
//   - remove on members with a value list removes only those members
//     (Entra ID), as does a value filter (members[value eq "id"]);
//   - removing what is not there is a no-op, so a replayed request succeeds;
//   - a sub-attribute set through a value filter that matches nothing, when
//     the filter is an eq on sub-attributes (emails[type eq "work"].value),
//     adds the value the filter describes (Entra ID's way of setting a work
//     email a user does not have yet);
//   - "id" in a value object is ignored when it is the resource's own id
//     (Okta sends it), refused otherwise.

// patchRequest is the body of a PATCH.
type patchRequest struct {
	Schemas    []string         `json:"schemas"`
	Operations []patchOperation `json:"Operations"`
}

// patchOperation is one operation; Path is nil when absent.
type patchOperation struct {
	Op    string  `json:"op"`
	Path  *string `json:"path"`
	Value any     `json:"value"`
}

// Patch op names, lower case.
const (
	opAdd     = "add"
	opRemove  = "remove"
	opReplace = "replace"
)

// ParsePatchPath parses a PATCH path as the server does: an extension URN
// alone, or an attribute path with an optional value filter and
// sub-attribute. The error is a SCIM invalidPath error.
func ParsePatchPath(raw string) (scimfilter.Path, error) {
	p, err := scimfilter.ParsePath(raw)
	if err != nil {
		return scimfilter.Path{}, invalidPath("path %q: %v", raw, err)
	}
	return p, nil
}

// patcher applies operations to doc, the attributes of one resource (for a
// group, its members under "members").
type patcher struct {
	k   kind
	id  string
	doc map[string]any
}

// applyPatch applies ops to a copy of doc and returns it normalised.
func applyPatch(k kind, id string, doc map[string]any, ops []patchOperation) (map[string]any, *Error) {
	if len(ops) == 0 {
		return nil, invalidValue("Operations must hold at least one operation")
	}
	p := &patcher{k: k, id: id, doc: cloneMap(doc)}
	for i, o := range ops {
		if err := p.apply(o); err != nil {
			err.Detail = "Operations[" + strconv.Itoa(i) + "]: " + err.Detail
			return nil, err
		}
	}
	if err := normalize(k, p.doc); err != nil {
		return nil, err
	}
	return p.doc, nil
}

func (p *patcher) apply(o patchOperation) *Error {
	op := strings.ToLower(strings.TrimSpace(o.Op))
	switch op {
	case opAdd, opRemove, opReplace:
	default:
		return invalidSyntax("op %q is not add, remove or replace", o.Op)
	}
	if o.Path == nil || strings.TrimSpace(*o.Path) == "" {
		if op == opRemove {
			return noTarget("remove needs a path")
		}
		obj, ok := o.Value.(map[string]any)
		if !ok {
			return invalidValue("%s without a path needs an object of attributes as its value, not %s", op, jsonKind(o.Value))
		}
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			v := obj[key]
			switch strings.ToLower(key) {
			case "schemas", "meta":
				continue
			case "id":
				if s, _ := v.(string); s != p.id {
					return mutability("id is read-only")
				}
				continue
			}
			if urn, ok := extensionURN(p.k.extensions(), key); ok {
				ext, isObj := v.(map[string]any)
				if !isObj {
					return invalidValue("%s must be an object of the extension's attributes, not %s", urn, jsonKind(v))
				}
				for _, sk := range slices.Sorted(maps.Keys(ext)) {
					if err := p.applyPath(op, urn+":"+sk, ext[sk]); err != nil {
						return err
					}
				}
				continue
			}
			if err := p.applyPath(op, key, v); err != nil {
				return err
			}
		}
		return nil
	}
	return p.applyPath(op, strings.TrimSpace(*o.Path), o.Value)
}

// applyPath applies one operation at a path.
func (p *patcher) applyPath(op, raw string, v any) *Error {
	if urn, ok := extensionURN(p.k.extensions(), raw); ok {
		return p.applyAt(op, p.doc, urn, nil, "", v, false)
	}
	path, err := scimfilter.ParsePath(raw)
	if err != nil {
		return invalidPath("path %q: %v", raw, err)
	}
	container := p.doc
	var defs = p.k.defs()
	if urn := path.Attr.URN; urn != "" && !strings.EqualFold(urn, p.k.coreSchema()) {
		extURN, known := extensionURN(p.k.extensions(), urn)
		if !known {
			extURN = urn
			if k, ok := findKey(p.doc, urn); ok {
				extURN = k
			}
		}
		defs = p.k.extensions()[extURN]
		ext, _ := p.doc[extURN].(map[string]any)
		if ext == nil {
			if op == opRemove {
				return nil
			}
			ext = map[string]any{}
			p.doc[extURN] = ext
		}
		container = ext
	} else {
		switch strings.ToLower(path.Attr.Name) {
		case "id", "meta", "schemas":
			return mutability("%s is read-only", path.Attr.Name)
		case "groups":
			if p.k == kindUser {
				return mutability("groups is read-only: change the members of the group instead")
			}
		}
	}
	def, _ := lookupDef(defs, path.Attr.Name)
	key := path.Attr.Name
	if def.name != "" {
		key = def.name
	}
	if k, ok := findKey(container, path.Attr.Name); ok {
		key = k
	}
	if path.Filter == nil {
		return p.applyAt(op, container, key, nil, path.Attr.Sub, v, def.multi)
	}
	return p.applyAt(op, container, key, path.Filter, path.Sub, v, true)
}

// applyAt applies op to container[key], its values selected by filter (nil:
// all), at sub-attribute sub ("" for the values themselves).
func (p *patcher) applyAt(op string, container map[string]any, key string, filter scimfilter.Expr, sub string, v any, multi bool) *Error {
	switch {
	case filter != nil:
		return applyFiltered(op, container, key, filter, sub, v)
	case sub != "":
		return applySub(op, container, key, sub, v)
	}
	switch op {
	case opRemove:
		removeValues(container, key, v)
	case opAdd:
		addValues(container, key, v, multi)
	case opReplace:
		replaceValue(container, key, v, multi)
	}
	return nil
}

// applySub applies op to the sub-attribute sub of the complex attribute
// container[key], creating it for an add or a replace and dropping it when
// its last sub-attribute goes.
func applySub(op string, container map[string]any, key, sub string, v any) *Error {
	cur := container[key]
	if list, ok := cur.([]any); ok && len(list) > 0 {
		return invalidPath("%s is multi-valued: select values with a filter, e.g. %s[type eq \"work\"].%s", key, key, sub)
	}
	obj, _ := cur.(map[string]any)
	if obj == nil {
		if op == opRemove {
			return nil
		}
		obj = map[string]any{}
		container[key] = obj
	}
	sk := sub
	if k, ok := findKey(obj, sub); ok {
		sk = k
	}
	if op == opRemove || v == nil {
		delete(obj, sk)
	} else {
		obj[sk] = v
	}
	if len(obj) == 0 {
		delete(container, key)
	}
	return nil
}

// removeValues removes container[key], or, when v names values of a
// multi-valued attribute, only those (Entra ID's member removal).
func removeValues(container map[string]any, key string, v any) {
	list, isList := container[key].([]any)
	if isList && v != nil {
		drop := toList(v)
		container[key] = slices.DeleteFunc(list, func(x any) bool {
			return slices.ContainsFunc(drop, func(d any) bool { return sameValue(key, x, d) })
		})
		return
	}
	delete(container, key)
}

// addValues adds v to container[key]: the values a multi-valued attribute
// lacks, the sub-attributes of a complex one, or the value itself.
func addValues(container map[string]any, key string, v any, multi bool) {
	if v == nil {
		return
	}
	cur, exists := container[key]
	list, isList := cur.([]any)
	if isList || multi || (!exists && isListValue(v)) {
		for _, x := range toList(v) {
			if !slices.ContainsFunc(list, func(y any) bool { return sameValue(key, y, x) }) {
				list = append(list, x)
			}
		}
		setList(container, key, list)
		return
	}
	if mergeInto(cur, v) {
		return
	}
	container[key] = v
}

// replaceValue replaces container[key] with v (nil removes it); a complex
// single-valued attribute takes v's sub-attributes.
func replaceValue(container map[string]any, key string, v any, multi bool) {
	if v == nil {
		delete(container, key)
		return
	}
	if !multi && mergeInto(container[key], v) {
		return
	}
	if multi {
		v = toList(v)
	}
	container[key] = v
}

// mergeInto sets v's sub-attributes on cur when both are objects.
func mergeInto(cur, v any) bool {
	obj, ok := cur.(map[string]any)
	if !ok {
		return false
	}
	nv, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for k, x := range nv {
		obj[k] = x
	}
	return true
}

// applyFiltered applies op to the values of the multi-valued attribute
// container[key] that filter selects. An add or a replace of a
// sub-attribute that selects nothing adds a value when the filter is eq
// comparisons only.
func applyFiltered(op string, container map[string]any, key string, filter scimfilter.Expr, sub string, v any) *Error {
	list, _ := container[key].([]any)
	hits, err := filterHits(list, key, filter)
	if err != nil {
		return err
	}
	switch {
	case op == opRemove:
		removeFiltered(container, key, list, hits, sub)
		return nil
	case len(hits) == 0:
		return addFiltered(op, container, key, list, filter, sub, v)
	}
	return setFiltered(op, key, list, hits, sub, v)
}

// filterHits is the indexes of the values of list filter selects.
func filterHits(list []any, key string, filter scimfilter.Expr) ([]int, *Error) {
	var hits []int
	for i, x := range list {
		obj, ok := x.(map[string]any)
		if !ok {
			continue
		}
		m, err := scimfilter.Match(filter, scimfilter.Map(obj))
		if err != nil {
			return nil, errorf(http.StatusBadRequest, TypeInvalidFilter, "%s[%s]: %v", key, filter.String(), err)
		}
		if m {
			hits = append(hits, i)
		}
	}
	return hits, nil
}

// removeFiltered removes the selected values, or their sub-attribute sub.
func removeFiltered(container map[string]any, key string, list []any, hits []int, sub string) {
	if sub != "" {
		for _, i := range hits {
			obj := list[i].(map[string]any)
			if k, ok := findKey(obj, sub); ok {
				delete(obj, k)
			}
		}
		return
	}
	out := list[:0:0]
	for i, x := range list {
		if !slices.Contains(hits, i) {
			out = append(out, x)
		}
	}
	setList(container, key, out)
}

// setList sets container[key] to list, or removes the attribute when list is
// empty: a multi-valued attribute with no values is unassigned.
func setList(container map[string]any, key string, list []any) {
	if len(list) == 0 {
		delete(container, key)
	} else {
		container[key] = list
	}
}

// addFiltered adds the value an eq-only filter describes, with v set on it,
// when no value matched.
func addFiltered(op string, container map[string]any, key string, list []any, filter scimfilter.Expr, sub string, v any) *Error {
	pairs, ok := eqPairs(filter)
	if !ok || sub == "" && op == opReplace {
		return noTarget("no value of %s matches [%s]", key, filter.String())
	}
	obj := pairs
	if sub != "" {
		obj[sub] = v
	} else if nv, ok := v.(map[string]any); ok {
		for k, x := range nv {
			obj[k] = x
		}
	}
	container[key] = append(list, obj)
	return nil
}

// setFiltered adds or replaces on each selected value: its sub-attribute
// sub, or (v an object) its sub-attributes, merged for an add, the whole
// value for a replace.
func setFiltered(op, key string, list []any, hits []int, sub string, v any) *Error {
	for _, i := range hits {
		obj := list[i].(map[string]any)
		if sub != "" {
			sk := sub
			if k, ok := findKey(obj, sub); ok {
				sk = k
			}
			if v == nil {
				delete(obj, sk)
			} else {
				obj[sk] = v
			}
			continue
		}
		nv, ok := v.(map[string]any)
		if !ok {
			return invalidValue("a value of %s must be an object, not %s", key, jsonKind(v))
		}
		if op == opReplace {
			list[i] = clone(nv)
			continue
		}
		for k, x := range nv {
			obj[k] = x
		}
	}
	return nil
}

// eqPairs returns the sub-attribute values an eq-only filter (joined by
// and) describes, e.g. {"type":"work"} for type eq "work".
func eqPairs(e scimfilter.Expr) (map[string]any, bool) {
	switch e := e.(type) {
	case *scimfilter.Compare:
		if e.Op != scimfilter.Eq || e.Path.URN != "" || e.Path.Sub != "" || e.Value == nil {
			return nil, false
		}
		return map[string]any{e.Path.Name: e.Value}, true
	case *scimfilter.And:
		l, ok := eqPairs(e.Left)
		if !ok {
			return nil, false
		}
		r, ok := eqPairs(e.Right)
		if !ok {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

func toList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func isListValue(v any) bool {
	_, ok := v.([]any)
	return ok
}

// sameValue reports whether two values of a multi-valued attribute are the
// same: members by their value (the member id), others wholly.
func sameValue(key string, a, b any) bool {
	if strings.EqualFold(key, "members") {
		am, _ := a.(map[string]any)
		bm, _ := b.(map[string]any)
		return am != nil && bm != nil && stringAttr(am, "value") == stringAttr(bm, "value")
	}
	return reflect.DeepEqual(a, b)
}
