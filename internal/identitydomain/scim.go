package identitydomain

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// Schema URNs used in request bodies.
const (
	SchemaUser                    = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup                   = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterpriseUser          = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaUserExtension           = "urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User"
	SchemaGroupExtension          = "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group"
	SchemaCapabilities            = "urn:ietf:params:scim:schemas:oracle:idcs:extension:capabilities:User"
	SchemaSelfChange              = "urn:ietf:params:scim:schemas:oracle:idcs:extension:selfChange:User"
	SchemaUserCapabilitiesChanger = "urn:ietf:params:scim:schemas:oracle:idcs:UserCapabilitiesChanger"
	SchemaPatchOp                 = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// Quote returns s as a SCIM filter string literal (RFC 7644 §3.4.2.2, JSON
// string syntax): in double quotes, with '"' and '\' escaped, and control
// characters written as JSON escapes. Any user-supplied value put in a filter
// must go through Quote, so that a name with a quote cannot change the filter.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Eq returns the filter `attr eq "value"`, the value quoted with Quote. attr
// is an attribute path written by the program, never user input.
func Eq(attr, value string) string { return attr + " eq " + Quote(value) }

// LooksLikeID reports whether s has the form of an Identity Domains SCIM id:
// 32 lower-case hexadecimal digits. A userName or displayName may have that
// form too, so a caller that finds nothing by such an id tries it as a name.
func LooksLikeID(s string) bool {
	return len(s) == 32 && strings.Trim(s, "0123456789abcdef") == ""
}

// Add returns a PATCH operation adding value at path.
func Add(path string, value any) identitydomains.Operations {
	return identitydomains.Operations{Op: identitydomains.OperationsOpAdd, Path: &path, Value: &value}
}

// Replace returns a PATCH operation replacing the value at path.
func Replace(path string, value any) identitydomains.Operations {
	return identitydomains.Operations{Op: identitydomains.OperationsOpReplace, Path: &path, Value: &value}
}

// Remove returns a PATCH operation removing the value(s) at path, which may
// carry a value filter: `emails[type eq "home"]`.
func Remove(path string) identitydomains.Operations {
	return identitydomains.Operations{Op: identitydomains.OperationsOpRemove, Path: &path}
}

// ReplaceAttributes returns one replace operation per attribute, in the
// order of the paths, for PatchUser and PatchGroup:
//
//	ReplaceAttributes(map[string]any{"displayName": "Ops", SchemaGroupExtension + ":description": "on call"})
func ReplaceAttributes(attrs map[string]any) []identitydomains.Operations {
	ops := make([]identitydomains.Operations, 0, len(attrs))
	for _, path := range slices.Sorted(maps.Keys(attrs)) {
		ops = append(ops, Replace(path, attrs[path]))
	}
	return ops
}

func patchOp(ops []identitydomains.Operations) identitydomains.PatchOp {
	return identitydomains.PatchOp{Schemas: []string{SchemaPatchOp}, Operations: ops}
}

// memberValues is the value of a members add: [{value, type: User}, ...].
func memberValues(userIDs []string) []any {
	out := make([]any, len(userIDs))
	for i, id := range userIDs {
		out[i] = map[string]any{"value": id, "type": string(identitydomains.GroupMembersTypeUser)}
	}
	return out
}

// withSchemas returns schemas with each of want appended if missing.
func withSchemas(schemas []string, want ...string) []string {
	out := slices.Clone(schemas)
	for _, w := range want {
		if !slices.ContainsFunc(out, func(s string) bool { return strings.EqualFold(s, w) }) {
			out = append(out, w)
		}
	}
	return out
}

func optString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func optPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func attrList(attributes []string) *string {
	return optPtr(strings.Join(attributes, ","))
}

// withAttribute returns attributes with attr added, unless attributes is
// empty (the default set) or already names it.
func withAttribute(attributes []string, attr string) []string {
	if len(attributes) == 0 || slices.ContainsFunc(attributes, func(a string) bool { return strings.EqualFold(a, attr) }) {
		return attributes
	}
	return append(slices.Clone(attributes), attr)
}
