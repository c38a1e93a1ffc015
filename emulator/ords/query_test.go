package ords_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/iamflow/iamflow/emulator/ords"
)

const (
	q1 = "SELECT username, account_status, external_name FROM dba_users WHERE username = :1"
	q2 = "SELECT granted_role FROM dba_role_privs WHERE grantee = :1"
	q3 = "SELECT username, account_status, external_name FROM dba_users WHERE external_name LIKE :1"
	q4 = "SELECT role FROM dba_roles WHERE role = :1"
)

func seededConfig() ords.Config {
	cfg := baseConfig()
	cfg.Databases[0].Roles = []ords.Role{{Name: "DBAS", ExternalName: "IAM_GROUP_NAME=dom/dbas"}, {Name: "APP_READ"}}
	cfg.Databases[0].Users = []ords.User{
		{Username: "ALICE", ExternalName: "IAM_PRINCIPAL_NAME=dom/alice", Roles: []string{"DBAS", "APP_READ"}, Privileges: []string{ords.PrivCreateSession}},
		{Username: "BOB", ExternalName: "IAM_PRINCIPAL_NAME=dom/bob", AccountStatus: ords.StatusLocked},
		{Username: "CAROL", ExternalName: "IAM_PRINCIPAL_NAME=other/carol"},
		{Username: "APP"},
	}
	return cfg
}

func names(rs *resultSet, key string) []string {
	var out []string
	for _, r := range rs.Items {
		s, _ := r[key].(string)
		out = append(out, s)
	}
	return out
}

func TestContractQueries(t *testing.T) {
	v := start(t, seededConfig())
	cases := []struct {
		name  string
		sql   string
		bind  string
		key   string
		want  []string
		nCols int
	}{
		{"Q1 found", q1, "ALICE", "username", []string{"ALICE"}, 3},
		{"Q1 missing", q1, "NOBODY", "username", nil, 3},
		{"Q1 locked", q1, "BOB", "account_status", []string{"LOCKED"}, 3},
		{"Q2", q2, "ALICE", "granted_role", []string{"APP_READ", "DBAS"}, 1},
		{"Q2 none", q2, "BOB", "granted_role", nil, 1},
		{"Q3 domain", q3, "IAM_PRINCIPAL_NAME=dom/%", "username", []string{"ALICE", "BOB"}, 3},
		{"Q3 underscore", q3, "IAM_PRINCIPAL_NAME=dom/_ob", "username", []string{"BOB"}, 3},
		{"Q3 case-sensitive", q3, "iam_principal_name=dom/%", "username", nil, 3},
		{"Q4 found", q4, "DBAS", "role", []string{"DBAS"}, 1},
		{"Q4 missing", q4, "NOPE", "role", nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := v.one(c.sql, vbind(1, c.bind))
			if it.ErrorCode != 0 || it.StatementType != "query" || it.ResultSet == nil {
				t.Fatalf("item %+v", it)
			}
			rs := it.ResultSet
			if got := names(rs, c.key); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: %v, want %v", c.key, got, c.want)
			}
			if len(rs.Metadata) != c.nCols || rs.Count != len(c.want) || rs.HasMore || rs.Limit != 10000 || rs.Offset != 0 {
				t.Errorf("resultSet %+v", rs)
			}
		})
	}
	// metadata and NULLs
	it := v.one(q1, vbind(1, "ALICE"))
	m := it.ResultSet.Metadata
	if m[0].ColumnName != "USERNAME" || m[0].JSONColumnName != "username" || m[0].ColumnTypeName != "VARCHAR2" ||
		m[0].ColumnClassName != "java.lang.String" || m[2].JSONColumnName != "external_name" || m[2].IsNullable != 1 {
		t.Errorf("metadata %+v", m)
	}
	it = v.one(q1, vbind(1, "APP"))
	if row := it.ResultSet.Items[0]; row["external_name"] != nil || row["account_status"] != "OPEN" {
		t.Errorf("password user row %v", row)
	}
	// Q3 literal form, named bind, ORDER BY DESC, SELECT *
	if it := v.one("select USERNAME from SYS.DBA_USERS where EXTERNAL_NAME like 'IAM_PRINCIPAL_NAME=%' order by username desc"); !reflect.DeepEqual(names(it.ResultSet, "username"), []string{"CAROL", "BOB", "ALICE"}) {
		t.Errorf("literal LIKE + ORDER BY DESC: %+v", it)
	}
	if it := v.one("SELECT role FROM dba_roles WHERE role = :r", bind{Name: "r", DataType: "VARCHAR2", Value: "APP_READ"}); len(it.ResultSet.Items) != 1 {
		t.Errorf("named bind: %+v", it)
	}
	if it := v.one("SELECT * FROM dba_sys_privs"); it.ResultSet == nil || it.ResultSet.Count != 1 || it.ResultSet.Items[0]["privilege"] != "CREATE SESSION" {
		t.Errorf("SELECT *: %+v", it)
	}
	if it := v.one(q1, bind{Index: 1, DataType: "VARCHAR2", Value: nil}); it.ResultSet == nil || it.ResultSet.Count != 0 {
		t.Errorf("NULL bind: %+v", it)
	}
	if len(v.emu.Statements(alias)) == 0 {
		t.Error("queries not logged")
	}
}

