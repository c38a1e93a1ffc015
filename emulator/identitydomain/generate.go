package identitydomain

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// GenerateConfig sizes a generated directory.
type GenerateConfig struct {
	// Users, Groups and Memberships are how many to create.
	Users       int `json:"users"`
	Groups      int `json:"groups"`
	Memberships int `json:"memberships"`
	// Seed makes the result deterministic: the same Seed gives the same ids,
	// names and memberships.
	Seed int64 `json:"seed"`
}

var (
	givenNames  = []string{"Ada", "Alan", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace", "Hedy", "John", "Ken", "Leslie", "Margaret", "Niklaus", "Radia", "Tony"}
	familyNames = []string{"Lovelace", "Turing", "Liskov", "Shannon", "Ritchie", "Dijkstra", "Allen", "Hopper", "Lamarr", "Backus", "Thompson", "Lamport", "Hamilton", "Wirth", "Perlman", "Hoare"}
)

// Generate adds a large deterministic directory without emitting events:
// users user000001 ... (userName, displayName, name, a primary work email;
// one in 20 inactive), groups group00001 ... (with a description), and
// memberships spread evenly over the groups (membership i goes to group
// i mod Groups; each group's members are consecutive users from a random
// offset, so no pair repeats). Names are fixed by position, so Generate
// fails if any of them is already taken.
func (d *Domain) Generate(cfg GenerateConfig) error {
	switch {
	case cfg.Users < 0 || cfg.Groups < 0 || cfg.Memberships < 0:
		return errors.New("identitydomain: generate: counts must not be negative")
	case cfg.Memberships > 0 && (cfg.Users == 0 || cfg.Groups == 0):
		return errors.New("identitydomain: generate: memberships need users and groups")
	case cfg.Groups > 0 && (cfg.Memberships+cfg.Groups-1)/cfg.Groups > cfg.Users:
		return fmt.Errorf("identitydomain: generate: %d memberships over %d groups exceed %d users per group",
			cfg.Memberships, cfg.Groups, cfg.Users)
	}
	seed := uint64(cfg.Seed)
	gen := genIDs{rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))}
	now := d.clock.Now()
	a := newActor(d.cfg.Clients[0].ID, d.cfg.Clients[0].Name)
	uw, gw := max(6, len(strconv.Itoa(cfg.Users))), max(5, len(strconv.Itoa(cfg.Groups)))

	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	s := d.store
	for i := 1; i <= cfg.Users; i++ {
		if n := "user" + pad(i, uw); s.usersByName[n] != nil {
			return fmt.Errorf("identitydomain: generate: userName %s is taken", n)
		}
	}
	for i := 1; i <= cfg.Groups; i++ {
		if n := "group" + pad(i, gw); s.groupsByName[n] != nil {
			return fmt.Errorf("identitydomain: generate: displayName %s is taken", n)
		}
	}
	users := make([]*userRec, cfg.Users)
	recs := make([]userRec, cfg.Users)
	for i := range users {
		name := "user" + pad(i+1, uw)
		given := givenNames[gen.r.IntN(len(givenNames))]
		family := familyNames[gen.r.IntN(len(familyNames))]
		attrs := map[string]any{
			"userName":    name,
			"displayName": given + " " + family,
			"name":        map[string]any{"givenName": given, "familyName": family, "formatted": given + " " + family},
			"emails":      []any{map[string]any{"value": name + "@example.com", "type": "work", "primary": true}},
		}
		if gen.r.IntN(20) == 0 {
			attrs["active"] = false
		}
		u := &recs[i]
		u.resource = resource{id: gen.hex32(), ocid: gen.ocid("user"), attrs: attrs, created: now, modified: now,
			version: gen.hex32(), createdBy: a, modifiedBy: a}
		users[i] = u
		s.addUser(u)
	}
	groups := make([]*groupRec, cfg.Groups)
	grecs := make([]groupRec, cfg.Groups)
	offsets := make([]int, cfg.Groups)
	for i := range groups {
		name := "group" + pad(i+1, gw)
		g := &grecs[i]
		g.resource = resource{id: gen.hex32(), ocid: gen.ocid("group"), created: now, modified: now,
			version: gen.hex32(), createdBy: a, modifiedBy: a, attrs: map[string]any{
				"displayName":  name,
				SchemaGroupExt: map[string]any{"description": "Generated group " + strconv.Itoa(i+1)},
			}}
		groups[i] = g
		s.addGroup(g)
		if cfg.Users > 0 {
			offsets[i] = gen.r.IntN(cfg.Users)
		}
	}
	if cfg.Groups > 0 {
		per := (cfg.Memberships + cfg.Groups - 1) / cfg.Groups
		for _, g := range groups {
			g.members = make([]*membership, 0, per)
			g.memberIdx = make(map[*userRec]*membership, per)
		}
	}
	ms := make([]membership, cfg.Memberships)
	for i := range ms {
		gi, k := i%cfg.Groups, i/cfg.Groups
		g, u := groups[gi], users[(k+offsets[gi])%cfg.Users]
		m := &ms[i]
		*m = membership{user: u, group: g, added: now, seq: s.nextSeq()}
		if u.groups == nil {
			u.groups = make(map[*groupRec]*membership, 4)
		}
		g.memberIdx[u] = m
		g.members = append(g.members, m)
		u.groups[g] = m
	}
	s.memberships += cfg.Memberships
	return nil
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}
