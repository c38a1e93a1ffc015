package ords_test

import (
	"reflect"
	"strings"
	"testing"
)

// TestContractDDL runs every DDL statement of the contract, in order, with
// its happy path and its Oracle errors.
func TestContractDDL(t *testing.T) {
	v := start(t, baseConfig())
	steps := []struct {
		sql     string
		code    int
		details string
	}{
		{`CREATE USER "ALICE" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=dom/alice'`, 0, ""},
		{`CREATE USER "ALICE" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=dom/alice'`, 1920, "ORA-01920: user name 'ALICE' conflicts with another user or role name"},
		{`CREATE USER "SALES" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=dom/sales'`, 0, ""},
		{`CREATE ROLE "DBAS" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=dom/dbas'`, 0, ""},
		{`CREATE ROLE "DBAS" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=dom/dbas'`, 1921, "ORA-01921: role name 'DBAS' conflicts with another user or role name"},
		{`CREATE USER "DBAS" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=dom/dbas'`, 1920, ""},
		{`CREATE ROLE "ALICE" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=dom/alice'`, 1921, ""},
		{`GRANT CREATE SESSION TO "ALICE"`, 0, ""},
		{`GRANT CREATE SESSION TO "ALICE"`, 0, ""}, // re-granting succeeds
		{`GRANT CREATE SESSION TO "NOBODY"`, 1918, "ORA-01918: user 'NOBODY' does not exist"},
		{`GRANT "DBAS" TO "ALICE"`, 0, ""},
		{`GRANT "DBAS" TO "ALICE"`, 0, ""},
		{`GRANT "NOPE" TO "ALICE"`, 1919, "ORA-01919: role 'NOPE' does not exist"},
		{`GRANT "DBAS" TO "NOBODY"`, 1918, ""},
		{`GRANT "DBAS" TO "SALES"`, 0, ""},
		{`REVOKE "DBAS" FROM "SALES"`, 0, ""},
		{`REVOKE "DBAS" FROM "SALES"`, 1951, "ORA-01951: ROLE 'DBAS' not granted to 'SALES'"},
		{`REVOKE "NOPE" FROM "SALES"`, 1919, ""},
		{`REVOKE "DBAS" FROM "NOBODY"`, 1918, ""},
		{`REVOKE CREATE SESSION FROM "SALES"`, 1952, "ORA-01952: system privileges not granted to 'SALES'"},
		{`ALTER USER "SALES" ACCOUNT LOCK`, 0, ""},
		{`ALTER USER "NOBODY" ACCOUNT LOCK`, 1918, ""},
		{`ALTER USER "NOBODY" ACCOUNT UNLOCK`, 1918, ""},
		{`DROP USER "SALES" CASCADE`, 0, ""},
		{`DROP USER "SALES" CASCADE`, 1918, "ORA-01918: user 'SALES' does not exist"},
		{`ALTER USER "ALICE" ACCOUNT LOCK`, 0, ""},
		{`ALTER USER "ALICE" ACCOUNT UNLOCK`, 0, ""},
	}
	for i, s := range steps {
		it := v.one(s.sql)
		if it.ErrorCode != s.code {
			t.Fatalf("step %d %q: errorCode %d (%s), want %d", i, s.sql, it.ErrorCode, it.ErrorDetails, s.code)
		}
		if s.details != "" && it.ErrorDetails != s.details {
			t.Errorf("step %d: errorDetails %q, want %q", i, it.ErrorDetails, s.details)
		}
		if it.StatementType != "ddl" || it.StatementText != s.sql || it.StatementID != 1 {
			t.Errorf("step %d: item %+v", i, it)
		}
		if s.code == 0 && (len(it.Response) != 1 || it.Result == nil || *it.Result != 0 || it.ResultSet != nil) {
			t.Errorf("step %d: success item %+v", i, it)
		}
		if s.code != 0 && (it.ErrorMessage != it.ErrorDetails || it.ErrorLine != 1 || it.ErrorColumn < 1) {
			t.Errorf("step %d: error item %+v", i, it)
		}
	}
	users := v.emu.Users(alias)
	if len(users) != 1 || users[0].Username != "ALICE" || users[0].AccountStatus != "OPEN" ||
		users[0].ExternalName != "IAM_PRINCIPAL_NAME=dom/alice" || users[0].Created.IsZero() {
		t.Fatalf("users: %+v", users)
	}
	if g := v.emu.Grants(alias, "ALICE"); !reflect.DeepEqual(g, []string{"DBAS"}) {
		t.Errorf("grants: %v", g)
	}
	if p := v.emu.Privileges(alias, "ALICE"); !reflect.DeepEqual(p, []string{"CREATE SESSION"}) {
		t.Errorf("privileges: %v", p)
	}
	if r := v.emu.Roles(alias); len(r) != 1 || r[0].Name != "DBAS" || r[0].ExternalName != "IAM_GROUP_NAME=dom/dbas" {
		t.Errorf("roles: %+v", r)
	}
	if n := len(v.emu.Statements(alias)); n != len(steps) {
		t.Errorf("statement log: %d entries, want %d", n, len(steps))
	}
	if v.emu.Grants(alias, "SALES") != nil {
		t.Error("Grants of a dropped user is not nil")
	}
}

