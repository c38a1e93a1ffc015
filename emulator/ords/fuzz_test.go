package ords

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	`CREATE USER "X" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=dom/x'`,
	`CREATE USER "X" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=dom/g'`,
	`CREATE ROLE "R" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=dom/g'`,
	`GRANT CREATE SESSION TO "X"`,
	`GRANT "R" TO "X"`,
	`REVOKE "R" FROM "X"`,
	`ALTER USER "X" ACCOUNT LOCK`,
	`ALTER USER "X" ACCOUNT UNLOCK`,
	`DROP USER "X" CASCADE`,
	"SELECT username, account_status, external_name FROM dba_users WHERE username = :1",
	"SELECT granted_role FROM dba_role_privs WHERE grantee = :1",
	"SELECT username, account_status, external_name FROM dba_users WHERE external_name LIKE :1",
	"SELECT role FROM dba_roles WHERE role = :1",
	"create user a identified globally as 'o''brien';\n/\n-- c\n/* x */ grant r to a;",
	"BEGIN NULL; END;\n/\n",
	`CREATE USER "X IDENTIFIED`,
	"SELECT * FROM sys.dba_users WHERE username LIKE '%_' ORDER BY created DESC",
	"'",
	"\"",
	"/*",
	":",
}

// FuzzParse: the tokenizer, parser and script splitter never panic, and a
// statement that does not parse gets an Oracle error.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, s := range splitScript(text) {
			_ = statementType(s.text)
			if s.startLine < 1 || s.endLine < s.startLine {
				t.Errorf("statement %q: lines %d-%d", s.text, s.startLine, s.endLine)
			}
		}
		st, err := parse(text)
		if err != nil {
			if st != nil || err.code <= 0 || !strings.HasPrefix(err.Error(), "ORA-") {
				t.Errorf("parse %q: %v, %v", text, st, err)
			}
			return
		}
		if st == nil || st.kind == 0 {
			t.Errorf("parse %q: no statement and no error", text)
		}
	})
}

// snapshot is the catalog as the Go API shows it.
type snapshot struct {
	Users []User
	Roles []Role
}

func snap(e *Emulator) snapshot { return snapshot{e.Users("db"), e.Roles("db")} }

// FuzzExecute posts arbitrary bodies as application/sql and as
// application/json: the answer is 200 or 400, never a panic; every statement
// that does not parse has an error item; and the catalog changes only when a
// DDL statement succeeded.
func FuzzExecute(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, false)
		b, _ := json.Marshal(map[string]any{"statementText": s, "limit": 3, "offset": 1,
			"binds": []map[string]any{{"index": 1, "data_type": "VARCHAR2", "value": "X"}}})
		f.Add(string(b), true)
	}
	f.Add(`{"statementText":`, true)
	f.Add(`{"statementText":"GRANT \"R\" TO \"X\"","binds":[{"index":-1}]}`, true)
	f.Add(`{"statementText":"x","limit":1e99}`, true)
	e, err := New(Config{Databases: []Database{{
		Alias: "db", BasicUser: "u", BasicPassword: "p",
		Roles: []Role{{Name: "R", ExternalName: "IAM_GROUP_NAME=dom/g"}},
		Users: []User{{Username: "X", ExternalName: "IAM_PRINCIPAL_NAME=dom/x", Roles: []string{"R"}}},
	}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string, isJSON bool) {
		e.Reset()
		before := snap(e)
		ct := "application/sql"
		if isJSON {
			ct = "application/json"
		}
		req := httptest.NewRequest(http.MethodPost, "/ords/db/_/sql", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", ct)
		req.SetBasicAuth("u", "p")
		rec := httptest.NewRecorder()
		e.Handler().ServeHTTP(rec, req)
		after := snap(e)
		switch rec.Code {
		case http.StatusBadRequest:
			if !reflect.DeepEqual(before, after) || len(e.Statements("db")) != 0 {
				t.Fatalf("400 changed something")
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var resp struct {
			Items []struct {
				StatementType string `json:"statementType"`
				StatementText string `json:"statementText"`
				ErrorCode     int    `json:"errorCode"`
			} `json:"items"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("response is not JSON: %v", err)
		}
		ddlOK := false
		for _, it := range resp.Items {
			if _, perr := parse(it.StatementText); perr != nil && it.ErrorCode == 0 {
				t.Fatalf("unparseable %q has no error", it.StatementText)
			}
			if it.StatementType == "ddl" && it.ErrorCode == 0 {
				ddlOK = true
			}
		}
		if !ddlOK && !reflect.DeepEqual(before, after) {
			t.Fatalf("catalog changed without a successful DDL statement:\n%+v\n%+v", before, after)
		}
	})
}
