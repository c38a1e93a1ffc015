package dbprovisioner

import (
	"context"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/iamflow/iamflow/internal/ords"
)

// fakeDir is an in-memory Directory.
type fakeDir struct {
	mu     sync.Mutex
	users  map[string]*User // by id
	reads  int
	groups map[string]bool // existing groups (lower-case)
}

func newFakeDir() *fakeDir { return &fakeDir{users: map[string]*User{}, groups: map[string]bool{}} }

func (d *fakeDir) set(u User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cp := u
	cp.Groups = slices.Clone(u.Groups)
	d.users[u.ID] = &cp
	for _, g := range u.Groups {
		d.groups[strings.ToLower(g)] = true
	}
}

func (d *fakeDir) remove(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.users, id)
}

func (d *fakeDir) ReadUser(_ context.Context, ref UserRef) (User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	for _, u := range d.users {
		if (ref.ID != "" && u.ID == ref.ID) || (ref.ID == "" && strings.EqualFold(u.UserName, ref.Name)) {
			cp := *u
			cp.Groups = slices.Clone(u.Groups)
			return cp, nil
		}
	}
	return User{}, fmt.Errorf("fake: user %s: %w", ref, ErrNotFound)
}

func (d *fakeDir) GroupMembers(_ context.Context, group string) iter.Seq2[UserRef, error] {
	d.mu.Lock()
	var refs []UserRef
	exists := d.groups[strings.ToLower(group)]
	for _, u := range d.users {
		for _, g := range u.Groups {
			if strings.EqualFold(g, group) {
				refs = append(refs, UserRef{ID: u.ID})
			}
		}
	}
	d.mu.Unlock()
	slices.SortFunc(refs, func(a, b UserRef) int { return strings.Compare(a.ID, b.ID) })
	return func(yield func(UserRef, error) bool) {
		if !exists {
			yield(UserRef{}, fmt.Errorf("fake: group %q: %w", group, ErrNotFound))
			return
		}
		for _, r := range refs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// fakeDB is an in-memory Database that understands the statements of the
// contract.
type fakeDB struct {
	mu       sync.Mutex
	users    map[string]*DBUser
	grants   map[string]map[string]bool
	roles    map[string]bool
	executed []string
	// failNext fails the next Exec calls with err.
	failNext              int
	failErr               error
	inFlight, maxInFlight int
	first                 time.Time // when the first statement ran
}

func newFakeDB() *fakeDB {
	return &fakeDB{users: map[string]*DBUser{}, grants: map[string]map[string]bool{}, roles: map[string]bool{}}
}

func (d *fakeDB) enter() func() {
	d.mu.Lock()
	d.inFlight++
	d.maxInFlight = max(d.maxInFlight, d.inFlight)
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		d.inFlight--
		d.mu.Unlock()
	}
}

func (d *fakeDB) UserByName(_ context.Context, name ords.Identifier) (DBUser, bool, error) {
	defer d.enter()()
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[name.Name()]
	if !ok {
		return DBUser{}, false, nil
	}
	return *u, true, nil
}

func (d *fakeDB) RolesOf(_ context.Context, grantee ords.Identifier) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for r := range d.grants[grantee.Name()] {
		out = append(out, r)
	}
	slices.Sort(out)
	return out, nil
}

func (d *fakeDB) MappedUsers(_ context.Context, pattern string) ([]DBUser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	prefix := strings.TrimSuffix(pattern, "%")
	var out []DBUser
	for _, u := range d.users {
		if strings.HasPrefix(u.ExternalName, prefix) {
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b DBUser) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (d *fakeDB) RoleExists(_ context.Context, role ords.Identifier) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.roles[role.Name()], nil
}

var (
	reCreateUser = regexp.MustCompile(`^CREATE USER "([^"]+)" IDENTIFIED GLOBALLY AS '([^']+)'$`)
	reCreateRole = regexp.MustCompile(`^CREATE ROLE "([^"]+)" IDENTIFIED GLOBALLY AS '([^']+)'$`)
	reSession    = regexp.MustCompile(`^GRANT CREATE SESSION TO "([^"]+)"$`)
	reGrant      = regexp.MustCompile(`^GRANT "([^"]+)" TO "([^"]+)"$`)
	reRevoke     = regexp.MustCompile(`^REVOKE "([^"]+)" FROM "([^"]+)"$`)
	reLock       = regexp.MustCompile(`^ALTER USER "([^"]+)" ACCOUNT (LOCK|UNLOCK)$`)
	reDrop       = regexp.MustCompile(`^DROP USER "([^"]+)" CASCADE$`)
)

func (d *fakeDB) Exec(_ context.Context, st ords.Statement) error {
	defer d.enter()()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failNext > 0 {
		d.failNext--
		return d.failErr
	}
	d.executed = append(d.executed, st.Text)
	if d.first.IsZero() {
		d.first = time.Now()
	}
	switch t := st.Text; {
	case reCreateUser.MatchString(t):
		m := reCreateUser.FindStringSubmatch(t)
		d.users[m[1]] = &DBUser{Name: m[1], Status: "OPEN", ExternalName: m[2]}
	case reCreateRole.MatchString(t):
		d.roles[reCreateRole.FindStringSubmatch(t)[1]] = true
	case reSession.MatchString(t):
	case reGrant.MatchString(t):
		m := reGrant.FindStringSubmatch(t)
		if d.grants[m[2]] == nil {
			d.grants[m[2]] = map[string]bool{}
		}
		d.grants[m[2]][m[1]] = true
	case reRevoke.MatchString(t):
		m := reRevoke.FindStringSubmatch(t)
		delete(d.grants[m[2]], m[1])
	case reLock.MatchString(t):
		m := reLock.FindStringSubmatch(t)
		if m[2] == "LOCK" {
			d.users[m[1]].Status = "LOCKED"
		} else {
			d.users[m[1]].Status = "OPEN"
		}
	case reDrop.MatchString(t):
		delete(d.users, reDrop.FindStringSubmatch(t)[1])
	default:
		return fmt.Errorf("fake db: unexpected statement %q: %w", t, ErrPermanent)
	}
	return nil
}

func (d *fakeDB) statements() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.executed)
}

func (d *fakeDB) firstExec() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.first
}

func (d *fakeDB) account(name string) (DBUser, []string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[name]
	if !ok {
		return DBUser{}, nil, false
	}
	var roles []string
	for r := range d.grants[name] {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	return *u, roles, true
}

// retryErr is a transient failure asking for a short wait.
type retryErr struct{}

func (retryErr) Error() string                    { return "pool exhausted" }
func (retryErr) RetryHint() (bool, time.Duration) { return true, 10 * time.Millisecond }
