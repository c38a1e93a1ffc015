package scimserver

import "strings"

// The schema URNs of RFC 7643 the server serves.
const (
	SchemaUser           = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaListResponse   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaPatchOp        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaSearchRequest  = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	SchemaSPConfig       = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResourceType   = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema         = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// attrDef is one attribute of a schema (RFC 7643 §7): what the server
// coerces, keeps read-only and describes in /Schemas. Attributes a request
// carries that no schema names are kept as sent (an IdP's custom
// extension): the server stores what the IdP asserts.
type attrDef struct {
	name        string
	typ         string // string, boolean, complex, reference, dateTime, integer, decimal, binary
	multi       bool
	required    bool
	caseExact   bool
	mutability  string // readWrite (""), readOnly, immutable, writeOnly
	returned    string // default (""), always, never, request
	uniqueness  string // none (""), server
	refTypes    []string
	canonical   []string
	description string
	sub         []attrDef
}

func str(name, desc string) attrDef { return attrDef{name: name, typ: "string", description: desc} }

func boolean(name, desc string) attrDef {
	return attrDef{name: name, typ: "boolean", description: desc}
}

// multiValued is a multi-valued complex attribute with the usual value,
// display, type and primary sub-attributes (RFC 7643 §2.4).
func multiValued(name, desc string, types ...string) attrDef {
	t := str("type", "A label indicating the attribute's function.")
	t.canonical = types
	return attrDef{name: name, typ: "complex", multi: true, description: desc, sub: []attrDef{
		str("value", "The attribute's significant value."),
		str("display", "A human-readable name, primarily used for display purposes."),
		t,
		boolean("primary", "Whether this is the preferred value."),
	}}
}

var userSchema = []attrDef{
	{name: "userName", typ: "string", required: true, uniqueness: "server",
		description: "Unique identifier for the User, typically used by the user to directly authenticate to the service provider."},
	{name: "name", typ: "complex", description: "The components of the user's real name.", sub: []attrDef{
		str("formatted", "The full name, formatted for display."),
		str("familyName", "The family name of the User."),
		str("givenName", "The given name of the User."),
		str("middleName", "The middle name(s) of the User."),
		str("honorificPrefix", "The honorific prefix(es) of the User."),
		str("honorificSuffix", "The honorific suffix(es) of the User."),
	}},
	str("displayName", "The name of the User, suitable for display to end-users."),
	str("nickName", "The casual way to address the user."),
	{name: "profileUrl", typ: "reference", refTypes: []string{"external"}, description: "A URI that is a uniform resource locator of the User's online profile."},
	str("title", "The user's title, such as \"Vice President\"."),
	str("userType", "Used to identify the relationship between the organization and the user."),
	str("preferredLanguage", "The User's preferred written or spoken language."),
	str("locale", "The User's default location for localizing."),
	str("timezone", "The User's time zone in the Olson time zone database format."),
	boolean("active", "A Boolean value indicating the User's administrative status."),
	{name: "password", typ: "string", mutability: "writeOnly", returned: "never",
		description: "Accepted and discarded: iamflow never stores or forwards a password."},
	multiValued("emails", "Email addresses for the user.", "work", "home", "other"),
	multiValued("phoneNumbers", "Phone numbers for the User.", "work", "home", "mobile", "fax", "pager", "other"),
	multiValued("ims", "Instant messaging addresses for the User."),
	multiValued("photos", "URLs of photos of the User.", "photo", "thumbnail"),
	{name: "addresses", typ: "complex", multi: true, description: "A physical mailing address for this User.", sub: []attrDef{
		str("formatted", "The full mailing address."),
		str("streetAddress", "The full street address component."),
		str("locality", "The city or locality component."),
		str("region", "The state or region component."),
		str("postalCode", "The zip code or postal code component."),
		str("country", "The country name component."),
		{name: "type", typ: "string", canonical: []string{"work", "home", "other"}, description: "A label indicating the attribute's function."},
		boolean("primary", "Whether this is the preferred mailing address."),
	}},
	{name: "groups", typ: "complex", multi: true, mutability: "readOnly",
		description: "A list of groups to which the user belongs, maintained by the server from the groups' members.", sub: []attrDef{
			{name: "value", typ: "string", mutability: "readOnly", description: "The identifier of the User's group."},
			{name: "$ref", typ: "reference", refTypes: []string{"Group"}, mutability: "readOnly", description: "The URI of the corresponding Group resource."},
			{name: "display", typ: "string", mutability: "readOnly", description: "A human-readable name of the group."},
			{name: "type", typ: "string", mutability: "readOnly", canonical: []string{"direct"}, description: "How the membership was derived."},
		}},
	multiValued("entitlements", "A list of entitlements for the User."),
	multiValued("roles", "A list of roles for the User."),
	multiValued("x509Certificates", "A list of certificates issued to the User."),
}

var enterpriseSchema = []attrDef{
	str("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
	str("costCenter", "Identifies the name of a cost center."),
	str("organization", "Identifies the name of an organization."),
	str("division", "Identifies the name of a division."),
	str("department", "Identifies the name of a department."),
	{name: "manager", typ: "complex", description: "The User's manager.", sub: []attrDef{
		str("value", "The id of the SCIM resource representing the User's manager."),
		{name: "$ref", typ: "reference", refTypes: []string{"User"}, description: "The URI of the SCIM resource representing the User's manager."},
		{name: "displayName", typ: "string", mutability: "readOnly", description: "The displayName of the User's manager."},
	}},
}

var groupSchema = []attrDef{
	{name: "displayName", typ: "string", required: true, uniqueness: "server",
		description: "A human-readable name for the Group; unique in the pushed source, as in an identity domain."},
	{name: "members", typ: "complex", multi: true, description: "A list of members of the Group (Users).", sub: []attrDef{
		{name: "value", typ: "string", mutability: "immutable", description: "Identifier of the member of this Group."},
		{name: "$ref", typ: "reference", refTypes: []string{"User"}, mutability: "immutable", description: "The URI of the member resource."},
		{name: "display", typ: "string", mutability: "readOnly", description: "The member's userName or displayName."},
		{name: "type", typ: "string", mutability: "immutable", canonical: []string{"User"}, description: "The type of the member: User."},
	}},
}

// lookupDef finds the definition of name (case-insensitive) in defs.
func lookupDef(defs []attrDef, name string) (attrDef, bool) {
	for _, d := range defs {
		if strings.EqualFold(d.name, name) {
			return d, true
		}
	}
	return attrDef{}, false
}

// kind is a resource type: users or groups.
type kind int

const (
	kindUser kind = iota
	kindGroup
)

func (k kind) String() string {
	if k == kindGroup {
		return "Group"
	}
	return "User"
}

func (k kind) endpoint() string { return "/" + k.String() + "s" }

func (k kind) coreSchema() string {
	if k == kindGroup {
		return SchemaGroup
	}
	return SchemaUser
}

func (k kind) defs() []attrDef {
	if k == kindGroup {
		return groupSchema
	}
	return userSchema
}

// extensions are the schema extensions the resource type declares.
func (k kind) extensions() map[string][]attrDef {
	if k == kindGroup {
		return nil
	}
	return map[string][]attrDef{SchemaEnterpriseUser: enterpriseSchema}
}
