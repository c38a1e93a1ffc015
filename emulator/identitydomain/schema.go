package identitydomain

import "strings"

// Schema URNs the emulator knows.
const (
	SchemaUser         = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup        = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaUserExt      = "urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User"
	SchemaCapabilities = "urn:ietf:params:scim:schemas:oracle:idcs:extension:capabilities:User"
	SchemaSelfChange   = "urn:ietf:params:scim:schemas:oracle:idcs:extension:selfChange:User"
	SchemaUserState    = "urn:ietf:params:scim:schemas:oracle:idcs:extension:userState:User"
	SchemaGroupExt     = "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group"
	SchemaRequestable  = "urn:ietf:params:scim:schemas:oracle:idcs:extension:requestable:Group"
	SchemaCapChanger   = "urn:ietf:params:scim:schemas:oracle:idcs:UserCapabilitiesChanger"
	SchemaListResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaSearch       = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	SchemaPatchOp      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaError        = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaErrorExt     = "urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error"
)

type attrType uint8

const (
	typeString attrType = iota
	typeBool
	typeDateTime
	typeComplex
	typeReference
	typeInteger
)

// returned is SCIM's "returned" characteristic (RFC 7643 §7).
type returned uint8

const (
	retDefault returned = iota
	retAlways
	retRequest
	retNever
)

// mutability is SCIM's "mutability" characteristic (RFC 7643 §7).
type mutability uint8

const (
	mutReadWrite mutability = iota
	mutReadOnly
	mutImmutable
	mutWriteOnly
)

// attrDef describes one attribute, with the characteristics the SDK's model
// comments give for it (SCIM++ Properties).
type attrDef struct {
	name   string
	typ    attrType
	multi  bool
	ret    returned
	mut    mutability
	exact  bool // caseExact
	server bool // computed by the emulator, never stored from a request
	subs   map[string]*attrDef
	def    any  // value a read sees when the attribute was never set
	plain  bool // no sub-attribute is returned=request or never
}

type schema struct {
	urn   string
	attrs map[string]*attrDef // by lower-cased name
	plain bool                // no attribute is returned=request or never
}

type resourceType struct {
	defaults []*attrDef // core attributes with a default value
	name     string     // "User"
	endpoint string     // "Users"
	core     *schema
	exts     map[string]*schema // by lower-cased URN
	extOrder []*schema
	required string // the attribute every resource must have (userName, displayName)
}

func (rt *resourceType) ext(lurn string) *schema { return rt.exts[lurn] }

// attrOpt modifies an attrDef under construction.
type attrOpt func(*attrDef)

var (
	multi      attrOpt = func(a *attrDef) { a.multi = true }
	always     attrOpt = func(a *attrDef) { a.ret = retAlways }
	onRequest  attrOpt = func(a *attrDef) { a.ret = retRequest }
	never      attrOpt = func(a *attrDef) { a.ret = retNever }
	readOnly   attrOpt = func(a *attrDef) { a.mut = mutReadOnly }
	immutable  attrOpt = func(a *attrDef) { a.mut = mutImmutable }
	writeOnly  attrOpt = func(a *attrDef) { a.mut = mutWriteOnly }
	exact      attrOpt = func(a *attrDef) { a.exact = true }
	serverSide attrOpt = func(a *attrDef) { a.server = true; a.mut = mutReadOnly }
)

func defaultValue(v any) attrOpt { return func(a *attrDef) { a.def = v } }

func attr(name string, t attrType, opts ...attrOpt) *attrDef {
	a := &attrDef{name: name, typ: t}
	for _, o := range opts {
		o(a)
	}
	return a
}

func complexAttr(name string, subs []*attrDef, opts ...attrOpt) *attrDef {
	a := attr(name, typeComplex, opts...)
	a.subs = index(subs)
	a.plain = plainDefs(subs)
	return a
}

func index(defs []*attrDef) map[string]*attrDef {
	m := make(map[string]*attrDef, len(defs))
	for _, d := range defs {
		m[strings.ToLower(d.name)] = d
	}
	return m
}

func newSchema(urn string, defs ...*attrDef) *schema {
	return &schema{urn: urn, attrs: index(defs), plain: plainDefs(defs)}
}

