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
		byID: map[string]*userRec{}, byName: map[string]*userRec{}, gByID: map[string]*groupRec{}, gByName: map[string]*groupRec{}}
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

	users   []*userRec
	byID    map[string]*userRec
	byName  map[string]*userRec
	groups  []groupSeed
	gByID   map[string]*groupRec
	gByName map[string]*groupRec
	pairs   []seedPair
}

// groupSeed is a seeded group with the members listed in it.
type groupSeed struct {
	g       *groupRec
	members []*userRec
}

// seedPair is one membership of the seed's memberships list.
type seedPair struct {
	g *groupRec
	u *userRec
}

// findUser finds a user by id, OCID or userName, stored or seeded.
func (l *seedLoad) findUser(ref string) *userRec {
	return storedOrSeeded(l.s.users.byRef(ref), l.byID, l.byName, ref)
}

// findGroup finds a group by id, OCID or displayName, stored or seeded.
func (l *seedLoad) findGroup(ref string) *groupRec {
	return storedOrSeeded(l.s.groups.byRef(ref), l.gByID, l.gByName, ref)
}

// storedOrSeeded returns stored (what the store holds for ref) or else the
// seeded record of id ref or, case-insensitively, of name ref.
func storedOrSeeded[T any](stored *T, byID, byName map[string]*T, ref string) *T {
	if stored != nil {
		return stored
	}
	if r := byID[ref]; r != nil {
		return r
	}
	return byName[strings.ToLower(ref)]
}

// stageUser checks one seeded user and adds it to those to store.
func (l *seedLoad) stageUser(body map[string]any) error {
	res, _, err := l.resource(userType, SchemaUser, "user", body)
	if err != nil {
		return err
	}
	id, name := res.id, strings.ToLower(res.attrs["userName"].(string))
	if l.s.users.byID[id] != nil || l.byID[id] != nil {
		return fmt.Errorf("duplicate id %s", id)
	}
	if l.s.users.byName[name] != nil || l.byName[name] != nil {
		return fmt.Errorf("duplicate userName %s", res.attrs["userName"])
	}
	u := &userRec{resource: res}
	l.users, l.byID[id], l.byName[name] = append(l.users, u), u, u
	return nil
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
	id, name := res.id, strings.ToLower(res.attrs["displayName"].(string))
	if l.s.groups.byID[id] != nil || l.gByID[id] != nil {
		return fmt.Errorf("groups[%d]: duplicate id %s", i, id)
	}
	if l.s.groups.byName[name] != nil || l.gByName[name] != nil {
		return fmt.Errorf("groups[%d]: duplicate displayName %s", i, res.attrs["displayName"])
	}
	members, err := l.groupMembers(i, rawMembers)
	if err != nil {
		return err
	}
	g := &groupRec{resource: res}
	l.groups = append(l.groups, groupSeed{g, members})
	l.gByID[id], l.gByName[name] = g, g
	return nil
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
	for _, u := range l.users {
		l.s.addUser(u)
	}
	for _, gs := range l.groups {
		l.s.addGroup(gs.g)
		for _, u := range gs.members {
			l.s.addMember(gs.g, u, l.now)
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
