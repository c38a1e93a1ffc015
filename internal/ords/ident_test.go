package ords

import (
	"errors"
	"strings"
	"testing"
)

func TestIdent(t *testing.T) {
	tests := []struct {
		in       string
		want     string // "" = refused
		reserved bool
	}{
		{in: "alice", want: "ALICE"},
		{in: "ALICE", want: "ALICE"},
		{in: "Alice_01", want: "ALICE_01"},
		{in: "a.b@example.com", want: "A.B@EXAMPLE.COM"},
		{in: "x$y#z-w", want: "X$Y#Z-W"},
		{in: "9lives", want: "9LIVES"},
		{in: "gsmith", want: "GSMITH"},
		{in: strings.Repeat("a", 128), want: strings.Repeat("A", 128)},
		{in: ""},
		{in: strings.Repeat("a", 129)},
		{in: `x" cascade; drop user admin--`},
		{in: `a'||'b`},
		{in: `alice"`},
		{in: `"ALICE"`},
		{in: "ali ce"},
		{in: " alice"},
		{in: "alice "},
		{in: "al\x00ice"},
		{in: "al\nice"},
		{in: "al\tice"},
		{in: "al\x7fice"},
		{in: "аlice"},       // Cyrillic а
		{in: "ＡＬＩＣＥ"},       // full-width
		{in: "ali\u200bce"}, // zero-width space
		{in: "alıce"},       // dotless i: ToUpper would give ASCII I
		{in: "ﬁle"},         // ligature: ToUpper gives "FI"
		{in: "a;b"},
		{in: "a/b"},
		{in: "a(b)"},
		{in: "_alice"},
		{in: "-alice"},
		{in: "admin", reserved: true},
		{in: "Admin", reserved: true},
		{in: "SYS", reserved: true},
		{in: "system", reserved: true},
		{in: "public", reserved: true},
		{in: "dba", reserved: true},
		{in: "DWROLE", reserved: true},
		{in: "ORDS_PUBLIC_USER", reserved: true},
		{in: "ora_stig_profile", reserved: true},
		{in: "C##CLOUD$SERVICE", reserved: true},
		{in: "APEX_230200", reserved: true},
	}
	for _, tt := range tests {
		id, err := Ident(tt.in)
		if tt.want != "" {
			if err != nil {
				t.Errorf("Ident(%q): %v", tt.in, err)
				continue
			}
			if id.Name() != tt.want || id.Quoted() != `"`+tt.want+`"` {
				t.Errorf("Ident(%q) = %s / %s, want %s", tt.in, id.Name(), id.Quoted(), tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("Ident(%q) = %s, want refused", tt.in, id.Quoted())
			continue
		}
		var ie *IdentError
		if !errors.As(err, &ie) || ie.Name != tt.in || ie.Reason == "" {
			t.Errorf("Ident(%q): error %v is not an *IdentError naming the input", tt.in, err)
		}
		if !errors.Is(err, ErrUnsafeName) {
			t.Errorf("Ident(%q): errors.Is(ErrUnsafeName) false", tt.in)
		}
		if errors.Is(err, ErrReservedName) != tt.reserved {
			t.Errorf("Ident(%q): errors.Is(ErrReservedName) = %v, want %v", tt.in, !tt.reserved, tt.reserved)
		}
		if strings.ContainsAny(err.Error(), "\x00\n") {
			t.Errorf("Ident(%q): error text %q holds raw control characters", tt.in, err.Error())
		}
	}
}

func TestIdentErrorTruncates(t *testing.T) {
	_, err := Ident(strings.Repeat("x", 1000))
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("error %q: want refusal with a short message", err)
	}
}

func TestGlobalNames(t *testing.T) {
	tests := []struct {
		domain, name string
		group        bool
		want         string // literal; "" = refused
	}{
		{"sales_domain", "peter.fitch@example.com", false, `'IAM_PRINCIPAL_NAME=sales_domain/peter.fitch@example.com'`},
		{"Default", "ExporterGroup", true, `'IAM_GROUP_NAME=Default/ExporterGroup'`},
		{"Default", "DB Admins", true, `'IAM_GROUP_NAME=Default/DB Admins'`},
		{"Default", "a+b", false, `'IAM_PRINCIPAL_NAME=Default/a+b'`},
		// The Default domain: no prefix, as Oracle's examples write it.
		{DefaultDomain, "peterfitch", false, `'IAM_PRINCIPAL_NAME=peterfitch'`},
		{DefaultDomain, "db_sales_group", true, `'IAM_GROUP_NAME=db_sales_group'`},
		{DefaultDomain, "a'b", false, ""},
		{DefaultDomain, "", false, ""},
		{" ", "alice", false, ""},
		{"dom", "", false, ""},
		{"dom", "a'||'b", false, ""},
		{"dom", "x' ; drop user admin--", false, ""},
		{"dom", `a"b`, false, ""},
		{"dom/other", "alice", false, ""},
		{"dom", "alice/x", false, ""},
		{"dom", " alice", false, ""},
		{"dom", "alice ", false, ""},
		{"dom", "al\x00ice", false, ""},
		{"dom", "al\rice", false, ""},
		{"dom", "аlice", false, ""},
		{"dom", "a\\b", false, ""},
		{"dom", "a%b", false, ""},
		{"dom", strings.Repeat("a", 256), false, ""},
	}
	for _, tt := range tests {
		f := GlobalPrincipal
		if tt.group {
			f = GlobalGroup
		}
		g, err := f(tt.domain, tt.name)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrUnsafeName) {
				t.Errorf("global(%q,%q) = %s, %v; want ErrUnsafeName", tt.domain, tt.name, g.Literal(), err)
			}
			continue
		}
		if err != nil {
			t.Errorf("global(%q,%q): %v", tt.domain, tt.name, err)
			continue
		}
		if g.Literal() != tt.want {
			t.Errorf("global(%q,%q) = %s, want %s", tt.domain, tt.name, g.Literal(), tt.want)
		}
		back, err := ParseGlobalName(g.Value())
		if err != nil || back != g {
			t.Errorf("ParseGlobalName(%q) = %+v, %v; want %+v", g.Value(), back, err, g)
		}
	}
}

