package identitydomain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

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

// LoadSeed loads already parsed seed data; see Seed.
func (d *Domain) LoadSeed(data SeedData) error {
	now := d.clock.Now()
	a := newActor(d.cfg.Clients[0].ID, d.cfg.Clients[0].Name)
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	s := d.store

	users := make([]*userRec, 0, len(data.Users))
	byID := map[string]*userRec{}
	byName := map[string]*userRec{}
	findUser := func(ref string) *userRec {
		if u := s.userByRef(ref); u != nil {
			return u
		}
		if u := byID[ref]; u != nil {
			return u
		}
		return byName[strings.ToLower(ref)]
	}
	for i, body := range data.Users {
		id, ocid, err := seedIDs(body)
		if err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
		attrs, _, err := canonicalize(userType, withDefaultSchemas(body, SchemaUser))
		if err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
		userServerValues(attrs)
		if id == "" {
			id = d.ids.hex32()
		}
		if ocid == "" {
			ocid = d.ids.ocid("user")
		}
		name := strings.ToLower(attrs["userName"].(string))
		if s.users[id] != nil || byID[id] != nil {
			return fmt.Errorf("users[%d]: duplicate id %s", i, id)
		}
		if s.usersByName[name] != nil || byName[name] != nil {
			return fmt.Errorf("users[%d]: duplicate userName %s", i, attrs["userName"])
		}
		u := &userRec{resource: resource{id: id, ocid: ocid, attrs: attrs, created: now, modified: now,
			version: d.ids.hex32(), createdBy: a, modifiedBy: a}}
		users, byID[id], byName[name] = append(users, u), u, u
	}

	type groupSeed struct {
		g       *groupRec
		members []*userRec
	}
	groups := make([]groupSeed, 0, len(data.Groups))
	gByID := map[string]*groupRec{}
	gByName := map[string]*groupRec{}
	for i, body := range data.Groups {
		id, ocid, err := seedIDs(body)
		if err != nil {
			return fmt.Errorf("groups[%d]: %w", i, err)
		}
		attrs, rawMembers, err := canonicalize(groupType, withDefaultSchemas(body, SchemaGroup))
		if err != nil {
			return fmt.Errorf("groups[%d]: %w", i, err)
		}
		if id == "" {
			id = d.ids.hex32()
		}
		if ocid == "" {
			ocid = d.ids.ocid("group")
		}
		name := strings.ToLower(attrs["displayName"].(string))
		if s.groups[id] != nil || gByID[id] != nil {
			return fmt.Errorf("groups[%d]: duplicate id %s", i, id)
		}
		if s.groupsByName[name] != nil || gByName[name] != nil {
			return fmt.Errorf("groups[%d]: duplicate displayName %s", i, attrs["displayName"])
		}
		var members []*userRec
		refs, ok := rawMembers.([]any)
		if rawMembers != nil && !ok {
			return fmt.Errorf("groups[%d]: members must be a list", i)
		}
		for j, ref := range refs {
			r, _ := ref.(string)
			if m, ok := ref.(map[string]any); ok {
				r, _ = m[keyFor(m, "value")].(string)
			}
			u := findUser(r)
			if u == nil {
				return fmt.Errorf("groups[%d].members[%d]: no user %q", i, j, r)
			}
			members = append(members, u)
		}
		g := &groupRec{resource: resource{id: id, ocid: ocid, attrs: attrs, created: now, modified: now,
			version: d.ids.hex32(), createdBy: a, modifiedBy: a}}
		groups = append(groups, groupSeed{g, members})
		gByID[id], gByName[name] = g, g
	}
	type pair struct {
		g *groupRec
		u *userRec
	}
	var pairs []pair
	for i, m := range data.Memberships {
		g := s.groupByRef(m.Group)
		if g == nil {
			if g = gByID[m.Group]; g == nil {
				g = gByName[strings.ToLower(m.Group)]
			}
		}
		if g == nil {
			return fmt.Errorf("memberships[%d]: no group %q", i, m.Group)
		}
		u := findUser(m.User)
		if u == nil {
			return fmt.Errorf("memberships[%d]: no user %q", i, m.User)
		}
		pairs = append(pairs, pair{g, u})
	}

	for _, u := range users {
		s.addUser(u)
	}
	for _, gs := range groups {
		s.addGroup(gs.g)
		for _, u := range gs.members {
			s.addMember(gs.g, u, now)
		}
	}
	for _, p := range pairs {
		s.addMember(p.g, p.u, now)
	}
	return nil
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
