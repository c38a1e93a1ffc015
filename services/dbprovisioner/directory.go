package dbprovisioner

import (
	"context"
	"errors"
	"iter"
	"strings"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/ords"
)

// Directory is what the service needs from one identity domain. The adapter
// over internal/identitydomain's Client (NewDirectory) is the real one;
// tests use fakes.
type Directory interface {
	// ReadUser reads one user with the displayNames of their groups. A user
	// that does not exist is an error that wraps ErrNotFound.
	ReadUser(ctx context.Context, ref UserRef) (User, error)
	// GroupMembers lists the users of the group with that displayName
	// (compared case-insensitively), with their SCIM id and userName. A group
	// that does not exist is an error that wraps ErrNotFound. It stops at the
	// first error it yields.
	GroupMembers(ctx context.Context, group string) iter.Seq2[UserRef, error]
}

// Database is what the service needs from one Autonomous Database: its
// catalog (DBA_USERS, DBA_ROLE_PRIVS, DBA_ROLES, read with bind variables)
// and a way to run one statement. The adapter over internal/ords's client
// (NewDatabase) is the real one; tests use fakes. Errors say whether a
// retry can help as bus.RetryHint reads it (ErrPermanent when it cannot).
type Database interface {
	// UserByName reads the account with that name; found is false when
	// there is none.
	UserByName(ctx context.Context, name ords.Identifier) (u DBUser, found bool, err error)
	// RolesOf lists the roles granted to the account (DBA_ROLE_PRIVS.granted_role).
	RolesOf(ctx context.Context, grantee ords.Identifier) ([]string, error)
	// MappedUsers lists the accounts whose external_name is LIKE pattern
	// (from ords.DomainPattern).
	MappedUsers(ctx context.Context, pattern string) ([]DBUser, error)
	// RoleExists reports whether a role of that name exists (DBA_ROLES).
	RoleExists(ctx context.Context, role ords.Identifier) (bool, error)
	// Exec runs one statement built by internal/ords.
	Exec(ctx context.Context, st ords.Statement) error
}

// Errors a Directory or Database returns, wrapped, so the service knows
// what to do. The real ones return their clients' errors, which say
// themselves whether a retry can help (bus.RetryHint); a fake wraps these
// sentinels.
var (
	// ErrNotFound: the IAM user or group does not exist. It is the
	// Identity Domains client's sentinel, so a domain's 404 is one.
	ErrNotFound = identitydomain.ErrNotFound
	// ErrPermanent: retrying the same call cannot help (forbidden, invalid
	// request, an ORA- error that will not go away); an event that meets it
	// is dead-lettered at once.
	ErrPermanent = bus.Permanent(errors.New("permanent failure"))
)

// UserRef names an IAM user as an event or an API call does: by SCIM id or
// by userName; the id is used when both are set.
type UserRef struct {
	ID   string
	Name string
}

// String is the reference as used in logs and errors.
func (r UserRef) String() string {
	if r.ID != "" {
		return r.ID
	}
	return r.Name
}

// IsZero reports whether r names nobody.
func (r UserRef) IsZero() bool { return r.ID == "" && r.Name == "" }

// User is an IAM user as the planner sees it.
type User struct {
	// ID is the SCIM id; UserName the login name, as the domain spells it.
	ID       string
	UserName string
	// Active is false for deactivated users, who count as members of no group.
	Active bool
	// Groups are the displayNames of the user's groups.
	Groups []string
}

// DBUser is one row of DBA_USERS.
type DBUser struct {
	// Name is DBA_USERS.username (upper case).
	Name string
	// Status is DBA_USERS.account_status: OPEN, LOCKED, EXPIRED & LOCKED, ...
	Status string
	// ExternalName is DBA_USERS.external_name, e.g.
	// IAM_PRINCIPAL_NAME=domain/user for an IAM-authenticated account.
	ExternalName string
}

// locked reports whether the account is locked (any LOCKED status).
func (u DBUser) locked() bool { return strings.Contains(strings.ToUpper(u.Status), "LOCKED") }
