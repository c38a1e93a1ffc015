package ords

import (
	"errors"
	"fmt"
)

// Statement is one SQL statement for the REST-enabled SQL service. Build it
// with the functions below, never by formatting strings: they take only
// validated Identifier and GlobalName values, and pass query values as binds.
type Statement struct {
	// Text is the SQL text (no trailing ';'). It holds no secret.
	Text string
	// Binds are the positional bind values for :1, :2, ... (queries only;
	// Oracle DDL cannot take binds).
	Binds []Bind
}

// Bind is one positional bind variable, in the ORDS JSON form
// {"index":1,"data_type":"VARCHAR2","value":"..."}.
type Bind struct {
	// Index is the 1-based position (:1 is Index 1).
	Index int `json:"index"`
	// DataType is the Oracle type name, e.g. "VARCHAR2".
	DataType string `json:"data_type"`
	// Value is the bound value.
	Value any `json:"value"`
}

// String is the statement text, for logs and errors.
func (s Statement) String() string { return s.Text }

// errZeroValue is returned by the builders for an unvalidated (zero) argument.
var errZeroValue = errors.New("ords: statement built from a zero Identifier or GlobalName (use Ident, GlobalPrincipal or GlobalGroup)")

func needIdents(ids ...Identifier) error {
	for _, id := range ids {
		if id.IsZero() {
			return errZeroValue
		}
	}
	return nil
}

// ddl is the statement text with no binds, refused (errZeroValue) when one
// of ids, the identifiers text names, is zero.
func ddl(text string, ids ...Identifier) (Statement, error) {
	if err := needIdents(ids...); err != nil {
		return Statement{}, err
	}
	return Statement{Text: text}, nil
}

// queryByName is the query text with id's name bound to :1, refused
// (errZeroValue) when id is zero.
func queryByName(text string, id Identifier) (Statement, error) {
	if err := needIdents(id); err != nil {
		return Statement{}, err
	}
	return Statement{Text: text, Binds: []Bind{varchar(1, id.Name())}}, nil
}

// CreateUserGlobal: CREATE USER "X" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=dom/user'
// ('IAM_PRINCIPAL_NAME=user' in the Default domain)
// (exclusive mapping) or AS 'IAM_GROUP_NAME=dom/group' (shared schema).
func CreateUserGlobal(user Identifier, g GlobalName) (Statement, error) {
	if err := needIdents(user); err != nil || g.IsZero() {
		return Statement{}, errZeroValue
	}
	return Statement{Text: "CREATE USER " + user.Quoted() + " IDENTIFIED GLOBALLY AS " + g.Literal()}, nil
}

// CreateRoleGlobal: CREATE ROLE "R" IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=dom/group'.
// g must come from GlobalGroup.
func CreateRoleGlobal(role Identifier, g GlobalName) (Statement, error) {
	if err := needIdents(role); err != nil || g.IsZero() {
		return Statement{}, errZeroValue
	}
	if g.Kind() != GlobalKindGroup {
		return Statement{}, fmt.Errorf("ords: a global role maps to an IAM group, not %s", g.Kind())
	}
	return Statement{Text: "CREATE ROLE " + role.Quoted() + " IDENTIFIED GLOBALLY AS " + g.Literal()}, nil
}

// GrantCreateSession: GRANT CREATE SESSION TO "X".
func GrantCreateSession(user Identifier) (Statement, error) {
	return ddl("GRANT CREATE SESSION TO "+user.Quoted(), user)
}

// GrantRole: GRANT "R" TO "X".
func GrantRole(role, user Identifier) (Statement, error) {
	return ddl("GRANT "+role.Quoted()+" TO "+user.Quoted(), role, user)
}

// RevokeRole: REVOKE "R" FROM "X".
func RevokeRole(role, user Identifier) (Statement, error) {
	return ddl("REVOKE "+role.Quoted()+" FROM "+user.Quoted(), role, user)
}

// LockUser: ALTER USER "X" ACCOUNT LOCK.
func LockUser(user Identifier) (Statement, error) {
	return ddl("ALTER USER "+user.Quoted()+" ACCOUNT LOCK", user)
}

// UnlockUser: ALTER USER "X" ACCOUNT UNLOCK.
func UnlockUser(user Identifier) (Statement, error) {
	return ddl("ALTER USER "+user.Quoted()+" ACCOUNT UNLOCK", user)
}

// DropUserCascade: DROP USER "X" CASCADE.
func DropUserCascade(user Identifier) (Statement, error) {
	return ddl("DROP USER "+user.Quoted()+" CASCADE", user)
}

func varchar(i int, v string) Bind { return Bind{Index: i, DataType: "VARCHAR2", Value: v} }

// QueryUser (Q1): SELECT username, account_status, external_name FROM dba_users WHERE username = :1.
// Rows have keys username, account_status, external_name.
func QueryUser(user Identifier) (Statement, error) {
	return queryByName("SELECT username, account_status, external_name FROM dba_users WHERE username = :1", user)
}

// QueryUserRoles (Q2): SELECT granted_role FROM dba_role_privs WHERE grantee = :1.
func QueryUserRoles(user Identifier) (Statement, error) {
	return queryByName("SELECT granted_role FROM dba_role_privs WHERE grantee = :1", user)
}

// QueryUsersByExternalName (Q3): SELECT username, account_status, external_name
// FROM dba_users WHERE external_name LIKE :1, with pattern from DomainPattern.
func QueryUsersByExternalName(pattern string) (Statement, error) {
	if pattern == "" {
		return Statement{}, errors.New("ords: empty LIKE pattern (use DomainPattern)")
	}
	return Statement{
		Text:  "SELECT username, account_status, external_name FROM dba_users WHERE external_name LIKE :1",
		Binds: []Bind{varchar(1, pattern)},
	}, nil
}

// QueryRole (Q4): SELECT role FROM dba_roles WHERE role = :1.
func QueryRole(role Identifier) (Statement, error) {
	return queryByName("SELECT role FROM dba_roles WHERE role = :1", role)
}
