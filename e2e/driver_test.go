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
)

// opWeights is the mix of changes: mostly memberships, as in a real directory.
var opWeights = []struct {
	op     string
	weight int
}{
	{opCreateUser, 18}, {opCreateGroup, 5}, {opAddMembers, 35}, {opRemove, 12},
	{opRenameGroup, 8}, {opUpdateUser, 15}, {opDeactivate, 7},
}

// mUser and mGroup are the driver's model of what it made in the source.
type mUser struct {
	id, userName, displayName string
	active                    bool
	busy                      bool
}

type mGroup struct {
	id, name string
	fixed    bool            // never renamed (the database mapping names it)
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

	mu     sync.Mutex
	rng    *rand.Rand
	users  []*mUser
	groups []*mGroup
	seq    int
	done   map[string]int // op -> count
	// pendingFixed are fixed groups whose creation is under way.
	pendingFixed map[string]bool
	errs         []string
	issued       atomic.Int64
}

func newDriver(c *identitydomain.Client, seed uint64, fixed ...string) *driver {
	return &driver{c: c, fixed: fixed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), done: map[string]int{}, pendingFixed: map[string]bool{}}
}

// run makes n changes with workers goroutines, at most one per interval
// across them all, and returns when they are made or ctx ends.
func (d *driver) run(ctx context.Context, n, workers int, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for d.issued.Add(1) <= int64(n) {
				select {
				case <-ctx.Done():
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
	for range 8 {
		if len(d.users) == 0 {
			return nil
		}
		u := d.users[d.rng.IntN(len(d.users))]
		if !u.busy && ok(u) {
			return u
		}
	}
	return nil
}

// pickGroup returns a random idle group satisfying ok, or nil.
func (d *driver) pickGroup(ok func(*mGroup) bool) *mGroup {
	for range 8 {
		if len(d.groups) == 0 {
			return nil
		}
		g := d.groups[d.rng.IntN(len(d.groups))]
		if !g.busy && ok(g) {
			return g
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
			if u := d.pickUser(func(u *mUser) bool { return !g.members[u.id] && !strings.Contains(strings.Join(ids, ","), u.id) }); u != nil {
				ids = append(ids, u.id)
			}
		}
		if len(ids) == 0 {
			break
		}
		g.busy = true
		return func(ctx context.Context) (string, error) {
			_, err := d.c.AddMembers(ctx, g.id, ids...)
			d.mu.Lock()
			defer d.mu.Unlock()
			g.busy = false
			if err == nil {
				for _, id := range ids {
					g.members[id] = true
				}
			}
			return op, err
		}
	case opRemove:
		g := d.pickGroup(func(g *mGroup) bool { return len(g.members) > 0 })
		if g == nil {
			break
		}
		ids := slices.Sorted(maps.Keys(g.members))
		id := ids[d.rng.IntN(len(ids))]
		g.busy = true
		return func(ctx context.Context) (string, error) {
			_, err := d.c.RemoveMembers(ctx, g.id, id)
			d.mu.Lock()
			defer d.mu.Unlock()
			g.busy = false
			if err == nil {
				delete(g.members, id)
			}
			return op, err
		}
	case opRenameGroup:
		g := d.pickGroup(func(g *mGroup) bool { return !g.fixed })
		if g == nil {
			break
		}
		g.busy = true
		g.renames++
		name := fmt.Sprintf("%s-r%d", strings.SplitN(g.name, "-r", 2)[0], g.renames)
		return func(ctx context.Context) (string, error) {
			_, _, err := d.c.PatchGroup(ctx, g.id, "", identitydomain.Replace("displayName", name))
			d.mu.Lock()
			defer d.mu.Unlock()
			g.busy = false
			if err == nil {
				g.name = name
			}
			return op, err
		}
	case opUpdateUser:
		u := d.pickUser(func(*mUser) bool { return true })
		if u == nil {
			break
		}
		u.busy = true
		name := fmt.Sprintf("User %d v%d", seq, d.rng.IntN(1000))
		return func(ctx context.Context) (string, error) {
			_, _, err := d.c.PatchUser(ctx, u.id, "", identitydomain.Replace("displayName", name))
			d.mu.Lock()
			defer d.mu.Unlock()
			u.busy = false
			if err == nil {
				u.displayName = name
			}
			return op, err
		}
	case opDeactivate:
		u := d.pickUser(func(u *mUser) bool { return u.active })
		if u == nil {
			break
		}
		u.busy = true
		return func(ctx context.Context) (string, error) {
			_, _, err := d.c.PatchUser(ctx, u.id, "", identitydomain.Replace("active", false))
			d.mu.Lock()
			defer d.mu.Unlock()
			u.busy = false
			if err == nil {
				u.active = false
			}
			return op, err
		}
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
		d.mu.Unlock()
		return opCreateUser, nil
	}
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

// someUserNames returns up to n random userNames made so far.
func (d *driver) someUserNames(n int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for range n {
		if len(d.users) == 0 {
			break
		}
		out = append(out, d.users[d.rng.IntN(len(d.users))].userName)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
