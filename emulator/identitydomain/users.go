package identitydomain

import (
	"net/http"
	"strings"
)

// User events: POST emits createuser; PUT and PATCH emit updateuser when any
// attribute other than active changed (adminValuesAdded holds the new values,
// adminValuesRemoved the old ones) and activateuser or deactivateuser when
// active changed (in that order; IDCS's behaviour for a write that does both
// is not documented); DELETE emits deleteuser only (the memberships it
// removes emit no removeuserfromgroup; not documented either way).

func (d *Domain) createUser(w http.ResponseWriter, r *request) error {
	attrs, _, proj, err := resourceBody(userType, r)
	if err != nil {
		return err
	}
	userServerValues(attrs)
	return d.commitResource(w, r, http.StatusCreated, userType, proj, func(tx *txn) (map[string]any, string, error) {
		if err := uniqueName(userType, d.store.users.byName, attrs, nil); err != nil {
			return nil, "", err
		}
		now, a := d.clock.Now(), d.actor(r)
		u := &userRec{resource: newResource(d.ids.hex32(), d.ids.ocid("user"), d.ids.hex32(), attrs, now, a)}
		d.store.addUser(u)
		tx.emit(change{typ: EventCreateUser, res: userSnap(u),
			added: d.renderedFull(userType, d.renderUser(u, r.base, defaultProjection))})
		return d.renderUser(u, r.base, proj), u.version, nil
	})
}

func (d *Domain) putUser(w http.ResponseWriter, r *request) error {
	attrs, _, proj, err := resourceBody(userType, r)
	if err != nil {
		return err
	}
	return d.updateUser(w, r, proj, func(u *userRec) (map[string]any, error) {
		if _, ok := attrs["password"]; !ok {
			if pw, ok := u.attrs["password"]; ok {
				attrs["password"] = pw
			}
		}
		return attrs, nil
	})
}

func (d *Domain) patchUser(w http.ResponseWriter, r *request) error {
	ops, proj, err := parsePatchRequest(userType, r)
	if err != nil {
		return err
	}
	return d.updateUser(w, r, proj, func(u *userRec) (map[string]any, error) {
		p := &patcher{d: d, rt: userType, attrs: deepCopy(u.attrs).(map[string]any)}
		if err := p.applyAll(ops); err != nil {
			return nil, err
		}
		return p.attrs, nil
	})
}

// updateUser runs a PUT or PATCH: edit computes the new attributes from the
// current user, with the store locked.
func (d *Domain) updateUser(w http.ResponseWriter, r *request, proj *projection, edit func(*userRec) (map[string]any, error)) error {
	return d.commitResource(w, r, http.StatusOK, userType, proj, func(tx *txn) (map[string]any, string, error) {
		u, err := writeTarget(d.userKind(), r)
		if err != nil {
			return nil, "", err
		}
		attrs, err := edit(u)
		if err != nil {
			return nil, "", err
		}
		userServerValues(attrs)
		if err := uniqueName(userType, d.store.users.byName, attrs, u); err != nil {
			return nil, "", err
		}
		old, oldName := u.attrs, u.userName()
		u.attrs = attrs
		d.store.users.rename(u, oldName)
		d.touch(&u.resource, d.actor(r), d.clock.Now())
		tx.emit(userChanges(u, old, attrs)...)
		return d.renderUser(u, r.base, proj), u.version, nil
	})
}

func activeOf(attrs map[string]any) bool {
	if b, ok := attrs["active"].(bool); ok {
		return b
	}
	return true
}

func userChanges(u *userRec, old, cur map[string]any) []change {
	added, removed := diffAttrs(old, cur)
	delete(added, "active")
	delete(removed, "active")
	var out []change
	if len(added)+len(removed) > 0 {
		out = append(out, change{typ: EventUpdateUser, res: userSnap(u), added: added, removed: removed})
	}
	if was, is := activeOf(old), activeOf(cur); was != is {
		typ := EventDeactivateUser
		if is {
			typ = EventActivateUser
		}
		out = append(out, change{typ: typ, res: userSnap(u),
			added: map[string]any{"active": is}, removed: map[string]any{"active": was}})
	}
	return out
}

// userServerValues fills in what identity domains compute for a user when
// the request does not say (the create and get examples of Oracle's REST API
// documentation, internal/identitydomain/testdata/oracle): name.formatted
// from the name's parts and displayName from name.formatted. (renderUser
// adds secondary and verified false to every email that lacks them. Oracle
// also adds a recovery copy of the primary work email; the emulator does
// not, so a user's emails stay what was written.)
func userServerValues(attrs map[string]any) {
	if name, ok := attrs["name"].(map[string]any); ok {
		if _, has := name["formatted"]; !has {
			var parts []string
			for _, k := range []string{"givenName", "middleName", "familyName"} {
				if s, _ := name[k].(string); strings.TrimSpace(s) != "" {
					parts = append(parts, strings.TrimSpace(s))
				}
			}
			if len(parts) > 0 {
				name["formatted"] = strings.Join(parts, " ")
			}
		}
		if _, has := attrs["displayName"]; !has {
			if f, _ := name["formatted"].(string); f != "" {
				attrs["displayName"] = f
			}
		}
	}
}
