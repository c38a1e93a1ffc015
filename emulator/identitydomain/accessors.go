package identitydomain

import (
	"fmt"
	"time"
)

// User is a snapshot of one emulated user, for tests.
type User struct {
	ID           string
	OCID         string
	UserName     string
	DisplayName  string
	Active       bool
	Federated    bool
	Capabilities map[string]bool // every capability flag, defaults applied
	Groups       []string        // ids of the groups the user is in, in join order
	Version      string
	Created      time.Time
	LastModified time.Time
	// Attributes is the SCIM representation (returned=default attributes).
	Attributes map[string]any
}

// Group is a snapshot of one emulated group, for tests.
type Group struct {
	ID           string
	OCID         string
	DisplayName  string
	Description  string
	Members      int
	Version      string
	Created      time.Time
	LastModified time.Time
	// Attributes is the SCIM representation (returned=default attributes).
	Attributes map[string]any
}

// Member is one member of a group, for tests.
type Member struct {
	UserID         string
	UserName       string
	OCID           string
	MembershipOCID string
	DateAdded      time.Time
}

func (d *Domain) userSnapshot(u *userRec, base string) User {
	caps := map[string]bool{}
	for k, v := range effectiveCaps(u.attrs) {
		if b, ok := v.(bool); ok {
			caps[k] = b
		}
	}
	fed := false
	if ext, ok := u.attrs[SchemaUserExt].(map[string]any); ok {
		fed, _ = ext["isFederatedUser"].(bool)
	}
	ms := u.sortedGroups()
	groups := make([]string, len(ms))
	for i, m := range ms {
		groups[i] = m.group.id
	}
	return User{
		ID: u.id, OCID: u.ocid, UserName: u.userName(), DisplayName: u.str("displayName"),
		Active: u.active(), Federated: fed, Capabilities: caps, Groups: groups, Version: u.version,
		Created: u.created, LastModified: u.modified,
		Attributes: defaultProjection.apply(userType, d.renderUser(u, base, defaultProjection)),
	}
}

func (d *Domain) groupSnapshot(g *groupRec, base string) Group {
	desc := ""
	if ext, ok := g.attrs[SchemaGroupExt].(map[string]any); ok {
		desc, _ = ext["description"].(string)
	}
	doc, _ := d.renderGroup(g, base, defaultProjection)
	return Group{
		ID: g.id, OCID: g.ocid, DisplayName: g.displayName(), Description: desc, Members: len(g.members),
		Version: g.version, Created: g.created, LastModified: g.modified,
		Attributes: defaultProjection.apply(groupType, doc),
	}
}

// snapshots returns the snapshots of the records list reads from the store,
// which is read-locked meanwhile.
func snapshots[R any, S any](d *Domain, list func(*store) []R, snap func(R, string) S) []S {
	base := d.URL()
	d.store.mu.RLock()
	defer d.store.mu.RUnlock()
	recs := list(d.store)
	out := make([]S, len(recs))
	for i, rec := range recs {
		out[i] = snap(rec, base)
	}
	return out
}

// snapshot returns the snapshot of the record find looks up in the store,
// which is read-locked meanwhile, and false when there is none.
func snapshot[R comparable, S any](d *Domain, find func(*store) R, snap func(R, string) S) (S, bool) {
	base := d.URL()
	d.store.mu.RLock()
	defer d.store.mu.RUnlock()
	var none R
	rec := find(d.store)
	if rec == none {
		var zero S
		return zero, false
	}
	return snap(rec, base), true
}

// Users returns every user, in creation order.
func (d *Domain) Users() []User {
	return snapshots(d, func(s *store) []*userRec { return s.users.order }, d.userSnapshot)
}

// User returns the user with this id.
func (d *Domain) User(id string) (User, bool) {
	return snapshot(d, func(s *store) *userRec { return s.users.byID[id] }, d.userSnapshot)
}

// UserByName returns the user with this userName (case-insensitive).
func (d *Domain) UserByName(userName string) (User, bool) {
	return snapshot(d, func(s *store) *userRec { return s.users.byName[lower(userName)] }, d.userSnapshot)
}

// Groups returns every group, in creation order.
func (d *Domain) Groups() []Group {
	return snapshots(d, func(s *store) []*groupRec { return s.groups.order }, d.groupSnapshot)
}

// Group returns the group with this id.
func (d *Domain) Group(id string) (Group, bool) {
	return snapshot(d, func(s *store) *groupRec { return s.groups.byID[id] }, d.groupSnapshot)
}

// GroupByName returns the group with this displayName (case-insensitive).
func (d *Domain) GroupByName(displayName string) (Group, bool) {
	return snapshot(d, func(s *store) *groupRec { return s.groups.byName[lower(displayName)] }, d.groupSnapshot)
}

// Members returns the members of a group, in the order they were added, and
// false if there is no such group.
func (d *Domain) Members(groupID string) ([]Member, bool) {
	d.store.mu.RLock()
	defer d.store.mu.RUnlock()
	g := d.store.groups.byID[groupID]
	if g == nil {
		return nil, false
	}
	out := make([]Member, len(g.members))
	for i, m := range g.members {
		out[i] = Member{UserID: m.user.id, UserName: m.user.userName(), OCID: m.user.ocid,
			MembershipOCID: d.membershipOCID(m), DateAdded: m.added}
	}
	return out, true
}

// Reset empties the directory and the counters, drops undelivered events and
// restores the configured faults and rate-limit windows. Issued tokens stay
// valid.
func (d *Domain) Reset() {
	d.store.mu.Lock()
	fresh := newStore()
	d.store.users, d.store.groups = fresh.users, fresh.groups
	d.store.memberships = 0
	d.store.mu.Unlock()
	d.stats.reset()
	d.events.reset()
	d.faults.set(d.cfg.Faults)
	d.limiter.set(d.cfg.Limits.effective(d.cfg.Tier))
}

// SetRateLimits enforces the limits of tier t (with the overrides in l) from
// now on, as if the domain had been created with them; Reset restores the
// configured ones. A benchmark loads a directory fast, then measures at a
// real tier's limits.
func (d *Domain) SetRateLimits(t Tier, l Limits) error {
	if _, ok := tierLimits[t]; !ok {
		return fmt.Errorf("emulator: unknown tier %q", t)
	}
	d.limiter.set(l.effective(t))
	return nil
}
