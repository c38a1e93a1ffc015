package identitydomain

import (
	"reflect"
	"strings"
	"time"
)

// Request bodies are validated against the schema in schema.go:
//   - schemas must list the resource's core schema URN (RFC 7643 §3);
//   - known attributes are stored under their canonical names and must have
//     the schema's type (string, boolean, dateTime, complex, array);
//   - read-only and server-computed attributes (id, meta, groups, ...) are
//     ignored on POST and PUT, as RFC 7644 §3.5.1 says, and rejected by PATCH
//     (400 mutability);
//   - null means unassigned;
//   - unknown attributes and unknown schema extensions are kept verbatim and
//     returned as returned=default (IDCS's treatment of unknown attributes is
//     not documented; keeping them is the lenient choice);
//   - emails are not required (IDCS can be configured to require a primary
//     email; the default SCIM behaviour is not to).

// canonicalize validates a resource body and returns the attributes to store
// and, for groups, the raw members value (nil if absent).
func canonicalize(rt *resourceType, body map[string]any) (attrs map[string]any, members any, err error) {
	if err := checkSchemas(body, rt.core.urn); err != nil {
		return nil, nil, err
	}
	attrs = make(map[string]any, len(body))
	for k, v := range body {
		lk := strings.ToLower(k)
		switch {
		case lk == "schemas" || v == nil:
			continue
		case lk == strings.ToLower(rt.core.urn):
			flat, err := flattenCore(body, k, v)
			if err != nil {
				return nil, nil, err
			}
			return canonicalize(rt, flat)
		}
		if ext := rt.ext(lk); ext != nil {
			if err := canonExtension(attrs, ext, k, v); err != nil {
				return nil, nil, err
			}
			continue
		}
		if strings.HasPrefix(lk, "urn:") {
			if _, ok := v.(map[string]any); !ok {
				return nil, nil, errInvalidValue("Schema extension %s must be an object.", k)
			}
			attrs[k] = deepCopy(v)
			continue
		}
		m, err := canonCoreAttr(rt, attrs, k, v)
		if err != nil {
			return nil, nil, err
		}
		if m != nil {
			members = m
		}
	}
	if s, _ := attrs[rt.required].(string); strings.TrimSpace(s) == "" {
		return nil, nil, errMissing(rt.required)
	}
	return attrs, members, nil
}

// flattenCore returns body with the core attributes given under their
// schema URN (key k, value v) moved to the top level, as RFC 7644 allows.
func flattenCore(body map[string]any, k string, v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errInvalidValue("Attribute %s must be an object.", k)
	}
	flat := make(map[string]any, len(body)+len(m))
	for bk, bv := range body {
		if !strings.EqualFold(bk, k) {
			flat[bk] = bv
		}
	}
	for mk, mv := range m {
		flat[mk] = mv
	}
	return flat, nil
}

// canonExtension validates the value v of a known schema extension (key k)
// and stores what it sets in attrs under the extension's URN.
func canonExtension(attrs map[string]any, ext *schema, k string, v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return errInvalidValue("Attribute %s must be an object.", k)
	}
	sub, err := canonObject(ext.attrs, m, ext.urn, false)
	if err != nil {
		return err
	}
	if len(sub) > 0 {
		attrs[ext.urn] = sub
	}
	return nil
}

// canonCoreAttr stores the core attribute k of a body in attrs under its
// canonical name: kept verbatim when unknown, ignored when read-only or
// computed by the server. A group's members are not stored but returned.
func canonCoreAttr(rt *resourceType, attrs map[string]any, k string, v any) (members any, err error) {
	def := rt.core.attrs[strings.ToLower(k)]
	switch {
	case def == nil:
		attrs[k] = deepCopy(v)
	case rt == groupType && def.name == "members":
		return v, nil
	case def.server || def.mut == mutReadOnly:
	default:
		cv, err := canonValue(def, v, def.name, false)
		if err != nil {
			return nil, err
		}
		if cv != nil {
			attrs[def.name] = cv
		}
	}
	return nil, nil
}

