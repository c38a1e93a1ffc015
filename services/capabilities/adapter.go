package capabilities

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// NewDirectory adapts an Identity Domains client to Directory. Reads ask
// only for the attributes the policy looks at (userName, emails, active,
// isFederatedUser, the capabilities extension, and groups when asked); a
// sweep lists 1000 users per request, the most the API allows. All rate
// limiting, retries and the circuit breaker are the client's.
//
// A capability flag the domain leaves out of the user's capabilities
// extension reads as true: that is OCI's value for a user whose flag was
// never set (a new user may use every kind of credential).
func NewDirectory(c Domain) Directory { return &clientDirectory{c: c} }

// Domain is what the directory calls on an identity domain;
// *identitydomain.Client is one.
type Domain interface {
	identitydomain.UserReader
	Users(ctx context.Context, opts identitydomain.ListOptions) iter.Seq2[identitydomains.User, error]
	SetCapabilities(ctx context.Context, userID string, caps identitydomains.UserCapabilitiesChanger, ifMatch string) (identitydomains.UserCapabilitiesChanger, identitydomain.Receipt, error)
}

var _ Domain = (*identitydomain.Client)(nil)

type clientDirectory struct{ c Domain }

var _ Directory = (*clientDirectory)(nil)

// userAttributes are what a read asks for.
func userAttributes(withGroups bool) []string {
	attrs := []string{"userName", "ocid", "emails", "active",
		identitydomain.SchemaUserExtension + ":isFederatedUser", identitydomain.SchemaCapabilities}
	if withGroups {
		attrs = append(attrs, "groups")
	}
	return attrs
}

// ReadUser reads the user by SCIM id (GetUser), OCID (a filtered list) or
// userName (FindUserByName): one request.
func (d *clientDirectory) ReadUser(ctx context.Context, ref UserRef, withGroups bool) (User, error) {
	attrs := userAttributes(withGroups)
	var lookup string
	switch {
	case ref.ID != "":
		u, err := d.c.GetUser(ctx, ref.ID, attrs...)
		if err != nil {
			return User{}, err
		}
		return userFrom(u, withGroups), nil
	case ref.OCID != "":
		lookup = "ocid"
		for u, err := range d.c.Users(ctx, identitydomain.ListOptions{
			Filter: identitydomain.Eq("ocid", ref.OCID), Attributes: attrs, PageSize: 2}) {
			if err != nil {
				return User{}, err
			}
			return userFrom(u, withGroups), nil
		}
	case ref.Name != "":
		lookup = "userName"
		u, found, err := d.c.FindUserByName(ctx, ref.Name, attrs...)
		if err != nil {
			return User{}, err
		}
		if found {
			return userFrom(u, withGroups), nil
		}
	default:
		return User{}, fmt.Errorf("read user: no id, ocid or userName: %w", ErrPermanent)
	}
	return User{}, fmt.Errorf("lookup by %s: %w", lookup, ErrNotFound)
}

// Users lists every user, 1000 per request.
func (d *clientDirectory) Users(ctx context.Context, withGroups bool) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		for u, err := range d.c.Users(ctx, identitydomain.ListOptions{Attributes: userAttributes(withGroups),
			PageSize: identitydomain.MaxPageSize}) {
			if err != nil {
				yield(User{}, err)
				return
			}
			if !yield(userFrom(u, withGroups), nil) {
				return
			}
		}
	}
}

// SetCapabilities PUTs the flags f sets; the others are not sent.
func (d *clientDirectory) SetCapabilities(ctx context.Context, userID string, f Flags) error {
	_, _, err := d.c.SetCapabilities(ctx, userID, identitydomains.UserCapabilitiesChanger{
		CanUseApiKeys:                 f.CanUseAPIKeys,
		CanUseAuthTokens:              f.CanUseAuthTokens,
		CanUseConsolePassword:         f.CanUseConsolePassword,
		CanUseCustomerSecretKeys:      f.CanUseCustomerSecretKeys,
		CanUseOAuth2ClientCredentials: f.CanUseOAuth2ClientCredentials,
		CanUseSmtpCredentials:         f.CanUseSMTPCredentials,
		CanUseDbCredentials:           f.CanUseDBCredentials,
	}, "")
	return err
}

// userFrom converts the SDK's user.
func userFrom(u identitydomains.User, withGroups bool) User {
	out := User{
		ID:       deref(u.Id),
		OCID:     deref(u.Ocid),
		UserName: deref(u.UserName),
		Email:    primaryEmail(u.Emails),
		Active:   u.Active == nil || *u.Active,
	}
	if x := u.UrnIetfParamsScimSchemasOracleIdcsExtensionUserUser; x != nil && x.IsFederatedUser != nil {
		out.Federated = *x.IsFederatedUser
	}
	var x identitydomains.ExtensionCapabilitiesUser
	if u.UrnIetfParamsScimSchemasOracleIdcsExtensionCapabilitiesUser != nil {
		x = *u.UrnIetfParamsScimSchemasOracleIdcsExtensionCapabilitiesUser
	}
	out.Flags = Flags{
		CanUseAPIKeys:                 ociDefault(x.CanUseApiKeys),
		CanUseAuthTokens:              ociDefault(x.CanUseAuthTokens),
		CanUseConsolePassword:         ociDefault(x.CanUseConsolePassword),
		CanUseCustomerSecretKeys:      ociDefault(x.CanUseCustomerSecretKeys),
		CanUseOAuth2ClientCredentials: ociDefault(x.CanUseOAuth2ClientCredentials),
		CanUseSMTPCredentials:         ociDefault(x.CanUseSmtpCredentials),
		CanUseDBCredentials:           ociDefault(x.CanUseDbCredentials),
	}
	if withGroups {
		out.Groups = identitydomain.GroupNames(u)
	}
	return out
}

// primaryEmail is the email marked primary, else the first work email;
// recovery emails, which users set themselves, never count.
func primaryEmail(emails []identitydomains.UserEmails) string {
	for _, e := range emails {
		if e.Primary != nil && *e.Primary && e.Type != identitydomains.UserEmailsTypeRecovery {
			return deref(e.Value)
		}
	}
	for _, e := range emails {
		if strings.EqualFold(string(e.Type), string(identitydomains.UserEmailsTypeWork)) {
			return deref(e.Value)
		}
	}
	return ""
}

func ociDefault(b *bool) *bool {
	if b == nil {
		return ptr(true)
	}
	return ptr(*b)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
