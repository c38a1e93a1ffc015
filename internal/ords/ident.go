package ords

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxIdentBytes is Oracle's limit for a user or role name (12.2 and later).
const MaxIdentBytes = 128

// MaxIAMNameBytes bounds each part (domain, user, group) of an IAM name put in
// an IDENTIFIED GLOBALLY literal.
const MaxIAMNameBytes = 255

// ErrUnsafeName is matched (errors.Is) by every *IdentError: the name cannot
// safely become a database identifier or an IAM literal.
var ErrUnsafeName = errors.New("ords: unsafe name")

// ErrReservedName is matched (errors.Is) by an *IdentError for a name that is
// well formed but belongs to Oracle (ADMIN, SYS, PUBLIC, DBA, ...) and so must
// never be created, dropped, locked or granted by iamflow. Such an error also
// matches ErrUnsafeName.
var ErrReservedName = errors.New("ords: reserved Oracle name")

// IdentError says why a name was refused. Name is the offending input, quoted
// with strconv.Quote and cut to 80 bytes when printed.
type IdentError struct {
	// What is what the name was for: "identifier", "IAM domain", "IAM user", "IAM group".
	What string
	// Name is the refused input, as given.
	Name string
	// Reason is a short, human explanation ("contains '\"'", "longer than 128 bytes", ...).
	Reason string
	// Reserved is true when the name is an Oracle-maintained name.
	Reserved bool
}

// Error implements error.
func (e *IdentError) Error() string {
	n := e.Name
	if len(n) > 80 {
		n = n[:80] + "..."
	}
	return fmt.Sprintf("ords: %s %s refused: %s", e.What, strconv.Quote(n), e.Reason)
}

// Is makes errors.Is(err, ErrUnsafeName) true for every IdentError, and
// errors.Is(err, ErrReservedName) true for reserved names.
func (e *IdentError) Is(target error) bool {
	return target == ErrUnsafeName || (e.Reserved && target == ErrReservedName)
}

// Identifier is a validated, upper-case Oracle user or role name. Its only
// constructor is Ident; the zero value is invalid and refused by every
// statement builder.
type Identifier struct{ name string }

// Ident validates name as an Oracle user or role name that iamflow may manage
// and returns it normalised to upper case ("alice" and "ALICE" are the same
// user). Accepted: 1..128 bytes of ASCII letters, digits and _ $ # . @ -,
// starting with a letter or digit. Refused: anything else (quotes, spaces,
// control characters, NUL, non-ASCII including look-alike letters), and
// Oracle-maintained names (ADMIN, SYS, SYSTEM, PUBLIC, DBA, ...; names
// starting with ORA_, C##, APEX_, SYS$, XS$) with an error matching
// ErrReservedName.
func Ident(name string) (Identifier, error) {
	if reason := identCharsetProblem(name); reason != "" {
		return Identifier{}, &IdentError{What: "identifier", Name: name, Reason: reason}
	}
	up := strings.ToUpper(name) // ASCII only at this point
	if reservedName(up) {
		return Identifier{}, &IdentError{What: "identifier", Name: name, Reason: "Oracle-maintained name", Reserved: true}
	}
	return Identifier{name: up}, nil
}

// MustIdent is Ident for constants in tests and examples; it panics on a bad name.
func MustIdent(name string) Identifier {
	id, err := Ident(name)
	if err != nil {
		panic(err)
	}
	return id
}

// Name is the upper-case name without quotes, as dba_users.username shows it.
func (i Identifier) Name() string { return i.name }

// Quoted is the name as a quoted identifier: "ALICE".
func (i Identifier) Quoted() string { return `"` + i.name + `"` }

// IsZero reports whether the identifier is the invalid zero value.
func (i Identifier) IsZero() bool { return i.name == "" }

// String is the upper-case name.
func (i Identifier) String() string { return i.name }

func identCharsetProblem(name string) string {
	if r := sizeProblem(name, MaxIdentBytes); r != "" {
		return r
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if r := byteProblem(c, identSafe); r != "" {
			return r
		}
		if i == 0 && !isAlnum(c) {
			return "must start with a letter or digit"
		}
	}
	return ""
}

// sizeProblem says why a name of at most maxBytes bytes is empty or too
// long, or is "" when it is neither.
func sizeProblem(name string, maxBytes int) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > maxBytes:
		return fmt.Sprintf("longer than %d bytes", maxBytes)
	}
	return ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

const (
	identSafe = "_$#.@-"
	// iamSafe: IAM user names are often e-mail addresses; group and domain
	// names may hold spaces (not at either end). '/' separates domain and
	// name, so it is not allowed inside either.
	iamSafe = "_.@-+ "
)

