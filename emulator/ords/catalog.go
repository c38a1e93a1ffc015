package ords

import (
	"maps"
	"slices"
	"time"
)

// Account statuses as DBA_USERS.ACCOUNT_STATUS reports them.
const (
	StatusOpen   = "OPEN"
	StatusLocked = "LOCKED"
)

// PrivCreateSession is the one system privilege the emulator knows.
const PrivCreateSession = "CREATE SESSION"

// User is a database user as DBA_USERS shows it, with its grants.
type User struct {
	// Username is the name as stored (upper-case unless created quoted).
	Username string `json:"username" yaml:"username"`
	// AccountStatus is OPEN or LOCKED. Default: OPEN.
	AccountStatus string `json:"accountStatus,omitempty" yaml:"accountStatus,omitempty"`
	// ExternalName is the IDENTIFIED GLOBALLY AS text, e.g.
	// "IAM_PRINCIPAL_NAME=dom/alice"; empty for a password user (NULL).
	ExternalName string `json:"externalName,omitempty" yaml:"externalName,omitempty"`
	// Created is when the user was created. Default: the emulator's clock.
	Created time.Time `json:"created,omitzero" yaml:"created,omitempty"`
	// Roles are the granted roles (DBA_ROLE_PRIVS), sorted.
	Roles []string `json:"roles,omitempty" yaml:"roles,omitempty"`
	// Privileges are the granted system privileges (DBA_SYS_PRIVS), e.g.
	// "CREATE SESSION", sorted.
	Privileges []string `json:"privileges,omitempty" yaml:"privileges,omitempty"`
}

// Role is a database role as DBA_ROLES shows it.
type Role struct {
	// Name is the role name as stored.
	Name string `json:"name" yaml:"name"`
	// ExternalName is the IDENTIFIED GLOBALLY AS text, e.g.
	// "IAM_GROUP_NAME=dom/dbas"; empty for a local role.
	ExternalName string `json:"externalName,omitempty" yaml:"externalName,omitempty"`
}

type userRec struct {
	id       int
	name     string
	status   string
	external string
	global   bool
	created  time.Time
	roles    map[string]bool
	privs    map[string]bool
}

// grants is where it is granted to u: u's system privileges or its roles.
func (u *userRec) grants(it grantItem) map[string]bool {
	if it.priv {
		return u.privs
	}
	return u.roles
}

type roleRec struct {
	id       int
	name     string
	external string
	global   bool
}

// catalog is one database's users, roles and grants. Users and roles share
// one namespace, as in Oracle. The caller holds the database's lock.
type catalog struct {
	users  map[string]*userRec
	roles  map[string]*roleRec
	nextID int
}

func newCatalog() *catalog {
	return &catalog{users: map[string]*userRec{}, roles: map[string]*roleRec{}, nextID: 100}
}

func (c *catalog) id() int {
	c.nextID++
	return c.nextID
}

// clone deep-copies the catalog (for snapshots in tests and fuzzing).
func (c *catalog) clone() *catalog {
	n := &catalog{users: map[string]*userRec{}, roles: map[string]*roleRec{}, nextID: c.nextID}
	for k, u := range c.users {
		cu := *u
		cu.roles, cu.privs = map[string]bool{}, map[string]bool{}
		for r := range u.roles {
			cu.roles[r] = true
		}
		for p := range u.privs {
			cu.privs[p] = true
		}
		n.users[k] = &cu
	}
	for k, r := range c.roles {
		cr := *r
		n.roles[k] = &cr
	}
	return n
}

func (c *catalog) userNames() []string { return slices.Sorted(maps.Keys(c.users)) }

func (c *catalog) roleNames() []string { return slices.Sorted(maps.Keys(c.roles)) }

func (u *userRec) export() User {
	out := User{Username: u.name, AccountStatus: u.status, ExternalName: u.external, Created: u.created}
	out.Roles = slices.Sorted(maps.Keys(u.roles))
	out.Privileges = slices.Sorted(maps.Keys(u.privs))
	return out
}

