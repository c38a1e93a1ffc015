package ords

import "strings"

// The grammar the emulator understands (ords-contract.md) is this, with
// keywords case-insensitive and any whitespace or comments between tokens:
//
//	CREATE USER u IDENTIFIED GLOBALLY [AS 'text']
//	CREATE USER u IDENTIFIED BY password
//	CREATE ROLE r [NOT IDENTIFIED | IDENTIFIED GLOBALLY [AS 'text']]
//	GRANT item {, item} TO u {, u}          item: CREATE SESSION or a role
//	REVOKE item {, item} FROM u {, u}
//	ALTER USER u ACCOUNT {LOCK | UNLOCK}
//	DROP USER u [CASCADE]
//	DROP ROLE r
//	SELECT col {, col} | * FROM [SYS.]view [WHERE col {= | LIKE} value]
//	       [ORDER BY col [ASC | DESC]]       value: 'text', :1 or :name
//
// Anything else is ORA-00900 invalid SQL statement (ORA-00922 or ORA-00933
// when a known statement has extra words at the end), as the database says.

type stmtKind int

const (
	stCreateUser stmtKind = iota + 1
	stCreateRole
	stGrant
	stRevoke
	stAlterUser
	stDropUser
	stDropRole
	stSelect
)

// statement is a parsed statement.
type statement struct {
	kind stmtKind
	// name is the user or role of CREATE, ALTER and DROP.
	name string
	// auth is GLOBAL, PASSWORD or NONE (CREATE USER/ROLE); external is the
	// AS 'text' of IDENTIFIED GLOBALLY.
	auth     string
	external string
	// lock is ALTER USER ... ACCOUNT LOCK (false: UNLOCK).
	lock bool
	// cascade is DROP USER ... CASCADE.
	cascade bool
	// items and grantees are GRANT/REVOKE's lists.
	items    []grantItem
	grantees []string
	// SELECT.
	view     string
	viewTok  token
	cols     []colRef
	star     bool
	where    *predicate
	orderBy  *colRef
	desc     bool
	bindRefs int
}

// grantItem is a role, or the system privilege CREATE SESSION.
type grantItem struct {
	name string
	priv bool
}

type colRef struct {
	name string
	tok  token
}

// predicate is WHERE col = value or WHERE col LIKE value.
type predicate struct {
	col  colRef
	like bool
	val  operand
}

// operand is a string literal or a bind variable.
type operand struct {
	bind bool
	name string // bind name without the colon, upper-cased ("1" for :1)
	pos  int    // 1-based occurrence of the bind in the statement
	lit  string
	tok  token
}