// byteProblem explains why c is refused, or returns "".
func byteProblem(c byte, extra string) string {
	switch {
	case isAlnum(c):
		return ""
	case c == 0:
		return "contains NUL"
	case c == '"':
		return `contains '"'`
	case c == '\'':
		return `contains "'"`
	case c < 0x20 || c == 0x7f:
		return "contains a control character"
	case c >= 0x80:
		return "contains a non-ASCII character"
	case strings.IndexByte(extra, c) >= 0:
		return ""
	default:
		return fmt.Sprintf("contains %q, outside the allowed set (letters, digits, %s)", string(c), strings.TrimSpace(extra))
	}
}

// reservedExact are Oracle-maintained users and roles (Autonomous DB, 19c-23ai).
var reservedExact = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`
		ADMIN SYS SYSTEM PUBLIC SYSBACKUP SYSDG SYSKM SYSRAC AUDSYS DBSNMP ADBSNMP
		GSMADMIN_INTERNAL GSMCATUSER GSMUSER GSMROOTUSER XDB OUTLN DIP ANONYMOUS
		ORDS_METADATA ORDS_PUBLIC_USER ORDS_ADMINISTRATOR_ROLE ORDS_RUNTIME_ROLE
		GGADMIN GGSYS LBACSYS MDSYS MDDATA CTXSYS DVSYS DVF OJVMSYS OLAPSYS
		ORDSYS ORDDATA ORDPLUGINS SI_INFORMTN_SCHEMA WMSYS APPQOSSYS DBSFWUSER
		REMOTE_SCHEDULER_AGENT FLOWS_FILES SPATIAL_CSW_ADMIN_USR SPATIAL_WFS_ADMIN_USR
		DGPDB_INT OML_USER RMAN$VPC
		DBA CONNECT RESOURCE PDB_DBA DWROLE CDB_DBA SELECT_CATALOG_ROLE
		EXECUTE_CATALOG_ROLE DELETE_CATALOG_ROLE AUDIT_ADMIN AUDIT_VIEWER
		DATAPUMP_EXP_FULL_DATABASE DATAPUMP_IMP_FULL_DATABASE EXP_FULL_DATABASE
		IMP_FULL_DATABASE GATHER_SYSTEM_STATISTICS SCHEDULER_ADMIN CAPTURE_ADMIN
		CONSOLE_DEVELOPER CONSOLE_MONITOR CONSOLE_OPERATOR CONSOLE_ADMIN
		DB_DEVELOPER_ROLE GRAPH_DEVELOPER GRAPH_ADMINISTRATOR OML_DEVELOPER
		SODA_APP XS_CONNECT XS_RESOURCE XS_SESSION_ADMIN XS_NAMESPACE_ADMIN
		ACCHK_READ ADB_MONITOR APPLICATION_TRACE_VIEWER AQ_ADMINISTRATOR_ROLE AQ_USER_ROLE
		HS_ADMIN_ROLE JAVA_ADMIN JAVA_DEPLOY OPTIMIZER_PROCESSING_RATE RECOVERY_CATALOG_OWNER
		`) {
		reservedExact[n] = true
	}
}

var reservedPrefixes = []string{"ORA_", "C##", "APEX_", "SYS$", "XS$", "ORDS_", "OML$", "GRAPH$", "RMAN$"}

func reservedName(up string) bool {
	if reservedExact[up] {
		return true
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(up, p) {
			return true
		}
	}
	return false
}

// GlobalKind says which IAM name an IDENTIFIED GLOBALLY clause maps to.
type GlobalKind string

// The two mapping kinds.
const (
	// GlobalKindPrincipal maps to one IAM user (IAM_PRINCIPAL_NAME).
	GlobalKindPrincipal GlobalKind = "IAM_PRINCIPAL_NAME"
	// GlobalKindGroup maps to an IAM group (IAM_GROUP_NAME).
	GlobalKindGroup GlobalKind = "IAM_GROUP_NAME"
)

// GlobalName is a validated IAM mapping, domain/name (or name alone for the
// Default domain), for IDENTIFIED GLOBALLY. Build it with GlobalPrincipal or
// GlobalGroup; the zero value is refused by the statement builders. IAM names
// keep their case.
type GlobalName struct {
	kind         GlobalKind
	domain, name string
}

// DefaultDomain, as the domain of GlobalPrincipal or GlobalGroup, is the
// tenancy's Default identity domain, whose users and groups Autonomous
// Database names without a domain prefix ('IAM_PRINCIPAL_NAME=peterfitch');
// a user of any other domain is 'IAM_PRINCIPAL_NAME=sales_domain/peterfitch'
// (https://docs.oracle.com/en/cloud/paas/autonomous-database/adbsa/iam-create-users.html).
const DefaultDomain = ""

// GlobalPrincipal validates an identity domain name and an IAM user name and
// returns the mapping IAM_PRINCIPAL_NAME=domain/user, or IAM_PRINCIPAL_NAME=user
// when domain is DefaultDomain. Each part is 1..255 bytes of ASCII letters,
// digits and _ . @ - + and space (not first or last); quotes, '/', NUL, control
// and non-ASCII characters are refused.
func GlobalPrincipal(domain, user string) (GlobalName, error) {
	return globalName(GlobalKindPrincipal, "IAM user", domain, user)
}