func TestParseGlobalName(t *testing.T) {
	for _, s := range []string{"", "IAM_PRINCIPAL_NAME=", "CN=alice,O=x", "IAM_PRINCIPAL_NAME=d/a'b", "IAM_GROUP_NAME=/g", "IAM_PRINCIPAL_NAME=a'b"} {
		if g, err := ParseGlobalName(s); err == nil {
			t.Errorf("ParseGlobalName(%q) = %+v, want error", s, g)
		}
	}
	g, err := ParseGlobalName("iam_group_name=dom/g1")
	if err != nil || g.Kind() != GlobalKindGroup || g.Domain() != "dom" || g.Name() != "g1" {
		t.Fatalf("got %+v, %v", g, err)
	}
	g, err = ParseGlobalName("IAM_PRINCIPAL_NAME=alice@example.com")
	if err != nil || g.Kind() != GlobalKindPrincipal || g.Domain() != DefaultDomain || g.Name() != "alice@example.com" {
		t.Fatalf("Default domain: got %+v, %v", g, err)
	}
}

// The statement builder writes a Default-domain mapping without a prefix and
// any other domain's with its name, as Oracle's Autonomous Database examples do.
func TestCreateUserGlobalByDomain(t *testing.T) {
	u := MustIdent("peter_fitch")
	for _, tt := range []struct{ domain, want string }{
		{DefaultDomain, `CREATE USER "PETER_FITCH" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=peterfitch'`},
		{"sales_domain", `CREATE USER "PETER_FITCH" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=sales_domain/peterfitch'`},
	} {
		p, err := GlobalPrincipal(tt.domain, "peterfitch")
		if err != nil {
			t.Fatal(err)
		}
		st, err := CreateUserGlobal(u, p)
		if err != nil || st.Text != tt.want {
			t.Errorf("domain %q: %q, %v; want %s", tt.domain, st.Text, err, tt.want)
		}
	}
	if pat, err := DomainPattern(GlobalKindPrincipal, DefaultDomain); err != nil || pat != "IAM_PRINCIPAL_NAME=%" {
		t.Errorf("DomainPattern(Default) = %q, %v", pat, err)
	}
}

func TestStatements(t *testing.T) {
	u := MustIdent("alice")
	r := MustIdent("sales_role")
	p, _ := GlobalPrincipal("dom", "alice@example.com")
	g, _ := GlobalGroup("dom", "Sales")
	build := func(s Statement, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s.Text
	}
	want := map[string]string{
		build(CreateUserGlobal(u, p)):         `CREATE USER "ALICE" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=dom/alice@example.com'`,
		build(CreateUserGlobal(r, g)):         `CREATE USER "SALES_ROLE" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=dom/Sales'`,
		build(CreateRoleGlobal(r, g)):         `CREATE ROLE "SALES_ROLE" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=dom/Sales'`,
		build(GrantCreateSession(u)):          `GRANT CREATE SESSION TO "ALICE"`,
		build(GrantRole(r, u)):                `GRANT "SALES_ROLE" TO "ALICE"`,
		build(RevokeRole(r, u)):               `REVOKE "SALES_ROLE" FROM "ALICE"`,
		build(LockUser(u)):                    `ALTER USER "ALICE" ACCOUNT LOCK`,
		build(UnlockUser(u)):                  `ALTER USER "ALICE" ACCOUNT UNLOCK`,
		build(DropUserCascade(u)):             `DROP USER "ALICE" CASCADE`,
		build(QueryUser(u)):                   `SELECT username, account_status, external_name FROM dba_users WHERE username = :1`,
		build(QueryUserRoles(u)):              `SELECT granted_role FROM dba_role_privs WHERE grantee = :1`,
		build(QueryRole(r)):                   `SELECT role FROM dba_roles WHERE role = :1`,
		build(QueryUsersByExternalName("x%")): `SELECT username, account_status, external_name FROM dba_users WHERE external_name LIKE :1`,
	}
	for got, w := range want {
		if got != w {
			t.Errorf("got  %s\nwant %s", got, w)
		}
	}
	q, _ := QueryUser(u)
	if len(q.Binds) != 1 || q.Binds[0] != (Bind{Index: 1, DataType: "VARCHAR2", Value: "ALICE"}) {
		t.Errorf("QueryUser binds = %+v", q.Binds)
	}
	if _, err := CreateRoleGlobal(r, p); err == nil {
		t.Error("CreateRoleGlobal with a principal mapping: want error")
	}
	var zero Identifier
	for name, err := range map[string]error{
		"CreateUserGlobal zero":   second(CreateUserGlobal(zero, p)),
		"CreateUserGlobal zero g": second(CreateUserGlobal(u, GlobalName{})),
		"GrantRole":               second(GrantRole(zero, u)),
		"DropUserCascade":         second(DropUserCascade(zero)),
		"QueryUser":               second(QueryUser(zero)),
		"QueryByExt":              second(QueryUsersByExternalName("")),
	} {
		if err == nil {
			t.Errorf("%s: want error for zero value", name)
		}
	}
	pat, err := DomainPattern(GlobalKindPrincipal, "dom")
	if err != nil || pat != "IAM_PRINCIPAL_NAME=dom/%" {
		t.Errorf("DomainPattern = %q, %v", pat, err)
	}
	if _, err := DomainPattern(GlobalKindPrincipal, "d'om"); err == nil {
		t.Error("DomainPattern with a quote: want error")
	}
}

