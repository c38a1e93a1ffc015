package ords

import (
	"fmt"
	"strconv"
	"strings"
)

// sqlResponse is the body of a REST-enabled SQL answer (docs/oci-sources.md §6).
type sqlResponse struct {
	Env   envInfo `json:"env"`
	Items []item  `json:"items"`
}

type envInfo struct {
	DefaultTimeZone string `json:"defaultTimeZone"`
}

type statementPos struct {
	StartLine int `json:"startLine"`
	EndLine   int `json:"endLine"`
}

// item is one statement's result. Field order follows the §6 sample; the
// error fields appear only on a failed statement.
type item struct {
	StatementID   int          `json:"statementId"`
	StatementType string       `json:"statementType"`
	StatementPos  statementPos `json:"statementPos"`
	StatementText string       `json:"statementText"`
	ResultSet     *resultSet   `json:"resultSet,omitempty"`
	Response      []string     `json:"response"`
	Result        int          `json:"result"`
	ErrorCode     int          `json:"errorCode,omitempty"`
	ErrorLine     int          `json:"errorLine,omitempty"`
	ErrorColumn   int          `json:"errorColumn,omitempty"`
	ErrorMessage  string       `json:"errorMessage,omitempty"`
	ErrorDetails  string       `json:"errorDetails,omitempty"`
}

type resultSet struct {
	Metadata []columnMeta `json:"metadata"`
	Items    []row        `json:"items"`
	HasMore  bool         `json:"hasMore"`
	Limit    int          `json:"limit"`
	Offset   int          `json:"offset"`
	Count    int          `json:"count"`
}

type columnMeta struct {
	ColumnName      string `json:"columnName"`
	JSONColumnName  string `json:"jsonColumnName"`
	ColumnTypeName  string `json:"columnTypeName"`
	ColumnClassName string `json:"columnClassName"`
	Precision       int    `json:"precision"`
	Scale           int    `json:"scale"`
	IsNullable      int    `json:"isNullable"`
}

// fail turns it into an error item. errorLine and errorColumn are within
// the script (the statement's start line plus the line in the statement);
// errorMessage and errorDetails are both "ORA-NNNNN: text" (inferred: §6
// has only errorCode and errorDetails verbatim). response carries the
// SQLcl-style error report (inferred).
func (it *item) fail(e *oraError) {
	line, col := e.line, e.col
	if line == 0 {
		line, col = 1, 1
	}
	it.ResultSet = nil
	it.ErrorCode = e.code
	it.ErrorLine = it.StatementPos.StartLine + line - 1
	it.ErrorColumn = col
	it.ErrorMessage = e.Error()
	it.ErrorDetails = e.Error()
	it.Response = []string{fmt.Sprintf("\nError starting at line : %d in command -\n%s\nError report -\n%s\n\n",
		it.StatementPos.StartLine, it.StatementText, e.Error())}
}

// ddlMessage is the SQLcl feedback line for a successful DDL statement,
// reported in response[] (inferred, docs/oci-sources.md §6: no verbatim DDL response).
func ddlMessage(st *statement) string {
	var msg string
	switch st.kind {
	case stCreateUser:
		msg = "User " + st.name + " created."
	case stCreateRole:
		msg = "Role " + st.name + " created."
	case stGrant:
		msg = "Grant succeeded."
	case stRevoke:
		msg = "Revoke succeeded."
	case stAlterUser:
		msg = "User " + st.name + " altered."
	case stDropUser:
		msg = "User " + st.name + " dropped."
	case stDropRole:
		msg = "Role " + st.name + " dropped."
	}
	return "\n" + msg + "\n\n"
}

// bindValue is one element of the JSON "binds" array: positional
// {"index":1,"data_type":"VARCHAR2","value":"x"} or named {"name":"x",...}.
type bindValue struct {
	Index    int    `json:"index,omitempty"`
	Name     string `json:"name,omitempty"`
	DataType string `json:"data_type,omitempty"`
	Value    any    `json:"value"`
}

// lookup finds the bind for a placeholder: by name (case-insensitive), else
// by position (JDBC binds by position), else by the number of :N.
func lookupBind(binds []bindValue, op operand) (bindValue, bool) {
	for _, b := range binds {
		if b.Name != "" && strings.EqualFold(strings.TrimPrefix(b.Name, ":"), op.name) {
			return b, true
		}
	}
	n, err := strconv.Atoi(op.name)
	for _, b := range binds {
		if b.Name == "" && (b.Index == op.pos || err == nil && b.Index == n) {
			return b, true
		}
	}
	return bindValue{}, false
}

// bindText is a bind value as a comparison sees it; ok is false for NULL.
func bindText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case fmt.Stringer: // json.Number
		return x.String(), true
	}
	return fmt.Sprint(v), true
}