// GlobalGroup is GlobalPrincipal for an IAM group: IAM_GROUP_NAME=domain/group,
// or IAM_GROUP_NAME=group in the Default domain.
func GlobalGroup(domain, group string) (GlobalName, error) {
	return globalName(GlobalKindGroup, "IAM group", domain, group)
}

func globalName(kind GlobalKind, what, domain, name string) (GlobalName, error) {
	if domain != DefaultDomain {
		if r := iamNameProblem(domain); r != "" {
			return GlobalName{}, &IdentError{What: "IAM domain", Name: domain, Reason: r}
		}
	}
	if r := iamNameProblem(name); r != "" {
		return GlobalName{}, &IdentError{What: what, Name: name, Reason: r}
	}
	return GlobalName{kind: kind, domain: domain, name: name}, nil
}

func iamNameProblem(s string) string {
	if r := sizeProblem(s, MaxIAMNameBytes); r != "" {
		return r
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return "leading or trailing space"
	}
	for i := 0; i < len(s); i++ {
		if r := byteProblem(s[i], iamSafe); r != "" {
			return r
		}
	}
	return ""
}

// Kind is the mapping kind.
func (g GlobalName) Kind() GlobalKind { return g.kind }

// Domain is the identity domain name; DefaultDomain ("") for the Default domain.
func (g GlobalName) Domain() string { return g.domain }

// Name is the IAM user or group name.
func (g GlobalName) Name() string { return g.name }

// IsZero reports whether g is the invalid zero value.
func (g GlobalName) IsZero() bool { return g.kind == "" }

// Value is the mapping without quotes, as dba_users.external_name holds it:
// IAM_PRINCIPAL_NAME=domain/user, or IAM_PRINCIPAL_NAME=user in the Default domain.
func (g GlobalName) Value() string {
	if g.IsZero() {
		return ""
	}
	if g.domain == DefaultDomain {
		return string(g.kind) + "=" + g.name
	}
	return string(g.kind) + "=" + g.domain + "/" + g.name
}

// Literal is the SQL string literal for IDENTIFIED GLOBALLY AS:
// 'IAM_PRINCIPAL_NAME=domain/user'. Validation already refused quotes; any
// single quote would be doubled all the same.
func (g GlobalName) Literal() string {
	return "'" + strings.ReplaceAll(g.Value(), "'", "''") + "'"
}

// String is Value.
func (g GlobalName) String() string { return g.Value() }

// ParseGlobalName parses an external_name read from dba_users
// ("IAM_PRINCIPAL_NAME=dom/user" or "IAM_GROUP_NAME=dom/group", or without
// "dom/" for the Default domain; the key is matched case-insensitively) and
// validates its parts like GlobalPrincipal. Names of another kind are refused.
func ParseGlobalName(externalName string) (GlobalName, error) {
	key, rest, ok := strings.Cut(externalName, "=")
	if !ok {
		return GlobalName{}, &IdentError{What: "external name", Name: externalName, Reason: "no '='"}
	}
	var kind GlobalKind
	switch strings.ToUpper(strings.TrimSpace(key)) {
	case string(GlobalKindPrincipal):
		kind = GlobalKindPrincipal
	case string(GlobalKindGroup):
		kind = GlobalKindGroup
	default:
		return GlobalName{}, &IdentError{What: "external name", Name: externalName, Reason: "not IAM_PRINCIPAL_NAME or IAM_GROUP_NAME"}
	}
	domain, name, ok := strings.Cut(rest, "/")
	switch {
	case !ok:
		domain, name = DefaultDomain, rest
	case domain == DefaultDomain:
		return GlobalName{}, &IdentError{What: "external name", Name: externalName, Reason: "empty domain before '/'"}
	}
	if kind == GlobalKindPrincipal {
		return GlobalPrincipal(domain, name)
	}
	return GlobalGroup(domain, name)
}

// DomainPattern is the LIKE pattern (a bind value for QueryUsersByExternalName)
// matching every principal mapping of a domain: IAM_PRINCIPAL_NAME=domain/%.
// For DefaultDomain it is IAM_PRINCIPAL_NAME=%, which also matches other
// domains' mappings, and '_' in a domain name is a LIKE wildcard, so callers
// must still check each row's external_name with ParseGlobalName.
func DomainPattern(kind GlobalKind, domain string) (string, error) {
	if kind != GlobalKindPrincipal && kind != GlobalKindGroup {
		return "", fmt.Errorf("ords: unknown mapping kind %q", kind)
	}
	if domain == DefaultDomain {
		return string(kind) + "=%", nil
	}
	if r := iamNameProblem(domain); r != "" {
		return "", &IdentError{What: "IAM domain", Name: domain, Reason: r}
	}
	return string(kind) + "=" + domain + "/%", nil
}
