package dbprovisioner

import (
	"strings"
	"testing"
)

// The database names an IAM user by the identity domain's name in OCI, and a
// Default-domain user by no domain at all; iamflow's short name for the
// domain ("prod" here) must never appear in the mapping.
func TestPrincipalDomainInStatements(t *testing.T) {
	for _, tt := range []struct {
		principalDomain string
		mode            string
		want            string
	}{
		{"Default", modeUser, `CREATE USER "ALICE@EXAMPLE.COM" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=alice@example.com'`},
		{"default", modeUser, `CREATE USER "ALICE@EXAMPLE.COM" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=alice@example.com'`},
		{"sales_domain", modeUser, `CREATE USER "ALICE@EXAMPLE.COM" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=sales_domain/alice@example.com'`},
		{"Default", modeGlobalRole, `CREATE ROLE "HR_READ" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=HR Readers'`},
		{"sales_domain", modeGlobalRole, `CREATE ROLE "HR_READ" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=sales_domain/HR Readers'`},
	} {
		d := userDB(func(d *DatabaseConfig) {
			d.PrincipalDomain, d.Mode = tt.principalDomain, tt.mode
			if tt.mode == modeGlobalRole {
				d.Groups = d.Groups[:1]
			}
		})
		m := mustMapping(t, d)
		var sql []string
		if tt.mode == modeUser {
			p, err := m.PlanUser(UserView{User: User{ID: "a1", UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}}, Found: true})
			if err != nil {
				t.Fatal(err)
			}
			sql = p.SQL()
		} else {
			p, err := m.PlanGroup(0, groupView{})
			if err != nil {
				t.Fatal(err)
			}
			sql = p.SQL()
		}
		if len(sql) == 0 || sql[0] != tt.want {
			t.Errorf("principal_domain %q, mode %s: first statement %q, want %s", tt.principalDomain, tt.mode, sql, tt.want)
		}
		if strings.Contains(strings.Join(sql, "\n"), "prod/") {
			t.Errorf("the short name leaked into the mapping: %q", sql)
		}
	}
}

// Without principal_domain (and no oci_name to fill it from) the mapping is
// refused, naming the key to set, instead of guessing a name nobody can sign
// in with.
func TestPrincipalDomainRequired(t *testing.T) {
	d := userDB(func(d *DatabaseConfig) { d.PrincipalDomain = "" })
	err := Config{Databases: []DatabaseConfig{d}}.Validate()
	if err == nil || !strings.Contains(err.Error(), `databases[0] "hr": principal_domain: unknown; set oci_name on domain "prod"`) {
		t.Fatalf("Validate = %v", err)
	}
	if _, err := NewMapping(d); err == nil {
		t.Fatal("NewMapping without principal_domain: want error")
	}
}
