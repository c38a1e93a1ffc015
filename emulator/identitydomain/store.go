package identitydomain

import (
	"cmp"
	"crypto/sha256"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// actorRef is who created or last modified a resource: an OAuth client.
type actorRef struct {
	id, name, ocid string
}

// newActor is the actor of an OAuth client, with its application's OCID.
func newActor(id, name string) actorRef {
	return actorRef{id: id, name: name, ocid: "ocid1.domainapp.oc1..aaaaaaaa" + derivedBase32(id, "domainapp")}
}

// resource is what users and groups share. attrs holds the client-writable
// attributes under their canonical names; it is copy-on-write: a committed map
// (and everything in it) is never modified again, so it may be read after the
// store lock is released.
type resource struct {
	id, ocid   string
	attrs      map[string]any
	created    time.Time
	modified   time.Time
	version    string
	createdBy  actorRef
	modifiedBy actorRef
	seq        uint64 // creation order
}

// newResource is a resource created at now by a: modified when created, at
// its first version.
func newResource(id, ocid, version string, attrs map[string]any, now time.Time, a actorRef) resource {
	return resource{id: id, ocid: ocid, attrs: attrs, created: now, modified: now,
		version: version, createdBy: a, modifiedBy: a}
}

func (r *resource) str(name string) string {
	s, _ := r.attrs[name].(string)
	return s
}

type userRec struct {
	resource
	groups map[*groupRec]*membership
}

func (u *userRec) userName() string { return u.str("userName") }

// display is the member's display name: displayName, else userName.
func (u *userRec) display() string {
	if s := u.str("displayName"); s != "" {
		return s
	}
	return u.userName()
}

func (u *userRec) active() bool {
	if b, ok := u.attrs["active"].(bool); ok {
		return b
	}
	return true
}

type groupRec struct {
	resource
	members   []*membership // in the order they were added
	memberIdx map[*userRec]*membership
}

func (g *groupRec) displayName() string { return g.str("displayName") }

// key is the user's unique name, userName.
func (u *userRec) key() string { return u.userName() }

// key is the group's unique name, displayName.
func (g *groupRec) key() string { return g.displayName() }

type membership struct {
	user  *userRec
	group *groupRec
	added time.Time
	seq   uint64
}

// store is the domain's directory, guarded by mu.
type store struct {
	mu          sync.RWMutex
	users       table[*userRec]
	groups      table[*groupRec]
	memberships int
	seq         uint64
}

func newStore() *store {
	return &store{users: newTable[*userRec](), groups: newTable[*groupRec]()}
}

// keyed is a *userRec or a *groupRec: a resource with a unique name, as the
// store's tables and the generic handlers see it.
type keyed interface {
	comparable
	meta() *resource
	getSeq() uint64
	key() string
}

// table holds the users or the groups: by id, by unique name (lower-cased)
// and in creation order.
type table[T keyed] struct {
	byID   map[string]T
	byName map[string]T
	order  []T // by seq
}

func newTable[T keyed]() table[T] {
	return table[T]{byID: map[string]T{}, byName: map[string]T{}}
}

// add indexes x last in the order (the store adds in seq order).
func (t *table[T]) add(x T) {
	t.byID[x.meta().id] = x
	t.byName[strings.ToLower(x.key())] = x
	t.order = append(t.order, x)
}

func (t *table[T]) remove(x T) {
	delete(t.byID, x.meta().id)
	delete(t.byName, strings.ToLower(x.key()))
	t.order = removeBySeq(t.order, x.getSeq())
}

// byRef finds a record by id, else by unique name (case-insensitive).
func (t *table[T]) byRef(ref string) (T, bool) {
	if x, ok := t.byID[ref]; ok {
		return x, true
	}
	x, ok := t.byName[strings.ToLower(ref)]
	return x, ok
}

// rename moves x's name entry after a change of its unique name.
func (t *table[T]) rename(x T, oldName string) {
	if n := x.key(); !strings.EqualFold(n, oldName) {
		delete(t.byName, strings.ToLower(oldName))
		t.byName[strings.ToLower(n)] = x
	}
}

func (s *store) nextSeq() uint64 {
	s.seq++
	return s.seq
}

func (s *store) addUser(u *userRec) {
	u.seq = s.nextSeq()
	s.users.add(u)
}

func (s *store) addGroup(g *groupRec) {
	g.seq = s.nextSeq()
	s.groups.add(g)
}

// removeBySeq removes the element with this seq from list, which is sorted
// by seq.
func removeBySeq[T interface{ getSeq() uint64 }](list []T, seq uint64) []T {
	i, found := slices.BinarySearchFunc(list, seq, func(x T, s uint64) int { return cmp.Compare(x.getSeq(), s) })
	if !found {
		return list
	}
	return slices.Delete(list, i, i+1)
}

func (r *resource) getSeq() uint64   { return r.seq }
func (m *membership) getSeq() uint64 { return m.seq }

func (s *store) deleteUser(u *userRec) {
	for g := range u.groups {
		s.removeMember(g, u)
	}
	s.users.remove(u)
}

func (s *store) deleteGroup(g *groupRec) {
	for _, m := range g.members {
		delete(m.user.groups, g)
	}
	s.memberships -= len(g.members)
	s.groups.remove(g)
}

// addMember adds u to g; it reports false if u already was a member.
func (s *store) addMember(g *groupRec, u *userRec, now time.Time) (*membership, bool) {
	if m := g.memberIdx[u]; m != nil {
		return m, false
	}
	m := &membership{user: u, group: g, added: now, seq: s.nextSeq()}
	if g.memberIdx == nil {
		g.memberIdx = map[*userRec]*membership{}
	}
	if u.groups == nil {
		u.groups = map[*groupRec]*membership{}
	}
	g.memberIdx[u] = m
	g.members = append(g.members, m)
	u.groups[g] = m
	s.memberships++
	return m, true
}

// removeMember removes u from g; it reports false if u was not a member.
func (s *store) removeMember(g *groupRec, u *userRec) bool {
	m := g.memberIdx[u]
	if m == nil {
		return false
	}
	delete(g.memberIdx, u)
	delete(u.groups, g)
	g.members = removeBySeq(g.members, m.seq)
	s.memberships--
	return true
}

// sortedGroups returns u's memberships in the order they were made.
func (u *userRec) sortedGroups() []*membership {
	out := make([]*membership, 0, len(u.groups))
	for _, m := range u.groups {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *membership) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// membershipOCID is derived from the membership, so it is stable and costs
// no memory per membership.
func (d *Domain) membershipOCID(m *membership) string {
	sum := sha256.Sum256([]byte(d.cfg.DomainID + "/" + m.group.id + "/" + m.user.id + "/" + strconv.FormatUint(m.seq, 10)))
	return "ocid1.groupmembership.oc1..aaaaaaaa" + ocidSuffix(sum[:])
}
