package ords_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/emulator/ords"
)

func TestToken(t *testing.T) {
	v := start(t, baseConfig())
	status, body := v.tokenReq(alias, clientID, clientSecret, "client_credentials")
	var tok map[string]any
	if err := json.Unmarshal(body, &tok); err != nil || status != 200 {
		t.Fatalf("token: %d %s", status, body)
	}
	if tok["token_type"] != "bearer" || tok["expires_in"] != float64(3600) || len(tok["access_token"].(string)) < 16 {
		t.Errorf("token body %s", body)
	}
	cases := []struct {
		name, id, secret, grant string
		status                  int
	}{
		{"wrong secret", clientID, "nope", "client_credentials", 401},
		{"wrong id", "nope", clientSecret, "client_credentials", 401},
		{"wrong grant", clientID, clientSecret, "password", 400},
	}
	for _, c := range cases {
		status, body := v.tokenReq(alias, c.id, c.secret, c.grant)
		if status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, status, c.status, body)
		}
		if status == 401 && ordsErrorBody(t, body) != "Unauthorized" {
			t.Errorf("%s: body %s", c.name, body)
		}
		if strings.Contains(string(body), clientSecret) {
			t.Errorf("%s: body leaks the secret", c.name)
		}
	}
}

func TestAuth(t *testing.T) {
	clock := emu.NewManualClock(t0)
	cfg := baseConfig()
	cfg.Databases = append(cfg.Databases, ords.Database{Alias: "other", ClientID: "c2", ClientSecret: "s2"})
	v := start(t, cfg, ords.WithClock(clock))
	tok := v.token(alias)
	body := []byte(`{"statementText":"SELECT role FROM dba_roles"}`)
	cases := []struct {
		name   string
		a      string
		au     auth
		status int
	}{
		{"bearer", alias, bearer(tok), 200},
		{"basic", alias, basic(basicUser, basicPass), 200},
		{"no auth", alias, nil, 401},
		{"bad token", alias, bearer("nope"), 401},
		{"token of another alias", "other", bearer(tok), 401},
		{"wrong basic password", alias, basic(basicUser, "nope"), 401},
		{"basic not configured", "other", basic(basicUser, basicPass), 401},
		{"client credentials as basic", alias, basic(clientID, clientSecret), 401},
	}
	for _, c := range cases {
		status, out := v.post(c.a, c.au, "application/json", body)
		if status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, status, c.status, out)
		}
		if status == 401 {
			if code := ordsErrorBody(t, out); code != "Unauthorized" {
				t.Errorf("%s: code %q", c.name, code)
			}
			var m map[string]string
			_ = json.Unmarshal(out, &m)
			if m["message"] != "Unauthorized" {
				t.Errorf("%s: message %q", c.name, m["message"])
			}
		}
	}
	clock.Advance(3599 * time.Second)
	if status, _ := v.post(alias, bearer(tok), "application/json", body); status != 200 {
		t.Errorf("token before expiry: %d", status)
	}
	clock.Advance(time.Second)
	if status, _ := v.post(alias, bearer(tok), "application/json", body); status != 401 {
		t.Errorf("expired token: %d", status)
	}
	if len(v.emu.Statements(alias)) != 3 {
		t.Errorf("statements %v: refused requests must run nothing", v.emu.Statements(alias))
	}
	if s := v.emu.Stats(alias); s.Unauthorized != 5 {
		t.Errorf("stats %+v", s)
	}
}

