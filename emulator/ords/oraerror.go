package ords

import "fmt"

// oraError is an Oracle error as a statement reports it: errorCode is the
// number, errorDetails and errorMessage are "ORA-NNNNN: text".
type oraError struct {
	code      int
	msg       string
	line, col int // 1-based, within the statement; 0 when not known
}

func (e *oraError) Error() string { return fmt.Sprintf("ORA-%05d: %s", e.code, e.msg) }

func oraErr(code, line, col int, format string, args ...any) *oraError {
	return &oraError{code: code, msg: fmt.Sprintf(format, args...), line: line, col: col}
}

// The Oracle errors the emulator returns (ords-contract.md), with the texts
// the database uses.
func errInvalidSQL(t token) *oraError { return oraErr(900, t.line, t.col, "invalid SQL statement") }

func errNotEnded(t token) *oraError {
	return oraErr(933, t.line, t.col, "SQL command not properly ended")
}

func errUserMissing(u string) *oraError { return oraErr(1918, 0, 0, "user '%s' does not exist", u) }

func errRoleMissing(r string) *oraError { return oraErr(1919, 0, 0, "role '%s' does not exist", r) }

func errUserConflict(u string) *oraError {
	return oraErr(1920, 0, 0, "user name '%s' conflicts with another user or role name", u)
}

func errRoleConflict(r string) *oraError {
	return oraErr(1921, 0, 0, "role name '%s' conflicts with another user or role name", r)
}

func errRoleNotGranted(r, u string) *oraError {
	return oraErr(1951, 0, 0, "ROLE '%s' not granted to '%s'", r, u)
}

func errPrivNotGranted(u string) *oraError {
	return oraErr(1952, 0, 0, "system privileges not granted to '%s'", u)
}

func errNoTable(t token) *oraError {
	return oraErr(942, t.line, t.col, "table or view does not exist")
}

func errBadColumn(t token, name string) *oraError {
	return oraErr(904, t.line, t.col, "\"%s\": invalid identifier", name)
}

func errNotBound(t token) *oraError { return oraErr(1008, t.line, t.col, "not all variables bound") }

func errBindInDDL(t token) *oraError {
	return oraErr(1027, t.line, t.col, "bind variables not allowed for data definition operations")
}

func errBadOption(t token) *oraError {
	return oraErr(922, t.line, t.col, "missing or invalid option")
}

func errBadPrivilege(t token) *oraError {
	return oraErr(990, t.line, t.col, "missing or invalid privilege")
}

func errInsufficientPrivileges() *oraError { return oraErr(1031, 0, 0, "insufficient privileges") }

func errBusy() *oraError {
	return oraErr(54, 0, 0, "resource busy and acquire with NOWAIT specified or timeout expired")
}
