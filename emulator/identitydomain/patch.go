package identitydomain

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/scimfilter"
)

// PATCH (RFC 7644 §3.5.2) with body
//
//	{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//	 "Operations":[{"op":"add|remove|replace","path":"...","value":...}]}
//
// op is case-insensitive (the SDK sends "ADD", "REMOVE", "REPLACE"). The
// operations apply in order and atomically: if one fails, nothing changes.
// Paths: attrPath (displayName, name.givenName, active), extension attributes
// (urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group:description),
// a whole extension, and valuePath filters (emails[type eq "work"].value,
// members[value eq "id"]). Without a path, value is an object of attributes.
// RFC 7644 behaviour where IDCS's is not documented:
//   - add to a multi-valued attribute appends values not already present;
//     replace replaces all of them; a complex attribute's sub-attributes are
//     merged by add and replace;
//   - a value filter that matches nothing is 400 noTarget (for members too:
//     removing a user who is not a member fails);
//   - remove without a path is 400 noTarget; replace of a required attribute
//     with null or its removal is 400;
//   - read-only attributes (id, meta, ocid, groups, ...) are 400 mutability;
//   - add of an existing member is a no-op.
// One extension to RFC 7644: {"op":"remove","path":"members","value":[...]}
// removes only the listed members (the RFC would remove all members and
// ignore the value; several SCIM clients send this form).

type patchOp struct {
	Op    string  `json:"op"`
	Path  *string `json:"path"`
	Value any     `json:"value"`
}

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

var membersPath = scimfilter.Path{Attr: scimfilter.NewAttrPath("", "members", "")}

// parsePatchRequest reads a PATCH of a resource of type rt: its operations
// and the attributes to answer with.
func parsePatchRequest(rt *resourceType, r *request) ([]patchOp, *projection, error) {
	ops, err := parsePatch(r)
	if err != nil {
		return nil, nil, err
	}
	proj, err := queryProjection(rt, r)
	if err != nil {
		return nil, nil, err
	}
	return ops, proj, nil
}

func parsePatch(r *request) ([]patchOp, error) {
	var pr patchRequest
	if err := decodeBody(r, &pr); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(pr.Schemas, func(s string) bool { return strings.EqualFold(s, SchemaPatchOp) }) {
		return nil, errInvalidValue("schemas must include %s.", SchemaPatchOp)
	}
	if len(pr.Operations) == 0 {
		return nil, errInvalidValue("Operations must hold at least one operation.")
	}
	for i := range pr.Operations {
		op := strings.ToLower(strings.TrimSpace(pr.Operations[i].Op))
		switch op {
		case "add", "remove", "replace":
		default:
			return nil, errInvalidSyntax("Operations[%d].op %q: want add, remove or replace.", i, pr.Operations[i].Op)
		}
		pr.Operations[i].Op = op
	}
	return pr.Operations, nil
}

// patcher applies operations to a private deep copy of a resource's attributes.
type patcher struct {
	d       *Domain
	rt      *resourceType
	attrs   map[string]any
	members *memberEdit // groups only
}

func (p *patcher) applyAll(ops []patchOp) error {
	for _, op := range ops {
		if err := p.apply(op); err != nil {
			return err
		}
	}
	return nil
}

