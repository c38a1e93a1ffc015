package identitydomain

import (
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/scimfilter"
)

// Views expose stored resources to the filter evaluator (scimfilter.Object)
// without rendering them: attribute values are typed from the schema, so
// caseExact strings compare exactly, dateTimes compare as times and unset
// attributes with a default (active, isFederatedUser, the capability flags)
// read as their default. Views are read with the store lock held.

var (
	lowerUserURN  = strings.ToLower(SchemaUser)
	lowerGroupURN = strings.ToLower(SchemaGroup)
)

type userView struct {
	d *Domain
	u *userRec
}

// Attr implements scimfilter.Object.
func (v userView) Attr(name string) any {
	switch name {
	case "groups":
		ms := v.u.sortedGroups()
		out := make([]any, len(ms))
		for i, m := range ms {
			out[i] = userGroupView{v.d, m}
		}
		return out
	case lowerUserURN:
		return v
	}
	if x, ok := v.d.commonAttr(&v.u.resource, "User", name); ok {
		return x
	}
	return attrView(userType, v.u.attrs, name)
}

type groupView struct {
	d *Domain
	g *groupRec
}

// Attr implements scimfilter.Object.
func (v groupView) Attr(name string) any {
	switch name {
	case "members":
		return membersView{v.d, v.g.members}
	case lowerGroupURN:
		return v
	}
	if x, ok := v.d.commonAttr(&v.g.resource, "Group", name); ok {
		return x
	}
	return attrView(groupType, v.g.attrs, name)
}

// commonAttr reads the server-computed attributes every resource has.
func (d *Domain) commonAttr(r *resource, kind, name string) (any, bool) {
	switch name {
	case "id":
		return r.id, true
	case "ocid":
		return scimfilter.CaseExact(r.ocid), true
	case "meta":
		return scimfilter.Map{"resourcetype": kind, "created": r.created, "lastmodified": r.modified,
			"version": scimfilter.CaseExact(r.version)}, true
	case "idcscreatedby":
		return actorObject(r.createdBy), true
	case "idcslastmodifiedby":
		return actorObject(r.modifiedBy), true
	case "domainocid":
		return d.cfg.DomainOCID, true
	case "compartmentocid":
		return d.cfg.CompartmentOCID, true
	case "tenancyocid":
		return d.cfg.TenancyOCID, true
	case "deleteinprogress":
		return false, true
	}
	return nil, false
}

func actorObject(a actorRef) scimfilter.Map {
	return scimfilter.Map{"value": scimfilter.CaseExact(a.id), "display": a.name, "type": scimfilter.CaseExact("App")}
}

// attrView reads a stored attribute (or extension) by lower-cased name.
func attrView(rt *resourceType, attrs map[string]any, name string) any {
	if ext := rt.ext(name); ext != nil {
		m, _ := attrs[ext.urn].(map[string]any)
		return schemaView{ext, m}
	}
	return schemaView{rt.core, attrs}.Attr(name)
}

type schemaView struct {
	s *schema
	m map[string]any
}

// Attr implements scimfilter.Object.
func (v schemaView) Attr(name string) any {
	if def := v.s.attrs[name]; def != nil {
		if def.ret == retNever {
			return nil
		}
		x := v.m[def.name]
		if x == nil {
			x = def.def
		}
		return typed(def, x)
	}
	return scimfilter.Map(v.m).Attr(name)
}

type complexView struct {
	def *attrDef
	m   map[string]any
}

// Attr implements scimfilter.Object.
func (v complexView) Attr(name string) any {
	if sd := v.def.subs[name]; sd != nil {
		return typed(sd, v.m[sd.name])
	}
	return scimfilter.Map(v.m).Attr(name)
}

type multiView struct {
	def  *attrDef
	list []any
}

// Len and At implement scimfilter.Multi.
func (v multiView) Len() int     { return len(v.list) }
func (v multiView) At(i int) any { return typedSingle(v.def, v.list[i]) }

func typed(def *attrDef, v any) any {
	if v == nil {
		return nil
	}
	if def.multi {
		if list, ok := v.([]any); ok {
			return multiView{def, list}
		}
	}
	return typedSingle(def, v)
}

func typedSingle(def *attrDef, v any) any {
	switch def.typ {
	case typeComplex:
		if m, ok := v.(map[string]any); ok {
			return complexView{def, m}
		}
	case typeDateTime:
		if s, ok := v.(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return t
			}
		}
	case typeString, typeReference:
		if s, ok := v.(string); ok && def.exact {
			return scimfilter.CaseExact(s)
		}
	}
	return v
}

// membersView is a group's members as a multi-valued attribute.
type membersView struct {
	d  *Domain
	ms []*membership
}

// Len and At implement scimfilter.Multi.
func (v membersView) Len() int     { return len(v.ms) }
func (v membersView) At(i int) any { return memberView{v.d, v.ms[i]} }

type memberView struct {
	d *Domain
	m *membership
}

// Attr implements scimfilter.Object.
func (v memberView) Attr(name string) any {
	u := v.m.user
	switch name {
	case "value":
		return scimfilter.CaseExact(u.id)
	case "type":
		return scimfilter.CaseExact("User")
	case "ocid":
		return scimfilter.CaseExact(u.ocid)
	case "display":
		return u.display()
	case "name":
		return u.userName()
	}
	return v.d.membershipAttr(v.m, name)
}

// userGroupView is one value of a user's groups attribute.
type userGroupView struct {
	d *Domain
	m *membership
}

// Attr implements scimfilter.Object.
func (v userGroupView) Attr(name string) any {
	g := v.m.group
	switch name {
	case "value":
		return scimfilter.CaseExact(g.id)
	case "ocid":
		return scimfilter.CaseExact(g.ocid)
	case "display":
		return g.displayName()
	case "nonuniquedisplay":
		return g.str("nonUniqueDisplayName")
	case "externalid":
		return g.str("externalId")
	case "type":
		return "direct"
	}
	return v.d.membershipAttr(v.m, name)
}

// membershipAttr answers the sub-attributes a membership has on both sides
// (a group's members and a user's groups): when it was made and its OCID.
func (d *Domain) membershipAttr(m *membership, name string) any {
	switch name {
	case "dateadded":
		return m.added
	case "membershipocid":
		return scimfilter.CaseExact(d.membershipOCID(m))
	}
	return nil
}
