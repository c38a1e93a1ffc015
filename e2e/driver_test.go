//go:build linux

package e2e

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// Driver operations.
const (
	opCreateUser  = "create_user"
	opCreateGroup = "create_group"
	opAddMembers  = "add_members"
	opRemove      = "remove_member"
	opRenameGroup = "rename_group"
	opUpdateUser  = "update_user"
	opDeactivate  = "deactivate_user"
	opRenameUser  = "rename_user"
	opDeleteUser  = "delete_user"
	opDeleteGroup = "delete_group"
)

// opWeights is the mix of changes: mostly memberships, as in a real
// directory, and every kind of change the replicator must follow,
// deletions and renames of users and groups included.
var opWeights = []struct {
	op     string
	weight int
}{
	{opCreateUser, 18}, {opCreateGroup, 5}, {opAddMembers, 33}, {opRemove, 11},
	{opRenameGroup, 6}, {opUpdateUser, 12}, {opDeactivate, 5},
	{opRenameUser, 5}, {opDeleteUser, 4}, {opDeleteGroup, 2},
}

// mUser and mGroup are the driver's model of what it made in the source.
type mUser struct {
	id, userName, displayName string
	active                    bool
	busy                      bool // being updated, renamed or deleted
	refs                      int  // membership changes under way that name the user
	pinned                    bool // the granter holds a grant on it: no rename, no delete
	renames                   int
	oldNames                  []string // userNames before renames
}

type mGroup struct {
	id, name string
	fixed    bool            // never renamed nor deleted (the database mapping names it)
	members  map[string]bool // user ids
	busy     bool
	renames  int
}

// driver streams identity changes into the source domain through the SCIM
// API, from several goroutines, choosing with a seeded PRNG and recording
// what it did in a model of the directory.
type driver struct {
	c     *identitydomain.Client
	fixed []string // groups made first and never renamed
	// quiesce, if set, waits until iamflow has caught up with the changes
	// made so far; the finale starts after it.
	quiesce func(context.Context)
	// until, if set, ends the changes when it is closed (then the finale).
	until <-chan struct{}

	mu     sync.Mutex
	rng    *rand.Rand
	users  []*mUser
	groups []*mGroup
	seq    int
	done   map[string]int // op -> count
	// pendingFixed are fixed groups whose creation is under way.
	pendingFixed map[string]bool
	// deleted are the userNames of users deleted in the source (every name
	// each had); former are names live users had before a rename.
	deleted, former map[string]bool
	// ids are the source ids of every userName a user and every name a
	// group ever had (lower case).
	ids    map[string]string
	errs   []string
	issued atomic.Int64
}

func newDriver(c *identitydomain.Client, seed uint64, fixed ...string) *driver {
	return &driver{c: c, fixed: fixed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), done: map[string]int{},
		pendingFixed: map[string]bool{}, deleted: map[string]bool{}, former: map[string]bool{}, ids: map[string]string{}}
}

// run makes n changes (fewer if until is closed first) with workers
// goroutines, at most one per interval across them all, then the finale,
// and returns when they are made or ctx ends.
func (d *driver) run(ctx context.Context, n, workers int, interval time.Duration) {
	defer d.finale(ctx)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for d.issued.Add(1) <= int64(n) {
				select {
				case <-ctx.Done():
					return
				case <-d.until:
					return
				case <-tick.C:
				}
				d.step(ctx)
			}
		})
	}
	wg.Wait()
}

// step chooses one change under the lock, makes it outside the lock, and
// records it. Entities a change touches are marked busy meanwhile, so two
// workers never race on one group or user and the model stays exact.
func (d *driver) step(ctx context.Context) {
	d.mu.Lock()
	apply := d.choose()
	d.mu.Unlock()
	op, err := apply(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		if len(d.errs) < 20 {
			d.errs = append(d.errs, fmt.Sprintf("%s: %v", op, err))
		}
		d.done[op+"_failed"]++
		return
	}
	d.done[op]++
}

// pickUser returns a random idle user satisfying ok, or nil.
func (d *driver) pickUser(ok func(*mUser) bool) *mUser {
	return pick(d.rng, d.users, func(u *mUser) bool { return !u.busy && ok(u) })
}