func TestContentTypesAndBadBodies(t *testing.T) {
	v := start(t, baseConfig())
	au := basic(basicUser, basicPass)
	cases := []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"json", "application/json", `{"statementText":"SELECT role FROM dba_roles"}`, 200, ""},
		{"json charset", "application/json; charset=utf-8", `{"statementText":"SELECT role FROM dba_roles"}`, 200, ""},
		{"sql", "application/sql", "SELECT role FROM dba_roles", 200, ""},
		{"text/plain", "text/plain", "SELECT 1 FROM dual", 415, "UnsupportedMediaType"},
		{"form", "application/x-www-form-urlencoded", "a=b", 415, "UnsupportedMediaType"},
		{"none", "", "SELECT 1 FROM dual", 415, "UnsupportedMediaType"},
		{"bad json", "application/json", `{"statementText":`, 400, "BadRequest"},
		{"json array", "application/json", `["x"]`, 400, "BadRequest"},
		{"no statementText", "application/json", `{"limit":5}`, 400, "BadRequest"},
		{"blank statementText", "application/json", `{"statementText":"  "}`, 400, "BadRequest"},
		{"negative offset", "application/json", `{"statementText":"SELECT role FROM dba_roles","offset":-1}`, 400, "BadRequest"},
		{"bind without index", "application/json", `{"statementText":"SELECT role FROM dba_roles","binds":[{"value":"x"}]}`, 400, "BadRequest"},
		{"two values", "application/json", `{"statementText":"x"} {}`, 400, "BadRequest"},
		{"empty script", "application/sql", "  \n ", 400, "BadRequest"},
	}
	for _, c := range cases {
		status, out := v.post(alias, au, c.ct, []byte(c.body))
		if status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, status, c.status, out)
			continue
		}
		if c.code != "" && ordsErrorBody(t, out) != c.code {
			t.Errorf("%s: body %s", c.name, out)
		}
	}
	if n := len(v.emu.Statements(alias)); n != 3 {
		t.Errorf("%d statements ran, want 3", n)
	}
	// routing
	req, _ := http.NewRequest(http.MethodGet, v.base(alias)+"/_/sql", nil)
	if status, _ := do(t, req); status != 405 {
		t.Errorf("GET /_/sql: %d", status)
	}
	req, _ = http.NewRequest(http.MethodPost, v.base("nosuch")+"/_/sql", nil)
	if status, out := do(t, req); status != 404 || ordsErrorBody(t, out) != "NotFound" {
		t.Errorf("unknown alias: %d", status)
	}
}

// TestScript: several statements separated by ';' and '/' lines run in
// order; a failing one is reported and the rest still run.
func TestScript(t *testing.T) {
	v := start(t, baseConfig())
	tok := v.token(alias)
	script := `-- provision alice
CREATE USER "ALICE" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=dom/a;b';
GRANT CREATE SESSION TO "ALICE";
GRANT "MISSING" TO "ALICE";

create role "R"
/
GRANT "R"
  TO "ALICE"
/
SELECT granted_role FROM dba_role_privs WHERE grantee = 'ALICE';
`
	r := v.script(alias, tok, script)
	type want struct {
		typ        string
		code       int
		start, end int
	}
	wants := []want{{"ddl", 0, 2, 2}, {"ddl", 0, 3, 3}, {"ddl", 1919, 4, 4}, {"ddl", 0, 6, 6}, {"ddl", 0, 8, 9}, {"query", 0, 11, 11}}
	if len(r.Items) != len(wants) {
		t.Fatalf("%d items, want %d: %+v", len(r.Items), len(wants), r.Items)
	}
	for i, w := range wants {
		it := r.Items[i]
		if it.StatementID != i+1 || it.StatementType != w.typ || it.ErrorCode != w.code || it.StatementPos.StartLine != w.start || it.StatementPos.EndLine != w.end {
			t.Errorf("item %d: %+v, want %+v", i, it, w)
		}
	}
	if r.Items[2].ErrorLine != 4 {
		t.Errorf("errorLine %d, want 4", r.Items[2].ErrorLine)
	}
	if got := names(r.Items[5].ResultSet, "granted_role"); len(got) != 1 || got[0] != "R" {
		t.Errorf("query after failure: %v", got)
	}
	if u, _ := v.emu.User(alias, "ALICE"); u.ExternalName != "IAM_PRINCIPAL_NAME=dom/a;b" {
		t.Errorf("';' inside a literal split the statement: %q", u.ExternalName)
	}
	if r.Items[0].StatementText != `CREATE USER "ALICE" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=dom/a;b'` {
		t.Errorf("statementText %q", r.Items[0].StatementText)
	}
	// statementText in JSON is a script too
	res := v.sql(alias, request{StatementText: `ALTER USER "ALICE" ACCOUNT LOCK; SELECT account_status FROM dba_users WHERE username = 'ALICE'`})
	if len(res.Items) != 2 || res.Items[1].ResultSet.Items[0]["account_status"] != "LOCKED" {
		t.Errorf("json script: %+v", res)
	}
}
