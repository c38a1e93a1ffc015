package dbprovisioner

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// NewDirectory adapts an Identity Domains client to Directory. Reads ask only
// for userName, active and groups; rate limiting, retries and the circuit
// breaker are the client's.
func NewDirectory(c *identitydomain.Client) Directory { return &clientDirectory{c: c} }

type clientDirectory struct{ c *identitydomain.Client }

var _ Directory = (*clientDirectory)(nil)

var userAttributes = []string{"userName", "active", "groups"}

// ReadUser reads the user by SCIM id (GetUser) or userName (FindUserByName).
func (d *clientDirectory) ReadUser(ctx context.Context, ref UserRef) (User, error) {
	switch {
	case ref.ID != "":
		u, err := d.c.GetUser(ctx, ref.ID, userAttributes...)
		if err != nil {
			return User{}, classify(err)
		}
		return userFrom(u), nil
	case ref.Name != "":
		u, found, err := d.c.FindUserByName(ctx, ref.Name, userAttributes...)
		if err != nil {
			return User{}, classify(err)
		}
		if !found {
			return User{}, fmt.Errorf("user %q: %w", ref.Name, ErrNotFound)
		}
		return userFrom(u), nil
	}
	return User{}, fmt.Errorf("read user: no id or userName: %w", ErrPermanent)
}

// GroupMembers finds the group by displayName and lists its user members
// (by SCIM id).
func (d *clientDirectory) GroupMembers(ctx context.Context, group string) iter.Seq2[UserRef, error] {
	return func(yield func(UserRef, error) bool) {
		g, found, err := d.c.FindGroupByName(ctx, group, "displayName")
		if err != nil {
			yield(UserRef{}, classify(err))
			return
		}
		if !found || g.Id == nil {
			yield(UserRef{}, fmt.Errorf("group %q: %w", group, ErrNotFound))
			return
		}
		for m, err := range d.c.GroupMembers(ctx, *g.Id, 0) {
			if err != nil {
				yield(UserRef{}, classify(err))
				return
			}
			if m.Value == nil || (m.Type != "" && m.Type != identitydomains.GroupMembersTypeUser) {
				continue
			}
			if !yield(UserRef{ID: *m.Value}, nil) {
				return
			}
		}
	}
}

func userFrom(u identitydomains.User) User {
	out := User{ID: deref(u.Id), UserName: deref(u.UserName), Active: u.Active == nil || *u.Active}
	out.Groups = make([]string, 0, len(u.Groups))
	for _, g := range u.Groups {
		if n := deref(g.Display); n != "" {
			out.Groups = append(out.Groups, n)
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// classify marks a client error with what the service does about it:
// ErrNotFound, ErrPermanent, or transient with the client's Retry-After.
func classify(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, identitydomain.ErrNotFound):
		return &classified{err: err, class: ErrNotFound}
	case !identitydomain.Retryable(err):
		return &classified{err: err, class: ErrPermanent}
	}
	return &classified{err: err, after: identitydomain.RetryAfter(err)}
}

// classified is an error with its class and the wait it asks for.
type classified struct {
	err   error
	class error // ErrNotFound, ErrPermanent or nil
	after time.Duration
}

func (e *classified) Error() string { return e.err.Error() }

func (e *classified) Unwrap() []error {
	if e.class == nil {
		return []error{e.err}
	}
	return []error{e.err, e.class}
}

// RetryAfter implements RetryAfterError.
func (e *classified) RetryAfter() time.Duration { return e.after }