func second(_ Statement, err error) error { return err }

func FuzzIdent(f *testing.F) {
	for _, s := range []string{"alice", "ALICE", `x" cascade; drop user admin--`, `a'||'b`, "аlice", "admin",
		strings.Repeat("a", 129), "a.b@c-d", "ﬁ", "ı", "\x00", "a\"b", "a;b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Ident(s)
		if err != nil {
			if !errors.Is(err, ErrUnsafeName) {
				t.Fatalf("Ident(%q): %v does not match ErrUnsafeName", s, err)
			}
			return
		}
		q := id.Quoted()
		inner := q[1 : len(q)-1]
		if q[0] != '"' || q[len(q)-1] != '"' || strings.ContainsAny(inner, "\"';\x00") {
			t.Fatalf("Ident(%q).Quoted() = %s is unsafe", s, q)
		}
		if len(inner) == 0 || len(inner) > MaxIdentBytes || !strings.EqualFold(inner, s) || strings.ToUpper(inner) != inner {
			t.Fatalf("Ident(%q) = %s: not the upper-cased input", s, q)
		}
		again, err := Ident(inner)
		if err != nil || again != id {
			t.Fatalf("round trip of %q: %v, %v", inner, again, err)
		}
		again2, err := Ident(strings.ToLower(s))
		if err != nil || again2 != id {
			t.Fatalf("lower-case %q not the same identifier: %v, %v", s, again2, err)
		}
	})
}

func FuzzGlobalName(f *testing.F) {
	f.Add("dom", "alice@example.com")
	f.Add("dom", "x' ; drop user admin--")
	f.Add("d/x", "a")
	f.Add("Default", "DB Admins")
	f.Add(DefaultDomain, "peterfitch")
	f.Fuzz(func(t *testing.T, domain, name string) {
		g, err := GlobalPrincipal(domain, name)
		if err != nil {
			return
		}
		lit := g.Literal()
		inner := lit[1 : len(lit)-1]
		slashes := 1
		if domain == DefaultDomain {
			slashes = 0
		}
		if strings.Count(inner, "/") != slashes {
			t.Fatalf("unsafe literal %s", lit)
		}
		if strings.ContainsAny(inner, "'\"\x00\n\r;") {
			t.Fatalf("unsafe literal %s", lit)
		}
		back, err := ParseGlobalName(g.Value())
		if err != nil || back != g {
			t.Fatalf("round trip %q: %+v %v", g.Value(), back, err)
		}
	})
}

// ParseGlobalName reads dba_users.external_name, which anyone with CREATE
// USER can set: it never panics, and what it accepts is a safe mapping that
// reads back the same.
func FuzzParseGlobalName(f *testing.F) {
	for _, s := range []string{"IAM_PRINCIPAL_NAME=dom/alice", "iam_group_name=g", "IAM_PRINCIPAL_NAME=/a", "IAM_PRINCIPAL_NAME=a/b/c",
		"IAM_GROUP_NAME=d/x' or '1'='1", "CN=alice", "=", "IAM_PRINCIPAL_NAME= a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGlobalName(s)
		if err != nil {
			if g != (GlobalName{}) {
				t.Fatalf("ParseGlobalName(%q) failed with a partial result %+v", s, g)
			}
			return
		}
		if strings.ContainsAny(g.Literal()[1:len(g.Literal())-1], "'\"\x00\n\r;") {
			t.Fatalf("ParseGlobalName(%q) accepted an unsafe literal %s", s, g.Literal())
		}
		back, err := ParseGlobalName(g.Value())
		if err != nil || back != g {
			t.Fatalf("round trip of %q: %+v %v", g.Value(), back, err)
		}
	})
}
