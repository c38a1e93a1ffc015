package capabilities

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/pipelinetest"
)

// The adapter against the emulated domain, through the real client.
func TestDirectoryOverTheClient(t *testing.T) {
	d := pipelinetest.Emulator(t, domainShort, emu.TierUnlimited, "")
	c := newClient(t, d, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, false)
	ctx := context.Background()

	name := "jane.doe"
	created, _, err := c.CreateUser(ctx, identitydomains.User{
		UserName: &name,
		Name:     &identitydomains.UserName{GivenName: ptrS("Jane"), FamilyName: ptrS("Doe")},
		Emails: []identitydomains.UserEmails{
			{Value: ptrS("jane.recovery@home.example"), Type: identitydomains.UserEmailsTypeRecovery},
			{Value: ptrS("jane@corp.example"), Type: identitydomains.UserEmailsTypeWork, Primary: ptr(true)},
		},
		UrnIetfParamsScimSchemasOracleIdcsExtensionUserUser: &identitydomains.ExtensionUserUser{IsFederatedUser: ptr(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := c.CreateGroup(ctx, identitydomains.Group{DisplayName: ptrS("Cloud Admins")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddMembers(ctx, *g.Id, *created.Id); err != nil {
		t.Fatal(err)
	}
	dir := NewDirectory(c)

	for _, ref := range []UserRef{{ID: *created.Id}, {OCID: *created.Ocid}, {Name: "JANE.DOE"}} {
		u, err := dir.ReadUser(ctx, ref, true)
		if err != nil {
			t.Fatalf("ReadUser(%+v): %v", ref, err)
		}
		if u.ID != *created.Id || u.OCID != *created.Ocid || u.UserName != name || u.Email != "jane@corp.example" ||
			!u.Federated || !u.Active || !slices.Equal(u.Groups, []string{"Cloud Admins"}) || !u.Flags.Equal(allTrue()) {
			t.Errorf("ReadUser(%+v) = %+v flags %v", ref, u, u.Flags)
		}
	}
	if u, err := dir.ReadUser(ctx, UserRef{ID: *created.Id}, false); err != nil || u.Groups != nil {
		t.Errorf("without groups: %v, groups %v", err, u.Groups)
	}
	for _, ref := range []UserRef{{ID: "0123456789abcdef0123456789abcdef"}, {OCID: "ocid1.user.oc1..nobody"}, {Name: "nobody"}} {
		if _, err := dir.ReadUser(ctx, ref, false); !errors.Is(err, ErrNotFound) {
			t.Errorf("ReadUser(%+v) = %v, want ErrNotFound", ref, err)
		}
	}

	// Only the flags given are sent; the others keep their values.
	if err := dir.SetCapabilities(ctx, *created.Id, Flags{CanUseAPIKeys: ptr(false), CanUseDBCredentials: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	got := caps(t, d, *created.Id)
	if got["canUseApiKeys"] || got["canUseDbCredentials"] || !got["canUseAuthTokens"] || !got["canUseSmtpCredentials"] {
		t.Errorf("after SetCapabilities: %v", got)
	}
	u, err := dir.ReadUser(ctx, UserRef{ID: *created.Id}, false)
	if err != nil || *u.Flags.CanUseAPIKeys || !*u.Flags.CanUseAuthTokens {
		t.Errorf("read back: %v %v", err, u.Flags)
	}
	if err := dir.SetCapabilities(ctx, "0123456789abcdef0123456789abcdef", Flags{CanUseAPIKeys: ptr(false)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetCapabilities of nobody: %v", err)
	}

	if err := d.Generate(emu.GenerateConfig{Users: 2500, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	before := d.CallCount(emu.OpListUsers)
	n := 0
	for u, err := range dir.Users(ctx, false) {
		if err != nil {
			t.Fatal(err)
		}
		if u.ID == "" || u.UserName == "" || u.Flags.CanUseConsolePassword == nil {
			t.Fatalf("listed user %+v", u)
		}
		n++
	}
	if n != 2501 || d.CallCount(emu.OpListUsers)-before != 3 {
		t.Errorf("listed %d users in %d requests, want 2501 in 3", n, d.CallCount(emu.OpListUsers)-before)
	}
}

// The client's errors reach the service as they are and say themselves
// what becomes of an event: refused credentials are permanent.
func TestAdapterErrorsKeepTheClientsVerdict(t *testing.T) {
	d := pipelinetest.Emulator(t, domainShort, emu.TierUnlimited, "")
	c := newClient(t, d, pipelinetest.IamflowClientID, "wrong secret", false)
	_, err := NewDirectory(c).ReadUser(context.Background(), UserRef{Name: "x"}, false)
	if !bus.IsPermanent(err) || !bus.ResultOf(err).IsTerminal() || errors.Is(err, ErrNotFound) {
		t.Errorf("refused credentials: %v, want a permanent error", err)
	}
}
