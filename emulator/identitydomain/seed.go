package identitydomain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SeedData is a seed file: users, groups and memberships loaded without
// emitting events. YAML or JSON:
//
//	users:
//	  - userName: alice@example.com        # any SCIM User attributes
//	    id: 0123456789abcdef0123456789abcdef # optional; generated if absent
//	    name: {givenName: Alice, familyName: Liddell}
//	    emails: [{value: alice@example.com, type: work, primary: true}]
//	groups:
//	  - displayName: admins                # any SCIM Group attributes
//	    urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group: {description: Admins}
//	    members: [alice@example.com]       # userNames or ids, or {value: <id or userName>}
//	memberships:
//	  - {group: admins, user: bob@example.com} # displayName or id, userName or id
//
// schemas may be left out. Names are unique case-insensitively, as in the API.
type SeedData struct {
	Users       []map[string]any `json:"users"`
	Groups      []map[string]any `json:"groups"`
	Memberships []SeedMembership `json:"memberships"`
}

// SeedMembership puts a user in a group; each is named by id or by name.
type SeedMembership struct {
	Group string `json:"group"`
	User  string `json:"user"`
}

// SeedFile loads a seed file; see Seed.
func (d *Domain) SeedFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("identitydomain: seed: %w", err)
	}
	defer f.Close()
	if err := d.Seed(f); err != nil {
		return fmt.Errorf("%w (file %s)", err, path)
	}
	return nil
}

// Seed loads users, groups and memberships from YAML or JSON (see SeedData)
// into the domain, all or nothing. It emits no events.
func (d *Domain) Seed(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("identitydomain: seed: read: %w", err)
	}
	data, err := parseSeed(raw)
	if err != nil {
		return fmt.Errorf("identitydomain: seed: %w", err)
	}
	if err := d.LoadSeed(data); err != nil {
		return fmt.Errorf("identitydomain: seed: %w", err)
	}
	return nil
}

func parseSeed(raw []byte) (SeedData, error) {
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return SeedData{}, fmt.Errorf("parse: %w", err)
	}
	js, err := json.Marshal(normalizeJSON(doc))
	if err != nil {
		return SeedData{}, fmt.Errorf("parse: %w", err)
	}
	var data SeedData
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&data); err != nil && err != io.EOF {
		return SeedData{}, fmt.Errorf("parse: %w", err)
	}
	return data, nil
}

// LoadSeed loads already parsed seed data; see Seed. Nothing is stored
// unless all of it is valid.
func (d *Domain) LoadSeed(data SeedData) error {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	l := &seedLoad{d: d, s: d.store, now: d.clock.Now(), a: newActor(d.cfg.Clients[0].ID, d.cfg.Clients[0].Name),
		users: newTable[*userRec](), groups: newTable[*groupRec](), members: map[*groupRec][]*userRec{}}
	for i, body := range data.Users {
		if err := l.stageUser(body); err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
	}
	for i, body := range data.Groups {
		if err := l.stageGroup(i, body); err != nil {
			return err
		}
	}
	for i, m := range data.Memberships {
		if err := l.stageMembership(m); err != nil {
			return fmt.Errorf("memberships[%d]: %w", i, err)
		}
	}
	l.commit()
	return nil
}

// seedLoad holds the users, groups and memberships of a seed checked so
// far, before any of them is stored. Its methods run under the store's lock.
type seedLoad struct {
	d   *Domain
	s   *store
	now time.Time
	a   actorRef

	users   table[*userRec] // in seed order
	groups  table[*groupRec]
	members map[*groupRec][]*userRec // listed in the group's entry
	pairs   []seedPair
}

// seedPair is one membership of the seed's memberships list.
type seedPair struct {
	g *groupRec
	u *userRec
}

// findUser finds a user by id or userName, stored or seeded.
func (l *seedLoad) findUser(ref string) *userRec { return storedOrSeeded(&l.s.users, &l.users, ref) }

// findGroup finds a group by id or displayName, stored or seeded.
func (l *seedLoad) findGroup(ref string) *groupRec {
	return storedOrSeeded(&l.s.groups, &l.groups, ref)
}

// storedOrSeeded returns the record of id ref or, case-insensitively, of
// name ref: the stored one, else the seeded one.
func storedOrSeeded[T keyed](stored, seeded *table[T], ref string) T {
	if x, ok := stored.byRef(ref); ok {
		return x
	}
	x, _ := seeded.byRef(ref)
	return x
}

