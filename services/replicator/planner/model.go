package planner

import (
	"maps"
	"slices"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// UserState is the part of a user the replicator compares and copies,
// built from the SDK model by FromSDKUser.
type UserState struct {
	ID          string
	ExternalID  string
	UserName    string
	DisplayName string
	GivenName   string
	FamilyName  string
	// Emails are the user's emails but the recovery email (which users set
	// themselves), sorted.
	Emails []Email
	// Active is false only when the domain says so (nil reads as active).
	Active    bool
	Federated bool
	// Custom are the enterprise extension's string attributes by name
	// (employeeNumber, costCenter, organization, division, department);
	// empty values are left out.
	Custom map[string]string
	// Groups are the ids of the user's groups, sorted (read only when asked for).
	Groups []string
}

// Email is one of a user's emails.
type Email struct {
	Value   string
	Type    string
	Primary bool
}

// GroupState is the part of a group the replicator compares and copies.
type GroupState struct {
	ID          string
	ExternalID  string
	DisplayName string
	Description string
	// Members are the ids of the group's user members, sorted.
	Members []string
}

// FromSDKUser returns the state of u.
func FromSDKUser(u identitydomains.User) UserState {
	s := UserState{
		ID:          str(u.Id),
		ExternalID:  str(u.ExternalId),
		UserName:    str(u.UserName),
		DisplayName: str(u.DisplayName),
		Active:      u.Active == nil || *u.Active,
	}
	if u.Name != nil {
		s.GivenName = str(u.Name.GivenName)
		s.FamilyName = str(u.Name.FamilyName)
	}
	for _, e := range u.Emails {
		if e.Type == identitydomains.UserEmailsTypeRecovery || str(e.Value) == "" {
			continue
		}
		s.Emails = append(s.Emails, Email{Value: str(e.Value), Type: emailType(e.Type), Primary: e.Primary != nil && *e.Primary})
	}
	s.Emails = sortEmails(s.Emails)
	if x := u.UrnIetfParamsScimSchemasOracleIdcsExtensionUserUser; x != nil && x.IsFederatedUser != nil {
		s.Federated = *x.IsFederatedUser
	}
	if x := u.UrnIetfParamsScimSchemasExtensionEnterprise2_0User; x != nil {
		for name, v := range map[string]*string{AttrEmployeeNumber: x.EmployeeNumber, AttrCostCenter: x.CostCenter,
			AttrOrganization: x.Organization, AttrDivision: x.Division, AttrDepartment: x.Department} {
			if str(v) != "" {
				if s.Custom == nil {
					s.Custom = map[string]string{}
				}
				s.Custom[name] = *v
			}
		}
	}
	for _, g := range u.Groups {
		if id := str(g.Value); id != "" {
			s.Groups = append(s.Groups, id)
		}
	}
	slices.Sort(s.Groups)
	return s
}

// emailType is t as a string, one shared string for each type the SDK
// knows (each decoded email carries its own copy).
func emailType(t identitydomains.UserEmailsTypeEnum) string {
	switch t {
	case identitydomains.UserEmailsTypeWork:
		return string(identitydomains.UserEmailsTypeWork)
	case identitydomains.UserEmailsTypeHome:
		return string(identitydomains.UserEmailsTypeHome)
	case identitydomains.UserEmailsTypeOther:
		return string(identitydomains.UserEmailsTypeOther)
	}
	return string(t)
}

// FromSDKGroup returns the state of g.
func FromSDKGroup(g identitydomains.Group) GroupState {
	s := GroupState{ID: str(g.Id), ExternalID: str(g.ExternalId), DisplayName: str(g.DisplayName)}
	if x := g.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup; x != nil {
		s.Description = str(x.Description)
	}
	if len(g.Members) > 0 {
		s.Members = make([]string, 0, len(g.Members)) // a directory's memberships, without append's slack
	}
	for _, m := range g.Members {
		if m.Type != "" && m.Type != identitydomains.GroupMembersTypeUser {
			continue
		}
		if id := str(m.Value); id != "" {
			s.Members = append(s.Members, id)
		}
	}
	slices.Sort(s.Members)
	s.Members = slices.Compact(s.Members)
	return s
}

// SDKUser returns the body that creates s (ID and Groups are not sent;
// memberships are add_member actions).
func (s UserState) SDKUser() identitydomains.User {
	u := identitydomains.User{
		UserName:    ptr(s.UserName),
		ExternalId:  ptr(s.ExternalID),
		DisplayName: ptr(s.DisplayName),
		Active:      &s.Active,
	}
	if s.GivenName != "" || s.FamilyName != "" {
		u.Name = &identitydomains.UserName{GivenName: ptr(s.GivenName), FamilyName: ptr(s.FamilyName)}
	}
	for _, e := range s.Emails {
		u.Emails = append(u.Emails, identitydomains.UserEmails{
			Value: ptr(e.Value), Type: identitydomains.UserEmailsTypeEnum(e.Type), Primary: boolPtr(e.Primary)})
	}
	if len(s.Custom) > 0 {
		x := &identitydomains.ExtensionEnterprise20User{}
		for name, v := range s.Custom {
			switch name {
			case AttrEmployeeNumber:
				x.EmployeeNumber = ptr(v)
			case AttrCostCenter:
				x.CostCenter = ptr(v)
			case AttrOrganization:
				x.Organization = ptr(v)
			case AttrDivision:
				x.Division = ptr(v)
			case AttrDepartment:
				x.Department = ptr(v)
			}
		}
		u.UrnIetfParamsScimSchemasExtensionEnterprise2_0User = x
	}
	return u
}

// SDKUserCore returns the body that creates s with its userName and
// externalId alone, and its name when withName: the first step of creating
// a user a target refused whole (see PatchOps for the rest).
func (s UserState) SDKUserCore(withName bool) identitydomains.User {
	u := identitydomains.User{UserName: ptr(s.UserName), ExternalId: ptr(s.ExternalID)}
	if withName {
		u.Name = &identitydomains.UserName{GivenName: ptr(s.GivenName), FamilyName: ptr(s.FamilyName)}
	}
	return u
}

// SDKGroup returns the body that creates s (members are add_member actions).
func (s GroupState) SDKGroup() identitydomains.Group {
	g := identitydomains.Group{DisplayName: ptr(s.DisplayName), ExternalId: ptr(s.ExternalID)}
	if s.Description != "" {
		g.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup = &identitydomains.ExtensionGroupGroup{Description: ptr(s.Description)}
	}
	return g
}

// userAttrPath is the SCIM PATCH path of a user attribute.
func userAttrPath(attr string) string {
	switch attr {
	case AttrEmployeeNumber, AttrCostCenter, AttrOrganization, AttrDivision, AttrDepartment:
		return identitydomain.SchemaEnterpriseUser + ":" + attr
	}
	return attr
}

// GroupAttrPath is the SCIM PATCH path of a group attribute.
func GroupAttrPath(attr string) string {
	if attr == AttrDescription {
		return identitydomain.SchemaGroupExtension + ":description"
	}
	return attr
}

// userString returns a string attribute of s ("" for emails and active).
func (s UserState) userString(attr string) string {
	switch attr {
	case AttrUserName:
		return s.UserName
	case AttrDisplayName:
		return s.DisplayName
	case AttrGivenName:
		return s.GivenName
	case AttrFamilyName:
		return s.FamilyName
	}
	return s.Custom[attr]
}

// setUserString sets a string attribute of s.
func (s *UserState) setUserString(attr, v string) {
	switch attr {
	case AttrUserName:
		s.UserName = v
	case AttrDisplayName:
		s.DisplayName = v
	case AttrGivenName:
		s.GivenName = v
	case AttrFamilyName:
		s.FamilyName = v
	default:
		if v == "" {
			delete(s.Custom, attr)
			return
		}
		if s.Custom == nil {
			s.Custom = map[string]string{}
		}
		s.Custom[attr] = v
	}
}

// clone returns a deep copy of s.
func (s UserState) clone() UserState {
	s.Emails = slices.Clone(s.Emails)
	s.Custom = maps.Clone(s.Custom)
	s.Groups = slices.Clone(s.Groups)
	return s
}

// emailsValue is the PATCH value of emails.
func emailsValue(es []Email) []any {
	out := make([]any, len(es))
	for i, e := range es {
		out[i] = map[string]any{"value": e.Value, "type": e.Type, "primary": e.Primary}
	}
	return out
}

// emailsString renders emails for an audit record.
func emailsString(es []Email) string {
	parts := make([]string, len(es))
	for i, e := range es {
		p := e.Type + ":" + e.Value
		if e.Primary {
			p += "(primary)"
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// sortEmails orders emails by type, then case-insensitive value, so that
// equal sets compare equal.
func sortEmails(es []Email) []Email {
	slices.SortFunc(es, func(a, b Email) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.Value), strings.ToLower(b.Value))
	})
	return es
}

// sameEmails compares two sorted email lists; values compare case-insensitively.
func sameEmails(a, b []Email) bool {
	return slices.EqualFunc(a, b, func(x, y Email) bool {
		return x.Type == y.Type && x.Primary == y.Primary && strings.EqualFold(x.Value, y.Value)
	})
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func boolPtr(b bool) *bool { return &b }

// PatchOps are the PATCH operations that set every attribute of u but
// userName, externalId and name.
func PatchOps(u UserState) []identitydomains.Operations {
	var ops []identitydomains.Operations
	if u.DisplayName != "" {
		ops = append(ops, identitydomain.Replace(AttrDisplayName, u.DisplayName))
	}
	if len(u.Emails) > 0 {
		ops = append(ops, identitydomain.Replace(AttrEmails, emailsValue(u.Emails)))
	}
	for _, a := range []string{AttrEmployeeNumber, AttrCostCenter, AttrOrganization, AttrDivision, AttrDepartment} {
		if v := u.Custom[a]; v != "" {
			ops = append(ops, identitydomain.Replace(userAttrPath(a), v))
		}
	}
	if !u.Active {
		ops = append(ops, identitydomain.Replace(AttrActive, false))
	}
	return ops
}
