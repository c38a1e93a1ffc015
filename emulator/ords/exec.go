package ords

import "time"

// execOptions are what a request asks of each statement.
type execOptions struct {
	binds  []bindValue
	offset int
	limit  int
}

// runScript runs a script's statements in order, one item each. Like
// SQLcl's default (WHENEVER SQLERROR CONTINUE), a failing statement is
// reported and the next one still runs; each statement commits on its own,
// as DDL does in Oracle. (Inferred: ORDS runs the script through SQLcl's
// engine; the docs found show no multi-statement failure.)
func (db *database) runScript(stmts []scriptStatement, o execOptions) []item {
	items := make([]item, 0, len(stmts))
	for i, s := range stmts {
		it := item{
			StatementID:   i + 1,
			StatementType: statementType(s.text),
			StatementPos:  statementPos{StartLine: s.startLine, EndLine: s.endLine},
			StatementText: s.text,
			Response:      []string{},
		}
		db.exec(&it, s.text, o)
		items = append(items, it)
	}
	return items
}

// exec runs one statement under the database lock and fills in it.
func (db *database) exec(it *item, text string, o execOptions) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.log = append(db.log, text)
	if db.faults.BusyNext > 0 {
		db.faults.BusyNext--
		db.stats.Faults++
		it.fail(errBusy())
		return
	}
	st, err := parse(text)
	if err != nil {
		it.fail(err)
		return
	}
	if st.kind == stSelect {
		it.StatementType = "query"
		rs, err := db.query(st, o)
		if err != nil {
			it.fail(err)
			return
		}
		it.ResultSet = rs
		return
	}
	it.StatementType = "ddl"
	if db.cfg.Unprivileged {
		it.fail(errInsufficientPrivileges())
		return
	}
	if err := db.ddl(st, db.now()); err != nil {
		it.fail(err)
		return
	}
	it.Response = []string{ddlMessage(st)}
}

func (db *database) ddl(st *statement, now time.Time) *oraError {
	c := db.cat
	switch st.kind {
	case stCreateUser:
		return c.createUser(st.name, st.auth, st.external, now)
	case stCreateRole:
		return c.createRole(st.name, st.auth, st.external)
	case stGrant:
		return c.grant(st.items, st.grantees)
	case stRevoke:
		return c.revoke(st.items, st.grantees)
	case stAlterUser:
		return c.alterLock(st.name, st.lock)
	case stDropUser:
		return c.dropUser(st.name)
	case stDropRole:
		return c.dropRole(st.name)
	}
	return errInvalidSQL(token{})
}

// query answers a SELECT on a dictionary view, paged by offset and limit.
// hasMore says whether rows follow the page.
func (db *database) query(st *statement, o execOptions) (*resultSet, *oraError) {
	v, ok := views[st.view]
	if !ok || db.cfg.Unprivileged { // a schema without DBA privileges cannot see DBA_ views
		return nil, errNoTable(st.viewTok)
	}
	sel, err := v.selected(st)
	if err != nil {
		return nil, err
	}
	rows := v.rows(db.cat)
	if w := st.where; w != nil {
		if rows, err = v.filter(rows, w, o.binds); err != nil {
			return nil, err
		}
	}
	if st.orderBy != nil {
		oi, err := v.colIdx(*st.orderBy)
		if err != nil {
			return nil, err
		}
		sortRows(rows, oi, st.desc)
	}
	return v.page(rows, sel, o), nil
}

// colIdx returns the index of column c in v, or ORA-00904.
func (v view) colIdx(c colRef) (int, *oraError) {
	for i, vc := range v.cols {
		if vc.name == c.name {
			return i, nil
		}
	}
	return 0, errBadColumn(c.tok, c.name)
}

// selected returns the indexes of the columns st selects from v: all of
// them for *, then those it names.
func (v view) selected(st *statement) ([]int, *oraError) {
	var sel []int
	if st.star {
		for i := range v.cols {
			sel = append(sel, i)
		}
	}
	for _, c := range st.cols {
		i, err := v.colIdx(c)
		if err != nil {
			return nil, err
		}
		sel = append(sel, i)
	}
	return sel, nil
}

// filter keeps the rows that the WHERE predicate w holds for, a bind
// variable taken from binds; NULL compares as unknown.
func (v view) filter(rows [][]value, w *predicate, binds []bindValue) ([][]value, *oraError) {
	wi, err := v.colIdx(w.col)
	if err != nil {
		return nil, err
	}
	want, wantOK := w.val.lit, true
	if w.val.bind {
		b, found := lookupBind(binds, w.val)
		if !found {
			return nil, errNotBound(w.val.tok)
		}
		want, wantOK = bindText(b.Value)
	}
	kept := rows[:0]
	for _, r := range rows {
		got, gotOK := text(r[wi])
		switch {
		case !wantOK || !gotOK: // NULL compares as unknown
		case w.like && likeMatch(got, want), !w.like && got == want:
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// page returns the page of rows that o's offset and limit ask for, with
// the selected columns.
func (v view) page(rows [][]value, sel []int, o execOptions) *resultSet {
	rs := &resultSet{Items: []row{}, Limit: o.limit, Offset: o.offset}
	for _, i := range sel {
		rs.Metadata = append(rs.Metadata, v.cols[i].metadata())
	}
	start := min(o.offset, len(rows))
	end := min(start+o.limit, len(rows))
	for _, r := range rows[start:end] {
		out := row{}
		for _, i := range sel {
			out.keys = append(out.keys, jsonName(v.cols[i].name))
			out.vals = append(out.vals, jsonValue(r[i]))
		}
		rs.Items = append(rs.Items, out)
	}
	rs.Count = len(rs.Items)
	rs.HasMore = end < len(rows)
	return rs
}