type parser struct {
	toks  []token
	i     int
	binds int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// accept consumes the keyword kw if it is next.
func (p *parser) accept(kw string) bool {
	if p.peek().is(kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(kw string) *oraError {
	if !p.accept(kw) {
		return errInvalidSQL(p.peek())
	}
	return nil
}

// ident reads a user, role, view or column name: unquoted names are
// upper-cased, quoted ones kept as written.
func (p *parser) ident() (string, token, *oraError) {
	t := p.peek()
	switch t.kind {
	case tokIdent, tokQuoted:
		p.i++
		return t.val, t, nil
	}
	return "", t, errInvalidSQL(t)
}

// literal reads the 'text' of a DDL statement; binds are refused as the
// database refuses them in DDL.
func (p *parser) literal() (string, *oraError) {
	t := p.next()
	switch t.kind {
	case tokString:
		return t.val, nil
	case tokBind:
		return "", errBindInDDL(t)
	}
	return "", errInvalidSQL(t)
}

// commaList reads a list of one or more items separated by commas, each
// with item.
func (p *parser) commaList(item func() *oraError) *oraError {
	for {
		if err := item(); err != nil {
			return err
		}
		if !p.peek().sym(",") {
			return nil
		}
		p.i++
	}
}

// end checks that nothing but an optional ';' follows; code is the error a
// known statement with trailing words gets (922 for DDL, 933 for queries).
func (p *parser) end(code int) *oraError {
	if p.peek().sym(";") {
		p.i++
	}
	t := p.peek()
	if t.kind == tokEOF {
		return nil
	}
	if code == 922 {
		return errBadOption(t)
	}
	return errNotEnded(t)
}

// parse parses one statement (without its script terminator).
func parse(text string) (*statement, *oraError) {
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	first := p.next()
	var st *statement
	switch {
	case first.is("CREATE"):
		st, err = p.create()
	case first.is("GRANT"), first.is("REVOKE"):
		st, err = p.grant(first.is("GRANT"))
	case first.is("ALTER"):
		st, err = p.alter()
	case first.is("DROP"):
		st, err = p.drop()
	case first.is("SELECT"):
		st, err = p.query()
	default:
		return nil, errInvalidSQL(first)
	}
	if err != nil {
		return nil, err
	}
	st.bindRefs = p.binds
	return st, nil
}

func (p *parser) create() (*statement, *oraError) {
	switch {
	case p.accept("USER"):
		name, _, err := p.ident()
		if err != nil {
			return nil, err
		}
		st := &statement{kind: stCreateUser, name: name}
		if err := p.expect("IDENTIFIED"); err != nil {
			return nil, err
		}
		switch {
		case p.accept("GLOBALLY"):
			if err := p.globally(st); err != nil {
				return nil, err
			}
		case p.accept("BY"):
			st.auth = "PASSWORD"
			if _, _, err := p.ident(); err != nil {
				return nil, err
			}
		default:
			return nil, errBadOption(p.peek())
		}
		return st, p.end(922)
	case p.accept("ROLE"):
		name, _, err := p.ident()
		if err != nil {
			return nil, err
		}
		st := &statement{kind: stCreateRole, name: name, auth: "NONE"}
		switch {
		case p.accept("NOT"):
			if err := p.expect("IDENTIFIED"); err != nil {
				return nil, err
			}
		case p.accept("IDENTIFIED"):
			if err := p.expect("GLOBALLY"); err != nil {
				return nil, err
			}
			if err := p.globally(st); err != nil {
				return nil, err
			}
		}
		return st, p.end(922)
	}
	return nil, errInvalidSQL(p.peek())
}

// globally reads what follows IDENTIFIED GLOBALLY in CREATE USER or ROLE:
// an optional AS 'external name'.
func (p *parser) globally(st *statement) *oraError {
	st.auth = "GLOBAL"
	if p.accept("AS") {
		var err *oraError
		st.external, err = p.literal()
		return err
	}
	return nil
}

// reservedPrivilegeWords start a system privilege (CREATE SESSION, SELECT ANY
// TABLE, ...) rather than a role name in GRANT and REVOKE.
var reservedPrivilegeWords = map[string]bool{
	"CREATE": true, "ALTER": true, "DROP": true, "SELECT": true, "INSERT": true, "UPDATE": true,
	"DELETE": true, "EXECUTE": true, "GRANT": true, "UNLIMITED": true, "RESTRICTED": true,
}

func (p *parser) grant(isGrant bool) (*statement, *oraError) {
	st := &statement{kind: stRevoke}
	to := "FROM"
	if isGrant {
		st.kind, to = stGrant, "TO"
	}
	err := p.commaList(func() *oraError {
		it, err := p.grantItem()
		st.items = append(st.items, it)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := p.expect(to); err != nil {
		return nil, err
	}
	err = p.commaList(func() *oraError {
		name, _, err := p.ident()
		st.grantees = append(st.grantees, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return st, p.end(933)
}

// grantItem reads what GRANT gives or REVOKE takes back: CREATE SESSION or
// a role's name.
func (p *parser) grantItem() (grantItem, *oraError) {
	t := p.peek()
	switch {
	case t.is("CREATE") && p.toks[p.i+1].is("SESSION"):
		p.i += 2
		return grantItem{name: "CREATE SESSION", priv: true}, nil
	case t.kind == tokIdent && reservedPrivilegeWords[t.val]:
		return grantItem{}, errBadPrivilege(t)
	}
	name, _, err := p.ident()
	return grantItem{name: name}, err
}

func (p *parser) alter() (*statement, *oraError) {
	if err := p.expect("USER"); err != nil {
		return nil, err
	}
	name, _, err := p.ident()
	if err != nil {
		return nil, err
	}
	st := &statement{kind: stAlterUser, name: name}
	if !p.accept("ACCOUNT") {
		return nil, errBadOption(p.peek())
	}
	switch {
	case p.accept("LOCK"):
		st.lock = true
	case p.accept("UNLOCK"):
	default:
		return nil, errBadOption(p.peek())
	}
	return st, p.end(922)
}

func (p *parser) drop() (*statement, *oraError) {
	switch {
	case p.accept("USER"):
		name, _, err := p.ident()
		if err != nil {
			return nil, err
		}
		st := &statement{kind: stDropUser, name: name, cascade: p.accept("CASCADE")}
		return st, p.end(933)
	case p.accept("ROLE"):
		name, _, err := p.ident()
		if err != nil {
			return nil, err
		}
		return &statement{kind: stDropRole, name: name}, p.end(933)
	}
	return nil, errInvalidSQL(p.peek())
}

func (p *parser) query() (*statement, *oraError) {
	st := &statement{kind: stSelect}
	if p.peek().sym("*") {
		p.i++
		st.star = true
	} else if err := p.commaList(func() *oraError {
		name, t, err := p.ident()
		st.cols = append(st.cols, colRef{name, t})
		return err
	}); err != nil {
		return nil, err
	}
	if err := p.expect("FROM"); err != nil {
		return nil, err
	}
	view, vt, err := p.ident()
	if err != nil {
		return nil, err
	}
	if p.peek().sym(".") { // owner.view: only SYS owns the dictionary views
		p.i++
		if view != "SYS" {
			return nil, errNoTable(vt)
		}
		if view, vt, err = p.ident(); err != nil {
			return nil, err
		}
	}
	st.view, st.viewTok = view, vt
	if p.accept("WHERE") {
		col, ct, err := p.ident()
		if err != nil {
			return nil, err
		}
		pr := &predicate{col: colRef{col, ct}}
		switch {
		case p.peek().sym("="):
			p.i++
		case p.accept("LIKE"):
			pr.like = true
		default:
			return nil, errInvalidSQL(p.peek())
		}
		t := p.next()
		switch t.kind {
		case tokString:
			pr.val = operand{lit: t.val, tok: t}
		case tokBind:
			p.binds++
			pr.val = operand{bind: true, name: t.val, pos: p.binds, tok: t}
		default:
			return nil, errInvalidSQL(t)
		}
		st.where = pr
	}
	if p.accept("ORDER") {
		if err := p.expect("BY"); err != nil {
			return nil, err
		}
		col, ct, err := p.ident()
		if err != nil {
			return nil, err
		}
		st.orderBy = &colRef{col, ct}
		if p.accept("DESC") {
			st.desc = true
		} else {
			p.accept("ASC")
		}
	}
	return st, p.end(933)
}

// statementType is ORDS's statementType for a statement, from its first
// word: "query", "ddl", "dml", "plsql", or "sqlplus" for anything else
// (inferred from SQLcl's command classes; the emulator runs only query and
// ddl statements).
func statementType(text string) string {
	switch firstWord(text) {
	case "SELECT", "WITH":
		return "query"
	case "CREATE", "ALTER", "DROP", "GRANT", "REVOKE", "TRUNCATE", "COMMENT", "RENAME", "AUDIT", "NOAUDIT":
		return "ddl"
	case "INSERT", "UPDATE", "DELETE", "MERGE":
		return "dml"
	case "BEGIN", "DECLARE":
		return "plsql"
	}
	return "sqlplus"
}

// firstWord is the statement's first word, upper-cased, after whitespace and
// comments; "" when it does not start with a word.
func firstWord(text string) string {
	text = skipLeading(text)
	j := 0
	for j < len(text) && isIdentPart(text[j]) {
		j++
	}
	if j == 0 || !isIdentStart(text[0]) {
		return ""
	}
	return strings.ToUpper(text[:j])
}