// TestLexicalRules checks case, quoting, literals, comments and terminators.
func TestLexicalRules(t *testing.T) {
	v := start(t, baseConfig())
	v.ok(
		"create user bob identified globally as 'IAM_PRINCIPAL_NAME=dom/bob'",
		`create user "bob" identified globally as 'IAM_PRINCIPAL_NAME=dom/bob2'`,
		"CREATE USER \"OB\"\n\tIDENTIFIED   GLOBALLY\n AS 'IAM_PRINCIPAL_NAME=dom/o''brien';",
		"-- a comment\ngrant /* inline */ create session to bob ;",
		"create role Readers",
		`GRANT readers TO "bob"`,
		"create user LOCAL1 identified by \"Pw1\"",
	)
	if _, ok := v.emu.User(alias, "BOB"); !ok {
		t.Error("unquoted bob not stored as BOB")
	}
	if _, ok := v.emu.User(alias, "bob"); !ok {
		t.Error(`quoted "bob" not stored as bob`)
	}
	if u, _ := v.emu.User(alias, "OB"); u.ExternalName != "IAM_PRINCIPAL_NAME=dom/o'brien" {
		t.Errorf("'' escape: %q", u.ExternalName)
	}
	if p := v.emu.Privileges(alias, "BOB"); len(p) != 1 {
		t.Errorf("privileges of BOB: %v", p)
	}
	if g := v.emu.Grants(alias, "bob"); len(g) != 1 || g[0] != "READERS" {
		t.Errorf("grants of bob: %v", g)
	}
	if u, _ := v.emu.User(alias, "LOCAL1"); u.ExternalName != "" {
		t.Errorf("password user has external name %q", u.ExternalName)
	}
}

// TestInvalidStatements checks the error items for statements outside the
// contract; none changes the catalog.
func TestInvalidStatements(t *testing.T) {
	v := start(t, baseConfig())
	cases := []struct {
		sql  string
		code int
		typ  string
	}{
		{"DELETE FROM dba_users", 900, "dml"},
		{"SELEC username FROM dba_users", 900, "sqlplus"},
		{"CREATE TABLE t (x NUMBER)", 900, "ddl"},
		{"BEGIN NULL; END;", 900, "plsql"},
		{"-- a comment\n/* and another */ BEGIN NULL; END;", 900, "plsql"},
		{"/* comment */ DELETE FROM dba_users", 900, "dml"},
		{"SELECT username FROM dba_tables", 942, "query"},
		{"SELECT username FROM hr.dba_users", 942, "query"},
		{"SELECT nosuch FROM dba_users", 904, "query"},
		{"SELECT username FROM dba_users WHERE nosuch = 'x'", 904, "query"},
		{"SELECT username FROM dba_users WHERE username = :1", 1008, "query"},
		{"SELECT username FROM dba_users x", 933, "query"},
		{"CREATE USER \"X\" IDENTIFIED GLOBALLY AS 'unterminated", 1756, "ddl"},
		{`CREATE USER "X IDENTIFIED GLOBALLY`, 1740, "ddl"},
		{`CREATE USER "" IDENTIFIED GLOBALLY`, 1741, "ddl"},
		{"CREATE USER X IDENTIFIED GLOBALLY AS :1", 1027, "ddl"},
		{"CREATE USER X IDENTIFIED GLOBALLY AS 'a' DEFAULT TABLESPACE users", 922, "ddl"},
		{"CREATE USER " + strings.Repeat("A", 129) + " IDENTIFIED GLOBALLY", 972, "ddl"},
		{"GRANT SELECT ANY TABLE TO X", 990, "ddl"},
		{"GRANT \"R\" TO \"X\" extra", 933, "ddl"},
		{"ALTER USER \"X\" QUOTA 1M ON users", 922, "ddl"},
		{"DROP TABLE t", 900, "ddl"},
		{"CREATE USER X IDENTIFIED GLOBALLY AS 'a' @", 911, "ddl"},
	}
	for _, c := range cases {
		it := v.one(c.sql)
		if it.ErrorCode != c.code || it.StatementType != c.typ {
			t.Errorf("%q: errorCode %d type %q (%s), want %d %q", c.sql, it.ErrorCode, it.StatementType, it.ErrorDetails, c.code, c.typ)
		}
		if !strings.HasPrefix(it.ErrorDetails, "ORA-") || it.ResultSet != nil {
			t.Errorf("%q: item %+v", c.sql, it)
		}
	}
	if len(v.emu.Users(alias)) != 0 || len(v.emu.Roles(alias)) != 0 {
		t.Errorf("invalid statements changed the catalog: %+v %+v", v.emu.Users(alias), v.emu.Roles(alias))
	}
}

// TestUnprivileged: a schema without DBA rights gets ORA-01031 for DDL and
// ORA-00942 for the DBA_ views.
func TestUnprivileged(t *testing.T) {
	cfg := baseConfig()
	cfg.Databases[0].Unprivileged = true
	v := start(t, cfg)
	if it := v.one(`CREATE USER "A" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=d/a'`); it.ErrorCode != 1031 {
		t.Errorf("DDL: %d %s", it.ErrorCode, it.ErrorDetails)
	}
	if it := v.one("SELECT role FROM dba_roles WHERE role = :1", vbind(1, "X")); it.ErrorCode != 942 {
		t.Errorf("query: %d %s", it.ErrorCode, it.ErrorDetails)
	}
	if len(v.emu.Users(alias)) != 0 {
		t.Error("unprivileged DDL changed the catalog")
	}
}

// TestDropRole revokes the role from its grantees.
func TestDropRole(t *testing.T) {
	v := start(t, baseConfig())
	v.ok(`CREATE ROLE "R"`, `CREATE USER "U" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=d/u'`, `GRANT "R" TO "U"`, `DROP ROLE "R"`)
	// An existing user without grants has an empty list; only a missing
	// user gives nil.
	if g := v.emu.Grants(alias, "U"); g == nil || len(g) != 0 {
		t.Errorf("grants after DROP ROLE: %#v", g)
	}
	if it := v.one(`DROP ROLE "R"`); it.ErrorCode != 1919 {
		t.Errorf("second DROP ROLE: %d", it.ErrorCode)
	}
}