// stage adds x, a seeded resource of type rt, to those to store, unless
// its id or its unique name is stored or seeded already.
func stage[T keyed](rt *resourceType, stored, seeded *table[T], x T) error {
	id, name := x.meta().id, strings.ToLower(x.key())
	_, storedID := stored.byID[id]
	_, seededID := seeded.byID[id]
	if storedID || seededID {
		return fmt.Errorf("duplicate id %s", id)
	}
	_, storedName := stored.byName[name]
	_, seededName := seeded.byName[name]
	if storedName || seededName {
		return fmt.Errorf("duplicate %s %s", rt.required, x.key())
	}
	seeded.add(x)
	return nil
}

// stageUser checks one seeded user and adds it to those to store.
func (l *seedLoad) stageUser(body map[string]any) error {
	res, _, err := l.resource(userType, SchemaUser, "user", body)
	if err != nil {
		return err
	}
	return stage(userType, &l.s.users, &l.users, &userRec{resource: res})
}

// resource checks one seeded resource of type rt (core schema urn) and
// returns it with its id and OCID (of kind, made up when not given), and a
// group's raw members value.
func (l *seedLoad) resource(rt *resourceType, urn, kind string, body map[string]any) (resource, any, error) {
	id, ocid, err := seedIDs(body)
	if err != nil {
		return resource{}, nil, err
	}
	attrs, rawMembers, err := canonicalize(rt, withDefaultSchemas(body, urn))
	if err != nil {
		return resource{}, nil, err
	}
	if rt == userType {
		userServerValues(attrs)
	}
	if id == "" {
		id = l.d.ids.hex32()
	}
	if ocid == "" {
		ocid = l.d.ids.ocid(kind)
	}
	return newResource(id, ocid, l.d.ids.hex32(), attrs, l.now, l.a), rawMembers, nil
}

// stageGroup checks the i-th seeded group and its members and adds it to
// those to store.
func (l *seedLoad) stageGroup(i int, body map[string]any) error {
	res, rawMembers, err := l.resource(groupType, SchemaGroup, "group", body)
	if err != nil {
		return fmt.Errorf("groups[%d]: %w", i, err)
	}
	g := &groupRec{resource: res}
	if err := stage(groupType, &l.s.groups, &l.groups, g); err != nil {
		return fmt.Errorf("groups[%d]: %w", i, err)
	}
	l.members[g], err = l.groupMembers(i, rawMembers)
	return err
}

// groupMembers resolves the members listed in the i-th seeded group: user
// references, or objects whose value is one.
func (l *seedLoad) groupMembers(i int, rawMembers any) ([]*userRec, error) {
	refs, ok := rawMembers.([]any)
	if rawMembers != nil && !ok {
		return nil, fmt.Errorf("groups[%d]: members must be a list", i)
	}
	var members []*userRec
	for j, ref := range refs {
		r, _ := ref.(string)
		if m, ok := ref.(map[string]any); ok {
			r, _ = m[keyFor(m, "value")].(string)
		}
		u := l.findUser(r)
		if u == nil {
			return nil, fmt.Errorf("groups[%d].members[%d]: no user %q", i, j, r)
		}
		members = append(members, u)
	}
	return members, nil
}

// stageMembership checks one entry of the seed's memberships list.
func (l *seedLoad) stageMembership(m SeedMembership) error {
	g := l.findGroup(m.Group)
	if g == nil {
		return fmt.Errorf("no group %q", m.Group)
	}
	u := l.findUser(m.User)
	if u == nil {
		return fmt.Errorf("no user %q", m.User)
	}
	l.pairs = append(l.pairs, seedPair{g, u})
	return nil
}

// commit stores everything staged.
func (l *seedLoad) commit() {
	for _, u := range l.users.order {
		l.s.addUser(u)
	}
	for _, g := range l.groups.order {
		l.s.addGroup(g)
		for _, u := range l.members[g] {
			l.s.addMember(g, u, l.now)
		}
	}
	for _, p := range l.pairs {
		l.s.addMember(p.g, p.u, l.now)
	}
}

// seedIDs takes the optional id and ocid out of a seed entry.
func seedIDs(body map[string]any) (id, ocid string, err error) {
	for k, v := range body {
		switch strings.ToLower(k) {
		case "id":
			s, ok := v.(string)
			if !ok || s == "" || strings.ContainsAny(s, "/?#% ") {
				return "", "", fmt.Errorf("invalid id %v", v)
			}
			id = s
		case "ocid":
			s, ok := v.(string)
			if !ok || !strings.HasPrefix(s, "ocid1.") {
				return "", "", fmt.Errorf("invalid ocid %v", v)
			}
			ocid = s
		}
	}
	return id, ocid, nil
}

func withDefaultSchemas(body map[string]any, urn string) map[string]any {
	for k := range body {
		if strings.EqualFold(k, "schemas") {
			return body
		}
	}
	out := make(map[string]any, len(body)+1)
	for k, v := range body {
		out[k] = v
	}
	out["schemas"] = []any{urn}
	return out
}