func (p *patcher) apply(op patchOp) error {
	if op.Path != nil && strings.TrimSpace(*op.Path) != "" {
		return p.applyPath(op.Op, *op.Path, op.Value)
	}
	if op.Op == "remove" {
		return errNoTarget("A remove operation needs a path.")
	}
	m, ok := op.Value.(map[string]any)
	if !ok {
		return errInvalidValue("Without a path, the value of an %s operation must be an object of attributes.", op.Op)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		lk := strings.ToLower(k)
		switch {
		case lk == "schemas":
			continue
		case lk == strings.ToLower(p.rt.core.urn):
			inner, ok := m[k].(map[string]any)
			if !ok {
				return errInvalidValue("Attribute %s must be an object.", k)
			}
			if err := p.apply(patchOp{Op: op.Op, Value: inner}); err != nil {
				return err
			}
			continue
		}
		if err := p.applyPath(op.Op, k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

func (p *patcher) applyPath(op, rawPath string, value any) error {
	lp := strings.ToLower(strings.TrimSpace(rawPath))
	if ext := p.rt.ext(lp); ext != nil {
		if op == "remove" {
			delete(p.attrs, ext.urn)
			return nil
		}
		m, ok := value.(map[string]any)
		if !ok {
			return errInvalidValue("The value for %s must be an object.", ext.urn)
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := p.applyPath(op, ext.urn+":"+k, m[k]); err != nil {
				return err
			}
		}
		return nil
	}
	path, err := scimfilter.ParsePath(rawPath)
	if err != nil {
		return errInvalidPath("Invalid path %q: %v", rawPath, err)
	}
	urn, name, _ := path.Attr.Lower()
	container, defs, containerKey := p.attrs, p.rt.core.attrs, ""
	if urn != "" && urn != strings.ToLower(p.rt.core.urn) {
		if ext := p.rt.ext(urn); ext != nil {
			containerKey, defs = ext.urn, ext.attrs
		} else {
			containerKey, defs = keyFor(p.attrs, path.Attr.URN), nil
		}
		c, _ := p.attrs[containerKey].(map[string]any)
		if c == nil {
			c = map[string]any{}
		}
		container = c
	}
	def := defs[name]
	if p.members != nil && containerKey == "" && def != nil && def.name == "members" {
		return p.members.apply(op, path, value)
	}
	if def != nil && (def.server || def.mut == mutReadOnly || def.mut == mutImmutable) {
		return errMutability("Attribute %s is read-only.", path.Attr.String())
	}
	key := keyFor(container, path.Attr.Name)
	if def != nil {
		key = def.name
	}
	err = p.edit(container, key, def, op, path, value)
	if containerKey != "" {
		if len(container) == 0 {
			delete(p.attrs, containerKey)
		} else {
			p.attrs[containerKey] = container
		}
	}
	return err
}

// edit applies one operation to attribute key of container.
func (p *patcher) edit(c map[string]any, key string, def *attrDef, op string, path scimfilter.Path, value any) error {
	name := path.Attr.String()
	if path.Filter != nil {
		return p.editFiltered(c, key, def, op, path, value)
	}
	if path.Attr.Sub != "" {
		return p.editSub(c, key, def, op, path, value)
	}
	if op == "remove" || value == nil {
		delete(c, key)
		return nil
	}
	if def == nil {
		if cur, ok := c[key].([]any); ok && op == "add" {
			if add, ok := value.([]any); ok {
				c[key] = appendNew(cur, deepCopy(add).([]any))
				return nil
			}
		}
		c[key] = deepCopy(value)
		return nil
	}
	switch {
	case def.multi:
		list, ok := value.([]any)
		if !ok {
			list = []any{value}
		}
		cv, err := canonValue(def, list, name, true)
		if err != nil {
			return err
		}
		vals, _ := cv.([]any)
		if op == "replace" {
			if len(vals) == 0 {
				delete(c, key)
			} else {
				c[key] = vals
			}
			return nil
		}
		cur, _ := c[key].([]any)
		c[key] = appendNew(cur, vals)
		return nil
	case def.typ == typeComplex:
		m, ok := value.(map[string]any)
		if !ok {
			return errInvalidValue("Attribute %s must be an object.", name)
		}
		cv, err := canonObject(def.subs, m, name, true)
		if err != nil {
			return err
		}
		cur, _ := c[key].(map[string]any)
		if cur == nil {
			cur = map[string]any{}
		}
		for k, v := range cv {
			cur[k] = v
		}
		c[key] = cur
		return nil
	}
	cv, err := canonSingle(def, value, name, true)
	if err != nil {
		return err
	}
	c[key] = cv
	return nil
}

// appendNew appends the values not already in cur; a new primary value
// clears primary on the others (RFC 7643 §2.4).
func appendNew(cur, vals []any) []any {
	for _, v := range vals {
		if slices.ContainsFunc(cur, func(x any) bool { return equalJSON(x, v) }) {
			continue
		}
		if m, ok := v.(map[string]any); ok && m["primary"] == true {
			for _, x := range cur {
				if xm, ok := x.(map[string]any); ok && xm["primary"] == true {
					xm["primary"] = false
				}
			}
		}
		cur = append(cur, v)
	}
	return cur
}

// editSub changes a sub-attribute of a complex attribute (name.givenName).
func (p *patcher) editSub(c map[string]any, key string, def *attrDef, op string, path scimfilter.Path, value any) error {
	name := path.Attr.String()
	_, _, lsub := path.Attr.Lower()
	if def != nil && def.typ != typeComplex {
		return errInvalidPath("Attribute %s has no sub-attributes.", path.Attr.Name)
	}
	var sd *attrDef
	if def != nil {
		sd = def.subs[lsub]
		if sd != nil && (sd.server || sd.mut == mutReadOnly || sd.mut == mutImmutable) {
			return errMutability("Attribute %s is read-only.", name)
		}
	}
	if def != nil && def.multi {
		if op != "remove" {
			return errInvalidPath("Attribute %s is multi-valued: select values with a filter, e.g. %s[type eq \"work\"].%s.", path.Attr.Name, path.Attr.Name, path.Attr.Sub)
		}
		list, _ := c[key].([]any)
		for _, e := range list {
			if m, ok := e.(map[string]any); ok {
				delete(m, keyFor(m, path.Attr.Sub))
			}
		}
		return nil
	}
	cur, _ := c[key].(map[string]any)
	skey := keyFor(cur, path.Attr.Sub)
	if sd != nil {
		skey = sd.name
	}
	if op == "remove" || value == nil {
		if cur != nil {
			delete(cur, skey)
			if len(cur) == 0 {
				delete(c, key)
			}
		}
		return nil
	}
	v := deepCopy(value)
	if sd != nil {
		var err error
		if v, err = canonValue(sd, value, name, true); err != nil {
			return err
		}
	}
	if cur == nil {
		cur = map[string]any{}
	}
	cur[skey] = v
	c[key] = cur
	return nil
}

// editFiltered changes the values of a multi-valued attribute a filter selects.
func (p *patcher) editFiltered(c map[string]any, key string, def *attrDef, op string, path scimfilter.Path, value any) error {
	if def != nil && !def.multi {
		return errInvalidPath("Attribute %s is not multi-valued; a value filter does not apply.", path.Attr.Name)
	}
	list, _ := c[key].([]any)
	matched, err := matchValues(list, def, path.Filter)
	if err != nil {
		return err
	}
	if len(matched) == 0 {
		return errNoTarget("No value of %s matches the filter %s.", path.Attr.Name, path.Filter)
	}
	sd, skey, err := filteredSub(def, path)
	if err != nil {
		return err
	}
	switch {
	case op == "remove" && path.Sub != "":
		for _, i := range matched {
			m := list[i].(map[string]any)
			delete(m, keyFor(m, skey))
		}
	case op == "remove":
		kept := list[:0:0]
		for i, e := range list {
			if !slices.Contains(matched, i) {
				kept = append(kept, e)
			}
		}
		list = kept
	case path.Sub != "":
		if err := setSub(list, matched, sd, skey, path, value); err != nil {
			return err
		}
	case op == "add":
		return errInvalidPath("An add with a value filter needs a sub-attribute, e.g. %s[...].value.", path.Attr.Name)
	default: // replace whole values
		if err := replaceValues(list, matched, def, path, value); err != nil {
			return err
		}
	}
	if len(list) == 0 {
		delete(c, key)
	} else {
		c[key] = list
	}
	return nil
}

// matchValues returns the indexes of the complex values in list that
// filter selects (def: the attribute's schema, nil when unknown).
func matchValues(list []any, def *attrDef, filter scimfilter.Expr) ([]int, error) {
	var matched []int
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		var obj scimfilter.Object = scimfilter.Map(m)
		if def != nil {
			obj = complexView{def, m}
		}
		ok, err := scimfilter.Match(filter, obj)
		if err != nil {
			return nil, errInvalidFilter(err)
		}
		if ok {
			matched = append(matched, i)
		}
	}
	return matched, nil
}

// filteredSub returns the schema (nil when unknown) and the key of the
// sub-attribute a filtered path names, refusing one that is read-only.
func filteredSub(def *attrDef, path scimfilter.Path) (*attrDef, string, error) {
	if path.Sub == "" || def == nil {
		return nil, path.Sub, nil
	}
	sd := def.subs[strings.ToLower(path.Sub)]
	if sd == nil {
		return nil, path.Sub, nil
	}
	if sd.server || sd.mut == mutReadOnly || sd.mut == mutImmutable {
		return nil, "", errMutability("Attribute %s.%s is read-only.", path.Attr.Name, sd.name)
	}
	return sd, sd.name, nil
}

// setSub sets (or, for null, removes) the sub-attribute skey of the
// matched values of list to value, checked against sd when known.
func setSub(list []any, matched []int, sd *attrDef, skey string, path scimfilter.Path, value any) error {
	v := deepCopy(value)
	if sd != nil {
		var err error
		if v, err = canonValue(sd, value, path.Attr.Name+"."+sd.name, true); err != nil {
			return err
		}
	}
	for _, i := range matched {
		m := list[i].(map[string]any)
		if v == nil {
			delete(m, keyFor(m, skey))
		} else {
			m[keyFor(m, skey)] = v
		}
	}
	return nil
}

// replaceValues replaces the matched values of list with value, an object
// checked against def when known.
func replaceValues(list []any, matched []int, def *attrDef, path scimfilter.Path, value any) error {
	m, ok := value.(map[string]any)
	if !ok {
		return errInvalidValue("The value replacing %s must be an object.", path.String())
	}
	var nv any = deepCopy(m)
	if def != nil {
		cv, err := canonObject(def.subs, m, path.Attr.Name, true)
		if err != nil {
			return err
		}
		nv = cv
	}
	for _, i := range matched {
		list[i] = deepCopy(nv)
	}
	return nil
}

// memberEdit stages membership changes of one group during a PATCH or PUT.
type memberEdit struct {
	d        *Domain
	g        *groupRec
	removed  map[*userRec]bool // current members to remove
	added    []*userRec        // new members, in order
	addedSet map[*userRec]bool
}

func newMemberEdit(d *Domain, g *groupRec) *memberEdit {
	return &memberEdit{d: d, g: g, removed: map[*userRec]bool{}, addedSet: map[*userRec]bool{}}
}

func (m *memberEdit) isMember(u *userRec) bool {
	return m.addedSet[u] || (m.g.memberIdx[u] != nil && !m.removed[u])
}

func (m *memberEdit) add(u *userRec) {
	switch {
	case m.isMember(u):
	case m.g.memberIdx[u] != nil:
		delete(m.removed, u)
	default:
		m.added = append(m.added, u)
		m.addedSet[u] = true
	}
}

func (m *memberEdit) remove(u *userRec) {
	switch {
	case m.addedSet[u]:
		delete(m.addedSet, u)
		m.added = slices.DeleteFunc(m.added, func(x *userRec) bool { return x == u })
	case m.g.memberIdx[u] != nil:
		m.removed[u] = true
	}
}

func (m *memberEdit) removeAll() {
	for _, ms := range m.g.members {
		m.removed[ms.user] = true
	}
	m.added, m.addedSet = nil, map[*userRec]bool{}
}

// match returns the current members a filter selects.
func (m *memberEdit) match(f scimfilter.Expr) ([]*userRec, error) {
	if v, ok := eqValue(f, "value", ""); ok {
		if u := m.d.store.users.byID[v]; u != nil && m.isMember(u) {
			return []*userRec{u}, nil
		}
		return nil, nil
	}
	var out []*userRec
	check := func(ms *membership) error {
		ok, err := scimfilter.Match(f, memberView{m.d, ms})
		if err != nil {
			return errInvalidFilter(err)
		}
		if ok {
			out = append(out, ms.user)
		}
		return nil
	}
	for _, ms := range m.g.members {
		if !m.removed[ms.user] {
			if err := check(ms); err != nil {
				return nil, err
			}
		}
	}
	for _, u := range m.added {
		if err := check(&membership{user: u, group: m.g, added: m.d.clock.Now()}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (m *memberEdit) apply(op string, path scimfilter.Path, value any) error {
	if path.Attr.Sub != "" || path.Sub != "" {
		return errInvalidPath("Members are added, removed or replaced whole; %s is not a valid path.", path.String())
	}
	if path.Filter != nil {
		if op == "add" {
			return errInvalidPath("An add to members takes the path members and a list of members as value.")
		}
		targets, err := m.match(path.Filter)
		if err != nil {
			return err
		}
		if len(targets) == 0 {
			return errNoTarget("No member of group %s matches the filter %s.", m.g.id, path.Filter)
		}
		for _, u := range targets {
			m.remove(u)
		}
		if op == "replace" && value != nil {
			return m.addValues(value)
		}
		return nil
	}
	switch op {
	case "add":
		if value == nil {
			return errInvalidValue("An add to members needs a value.")
		}
		return m.addValues(value)
	case "replace":
		m.removeAll()
		if value == nil {
			return nil
		}
		return m.addValues(value)
	default: // remove
		if value == nil {
			m.removeAll()
			return nil
		}
		return m.eachValue(value, m.remove)
	}
}

func (m *memberEdit) addValues(value any) error { return m.eachValue(value, m.add) }

// eachValue calls f with each user of a members value, once all of them are
// known to exist.
func (m *memberEdit) eachValue(value any, f func(*userRec)) error {
	users, err := m.d.memberValues(value)
	if err != nil {
		return err
	}
	for _, u := range users {
		f(u)
	}
	return nil
}

// commit applies the staged changes to the store and reports who was
// removed (in membership order) and who was added (in request order).
func (m *memberEdit) commit(now time.Time) (removed, added []*userRec) {
	removed = slices.Collect(maps.Keys(m.removed))
	sortBySeq(removed, m.g)
	for _, u := range removed {
		m.d.store.removeMember(m.g, u)
	}
	for _, u := range m.added {
		m.d.store.addMember(m.g, u, now)
	}
	return removed, m.added
}