// resourceBody reads the body of a POST or PUT of a resource of type rt:
// the attributes to store, a group's raw members value, and the projection
// the query asks the answer in.
func resourceBody(rt *resourceType, r *request) (attrs map[string]any, members any, proj *projection, err error) {
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return nil, nil, nil, err
	}
	if attrs, members, err = canonicalize(rt, body); err != nil {
		return nil, nil, nil, err
	}
	if proj, err = queryProjection(rt, r); err != nil {
		return nil, nil, nil, err
	}
	return attrs, members, proj, nil
}

// checkSchemas requires body.schemas to be an array of strings holding urn.
func checkSchemas(body map[string]any, urn string) error {
	var raw any
	for k, v := range body {
		if strings.EqualFold(k, "schemas") {
			raw = v
		}
	}
	list, ok := raw.([]any)
	if raw == nil || !ok {
		return errMissing("schemas")
	}
	for _, s := range list {
		str, ok := s.(string)
		if !ok {
			return errInvalidValue("schemas must be an array of strings.")
		}
		if strings.EqualFold(str, urn) {
			return nil
		}
	}
	return errInvalidValue("schemas must include %s.", urn)
}

// canonObject validates the attributes of a complex value or schema extension.
// With patch set, read-only sub-attributes are an error instead of ignored.
func canonObject(defs map[string]*attrDef, m map[string]any, path string, patch bool) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v == nil {
			continue
		}
		sd := defs[strings.ToLower(k)]
		if sd == nil {
			out[k] = deepCopy(v)
			continue
		}
		if sd.server || sd.mut == mutReadOnly {
			if patch {
				return nil, errMutability("Attribute %s.%s is read-only.", path, sd.name)
			}
			continue
		}
		cv, err := canonValue(sd, v, path+"."+sd.name, patch)
		if err != nil {
			return nil, err
		}
		if cv != nil {
			out[sd.name] = cv
		}
	}
	return out, nil
}

// canonValue validates one attribute value against its definition. An empty
// array is returned as nil (unassigned).
func canonValue(def *attrDef, v any, path string, patch bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	if def.multi {
		list, ok := v.([]any)
		if !ok {
			return nil, errInvalidValue("Attribute %s is multi-valued; its value must be an array.", path)
		}
		out := make([]any, 0, len(list))
		for _, e := range list {
			cv, err := canonSingle(def, e, path, patch)
			if err != nil {
				return nil, err
			}
			if cv != nil {
				out = append(out, cv)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	return canonSingle(def, v, path, patch)
}

func canonSingle(def *attrDef, v any, path string, patch bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch def.typ {
	case typeString, typeReference:
		if _, ok := v.(string); !ok {
			return nil, errInvalidValue("Attribute %s must be a string.", path)
		}
	case typeDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, errInvalidValue("Attribute %s must be a dateTime string.", path)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, errInvalidValue("Attribute %s: %q is not an RFC 3339 dateTime.", path, s)
		}
	case typeBool:
		if _, ok := v.(bool); !ok {
			return nil, errInvalidValue("Attribute %s must be a boolean.", path)
		}
	case typeInteger:
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			return nil, errInvalidValue("Attribute %s must be an integer.", path)
		}
	case typeComplex:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errInvalidValue("Attribute %s must be an object.", path)
		}
		return canonObject(def.subs, m, path, patch)
	}
	return v, nil
}

// deepCopy copies JSON values so that stored attributes never alias request data.
func deepCopy(v any) any { return mapJSON(v, func(x any) any { return x }) }

// mapJSON copies the maps and arrays of v and replaces every other value
// with leaf's result.
func mapJSON(v any, leaf func(any) any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = mapJSON(x, leaf)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = mapJSON(x, leaf)
		}
		return out
	}
	return leaf(v)
}

func equalJSON(a, b any) bool { return reflect.DeepEqual(a, b) }

// keyFor finds the key of m equal to name ignoring case, or returns name.
func keyFor(m map[string]any, name string) string {
	if _, ok := m[name]; ok {
		return name
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return name
}

// normalizeJSON turns values decoded from YAML (ints, map[string]any with
// nested non-JSON types) into the types encoding/json produces.
func normalizeJSON(v any) any { return mapJSON(v, normalizeScalar) }

func normalizeScalar(v any) any {
	switch v := v.(type) {
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	case time.Time:
		return formatTime(v)
	}
	return v
}

func lower(s string) string { return strings.ToLower(s) }
