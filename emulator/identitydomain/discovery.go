package identitydomain

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Discovery (RFC 7644 §4), as identity domains serve it under /admin/v1:
//
//   - GET /admin/v1/ServiceProviderConfig answers a ListResponse holding the
//     one configuration (Oracle documents the endpoint as "Search Service
//     Provider Configs": a single pre-seeded instance), and
//     GET /admin/v1/ServiceProviderConfig/{id} the configuration itself;
//   - GET /admin/v1/ResourceTypes and /ResourceTypes/{name}: User and Group
//     with the extension schemas the emulator keeps;
//   - GET /admin/v1/Schemas and /Schemas/{urn}: those schemas, generated
//     from the attribute tables of schema.go (type, multiValued, required,
//     caseExact, mutability, returned, uniqueness, subAttributes).
//
// The configuration says what the emulator does, which is what identity
// domains advertise except password change, which it does not emulate
// (supported false): patch, bulk (maxOperations 50 and maxPayloadSize 1 MB
// unless Config.Bulk says otherwise), filter (maxResults 1000, the largest
// count), sort and etag are supported; authentication is OAuth 2.0 bearer
// tokens. Discovery needs a token like every other /admin/v1 call.

// Schemas of the discovery resources (RFC 7643 §8.7).
const (
	SchemaServiceProviderConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResourceType          = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema                = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// spcID is the id of the emulator's one ServiceProviderConfig.
const spcID = "ServiceProviderConfig"

func (d *Domain) serviceProviderConfig(base string) map[string]any {
	return map[string]any{
		"schemas":          []string{SchemaServiceProviderConfig},
		"id":               spcID,
		"documentationUri": "https://docs.oracle.com/en/cloud/paas/iam-domains-rest-api/",
		"patch":            map[string]any{"supported": true},
		"bulk":             d.bulkSupport(),
		"filter":           map[string]any{"supported": true, "maxResults": maxCount},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "Bearer tokens from the domain's /oauth2/v1/token (client credentials).",
			"specUri":     "https://www.rfc-editor.org/rfc/rfc6750",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": base + "/admin/v1/ServiceProviderConfig/" + spcID},
	}
}

func (d *Domain) getServiceProviderConfig(w http.ResponseWriter, r *request) error {
	if r.id != "" && !strings.EqualFold(r.id, spcID) {
		return errNotFound("ServiceProviderConfig", r.id)
	}
	spc := d.serviceProviderConfig(r.base)
	if r.id != "" {
		writeJSON(w, http.StatusOK, spc)
		return nil
	}
	writeJSON(w, http.StatusOK, listOf([]any{spc}))
	return nil
}

func listOf(items []any) map[string]any {
	return map[string]any{"schemas": []string{SchemaListResponse}, "totalResults": len(items),
		"Resources": items, "startIndex": 1, "itemsPerPage": len(items)}
}

var resourceTypes = []*resourceType{userType, groupType}

func resourceTypeDoc(rt *resourceType, base string) map[string]any {
	exts := make([]any, len(rt.extOrder))
	for i, e := range rt.extOrder {
		exts[i] = map[string]any{"schema": e.urn, "required": false}
	}
	return map[string]any{
		"schemas":          []string{SchemaResourceType},
		"id":               rt.name,
		"name":             rt.name,
		"endpoint":         "/" + rt.endpoint,
		"description":      rt.name + "s of the identity domain",
		"schema":           rt.core.urn,
		"schemaExtensions": exts,
		"meta":             map[string]any{"resourceType": "ResourceType", "location": base + "/admin/v1/ResourceTypes/" + rt.name},
	}
}

func (d *Domain) getResourceTypes(w http.ResponseWriter, r *request) error {
	return writeDiscovery(w, r, resourceTypes, "ResourceType",
		func(rt *resourceType) string { return rt.name }, resourceTypeDoc)
}

// writeDiscovery answers a GET of a discovery collection: the entry whose
// key equals the request's id ignoring case (404 naming kind when there is
// none), or, without an id, all of them as a ListResponse.
func writeDiscovery[T any](w http.ResponseWriter, r *request, all []T, kind string, key func(T) string, doc func(T, string) map[string]any) error {
	if r.id != "" {
		for _, x := range all {
			if strings.EqualFold(key(x), r.id) {
				writeJSON(w, http.StatusOK, doc(x, r.base))
				return nil
			}
		}
		return errNotFound(kind, r.id)
	}
	items := make([]any, len(all))
	for i, x := range all {
		items[i] = doc(x, r.base)
	}
	writeJSON(w, http.StatusOK, listOf(items))
	return nil
}

// allSchemas are the schemas of every resource type, core first.
func allSchemas() []*schema {
	var out []*schema
	for _, rt := range resourceTypes {
		out = append(out, rt.core)
		out = append(out, rt.extOrder...)
	}
	return out
}

func schemaDoc(s *schema, base string) map[string]any {
	name := s.urn[strings.LastIndexByte(s.urn, ':')+1:]
	return map[string]any{
		"schemas":    []string{SchemaSchema},
		"id":         s.urn,
		"name":       name,
		"attributes": attributeDocs(s.attrs, s.urn),
		"meta":       map[string]any{"resourceType": "Schema", "location": base + "/admin/v1/Schemas/" + s.urn},
	}
}

var typeNames = map[attrType]string{typeString: "string", typeBool: "boolean", typeDateTime: "dateTime",
	typeComplex: "complex", typeReference: "reference", typeInteger: "integer"}
var returnedNames = map[returned]string{retDefault: "default", retAlways: "always", retRequest: "request", retNever: "never"}
var mutabilityNames = map[mutability]string{mutReadWrite: "readWrite", mutReadOnly: "readOnly", mutImmutable: "immutable", mutWriteOnly: "writeOnly"}

func attributeDocs(defs map[string]*attrDef, urn string) []any {
	out := make([]any, 0, len(defs))
	for _, n := range slices.Sorted(maps.Keys(defs)) {
		a := defs[n]
		required := (urn == SchemaUser && a.name == "userName") || (urn == SchemaGroup && a.name == "displayName")
		uniqueness := "none"
		if required || a.name == "id" {
			uniqueness = "server"
		}
		doc := map[string]any{
			"name": a.name, "type": typeNames[a.typ], "multiValued": a.multi, "required": required,
			"caseExact": a.exact, "mutability": mutabilityNames[a.mut], "returned": returnedNames[a.ret], "uniqueness": uniqueness,
		}
		if a.typ == typeReference {
			doc["referenceTypes"] = []string{"external"}
		}
		if len(a.subs) > 0 {
			doc["subAttributes"] = attributeDocs(a.subs, "")
		}
		out = append(out, doc)
	}
	return out
}

func (d *Domain) getSchemas(w http.ResponseWriter, r *request) error {
	return writeDiscovery(w, r, allSchemas(), "Schema", func(s *schema) string { return s.urn }, schemaDoc)
}
