package capabilities

import (
	"context"
	"errors"
	"iter"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

// Directory is what the service needs from one identity domain. The
// adapter over internal/identitydomain's Client (NewDirectory) is the real
// one; tests use fakes.
type Directory interface {
	// ReadUser reads one user, with Groups filled when withGroups is set. A
	// user that does not exist is an error that wraps ErrNotFound.
	ReadUser(ctx context.Context, ref UserRef, withGroups bool) (User, error)
	// Users lists every user of the domain, page by page, with Groups
	// filled when withGroups is set. It stops at the first error it yields.
	Users(ctx context.Context, withGroups bool) iter.Seq2[User, error]
	// SetCapabilities sets the flags f sets on the user with that SCIM id,
	// through PUT /admin/v1/UserCapabilitiesChanger/{id}; flags f leaves
	// unset are not sent.
	SetCapabilities(ctx context.Context, userID string, f Flags) error
}

// userCounter is implemented by directories that can count their users
// cheaply; a sweep then shows its total from the start.
type userCounter interface {
	CountUsers(ctx context.Context) (int, error)
}

// Errors a Directory returns, wrapped, so the service knows what to do.
// The real directory returns the Identity Domains client's errors, which
// say themselves whether a retry can help (bus.RetryHint); a fake wraps
// these sentinels.
var (
	// ErrNotFound: the user does not exist (or not yet: see JITRetryAfter).
	// It is the client's sentinel, so a domain's 404 is one.
	ErrNotFound = identitydomain.ErrNotFound
	// ErrPermanent: retrying the same call cannot help (forbidden, invalid
	// request); an event that meets it is dead-lettered at once.
	ErrPermanent = bus.Permanent(errors.New("permanent failure"))
	// ErrForbidden: the domain refused the call (403), so iamflow's OAuth
	// application lacks an app role. It is the client's sentinel; the
	// client's error for it is permanent.
	ErrForbidden = identitydomain.ErrForbidden
)

// UserRef names a user as an event or an API call does: by SCIM id, by
// OCID (legacy IAM events) or by userName. The first non-empty of ID, OCID
// and Name is used.
type UserRef struct {
	ID   string
	OCID string
	Name string
}

// String is the reference as used in logs and errors.
func (r UserRef) String() string {
	switch {
	case r.ID != "":
		return r.ID
	case r.OCID != "":
		return r.OCID
	}
	return r.Name
}

// IsZero reports whether r names nobody.
func (r UserRef) IsZero() bool { return r.ID == "" && r.OCID == "" && r.Name == "" }

// User is what the policy looks at, and the user's current flags.
type User struct {
	// ID is the SCIM id; OCID the user's OCID.
	ID   string
	OCID string
	// UserName is the login name.
	UserName string
	// Email is the primary email (or the first work email when none is
	// marked primary); never the recovery email.
	Email string
	// Federated is urn:...:extension:user:User isFederatedUser.
	Federated bool
	// Active is false for deactivated users.
	Active bool
	// Groups are the displayNames of the user's groups; nil when not read.
	Groups []string
	// Flags are the user's current capability flags (nil: unknown).
	Flags Flags
}

// label names the user in logs, audit reasons and failures.
func (u User) label() string {
	if u.UserName != "" {
		return u.UserName
	}
	return u.ID
}