func (c *catalog) createUser(name, auth, external string, now time.Time) *oraError {
	if c.users[name] != nil || c.roles[name] != nil {
		return errUserConflict(name)
	}
	c.users[name] = &userRec{
		id: c.id(), name: name, status: StatusOpen, external: external, global: auth == "GLOBAL",
		created: now, roles: map[string]bool{}, privs: map[string]bool{},
	}
	return nil
}

func (c *catalog) createRole(name, auth, external string) *oraError {
	if c.users[name] != nil || c.roles[name] != nil {
		return errRoleConflict(name)
	}
	c.roles[name] = &roleRec{id: c.id(), name: name, external: external, global: auth == "GLOBAL"}
	return nil
}

// grant checks every item and grantee before changing anything, as one
// Oracle statement does. Granting what is already granted succeeds.
//
// A missing grantee is ORA-01918 as ords-contract.md says (the database
// itself says ORA-01917 "user or role 'X' does not exist" for GRANT and
// REVOKE; the contract keeps one code for "user missing"). Roles cannot be
// granted to roles here: grantees are users.
func (c *catalog) grant(items []grantItem, grantees []string) *oraError {
	if err := c.checkGrant(items, grantees); err != nil {
		return err
	}
	return c.eachGrant(items, grantees, func(u *userRec, it grantItem) *oraError {
		u.grants(it)[it.name] = true
		return nil
	})
}

func (c *catalog) checkGrant(items []grantItem, grantees []string) *oraError {
	for _, it := range items {
		if !it.priv && c.roles[it.name] == nil {
			return errRoleMissing(it.name)
		}
	}
	for _, g := range grantees {
		if c.users[g] == nil {
			return errUserMissing(g)
		}
	}
	return nil
}

// revoke checks everything first too; revoking a role that is not granted is
// ORA-01951, a system privilege ORA-01952.
func (c *catalog) revoke(items []grantItem, grantees []string) *oraError {
	if err := c.checkGrant(items, grantees); err != nil {
		return err
	}
	err := c.eachGrant(items, grantees, func(u *userRec, it grantItem) *oraError {
		switch {
		case u.grants(it)[it.name]:
			return nil
		case it.priv:
			return errPrivNotGranted(u.name)
		}
		return errRoleNotGranted(it.name, u.name)
	})
	if err != nil {
		return err
	}
	return c.eachGrant(items, grantees, func(u *userRec, it grantItem) *oraError {
		delete(u.grants(it), it.name)
		return nil
	})
}

// eachGrant calls f for every grantee (a user checkGrant found) and item,
// grantee by grantee, and stops at the first error.
func (c *catalog) eachGrant(items []grantItem, grantees []string, f func(*userRec, grantItem) *oraError) *oraError {
	for _, g := range grantees {
		u := c.users[g]
		for _, it := range items {
			if err := f(u, it); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *catalog) alterLock(name string, lock bool) *oraError {
	u := c.users[name]
	if u == nil {
		return errUserMissing(name)
	}
	u.status = StatusOpen
	if lock {
		u.status = StatusLocked
	}
	return nil
}

// dropUser drops a user and its grants. Emulated users own no objects, so
// CASCADE changes nothing (without it Oracle refuses only a user that owns
// objects, ORA-01922).
func (c *catalog) dropUser(name string) *oraError {
	if c.users[name] == nil {
		return errUserMissing(name)
	}
	delete(c.users, name)
	return nil
}

// dropRole drops a role and revokes it from every user.
func (c *catalog) dropRole(name string) *oraError {
	if c.roles[name] == nil {
		return errRoleMissing(name)
	}
	delete(c.roles, name)
	for _, u := range c.users {
		delete(u.roles, name)
	}
	return nil
}

// authType is DBA_USERS/DBA_ROLES.AUTHENTICATION_TYPE.
func authType(global bool, local string) string {
	if global {
		return "GLOBAL"
	}
	return local
}
