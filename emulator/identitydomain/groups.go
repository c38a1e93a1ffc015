package identitydomain

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
)

// Group events: POST emits creategroup, then addusertogroup for each member
// in the body. PUT and PATCH emit one updategroup when attributes or members
// changed (adminValuesAdded/Removed hold the changed attributes, and members
// added or removed under "members", which is what the kiranthakkar functions
// read to tell a membership update from a rename), then removeuserfromgroup
// and addusertogroup, one per member (adminResource = the group,
// adminRefResource = the user). DELETE emits deletegroup only.
//
// PUT replaces the members only when the body has a members attribute;
// without one the members are kept (RFC 7644 §3.5.1 lets a server treat an
// omitted attribute as not asserted; clearing a group because a client left
// members out of a rename is not a risk worth emulating).

func (d *Domain) createGroup(w http.ResponseWriter, r *request) error {
	attrs, rawMembers, proj, err := resourceBody(groupType, r)
	if err != nil {
		return err
	}
	return d.commitResource(w, r, http.StatusCreated, groupType, proj, func(tx *txn) (map[string]any, string, error) {
		if err := uniqueName(groupType, d.store.groups.byName, attrs, nil); err != nil {
			return nil, "", err
		}
		var users []*userRec
		if rawMembers != nil {
			var err error
			if users, err = d.memberValues(rawMembers); err != nil {
				return nil, "", err
			}
		}
		now, a := d.clock.Now(), d.actor(r)
		g := &groupRec{resource: newResource(d.ids.hex32(), d.ids.ocid("group"), d.ids.hex32(), attrs, now, a)}
		d.store.addGroup(g)
		full, _ := d.renderGroup(g, r.base, defaultProjection)
		tx.emit(change{typ: EventCreateGroup, res: groupSnap(g), added: d.renderedFull(groupType, full)})
		for _, u := range users {
			if _, added := d.store.addMember(g, u, now); added {
				tx.emit(memberChange(EventAddUserToGroup, g, u))
			}
		}
		doc, err := d.renderGroup(g, r.base, proj)
		return doc, g.version, err
	})
}

func (d *Domain) putGroup(w http.ResponseWriter, r *request) error {
	attrs, rawMembers, proj, err := resourceBody(groupType, r)
	if err != nil {
		return err
	}
	return d.updateGroup(w, r, proj, func(g *groupRec, me *memberEdit) (map[string]any, error) {
		if rawMembers != nil {
			if err := me.apply("replace", membersPath, rawMembers); err != nil {
				return nil, err
			}
		}
		return attrs, nil
	})
}

func (d *Domain) patchGroup(w http.ResponseWriter, r *request) error {
	ops, proj, err := parsePatchRequest(groupType, r)
	if err != nil {
		return err
	}
	return d.updateGroup(w, r, proj, func(g *groupRec, me *memberEdit) (map[string]any, error) {
		p := &patcher{d: d, rt: groupType, attrs: deepCopy(g.attrs).(map[string]any), members: me}
		if err := p.applyAll(ops); err != nil {
			return nil, err
		}
		return p.attrs, nil
	})
}

// updateGroup runs a PUT or PATCH: edit computes the new attributes and
// stages member changes, with the store locked.
func (d *Domain) updateGroup(w http.ResponseWriter, r *request, proj *projection, edit func(*groupRec, *memberEdit) (map[string]any, error)) error {
	return d.commitResource(w, r, http.StatusOK, groupType, proj, func(tx *txn) (map[string]any, string, error) {
		g, err := writeTarget(d.groupKind(), r)
		if err != nil {
			return nil, "", err
		}
		me := newMemberEdit(d, g)
		attrs, err := edit(g, me)
		if err != nil {
			return nil, "", err
		}
		if err := uniqueName(groupType, d.store.groups.byName, attrs, g); err != nil {
			return nil, "", err
		}
		now := d.clock.Now()
		removed, added := me.commit(now)
		old, oldName := g.attrs, g.displayName()
		g.attrs = attrs
		d.store.groups.rename(g, oldName)
		d.touch(&g.resource, d.actor(r), now)
		tx.emit(groupChanges(g, old, attrs, added, removed)...)
		doc, err := d.renderGroup(g, r.base, proj)
		return doc, g.version, err
	})
}

func memberSummary(users []*userRec) []any {
	out := make([]any, len(users))
	for i, u := range users {
		out[i] = map[string]any{"value": u.id, "type": "User", "display": u.display()}
	}
	return out
}

func memberChange(typ string, g *groupRec, u *userRec) change {
	ref := userSnap(u)
	c := change{typ: typ, res: groupSnap(g), ref: &ref}
	vals := map[string]any{"members": memberSummary([]*userRec{u})}
	if typ == EventAddUserToGroup {
		c.added = vals
	} else {
		c.removed = vals
	}
	return c
}

func groupChanges(g *groupRec, old, cur map[string]any, addedUsers, removedUsers []*userRec) []change {
	added, removed := diffAttrs(old, cur)
	if len(addedUsers) > 0 {
		added["members"] = memberSummary(addedUsers)
	}
	if len(removedUsers) > 0 {
		removed["members"] = memberSummary(removedUsers)
	}
	var out []change
	if len(added)+len(removed) > 0 {
		out = append(out, change{typ: EventUpdateGroup, res: groupSnap(g), added: added, removed: removed})
	}
	for _, u := range removedUsers {
		out = append(out, memberChange(EventRemoveUserFromGroup, g, u))
	}
	for _, u := range addedUsers {
		out = append(out, memberChange(EventAddUserToGroup, g, u))
	}
	return out
}

// memberValues reads a members value: an array of {"value": userId,
// "type": "User"} objects (a single object is accepted too). Only users can be
// members (the SDK's GroupMembers type enum has only "User").
func (d *Domain) memberValues(v any) ([]*userRec, error) {
	list, ok := v.([]any)
	if !ok {
		if m, isMap := v.(map[string]any); isMap {
			list = []any{m}
		} else {
			return nil, errInvalidValue("members must be an array of {\"value\": \"<user id>\", \"type\": \"User\"} objects.")
		}
	}
	out := make([]*userRec, 0, len(list))
	seen := make(map[*userRec]bool, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, errInvalidValue("members must be an array of {\"value\": \"<user id>\", \"type\": \"User\"} objects.")
		}
		id, _ := m[keyFor(m, "value")].(string)
		if id == "" {
			return nil, errMissing("members.value")
		}
		if t, ok := m[keyFor(m, "type")]; ok && t != nil {
			if ts, _ := t.(string); !strings.EqualFold(ts, "User") {
				return nil, errInvalidValue("Invalid members.type %v for member %s: only User members are supported.", t, id)
			}
		}
		u := d.store.users.byID[id]
		if u == nil {
			return nil, errInvalidValue("Invalid members.value %s: no such user.", id)
		}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out, nil
}

// sortBySeq orders users by when they joined g.
func sortBySeq(users []*userRec, g *groupRec) {
	slices.SortFunc(users, func(a, b *userRec) int { return cmp.Compare(g.memberIdx[a].seq, g.memberIdx[b].seq) })
}
