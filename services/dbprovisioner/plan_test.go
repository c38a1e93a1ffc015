package dbprovisioner

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func userDB(mod ...func(*DatabaseConfig)) DatabaseConfig {
	d := DatabaseConfig{
		Name: "hr", Domain: "prod", PrincipalDomain: "Default",
		Groups: []GroupMapping{
			{Group: "HR Readers", Roles: []string{"hr_read"}},
			{Group: "HR Writers", Roles: []string{"HR_READ", "hr_write"}},
		},
	}
	for _, f := range mod {
		f(&d)
	}
	return d
}

func mustMapping(t testing.TB, d DatabaseConfig) *Mapping {
	t.Helper()
	m, err := NewMapping(d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func acct(name, status, ext string) *DBUser {
	return &DBUser{Name: name, Status: status, ExternalName: ext}
}

const aliceExt = "IAM_PRINCIPAL_NAME=alice@example.com"

func TestPlanUser(t *testing.T) {
	alice := func(groups ...string) User {
		return User{ID: "a1", UserName: "alice@example.com", Active: true, Groups: groups}
	}
	const A = `"ALICE@EXAMPLE.COM"`
	for _, tc := range []struct {
		name    string
		mod     func(*DatabaseConfig)
		view    UserView
		want    []string
		skipped string
	}{
		{name: "join first group creates the account",
			view: UserView{User: alice("HR Readers", "Other"), Found: true},
			want: []string{
				`CREATE USER ` + A + ` IDENTIFIED GLOBALLY AS '` + aliceExt + `'`,
				`GRANT CREATE SESSION TO ` + A,
				`GRANT "HR_READ" TO ` + A,
			}},
		{name: "group names compare case-insensitively, roles deduplicated and sorted",
			view: UserView{User: alice("hr readers", "HR WRITERS"), Found: true},
			want: []string{
				`CREATE USER ` + A + ` IDENTIFIED GLOBALLY AS '` + aliceExt + `'`,
				`GRANT CREATE SESSION TO ` + A,
				`GRANT "HR_READ" TO ` + A,
				`GRANT "HR_WRITE" TO ` + A,
			}},
		{name: "replay: in line, nothing",
			view: UserView{User: alice("HR Readers"), Found: true, Account: acct("ALICE@EXAMPLE.COM", "OPEN", aliceExt), Roles: []string{"HR_READ"}}},
		{name: "join a second group grants its role",
			view: UserView{User: alice("HR Readers", "HR Writers"), Found: true, Account: acct("ALICE@EXAMPLE.COM", "OPEN", aliceExt), Roles: []string{"HR_READ"}},
			want: []string{`GRANT "HR_WRITE" TO ` + A}},
		{name: "leave one group revokes its role only; unmanaged roles untouched",
			view: UserView{User: alice("HR Readers"), Found: true, Account: acct("ALICE@EXAMPLE.COM", "OPEN", aliceExt),
				Roles: []string{"HR_READ", "HR_WRITE", "APP_OWNER_ROLE"}},
			want: []string{`REVOKE "HR_WRITE" FROM ` + A}},
		{name: "leave the last group locks and revokes",
			view: UserView{User: alice("Other"), Found: true, Account: acct("ALICE@EXAMPLE.COM", "OPEN", aliceExt),
				Roles: []string{"HR_READ", "HR_WRITE", "APP_OWNER_ROLE"}},
			want: []string{`ALTER USER ` + A + ` ACCOUNT LOCK`, `REVOKE "HR_READ" FROM ` + A, `REVOKE "HR_WRITE" FROM ` + A}},
		{name: "locked and without roles: replay does nothing",
			view: UserView{User: alice(), Found: true, Account: acct("ALICE@EXAMPLE.COM", "LOCKED", aliceExt), Roles: []string{"APP_OWNER_ROLE"}}},
		{name: "deactivated user is locked",
			view: UserView{User: User{UserName: "alice@example.com", Groups: []string{"HR Readers"}}, Found: true,
				Account: acct("ALICE@EXAMPLE.COM", "OPEN", aliceExt), Roles: []string{"HR_READ"}},
			want: []string{`ALTER USER ` + A + ` ACCOUNT LOCK`, `REVOKE "HR_READ" FROM ` + A}},
		{name: "deleted user is locked",
			view: UserView{User: User{UserName: "alice@example.com"}, Account: acct("ALICE@EXAMPLE.COM", "OPEN", aliceExt)},
			want: []string{`ALTER USER ` + A + ` ACCOUNT LOCK`}},
		{name: "return unlocks after granting",
			view: UserView{User: alice("HR Readers"), Found: true, Account: acct("ALICE@EXAMPLE.COM", "EXPIRED & LOCKED", aliceExt)},
			want: []string{`GRANT "HR_READ" TO ` + A, `ALTER USER ` + A + ` ACCOUNT UNLOCK`}},
		{name: "not in scope and no account: nothing",
			view: UserView{User: alice("Other"), Found: true}},
		{name: "on_leave drop drops",
			mod:  func(d *DatabaseConfig) { d.OnLeave = onLeaveDrop },
			view: UserView{User: alice(), Found: true, Account: acct("ALICE@EXAMPLE.COM", "OPEN", aliceExt), Roles: []string{"HR_READ"}},
			want: []string{`DROP USER ` + A + ` CASCADE`}},
		{name: "password account of the same name is not ours",
			view:    UserView{User: alice("HR Readers"), Found: true, Account: acct("ALICE@EXAMPLE.COM", "OPEN", "")},
			skipped: "not IAM-authenticated"},
		{name: "account mapped to another principal is not ours, even when leaving",
			view:    UserView{User: alice(), Found: true, Account: acct("ALICE@EXAMPLE.COM", "OPEN", "IAM_PRINCIPAL_NAME=Other/alice@example.com")},
			skipped: `maps to "IAM_PRINCIPAL_NAME=Other/alice@example.com"`},
		{name: "external name compared case-insensitively",
			view: UserView{User: alice("HR Readers"), Found: true, Account: acct("ALICE@EXAMPLE.COM", "OPEN", "iam_principal_name=Alice@Example.com"),
				Roles: []string{"HR_READ"}}},
		{name: "local part with prefix",
			mod:  func(d *DatabaseConfig) { d.UserName = UserNameConfig{From: userNameFromLocalPart, Prefix: "iam_"} },
			view: UserView{User: alice("HR Readers"), Found: true},
			want: []string{
				`CREATE USER "IAM_ALICE" IDENTIFIED GLOBALLY AS '` + aliceExt + `'`,
				`GRANT CREATE SESSION TO "IAM_ALICE"`,
				`GRANT "HR_READ" TO "IAM_ALICE"`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := userDB()
			if tc.mod != nil {
				tc.mod(&d)
			}
			p, err := mustMapping(t, d).PlanUser(tc.view)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.SQL(); !slices.Equal(got, tc.want) {
				t.Errorf("statements:\n got %q\nwant %q", got, tc.want)
			}
			if tc.skipped == "" && p.Skipped != "" || !strings.Contains(p.Skipped, tc.skipped) {
				t.Errorf("skipped %q, want %q", p.Skipped, tc.skipped)
			}
			if len(tc.want) > 0 && tc.view.Account == nil {
				// Applying the plan and planning again changes nothing more.
				after := tc.view
				after.Account = acct(p.Subject, "OPEN", aliceExt)
				for _, s := range p.Steps {
					if s.Action == actionGrantRole {
						after.Roles = append(after.Roles, s.Role)
					}
				}
				if p2, err := mustMapping(t, d).PlanUser(after); err != nil || len(p2.Steps) != 0 {
					t.Errorf("second plan: %q %v", p2.SQL(), err)
				}
			}
		})
	}
}

func TestPlanUserRefusesUnsafeNames(t *testing.T) {
	m := mustMapping(t, userDB())
	for _, name := range []string{
		`x" cascade; drop user admin--`,
		`alice'; drop user admin; --`,
		"alice\x00",
		"al\u0456ce", // Cyrillic i
		"",
		"admin",
		"sys",
		"a b",
		"-leading",
		strings.Repeat("a", 129),
	} {
		for _, v := range []UserView{
			{User: User{UserName: name, Active: true, Groups: []string{"HR Readers"}}, Found: true},
			{User: User{UserName: name}, Account: acct(strings.ToUpper(name), "OPEN", "IAM_PRINCIPAL_NAME="+name)},
		} {
			p, err := m.PlanUser(v)
			if !errors.Is(err, errUnsafeName) {
				t.Errorf("%q: err %v, want ErrUnsafeName", name, err)
			}
			if len(p.Steps) != 0 {
				t.Errorf("%q: planned %q", name, p.SQL())
			}
		}
	}
	// An injection through the IAM principal part only (the account name is safe).
	m = mustMapping(t, userDB(func(d *DatabaseConfig) { d.UserName.From = userNameFromLocalPart }))
	p, err := m.PlanUser(UserView{User: User{UserName: "bob@x'||chr(39)", Active: true, Groups: []string{"HR Readers"}}, Found: true})
	if !errors.Is(err, errUnsafeName) || len(p.Steps) != 0 {
		t.Errorf("quote in the principal: %q %v", p.SQL(), err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not say why", err)
	}
}

func TestPlanGroup(t *testing.T) {
	shared := mustMapping(t, DatabaseConfig{Name: "dw", Domain: "prod", PrincipalDomain: "Default", Mode: modeShared,
		Groups: []GroupMapping{{Group: "Analysts", Schema: "analysts", Roles: []string{"dw_read"}}}})
	p, err := shared.PlanGroup(0, groupView{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`CREATE USER "ANALYSTS" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=Analysts'`,
		`GRANT CREATE SESSION TO "ANALYSTS"`, `GRANT "DW_READ" TO "ANALYSTS"`}
	if !slices.Equal(p.SQL(), want) {
		t.Errorf("shared: %q", p.SQL())
	}
	p, _ = shared.PlanGroup(0, groupView{Account: acct("ANALYSTS", "OPEN", "IAM_GROUP_NAME=Analysts"), Roles: []string{"DW_READ", "OTHER"}})
	if len(p.Steps) != 0 {
		t.Errorf("shared replay: %q", p.SQL())
	}
	p, _ = shared.PlanGroup(0, groupView{Account: acct("ANALYSTS", "OPEN", "")})
	if p.Skipped == "" || len(p.Steps) != 0 {
		t.Errorf("foreign schema: %+v", p)
	}

	global := mustMapping(t, DatabaseConfig{Name: "dw", Domain: "prod", PrincipalDomain: "Default", Mode: modeGlobalRole,
		Groups: []GroupMapping{{Group: "Exporters", Roles: []string{"export_role"}}}})
	p, _ = global.PlanGroup(0, groupView{})
	if want := []string{`CREATE ROLE "EXPORT_ROLE" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=Exporters'`}; !slices.Equal(p.SQL(), want) {
		t.Errorf("global role: %q", p.SQL())
	}
	p, _ = global.PlanGroup(0, groupView{RoleExists: true})
	if len(p.Steps) != 0 {
		t.Errorf("global role replay: %q", p.SQL())
	}
}