func plainDefs(defs []*attrDef) bool {
	for _, d := range defs {
		if d.ret == retRequest || d.ret == retNever {
			return false
		}
	}
	return true
}

func newResourceType(name, endpoint, required string, core *schema, exts ...*schema) *resourceType {
	rt := &resourceType{name: name, endpoint: endpoint, core: core, exts: map[string]*schema{}, required: required}
	for _, e := range exts {
		rt.exts[strings.ToLower(e.urn)] = e
		rt.extOrder = append(rt.extOrder, e)
		addLowerNames(e.urn, e.attrs)
	}
	for _, d := range core.attrs {
		if d.def != nil {
			rt.defaults = append(rt.defaults, d)
		}
	}
	addLowerNames(core.urn, core.attrs)
	return rt
}

// lowerNames maps the canonical attribute names and schema URNs to their
// lower-case form, so rendering does not lower-case the same keys again and
// again. It is filled at init and only read afterwards.
var lowerNames = map[string]string{"schemas": "schemas"}

func addLowerNames(urn string, defs map[string]*attrDef) {
	lowerNames[urn] = strings.ToLower(urn)
	for l, d := range defs {
		lowerNames[d.name] = l
		addLowerNames2(d.subs)
	}
}

func addLowerNames2(defs map[string]*attrDef) {
	for l, d := range defs {
		lowerNames[d.name] = l
	}
}

