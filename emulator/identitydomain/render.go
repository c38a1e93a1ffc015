package identitydomain

import (
	"maps"
	"slices"
)

// Rendering builds a resource's full SCIM representation (every attribute
// except returned=never ones; returned=request ones only when the projection
// wants them, because they are costly); projection.apply then trims it.
// Render with the store lock held. The maps returned share nested values with
// the store, which never modifies a committed value, so they may be encoded
// after the lock is released.

// renderCommon adds the server-computed attributes every resource has.
func (d *Domain) renderCommon(out map[string]any, r *resource, kind, endpoint, base string) {
	out["id"] = r.id
	out["ocid"] = r.ocid
	out["meta"] = map[string]any{
		"resourceType": kind,
		"created":      formatTime(r.created),
		"lastModified": formatTime(r.modified),
		"version":      r.version,
		"location":     base + "/admin/v1/" + endpoint + "/" + r.id,
	}
	out["idcsCreatedBy"] = actorJSON(r.createdBy, base)
	out["idcsLastModifiedBy"] = actorJSON(r.modifiedBy, base)
	out["domainOcid"] = d.cfg.DomainOCID
	out["compartmentOcid"] = d.cfg.CompartmentOCID
	out["tenancyOcid"] = d.cfg.TenancyOCID
}

func actorJSON(a actorRef, base string) map[string]any {
	return map[string]any{"value": a.id, "display": a.name, "ocid": a.ocid, "type": "App", "$ref": base + "/admin/v1/Apps/" + a.id}
}

// copyAttrs copies stored attributes into out, applying schema defaults to
// attributes that were never set.
func copyAttrs(rt *resourceType, attrs, out map[string]any) {
	for k, v := range attrs {
		if k != "password" {
			out[k] = v
		}
	}
	for _, def := range rt.defaults {
		if _, ok := out[def.name]; !ok {
			out[def.name] = def.def
		}
	}
	for _, e := range rt.extOrder {
		var withDefaults map[string]any
		cur, _ := out[e.urn].(map[string]any)
		for _, def := range e.attrs {
			if def.def == nil {
				continue
			}
			if _, ok := cur[def.name]; ok {
				continue
			}
			if withDefaults == nil {
				withDefaults = make(map[string]any, len(cur)+len(e.attrs))
				for k, v := range cur {
					withDefaults[k] = v
				}
			}
			withDefaults[def.name] = def.def
		}
		if withDefaults != nil {
			out[e.urn] = withDefaults
		}
	}
}

func (d *Domain) renderUser(u *userRec, base string, p *projection) map[string]any {
	out := make(map[string]any, len(u.attrs)+16)
	copyAttrs(userType, u.attrs, out)
	if emails, ok := out["emails"].([]any); ok {
		out["emails"] = emailDefaults(emails)
	}
	d.renderCommon(out, &u.resource, "User", "Users", base)
	if p.wants("groups") && len(u.groups) > 0 {
		ms := u.sortedGroups()
		list := make([]any, len(ms))
		for i, m := range ms {
			g := m.group
			e := map[string]any{
				"value":          g.id,
				"ocid":           g.ocid,
				"$ref":           base + "/admin/v1/Groups/" + g.id,
				"display":        g.displayName(),
				"membershipOcid": d.membershipOCID(m),
				"dateAdded":      formatTime(m.added),
				"type":           "direct",
			}
			if s := g.str("nonUniqueDisplayName"); s != "" {
				e["nonUniqueDisplay"] = s
			}
			if s := g.str("externalId"); s != "" {
				e["externalId"] = s
			}
			list[i] = e
		}
		out["groups"] = list
	}
	return out
}

// renderGroup fails with tooMany when members are asked for without paging
// and the group has more than maxMembers.
func (d *Domain) renderGroup(g *groupRec, base string, p *projection) (map[string]any, error) {
	out := make(map[string]any, len(g.attrs)+16)
	copyAttrs(groupType, g.attrs, out)
	d.renderCommon(out, &g.resource, "Group", "Groups", base)
	if !p.wants("members") && p.memberPage == nil {
		return out, nil
	}
	ms := g.members
	if mp := p.memberPage; mp != nil {
		lo := min(mp.start-1, len(ms))
		hi := len(ms)
		if mp.count >= 0 {
			hi = min(lo+mp.count, len(ms))
		}
		ms = ms[lo:hi]
		if len(ms) > maxMembers {
			ms = ms[:maxMembers]
		}
	} else if len(ms) > maxMembers {
		return nil, errTooMany("Group %s has %d members, more than the %d that can be returned in one response. "+
			"Page them with attributes=members[startIndex=1%%26count=%d].", g.id, len(ms), maxMembers, maxMembers)
	}
	if len(ms) == 0 {
		return out, nil
	}
	list := make([]any, len(ms))
	for i, m := range ms {
		list[i] = d.memberJSON(m, base)
	}
	out["members"] = list
	return out, nil
}

func (d *Domain) memberJSON(m *membership, base string) map[string]any {
	u := m.user
	return map[string]any{
		"value":          u.id,
		"type":           "User",
		"display":        u.display(),
		"name":           u.userName(),
		"ocid":           u.ocid,
		"membershipOcid": d.membershipOCID(m),
		"dateAdded":      formatTime(m.added),
		"$ref":           base + "/admin/v1/Users/" + u.id,
	}
}

// emailDefaults returns emails with secondary and verified false where they
// are not set, as identity domains answer them (Oracle's examples); stored
// values are not changed.
func emailDefaults(emails []any) []any {
	out, cloned := emails, false
	for i, e := range emails {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		_, hasSec := m["secondary"]
		_, hasVer := m["verified"]
		if hasSec && hasVer {
			continue
		}
		if !cloned {
			out, cloned = slices.Clone(emails), true
		}
		c := maps.Clone(m)
		if !hasSec {
			c["secondary"] = false
		}
		if !hasVer {
			c["verified"] = false
		}
		out[i] = c
	}
	return out
}
