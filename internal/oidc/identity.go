package oidc

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// Directory reads users from the login domain; *identitydomain.Client is
// one.
type Directory interface {
	GetUser(ctx context.Context, id string, attributes ...string) (identitydomains.User, error)
	FindUserByName(ctx context.Context, userName string, attributes ...string) (identitydomains.User, bool, error)
}

// Identity is a person who logged in with the login domain.
type Identity struct {
	// UserID is the user's SCIM id in the login domain.
	UserID string
	// UserName is the user's userName, as the domain has it now.
	UserName string
	// DisplayName is the user's displayName (else the token's
	// user_displayname).
	DisplayName string
	// Groups are the groups the user belongs to in the login domain, as
	// read at most Config.GroupsCacheTTL ago.
	Groups []Group
	// Token is what the verified token said.
	Token *Token
}

// Group is one group of a person.
type Group struct {
	ID   string
	Name string
}

// InGroup reports whether the person belongs to the group with this
// display name or id.
func (i *Identity) InGroup(nameOrID string) bool {
	for _, g := range i.Groups {
		if g.ID == nameOrID || g.Name == nameOrID {
			return true
		}
	}
	return false
}

// Authenticator verifies a person's token and reads who they are from the
// login domain. It is safe for concurrent use.
type Authenticator struct {
	v   *Verifier
	dir Directory
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedUser
}

type cachedUser struct {
	id      *Identity // without Token
	expires time.Time
}

// maxCachedUsers bounds the groups cache.
const maxCachedUsers = 10000

// NewAuthenticator builds an Authenticator over v that reads users
// through dir.
func NewAuthenticator(v *Verifier, dir Directory) (*Authenticator, error) {
	if v == nil || dir == nil {
		return nil, errors.New("login: NewAuthenticator needs a verifier and a directory")
	}
	return &Authenticator{v: v, dir: dir, ttl: v.cfg.GroupsCacheTTL, now: v.now, cache: map[string]cachedUser{}}, nil
}

// Verifier returns the token verifier.
func (a *Authenticator) Verifier() *Verifier { return a.v }

// Authenticate verifies raw and returns the person it speaks for, with
// their groups. A user the domain no longer has, or has deactivated, is
// refused.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (*Identity, error) {
	tok, err := a.v.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	key := tok.UserID
	if key == "" {
		key = "name:" + tok.Subject
	}
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[key]
	a.mu.Unlock()
	if !ok || !now.Before(c.expires) {
		id, err := a.read(ctx, tok)
		if err != nil {
			return nil, err
		}
		c = cachedUser{id: id, expires: now.Add(a.ttl)}
		a.mu.Lock()
		if len(a.cache) >= maxCachedUsers {
			clear(a.cache)
		}
		a.cache[key] = c
		a.mu.Unlock()
	}
	out := *c.id
	out.Groups = append([]Group(nil), c.id.Groups...)
	out.Token = tok
	if out.DisplayName == "" {
		out.DisplayName = tok.DisplayName
	}
	return &out, nil
}

// userAttributes are what Authenticate reads of a user.
var userAttributes = []string{"userName", "displayName", "active", "groups"}

func (a *Authenticator) read(ctx context.Context, tok *Token) (*Identity, error) {
	var u identitydomains.User
	if tok.UserID != "" {
		var err error
		if u, err = a.dir.GetUser(ctx, tok.UserID, userAttributes...); err != nil {
			if isNotFound(err) {
				return nil, refuse(CodeUserUnknown, "the login domain has no user with id %q (any more)", tok.UserID)
			}
			return nil, &Error{Code: CodeDirectoryUnavailable, Message: "reading the user " + tok.UserID + " from the login domain failed", Err: err}
		}
	} else {
		var found bool
		var err error
		if u, found, err = a.dir.FindUserByName(ctx, tok.Subject, userAttributes...); err != nil {
			return nil, &Error{Code: CodeDirectoryUnavailable, Message: "looking the user " + tok.Subject + " up in the login domain failed", Err: err}
		}
		if !found {
			return nil, refuse(CodeUserUnknown, "the login domain has no user %q (any more)", tok.Subject)
		}
	}
	if u.Active != nil && !*u.Active {
		return nil, refuse(CodeUserInactive, "the user %q is deactivated in the login domain", deref(u.UserName))
	}
	id := &Identity{UserID: deref(u.Id), UserName: deref(u.UserName), DisplayName: deref(u.DisplayName)}
	if id.UserID == "" {
		id.UserID = tok.UserID
	}
	for _, g := range u.Groups {
		id.Groups = append(id.Groups, Group{ID: deref(g.Value), Name: deref(g.Display)})
	}
	return id, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func isNotFound(err error) bool { return errors.Is(err, identitydomain.ErrNotFound) }