// lowerName lower-cases an attribute name.
func lowerName(k string) string {
	if l, ok := lowerNames[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// commonAttrs are the attributes every IDCS resource carries (SDK User/Group models).
func commonAttrs() []*attrDef {
	ref := func(name string) *attrDef {
		return complexAttr(name, []*attrDef{
			attr("value", typeString, exact), attr("display", typeString), attr("type", typeString, exact),
			attr("ocid", typeString, exact), attr("$ref", typeReference, exact),
		}, serverSide)
	}
	return []*attrDef{
		attr("id", typeString, always, serverSide),
		attr("ocid", typeString, exact, immutable, serverSide),
		complexAttr("meta", []*attrDef{
			attr("resourceType", typeString), attr("created", typeDateTime), attr("lastModified", typeDateTime),
			attr("location", typeReference, exact), attr("version", typeString),
		}, serverSide),
		ref("idcsCreatedBy"),
		ref("idcsLastModifiedBy"),
		attr("domainOcid", typeString, serverSide),
		attr("compartmentOcid", typeString, serverSide),
		attr("tenancyOcid", typeString, serverSide),
		attr("deleteInProgress", typeBool, serverSide),
		attr("idcsLastUpgradedInRelease", typeString, onRequest, serverSide),
		attr("idcsPreventedOperations", typeString, multi, onRequest, serverSide),
		attr("externalId", typeString),
		complexAttr("tags", []*attrDef{attr("key", typeString), attr("value", typeString)}, multi, onRequest),
	}
}

func plural(name string, extra ...*attrDef) *attrDef {
	subs := append([]*attrDef{
		attr("value", typeString), attr("type", typeString), attr("primary", typeBool), attr("display", typeString),
	}, extra...)
	return complexAttr(name, subs, multi)
}

var userType = newResourceType("User", "Users", "userName",
	newSchema(SchemaUser, append(commonAttrs(),
		attr("userName", typeString, always),
		attr("displayName", typeString),
		attr("nickName", typeString),
		attr("profileUrl", typeReference),
		attr("title", typeString),
		attr("userType", typeString),
		attr("locale", typeString),
		attr("preferredLanguage", typeString),
		attr("timezone", typeString),
		attr("description", typeString),
		attr("active", typeBool, defaultValue(true)),
		attr("password", typeString, never, writeOnly),
		complexAttr("name", []*attrDef{
			attr("formatted", typeString), attr("familyName", typeString), attr("givenName", typeString),
			attr("middleName", typeString), attr("honorificPrefix", typeString), attr("honorificSuffix", typeString),
		}),
		plural("emails", attr("secondary", typeBool), attr("verified", typeBool),
			attr("pendingVerificationData", typeString, readOnly)),
		plural("phoneNumbers", attr("verified", typeBool)),
		plural("ims"),
		plural("photos"),
		complexAttr("addresses", []*attrDef{
			attr("formatted", typeString), attr("streetAddress", typeString), attr("locality", typeString),
			attr("region", typeString), attr("postalCode", typeString), attr("country", typeString),
			attr("type", typeString), attr("primary", typeBool),
		}, multi),
		complexAttr("groups", []*attrDef{
			attr("value", typeString, always, exact), attr("ocid", typeString, exact), attr("$ref", typeReference),
			attr("display", typeString), attr("nonUniqueDisplay", typeString), attr("externalId", typeString),
			attr("type", typeString, onRequest), attr("membershipOcid", typeString, exact), attr("dateAdded", typeDateTime),
		}, multi, onRequest, serverSide),
		plural("entitlements"),
		plural("roles"),
		plural("x509Certificates"),
	)...),
	newSchema(SchemaEnterprise,
		attr("employeeNumber", typeString), attr("costCenter", typeString), attr("organization", typeString),
		attr("division", typeString), attr("department", typeString),
		complexAttr("manager", []*attrDef{attr("value", typeString, exact), attr("$ref", typeReference), attr("displayName", typeString, readOnly)}),
	),
	newSchema(SchemaUserExt,
		attr("isFederatedUser", typeBool, defaultValue(false)),
		attr("isAuthenticationDelegated", typeBool, never),
		attr("status", typeString, onRequest),
		attr("provider", typeString),
		attr("preferredUiLandingPage", typeString),
		attr("creationMechanism", typeString, onRequest, immutable),
		attr("doNotShowGettingStarted", typeBool),
		attr("bypassNotification", typeBool, never),
		attr("isAccountRecoveryEnrolled", typeBool, onRequest),
		attr("accountRecoveryRequired", typeBool, onRequest),
		attr("serviceUser", typeBool),
	),
	newSchema(SchemaCapabilities,
		attr("canUseApiKeys", typeBool, defaultValue(true)),
		attr("canUseAuthTokens", typeBool, defaultValue(true)),
		attr("canUseConsolePassword", typeBool, defaultValue(true)),
		attr("canUseCustomerSecretKeys", typeBool, defaultValue(true)),
		attr("canUseOAuth2ClientCredentials", typeBool, defaultValue(true)),
		attr("canUseSmtpCredentials", typeBool, defaultValue(true)),
		attr("canUseDbCredentials", typeBool, defaultValue(true)),
		attr("canUseConsole", typeBool, defaultValue(true)),
	),
	newSchema(SchemaSelfChange, attr("allowSelfChange", typeBool)),
	// Whether the user is locked out (Oracle's create and get examples show
	// "locked": {"on": false}); never locked here: sign-in is not emulated.
	newSchema(SchemaUserState,
		complexAttr("locked", []*attrDef{
			attr("on", typeBool), attr("reason", typeInteger), attr("expired", typeBool), attr("lockDate", typeDateTime),
		}, readOnly, defaultValue(map[string]any{"on": false})),
	),
)

var groupType = newResourceType("Group", "Groups", "displayName",
	newSchema(SchemaGroup, append(commonAttrs(),
		attr("displayName", typeString, always),
		attr("nonUniqueDisplayName", typeString, always),
		complexAttr("members", []*attrDef{
			attr("value", typeString, always, exact), attr("type", typeString, exact), attr("dateAdded", typeDateTime, readOnly),
			attr("ocid", typeString, always, exact), attr("membershipOcid", typeString, exact, readOnly),
			attr("$ref", typeReference, exact, readOnly), attr("display", typeString, readOnly), attr("name", typeString, readOnly),
		}, multi, onRequest),
	)...),
	newSchema(SchemaGroupExt,
		attr("description", typeString),
		attr("creationMechanism", typeString, onRequest, immutable),
		complexAttr("owners", []*attrDef{
			attr("value", typeString, exact), attr("type", typeString, exact), attr("display", typeString, readOnly),
			attr("$ref", typeReference, readOnly),
		}, multi, onRequest),
	),
	newSchema(SchemaRequestable, attr("requestable", typeBool)),
)

// capabilityNames are the capability flags, in the order the SDK lists them.
var capabilityNames = []string{
	"canUseApiKeys", "canUseAuthTokens", "canUseConsolePassword", "canUseCustomerSecretKeys",
	"canUseOAuth2ClientCredentials", "canUseSmtpCredentials", "canUseDbCredentials", "canUseConsole",
}
