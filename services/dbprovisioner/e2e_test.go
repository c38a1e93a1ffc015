package dbprovisioner

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	emords "github.com/iamflow/iamflow/emulator/ords"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

const (
	ordsClient = "ords-client"
	ordsSecret = "s3cret-ords-77a1"
)

// The whole path with emulators: an emulated identity domain read through
// the real Identity Domains client, events on a real JetStream, and an
// emulated ORDS reached through the real ORDS client.
func TestEndToEndWithEmulators(t *testing.T) {
	ctx := context.Background()
	// The identity domain.
	dom := pipelinetest.Emulator(t, "prod", emu.TierUnlimited, "")
	idc := pipelinetest.Client(t, "prod",
		pipelinetest.ClientConfig(t, dom.URL(), pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, false))

	// The database.
	orde, ordsCfg := emulatedHR(t, emords.Database{
		Roles: []emords.Role{{Name: "HR_READ"}, {Name: "HR_WRITE"}, {Name: "APP_OWNER_ROLE"}},
		// The account the injection attempt below aims at.
		Users: []emords.User{{Username: "ADMIN", AccountStatus: "OPEN", Roles: []string{"APP_OWNER_ROLE"}}},
	})
	cfg := testConfig()
	d := &cfg.Databases[0]
	d.ORDS = ordsCfg
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	oc, err := ords.New(ctx, "hr", d.WithDefaults().ORDS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(oc.Close)

	srv := bustest.RunServer(t)
	h := &harness{t: t, bus: srv.Open(t), audit: &testutil.Auditor{}}
	h.svc, err = New(ctx, cfg, h.bus, map[string]Directory{"prod": NewDirectory(idc)}, map[string]Database{"hr": NewDatabase(oc)},
		servicekit.WithLogger(pipelinetest.Logger(t)), servicekit.WithAuditWriter(h.audit))
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Run(t, h.svc)

	// Users and groups in the domain (as an administrator would).
	mkUser := func(name string) string {
		u, _, err := idc.CreateUser(ctx, identitydomains.User{UserName: &name,
			Name:   &identitydomains.UserName{FamilyName: &name},
			Emails: []identitydomains.UserEmails{{Value: &name, Type: identitydomains.UserEmailsTypeWork, Primary: new(true)}}})
		if err != nil {
			t.Fatal(err)
		}
		return *u.Id
	}
	mkGroup := func(name string) string {
		g, _, err := idc.CreateGroup(ctx, identitydomains.Group{DisplayName: &name})
		if err != nil {
			t.Fatal(err)
		}
		return *g.Id
	}
	alice := mkUser("alice@example.com")
	evil := mkUser(`x" cascade; drop user admin--`)
	readers, writers := mkGroup("HR Readers"), mkGroup("HR Writers")
	member := func(group, user string, add bool) {
		t.Helper()
		a := iamflowv1.Action_ACTION_MEMBER_REMOVED
		if add {
			a = iamflowv1.Action_ACTION_MEMBER_ADDED
			if _, err := idc.AddMembers(ctx, group, user); err != nil {
				t.Fatal(err)
			}
		} else if _, err := idc.RemoveMembers(ctx, group, user); err != nil {
			t.Fatal(err)
		}
		h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, a, user, "")
	}
	account := func(want func(u emords.User, ok bool) error) {
		t.Helper()
		testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			u, ok := orde.User("hr", aliceAcct)
			return want(u, ok)
		})
	}

	// Add to a mapped group: the user and role exist.
	member(readers, alice, true)
	account(func(u emords.User, ok bool) error {
		if !ok || u.AccountStatus != "OPEN" || u.ExternalName != aliceExt || !slices.Equal(u.Roles, []string{"HR_READ"}) ||
			!slices.Contains(u.Privileges, "CREATE SESSION") {
			return fmt.Errorf("account %v %+v", ok, u)
		}
		return nil
	})
	member(writers, alice, true)
	account(func(u emords.User, ok bool) error {
		if !slices.Equal(u.Roles, []string{"HR_READ", "HR_WRITE"}) {
			return fmt.Errorf("roles %v", u.Roles)
		}
		return nil
	})
	// A role granted by hand that the mapping does not manage stays.
	if err := oc.Exec(ctx, ords.Statement{Text: `GRANT "APP_OWNER_ROLE" TO "ALICE@EXAMPLE.COM"`}); err != nil {
		t.Fatal(err)
	}
	// Remove: the role is revoked.
	member(writers, alice, false)
	account(func(u emords.User, ok bool) error {
		if !slices.Equal(u.Roles, []string{"APP_OWNER_ROLE", "HR_READ"}) || u.AccountStatus != "OPEN" {
			return fmt.Errorf("account %+v", u)
		}
		return nil
	})
	// Last group: locked, mapped roles gone, others kept.
	member(readers, alice, false)
	account(func(u emords.User, ok bool) error {
		if !slices.Equal(u.Roles, []string{"APP_OWNER_ROLE"}) || u.AccountStatus != "LOCKED" {
			return fmt.Errorf("account %+v", u)
		}
		return nil
	})
	h.settled()
	n := len(orde.Statements("hr"))

	// Replayed and reordered events change nothing more.
	h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED, alice, "")
	h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_REMOVED, alice, "")
	h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED, alice, "")
	h.settled()
	if rep, err := h.svc.Reconcile(ctx, "hr", false); err != nil || rep.Changed != 0 {
		t.Errorf("reconcile after replays: %+v %v", rep, err)
	}
	ddl := func(from int) []string {
		var out []string
		for _, s := range orde.Statements("hr")[from:] {
			if len(s) < 6 || s[:6] != "SELECT" && s[:6] != "select" {
				out = append(out, s)
			}
		}
		return out
	}
	if got := ddl(n); len(got) != 0 {
		t.Errorf("replays ran %q", got)
	}

	// An injection attempt through a userName is refused (listed in the
	// status, not dead-lettered) and nothing runs.
	n = len(orde.Statements("hr"))
	member(readers, evil, true)
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if rs := h.svc.databaseStatus(ctx, h.svc.byName["hr"]).Refused; len(rs) != 1 {
			return fmt.Errorf("%d refused users", len(rs))
		}
		return nil
	})
	if c := h.svc.Status(ctx).Consumers[0]; c.DeadLettered != 0 {
		t.Errorf("%d dead letters, want none", c.DeadLettered)
	}
	if got := orde.Statements("hr")[n:]; len(got) != 0 {
		t.Errorf("the injection attempt reached the database: %q", got)
	}
	// So is an IAM user whose name is an Oracle-maintained account's.
	member(readers, mkUser("admin"), true)
	h.settled()
	if u, ok := orde.User("hr", "ADMIN"); !ok || u.AccountStatus != "OPEN" || !slices.Equal(u.Roles, []string{"APP_OWNER_ROLE"}) {
		t.Errorf("the ADMIN account is %+v (exists: %v), want it untouched", u, ok)
	}
	// Return: unlocked with the role back.
	member(readers, alice, true)
	account(func(u emords.User, ok bool) error {
		if !slices.Equal(u.Roles, []string{"APP_OWNER_ROLE", "HR_READ"}) || u.AccountStatus != "OPEN" {
			return fmt.Errorf("account %+v", u)
		}
		return nil
	})
	h.settled()
	t.Logf("statements run: %q", ddl(0))
}
