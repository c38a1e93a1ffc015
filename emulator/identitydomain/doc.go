// Package identitydomain is an in-memory emulator of an OCI IAM Identity
// Domain, faithful enough over HTTP that the oci-go-sdk identitydomains
// client, curl and a plain SCIM client cannot tell it from the real service
// for the operations iamflow uses:
//
//   - POST /oauth2/v1/token: client credentials (oauth.go);
//   - /admin/v1/Users and /admin/v1/Groups: create, get, list, .search,
//     PATCH, PUT, DELETE, with filter, attributes, attributeSets,
//     excludedAttributes, sortBy, sortOrder, startIndex and count (users.go,
//     groups.go, list.go, attributes.go, patch.go; filters in package
//     scimfilter);
//   - PUT /admin/v1/UserCapabilitiesChanger/{id} (capabilities.go);
//   - GET /admin/v1/ServiceProviderConfig, /ResourceTypes and /Schemas
//     (discovery.go);
//   - OCI Events for every change, to a webhook and to Go hooks (events.go,
//     webhook.go);
//   - per-tier rate limits (ratelimit.go) and faults on demand (faults.go),
//     controlled from Config, Go, or the /_emulator/ endpoints (control.go);
//   - seed files and generated directories (seed.go, generate.go).
//
// Every response carries X-ORACLE-DMS-ECID and X-ORACLE-DMS-RID; errors use
// the IDCS SCIM error body with a string status (scimerror.go).
//
// The facts it follows are in docs/oci-sources.md (§2 events, §4
// SCIM, §5 SDK) and the SDK's model comments (attribute names, returned,
// mutability and caseExact characteristics, schema.go). Where those are silent
// or marked inferred, the emulator follows RFC 7643/7644 and says so in a doc
// comment next to the code; the main choices:
//
//   - default count 50 (negative: 50; above 1000: 1000; 0: totals only);
//     itemsPerPage is the page size used; default order is creation order;
//   - ETag is W/"<meta.version>"; If-Match also takes the bare version;
//   - a stale If-Match is 412; duplicate userName/displayName
//     (case-insensitive) is 409 uniqueness;
//   - group members beyond 10,000 in one response: 400 tooMany;
//   - PATCH remove with a filter that matches nothing: 400 noTarget;
//   - PUT of a group without members keeps them;
//   - no Retry-After on 429 unless Faults.RetryAfter is set;
//   - events: source "identitycontrolplane", resourceId = OCID, actorType
//     "Client"; a membership PATCH emits updategroup then one
//     addusertogroup/removeuserfromgroup per member; deleting a user or group
//     emits only its delete event;
//   - the resource-principal token exchange and JWT client assertions are
//     not emulated.
package identitydomain