// pickGroup returns a random idle group satisfying ok, or nil.
func (d *driver) pickGroup(ok func(*mGroup) bool) *mGroup {
	return pick(d.rng, d.groups, func(g *mGroup) bool { return !g.busy && ok(g) })
}

// pick draws up to 8 times from items and returns the first draw
// satisfying ok, or nil.
func pick[T any](rng *rand.Rand, items []*T, ok func(*T) bool) *T {
	for range 8 {
		if len(items) == 0 {
			return nil
		}
		v := items[rng.IntN(len(items))]
		if ok(v) {
			return v
		}
	}
	return nil
}

// choose returns the next change; d.mu is held.
func (d *driver) choose() func(context.Context) (string, error) {
	total := 0
	for _, w := range opWeights {
		total += w.weight
	}
	r := d.rng.IntN(total)
	op := opWeights[0].op
	for _, w := range opWeights {
		if r < w.weight {
			op = w.op
			break
		}
		r -= w.weight
	}
	// Start with something to work on.
	switch {
	case len(d.users) < 5:
		op = opCreateUser
	case len(d.groups) < 3+len(d.fixed):
		op = opCreateGroup
	}
	d.seq++
	seq := d.seq
	if op == opCreateGroup {
		// The fixed groups first, each once.
		made := map[string]bool{}
		for _, g := range d.groups {
			made[g.name] = true
		}
		for _, f := range d.fixed {
			if !made[f] && !d.pendingFixed[f] {
				d.pendingFixed[f] = true
				return d.createGroup(f, true)
			}
		}
	}
	switch op {
	case opAddMembers:
		g := d.pickGroup(func(*mGroup) bool { return true })
		if g == nil {
			break
		}
		var ids []string
		for range 1 + d.rng.IntN(3) {
			if u := d.pickUser(func(u *mUser) bool { return !g.members[u.id] && !slices.Contains(ids, u.id) }); u != nil {
				ids = append(ids, u.id)
				u.refs++
			}
		}
		if len(ids) == 0 {
			break
		}
		g.busy = true
		return d.change(op, &g.busy, ids, func(ctx context.Context) error {
			_, err := d.c.AddMembers(ctx, g.id, ids...)
			return err
		}, func() {
			for _, id := range ids {
				g.members[id] = true
			}
		})
	case opRemove:
		g := d.pickGroup(func(g *mGroup) bool { return len(g.members) > 0 })
		if g == nil {
			break
		}
		ids := slices.Sorted(maps.Keys(g.members))
		id := ids[d.rng.IntN(len(ids))]
		u := d.user(id)
		if u == nil || u.busy {
			break
		}
		u.refs++
		g.busy = true
		return d.change(op, &g.busy, []string{id}, func(ctx context.Context) error {
			_, err := d.c.RemoveMembers(ctx, g.id, id)
			return err
		}, func() { delete(g.members, id) })
	case opRenameGroup, opDeleteGroup:
		g := d.pickGroup(func(g *mGroup) bool { return !g.fixed })
		if g == nil {
			break
		}
		g.busy = true
		if op == opRenameGroup {
			return d.renameGroup(g)
		}
		return d.change(op, &g.busy, nil, func(ctx context.Context) error {
			_, err := d.c.DeleteGroup(ctx, g.id, "")
			return err
		}, func() { d.groups = slices.DeleteFunc(d.groups, func(x *mGroup) bool { return x == g }) })
	case opUpdateUser:
		u := d.pickUser(func(*mUser) bool { return true })
		if u == nil {
			break
		}
		u.busy = true
		name := fmt.Sprintf("User %d v%d", seq, d.rng.IntN(1000))
		return d.patchUser(op, u, identitydomain.Replace("displayName", name), func() { u.displayName = name })
	case opDeactivate:
		u := d.pickUser(func(u *mUser) bool { return u.active })
		if u == nil {
			break
		}
		u.busy = true
		return d.patchUser(op, u, identitydomain.Replace("active", false), func() { u.active = false })
	case opRenameUser, opDeleteUser:
		u := d.pickUser(func(u *mUser) bool { return u.refs == 0 && !u.pinned })
		if u == nil {
			break
		}
		u.busy = true
		if op == opRenameUser {
			return d.renameUser(u)
		}
		return d.deleteUser(u)
	case opCreateGroup:
		return d.createGroup(fmt.Sprintf("g%05d", seq), false)
	}
	// create_user, and the fallback when nothing fitted.
	userName := fmt.Sprintf("u%05d@e2e.example.com", seq)
	display := fmt.Sprintf("User %d", seq)
	return func(ctx context.Context) (string, error) {
		u, _, err := d.c.CreateUser(ctx, identitydomains.User{
			UserName: &userName, DisplayName: &display,
			Name:   &identitydomains.UserName{GivenName: ptr(fmt.Sprint("Given", seq)), FamilyName: ptr(fmt.Sprint("Family", seq))},
			Emails: []identitydomains.UserEmails{{Value: &userName, Type: identitydomains.UserEmailsTypeWork, Primary: ptr(true)}},
		})
		if err != nil {
			return opCreateUser, err
		}
		d.mu.Lock()
		d.users = append(d.users, &mUser{id: *u.Id, userName: userName, displayName: display, active: true})
		d.ids[strings.ToLower(userName)] = *u.Id
		d.mu.Unlock()
		return opCreateUser, nil
	}
}

