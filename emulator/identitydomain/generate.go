package identitydomain

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
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
	if err := cfg.check(); err != nil {
		return err
	}
	seed := uint64(cfg.Seed)
	g := generator{
		gen: genIDs{rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))},
		now: d.clock.Now(),
		a:   newActor(d.cfg.Clients[0].ID, d.cfg.Clients[0].Name),
		uw:  max(6, len(strconv.Itoa(cfg.Users))),
		gw:  max(5, len(strconv.Itoa(cfg.Groups))),
	}
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	s := d.store
	if err := g.namesFree(s, cfg); err != nil {
		return err
	}
	users := g.users(s, cfg.Users)
	groups, offsets := g.groups(s, cfg)
	g.memberships(s, cfg, users, groups, offsets)
	return nil
}

// check refuses counts that cannot make a directory.
func (cfg GenerateConfig) check() error {
	switch {
	case cfg.Users < 0 || cfg.Groups < 0 || cfg.Memberships < 0:
		return errors.New("identitydomain: generate: counts must not be negative")
	case cfg.Memberships > 0 && (cfg.Users == 0 || cfg.Groups == 0):
		return errors.New("identitydomain: generate: memberships need users and groups")
	case cfg.Groups > 0 && (cfg.Memberships+cfg.Groups-1)/cfg.Groups > cfg.Users:
		return fmt.Errorf("identitydomain: generate: %d memberships over %d groups exceed %d users per group",
			cfg.Memberships, cfg.Groups, cfg.Users)
	}
	return nil
}

// generator is one Generate call's state: its random source, time, actor
// and the widths of the generated names.
type generator struct {
	gen    genIDs
	now    time.Time
	a      actorRef
	uw, gw int
}

// namesFree fails if a name Generate would give is already taken.
func (g *generator) namesFree(s *store, cfg GenerateConfig) error {
	for i := 1; i <= cfg.Users; i++ {
		if n := "user" + pad(i, g.uw); s.users.byName[n] != nil {
			return fmt.Errorf("identitydomain: generate: userName %s is taken", n)
		}
	}
	for i := 1; i <= cfg.Groups; i++ {
		if n := "group" + pad(i, g.gw); s.groups.byName[n] != nil {
			return fmt.Errorf("identitydomain: generate: displayName %s is taken", n)
		}
	}
	return nil
}

// users adds n users (one allocation for all their records).
func (g *generator) users(s *store, n int) []*userRec {
	users := make([]*userRec, n)
	recs := make([]userRec, n)
	for i := range users {
		name := "user" + pad(i+1, g.uw)
		given := givenNames[g.gen.r.IntN(len(givenNames))]
		family := familyNames[g.gen.r.IntN(len(familyNames))]
		attrs := map[string]any{
			"userName":    name,
			"displayName": given + " " + family,
			"name":        map[string]any{"givenName": given, "familyName": family, "formatted": given + " " + family},
			"emails":      []any{map[string]any{"value": name + "@example.com", "type": "work", "primary": true}},
		}
		if g.gen.r.IntN(20) == 0 {
			attrs["active"] = false
		}
		u := &recs[i]
		u.resource = newResource(g.gen.hex32(), g.gen.ocid("user"), g.gen.hex32(), attrs, g.now, g.a)
		users[i] = u
		s.addUser(u)
	}
	return users
}

// groups adds the groups, each with room for its share of the memberships,
// and returns them with the offset of each group's first member.
func (g *generator) groups(s *store, cfg GenerateConfig) ([]*groupRec, []int) {
	groups := make([]*groupRec, cfg.Groups)
	grecs := make([]groupRec, cfg.Groups)
	offsets := make([]int, cfg.Groups)
	per := 0
	if cfg.Groups > 0 {
		per = (cfg.Memberships + cfg.Groups - 1) / cfg.Groups
	}
	for i := range groups {
		name := "group" + pad(i+1, g.gw)
		gr := &grecs[i]
		gr.resource = newResource(g.gen.hex32(), g.gen.ocid("group"), g.gen.hex32(), map[string]any{
			"displayName":  name,
			SchemaGroupExt: map[string]any{"description": "Generated group " + strconv.Itoa(i+1)},
		}, g.now, g.a)
		groups[i] = gr
		s.addGroup(gr)
		if cfg.Users > 0 {
			offsets[i] = g.gen.r.IntN(cfg.Users)
		}
	}
	for _, gr := range groups {
		gr.members = make([]*membership, 0, per)
		gr.memberIdx = make(map[*userRec]*membership, per)
	}
	return groups, offsets
}

// memberships spreads the memberships over the groups: membership i goes
// to group i mod Groups, each group's members consecutive users from its
// offset.
func (g *generator) memberships(s *store, cfg GenerateConfig, users []*userRec, groups []*groupRec, offsets []int) {
	ms := make([]membership, cfg.Memberships)
	for i := range ms {
		gi, k := i%cfg.Groups, i/cfg.Groups
		gr, u := groups[gi], users[(k+offsets[gi])%cfg.Users]
		m := &ms[i]
		*m = membership{user: u, group: gr, added: g.now, seq: s.nextSeq()}
		if u.groups == nil {
			u.groups = make(map[*groupRec]*membership, 4)
		}
		gr.memberIdx[u] = m
		gr.members = append(gr.members, m)
		u.groups[gr] = m
	}
	s.memberships += cfg.Memberships
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}
