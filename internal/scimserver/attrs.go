package scimserver

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// A resource's attributes are kept as a JSON object (map[string]any) without
// id, meta, schemas and the read-only attributes the server computes
// (a user's groups, a member's display). normalize makes what an IdP sent
// canonical: attribute names in the schema's spelling, booleans sent as
// strings ("False", Entra's default) as booleans, numbers given for strings
// as strings, flattened extension attributes
// ("urn:...:enterprise:2.0:User:department") inside their extension, null
// values removed. Attributes no schema names are kept as sent.

// readOnlyTop are top-level attributes a request may carry but never sets:
// RFC 7643 says read-only attributes in a request are ignored.
var readOnlyTop = map[string]bool{"id": true, "meta": true, "schemas": true}

// normalize canonicalises attrs in place; the error names the attribute.
func normalize(k kind, attrs map[string]any) *Error {
	exts := k.extensions()
	for key := range attrs {
		if readOnlyTop[strings.ToLower(key)] {
			delete(attrs, key)
		}
	}
	// Flattened extension attributes move into their extension object.
	for key, v := range attrs {
		for urn := range exts {
			if len(key) > len(urn)+1 && strings.EqualFold(key[:len(urn)], urn) && key[len(urn)] == ':' {
				delete(attrs, key)
				ext, _ := attrs[urn].(map[string]any)
				if ext == nil {
					ext = map[string]any{}
					attrs[urn] = ext
				}
				ext[key[len(urn)+1:]] = v
			}
		}
	}
	for key, v := range attrs {
		if urn, ok := extensionURN(exts, key); ok {
			delete(attrs, key)
			if v == nil {
				continue
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return invalidValue("%s must be an object of the extension's attributes, not %s", urn, jsonKind(v))
			}
			if err := normalizeObject(exts[urn], obj, urn+":"); err != nil {
				return err
			}
			if len(obj) > 0 {
				attrs[urn] = obj
			}
			continue
		}
	}
	if err := normalizeObject(k.defs(), attrs, ""); err != nil {
		return err
	}
	if k == kindUser {
		delete(attrs, "groups")   // read-only: computed from the groups' members
		delete(attrs, "password") // never stored: iamflow has no use for it
	}
	return nil
}

// extensionURN returns the canonical URN of key when it names an extension.
func extensionURN(exts map[string][]attrDef, key string) (string, bool) {
	for urn := range exts {
		if strings.EqualFold(urn, key) {
			return urn, true
		}
	}
	return "", false
}

// normalizeObject canonicalises the attributes of obj described by defs;
// prefix is the path of obj, for errors.
func normalizeObject(defs []attrDef, obj map[string]any, prefix string) *Error {
	for key, v := range obj {
		if strings.HasPrefix(strings.ToLower(key), "urn:") {
			continue // an extension, handled by the caller, or one no schema names
		}
		d, ok := lookupDef(defs, key)
		if !ok {
			if l, isList := v.([]any); v == nil || isList && len(l) == 0 {
				delete(obj, key)
			}
			continue
		}
		if key != d.name {
			delete(obj, key)
		}
		nv, err := coerce(d, v, prefix+d.name)
		if err != nil {
			return err
		}
		if nv == nil {
			delete(obj, d.name)
			continue
		}
		obj[d.name] = nv
	}
	return nil
}

// coerce checks v against d and returns it in canonical form (nil: remove).
func coerce(d attrDef, v any, path string) (any, *Error) {
	if v == nil {
		return nil, nil
	}
	if d.multi {
		arr, ok := v.([]any)
		if !ok {
			arr = []any{v} // one value where a list was expected
		}
		out := make([]any, 0, len(arr))
		for i, x := range arr {
			one := d
			one.multi = false
			nx, err := coerce(one, x, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if nx != nil {
				out = append(out, nx)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	switch d.typ {
	case "complex":
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, invalidValue("%s must be an object, not %s", path, jsonKind(v))
		}
		if err := normalizeObject(d.sub, obj, path+"."); err != nil {
			return nil, err
		}
		if len(obj) == 0 {
			return nil, nil
		}
		return obj, nil
	case "boolean":
		switch b := v.(type) {
		case bool:
			return b, nil
		case string: // Entra ID's default: "True", "False"
			switch strings.ToLower(strings.TrimSpace(b)) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, invalidValue("%s must be a boolean (true or false), not %s", path, jsonDesc(v))
	default: // string, reference, dateTime
		switch s := v.(type) {
		case string:
			return s, nil
		case float64:
			return strconv.FormatFloat(s, 'f', -1, 64), nil
		case json.Number:
			return s.String(), nil
		}
		return nil, invalidValue("%s must be a string, not %s", path, jsonKind(v))
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func jsonDesc(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return jsonKind(v)
}

// findKey returns the key of obj equal to name ignoring case.
func findKey(obj map[string]any, name string) (string, bool) {
	if _, ok := obj[name]; ok {
		return name, true
	}
	for k := range obj {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

// clone deep-copies a JSON value.
func clone(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = clone(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = clone(x)
		}
		return out
	}
	return v
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return clone(m).(map[string]any)
}

// stringAttr returns obj[name] (any case) when it is a string.
func stringAttr(obj map[string]any, name string) string {
	if k, ok := findKey(obj, name); ok {
		s, _ := obj[k].(string)
		return s
	}
	return ""
}