// finale deletes a few users who are members of groups, renames a few
// users and a group, and touches nothing else. It starts once iamflow has
// caught up (quiesce), so the user events are all there is to handle: no
// group event read after the deletion repairs the target in passing, and
// only the event path can bring the target along before the comparison.
func (d *driver) finale(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if d.quiesce != nil {
		d.quiesce(ctx)
	}
	d.mu.Lock()
	var members []*mUser
	inGroup := map[string]bool{}
	for _, g := range d.groups {
		for id := range g.members {
			inGroup[id] = true
		}
	}
	for _, u := range d.users {
		if inGroup[u.id] && !u.pinned && !u.busy && u.refs == 0 {
			members = append(members, u)
		}
	}
	var steps []func(context.Context) (string, error)
	for i, u := range members[:min(5, len(members))] {
		u.busy = true
		if i < 3 {
			steps = append(steps, d.deleteUser(u))
		} else {
			steps = append(steps, d.renameUser(u))
		}
	}
	if g := d.pickGroup(func(g *mGroup) bool { return !g.fixed && len(g.members) > 0 }); g != nil {
		g.busy = true
		steps = append(steps, d.renameGroup(g))
	}
	d.mu.Unlock()
	for _, step := range steps {
		op, err := step(ctx)
		d.mu.Lock()
		if err != nil {
			d.errs = append(d.errs, fmt.Sprintf("finale %s: %v", op, err))
		} else {
			d.done[op]++
		}
		d.mu.Unlock()
	}
}

// user returns the model's user with id, or nil; d.mu is held.
func (d *driver) user(id string) *mUser {
	for _, u := range d.users {
		if u.id == id {
			return u
		}
	}
	return nil
}

// change returns the change op that makes call in the source. Afterwards,
// under d.mu, it clears *busy (the entity it touched), releases the users
// refs names (a membership change), and, when call succeeded, runs commit
// to record it in the model.
func (d *driver) change(op string, busy *bool, refs []string, call func(context.Context) error, commit func()) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		err := call(ctx)
		d.mu.Lock()
		defer d.mu.Unlock()
		*busy = false
		for _, u := range d.users {
			if slices.Contains(refs, u.id) {
				u.refs--
			}
		}
		if err == nil {
			commit()
		}
		return op, err
	}
}

// patchUser returns the change op that patches u (marked busy) with the
// operation patch, and then runs commit.
func (d *driver) patchUser(op string, u *mUser, patch identitydomains.Operations, commit func()) func(context.Context) (string, error) {
	return d.change(op, &u.busy, nil, func(ctx context.Context) error {
		_, _, err := d.c.PatchUser(ctx, u.id, "", patch)
		return err
	}, commit)
}

