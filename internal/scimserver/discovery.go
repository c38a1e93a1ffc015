package scimserver

import (
	"net/http"
	"strings"
)

// Discovery (RFC 7644 §4): what the server supports, so clients (iamflow's
// own among them) need not assume.

func serviceProviderConfig(base string, maxResults int, maxBody int64) map[string]any {
	return map[string]any{
		"schemas":          []string{SchemaSPConfig},
		"documentationUri": "https://github.com/iamflow/iamflow/blob/main/docs/scim-push.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "Bearer token",
			"description": "The long-lived bearer token configured for the pushed source (domains[].push.token).",
			"primary":     true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": base + "/ServiceProviderConfig"},
	}
}

func resourceType(base string, k kind) map[string]any {
	rt := map[string]any{
		"schemas":     []string{SchemaResourceType},
		"id":          k.String(),
		"name":        k.String(),
		"endpoint":    k.endpoint(),
		"description": k.String() + "s pushed by the identity provider",
		"schema":      k.coreSchema(),
		"meta":        map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/" + k.String()},
	}
	var exts []any
	for urn := range k.extensions() {
		exts = append(exts, map[string]any{"schema": urn, "required": false})
	}
	if exts != nil {
		rt["schemaExtensions"] = exts
	}
	return rt
}

func (h *request) resourceTypes(rest []string) error {
	base := h.base()
	if len(rest) == 1 {
		for _, k := range []kind{kindUser, kindGroup} {
			if strings.EqualFold(rest[0], k.String()) {
				return h.json(http.StatusOK, resourceType(base, k))
			}
		}
		return notFound("resource type %q not found: this service provider has User and Group", rest[0])
	}
	return h.json(http.StatusOK, listOf([]any{resourceType(base, kindUser), resourceType(base, kindGroup)}))
}

type schemaDoc struct {
	id, name, description string
	attrs                 []attrDef
}

var schemaDocs = []schemaDoc{
	{SchemaUser, "User", "User Account", userSchema},
	{SchemaGroup, "Group", "Group", groupSchema},
	{SchemaEnterpriseUser, "EnterpriseUser", "Enterprise User", enterpriseSchema},
}

func (h *request) schemas(rest []string) error {
	base := h.base()
	render := func(s schemaDoc) map[string]any {
		return map[string]any{
			"schemas":     []string{SchemaSchema},
			"id":          s.id,
			"name":        s.name,
			"description": s.description,
			"attributes":  renderAttrs(s.attrs),
			"meta":        map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + s.id},
		}
	}
	if len(rest) == 1 {
		for _, s := range schemaDocs {
			if strings.EqualFold(rest[0], s.id) {
				return h.json(http.StatusOK, render(s))
			}
		}
		return notFound("schema %q not found", rest[0])
	}
	var all []any
	for _, s := range schemaDocs {
		all = append(all, render(s))
	}
	return h.json(http.StatusOK, listOf(all))
}

func renderAttrs(defs []attrDef) []any {
	out := make([]any, 0, len(defs))
	for _, d := range defs {
		m := map[string]any{
			"name":        d.name,
			"type":        d.typ,
			"multiValued": d.multi,
			"description": d.description,
			"required":    d.required,
			"mutability":  or(d.mutability, "readWrite"),
			"returned":    or(d.returned, "default"),
		}
		if d.typ != "complex" && d.typ != "boolean" {
			m["caseExact"] = d.caseExact
			m["uniqueness"] = or(d.uniqueness, "none")
		}
		if len(d.refTypes) > 0 {
			m["referenceTypes"] = d.refTypes
		}
		if len(d.canonical) > 0 {
			m["canonicalValues"] = d.canonical
		}
		if len(d.sub) > 0 {
			m["subAttributes"] = renderAttrs(d.sub)
		}
		out = append(out, m)
	}
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func listOf(rs []any) map[string]any {
	return map[string]any{"schemas": []string{SchemaListResponse}, "totalResults": len(rs), "startIndex": 1,
		"itemsPerPage": len(rs), "Resources": rs}
}