// TestRowKeyOrder: result-set rows keep select-list order in the JSON.
func TestRowKeyOrder(t *testing.T) {
	v := start(t, seededConfig())
	body, _ := json.Marshal(request{StatementText: q1, Binds: []bind{vbind(1, "ALICE")}})
	_, out := v.post(alias, basic(basicUser, basicPass), "application/json", body)
	want := `"items":[{"username":"ALICE","account_status":"OPEN","external_name":"IAM_PRINCIPAL_NAME=dom/alice"}]`
	if !strings.Contains(string(out), want) {
		t.Errorf("body %s\nlacks %s", out, want)
	}
	if !strings.HasPrefix(string(out), `{"env":{"defaultTimeZone":"UTC"},"items":[{"statementId":1,"statementType":"query","statementPos":{"startLine":1,"endLine":1},"statementText":`) {
		t.Errorf("body does not start in ORDS's order: %s", out)
	}
}

func TestPaging(t *testing.T) {
	cfg := baseConfig()
	cfg.MaxRows = 20
	for i := range 25 {
		cfg.Databases[0].Users = append(cfg.Databases[0].Users,
			ords.User{Username: fmt.Sprintf("U%02d", i), ExternalName: fmt.Sprintf("IAM_PRINCIPAL_NAME=dom/u%02d", i)})
	}
	v := start(t, cfg)
	cases := []struct {
		offset, limit *int
		wantFirst     string
		count         int
		hasMore       bool
		limitOut      int
	}{
		{intp(0), intp(10), "U00", 10, true, 10},
		{intp(10), intp(10), "U10", 10, true, 10},
		{intp(20), intp(10), "U20", 5, false, 10},
		{intp(25), intp(10), "", 0, false, 10},
		{intp(99), intp(10), "", 0, false, 10},
		{nil, nil, "U00", 20, true, 20},           // default limit = MaxRows
		{intp(0), intp(500), "U00", 20, true, 20}, // capped at MaxRows
		{intp(24), intp(1), "U24", 1, false, 1},
	}
	for _, c := range cases {
		r := v.sql(alias, request{StatementText: q3, Offset: c.offset, Limit: c.limit, Binds: []bind{vbind(1, "IAM_PRINCIPAL_NAME=dom/%")}})
		rs := r.Items[0].ResultSet
		first := ""
		if len(rs.Items) > 0 {
			first, _ = rs.Items[0]["username"].(string)
		}
		if first != c.wantFirst || rs.Count != c.count || rs.HasMore != c.hasMore || rs.Limit != c.limitOut {
			t.Errorf("offset %v limit %v: first %q count %d hasMore %v limit %d", deref(c.offset), deref(c.limit), first, rs.Count, rs.HasMore, rs.Limit)
		}
	}
	// following hasMore visits every row exactly once
	var all []string
	for off := 0; ; off += 7 {
		rs := v.sql(alias, request{StatementText: q3, Offset: intp(off), Limit: intp(7), Binds: []bind{vbind(1, "%")}}).Items[0].ResultSet
		all = append(all, names(rs, "username")...)
		if !rs.HasMore {
			break
		}
	}
	if len(all) != 25 || all[0] != "U00" || all[24] != "U24" {
		t.Errorf("paged walk: %v", all)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