// renameGroup returns the change that renames g (marked busy); d.mu is held.
func (d *driver) renameGroup(g *mGroup) func(context.Context) (string, error) {
	g.renames++
	name := fmt.Sprintf("%s-r%d", strings.SplitN(g.name, "-r", 2)[0], g.renames)
	return d.change(opRenameGroup, &g.busy, nil, func(ctx context.Context) error {
		_, _, err := d.c.PatchGroup(ctx, g.id, "", identitydomain.Replace("displayName", name))
		return err
	}, func() {
		g.name = name
		d.ids[strings.ToLower(name)] = g.id
	})
}

// renameUser returns the change that gives u (marked busy) a new userName;
// d.mu is held.
func (d *driver) renameUser(u *mUser) func(context.Context) (string, error) {
	u.renames++
	base, domain, _ := strings.Cut(u.userName, "@")
	name := fmt.Sprintf("%s-r%d@%s", strings.SplitN(base, "-r", 2)[0], u.renames, domain)
	return d.patchUser(opRenameUser, u, identitydomain.Replace("userName", name), func() {
		d.former[u.userName] = true
		u.oldNames = append(u.oldNames, u.userName)
		u.userName = name
		d.ids[strings.ToLower(name)] = u.id
	})
}

// deleteUser returns the change that deletes u (marked busy); d.mu is held.
func (d *driver) deleteUser(u *mUser) func(context.Context) (string, error) {
	return d.change(opDeleteUser, &u.busy, nil, func(ctx context.Context) error {
		_, err := d.c.DeleteUser(ctx, u.id, "")
		return err
	}, func() {
		// A target may know it by any of its names (a rename the
		// replicator could not read any more): all are a deleted user's.
		for _, n := range append(u.oldNames, u.userName) {
			d.deleted[n] = true
			delete(d.former, n)
		}
		d.users = slices.DeleteFunc(d.users, func(x *mUser) bool { return x == u })
		for _, g := range d.groups {
			delete(g.members, u.id)
		}
	})
}

// createGroup returns the change that creates a group.
func (d *driver) createGroup(name string, fixed bool) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		g, _, err := d.c.CreateGroup(ctx, identitydomains.Group{DisplayName: &name})
		if err != nil {
			return opCreateGroup, err
		}
		d.mu.Lock()
		d.groups = append(d.groups, &mGroup{id: *g.Id, name: name, fixed: fixed, members: map[string]bool{}})
		d.ids[strings.ToLower(name)] = *g.Id
		d.mu.Unlock()
		return opCreateGroup, nil
	}
}

// model is the directory the driver believes it made, as a snapshot.
func (d *driver) model() snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := newSnapshot()
	names := map[string]string{}
	for _, u := range d.users {
		s.users[u.userName] = userLine(u.displayName, u.active)
		names[u.id] = u.userName
	}
	for _, g := range d.groups {
		var ms []string
		for id := range g.members {
			ms = append(ms, names[id])
		}
		sort.Strings(ms)
		s.groups[g.name] = ms
	}
	return s
}

// counts returns the changes made by kind, and the first errors.
func (d *driver) counts() (map[string]int, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for k, v := range d.done {
		out[k] = v
	}
	return out, append([]string(nil), d.errs...)
}

// gone returns the names no live user of the source holds any more: those
// of deleted users, and those users had before a rename.
func (d *driver) gone() (deleted, former map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	deleted, former = map[string]bool{}, map[string]bool{}
	for n := range d.deleted {
		deleted[strings.ToLower(n)] = true
	}
	for n := range d.former {
		former[strings.ToLower(n)] = true
	}
	return deleted, former
}

// sourceIDs returns the source ids of the users and groups the driver made
// that ever had one of names (lower case); unknown names are skipped.
func (d *driver) sourceIDs(names []string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, n := range names {
		if id := d.ids[n]; id != "" {
			out = append(out, id)
		}
	}
	return out
}

// pin picks a random idle user that is not pinned yet and pins it: the
// driver neither renames nor deletes it until unpin. It returns the user's
// id and userName, or "" when none is free.
func (d *driver) pin() (id, userName string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.pickUser(func(u *mUser) bool { return !u.pinned })
	if u == nil {
		return "", ""
	}
	u.pinned = true
	return u.id, u.userName
}

// unpin releases a pin.
func (d *driver) unpin(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u := d.user(id); u != nil {
		u.pinned = false
	}
}

func ptr[T any](v T) *T { return &v }
