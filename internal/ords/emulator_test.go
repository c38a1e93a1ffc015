package ords

import (
	"context"
	"net/http/httptest"
	"testing"

	emulator "github.com/iamflow/iamflow/emulator/ords"
	"github.com/iamflow/iamflow/internal/secret"
)

// *secret.Resolver (vault: references) plugs into the client.
var _ SecretResolver = (*secret.Resolver)(nil)

// TestAgainstEmulator runs the contract's statements through the client
// against emulator/ords.
func TestAgainstEmulator(t *testing.T) {
	emu, err := emulator.New(emulator.Config{Databases: []emulator.Database{{Alias: "hr", ClientID: testClientID, ClientSecret: testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	c, _, _ := newTestClient(t, testConfig(srv.URL+"/ords/hr"))
	ctx := context.Background()
	must := mustStmt(t)
	alice := MustIdent("alice")
	role := MustIdent("sales_role")
	p, _ := GlobalPrincipal("dom", "alice@example.com")
	g, _ := GlobalGroup("dom", "Sales")
	for _, st := range []Statement{
		must(CreateUserGlobal(alice, p)),
		must(GrantCreateSession(alice)),
		must(CreateRoleGlobal(role, g)),
		must(GrantRole(role, alice)),
		must(LockUser(alice)),
	} {
		if err := c.Exec(ctx, st); err != nil {
			t.Fatalf("%s: %v", st.Text, err)
		}
	}
	rows, err := c.Query(ctx, must(QueryUser(alice)))
	if err != nil || len(rows) != 1 || rows[0].String("username") != "ALICE" || rows[0].String("account_status") != "LOCKED" ||
		rows[0].String("external_name") != p.Value() {
		t.Fatalf("Q1: %v, %v", rows, err)
	}
	pat, _ := DomainPattern(GlobalKindPrincipal, "dom")
	if rows, err := c.Query(ctx, must(QueryUsersByExternalName(pat))); err != nil || len(rows) != 1 {
		t.Fatalf("Q3: %v, %v", rows, err)
	}
	if rows, err := c.Query(ctx, must(QueryUserRoles(alice))); err != nil || len(rows) != 1 || rows[0].String("granted_role") != "SALES_ROLE" {
		t.Fatalf("Q2: %v, %v", rows, err)
	}
	if rows, err := c.Query(ctx, must(QueryRole(role))); err != nil || len(rows) != 1 {
		t.Fatalf("Q4: %v, %v", rows, err)
	}
	for _, st := range []Statement{must(UnlockUser(alice)), must(RevokeRole(role, alice)), must(DropUserCascade(alice))} {
		if err := c.Exec(ctx, st); err != nil {
			t.Fatalf("%s: %v", st.Text, err)
		}
	}
	err = c.Exec(ctx, must(DropUserCascade(alice)))
	if Code(err) != ORAUserNotFound || Retryable(err) {
		t.Fatalf("second drop: %v, want ORA-01918", err)
	}
	if err := c.Exec(ctx, must(CreateUserGlobal(role, g))); Code(err) != ORAUserConflict {
		t.Fatalf("user named like a role: %v, want ORA-01920", err)
	}
}
