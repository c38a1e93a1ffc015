package ords

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"
)

// column is one column of a dictionary view, with the metadata ORDS reports
// for it (§6: columnName, jsonColumnName, columnTypeName, columnClassName,
// precision, scale, isNullable).
type column struct {
	name      string
	typ       string // VARCHAR2, NUMBER, DATE
	nullable  bool
	precision int
}

func (c column) metadata() columnMeta {
	m := columnMeta{
		ColumnName: c.name, JSONColumnName: jsonName(c.name), ColumnTypeName: c.typ,
		Precision: c.precision, IsNullable: 0,
	}
	if c.nullable {
		m.IsNullable = 1
	}
	switch c.typ {
	case "NUMBER":
		m.ColumnClassName = "java.math.BigDecimal"
	case "DATE":
		m.ColumnClassName, m.Precision = "java.sql.Timestamp", 7
	default:
		m.ColumnClassName = "java.lang.String"
	}
	return m
}

// jsonName is ORDS's jsonColumnName: the column name in lower case.
func jsonName(col string) string {
	b := []byte(col)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// value is a cell: string, int, time.Time, or nil for NULL.
type value any

// view is a dictionary view over the catalog. rows come in the view's
// natural order (by its key), which is the emulator's order when there is
// no ORDER BY (Oracle promises none).
type view struct {
	cols []column
	rows func(c *catalog) [][]value
}

func vc(name string) column { return column{name: name, typ: "VARCHAR2", precision: 128} }
func vcNull(name string) column {
	return column{name: name, typ: "VARCHAR2", precision: 4000, nullable: true}
}
func vcSized(name string, n int) column { return column{name: name, typ: "VARCHAR2", precision: n} }

func nullable(s string) value {
	if s == "" {
		return nil
	}
	return s
}

// views are the dictionary views the emulator serves. Only the columns
// listed exist; others are ORA-00904. (The real views have more columns;
// these are the ones iamflow reads plus a few for debugging.)
var views = map[string]view{
	"DBA_USERS": {
		cols: []column{vc("USERNAME"), {name: "USER_ID", typ: "NUMBER"}, vcSized("ACCOUNT_STATUS", 32),
			{name: "CREATED", typ: "DATE"}, vcSized("AUTHENTICATION_TYPE", 8), vcNull("EXTERNAL_NAME")},
		rows: func(c *catalog) [][]value {
			var out [][]value
			for _, n := range c.userNames() {
				u := c.users[n]
				out = append(out, []value{u.name, u.id, u.status, u.created, authType(u.global, "PASSWORD"), nullable(u.external)})
			}
			return out
		},
	},
	"DBA_ROLES": {
		cols: []column{vc("ROLE"), {name: "ROLE_ID", typ: "NUMBER"}, vcSized("AUTHENTICATION_TYPE", 11), vcNull("EXTERNAL_NAME")},
		rows: func(c *catalog) [][]value {
			var out [][]value
			for _, n := range c.roleNames() {
				r := c.roles[n]
				out = append(out, []value{r.name, r.id, authType(r.global, "NONE"), nullable(r.external)})
			}
			return out
		},
	},
	"DBA_ROLE_PRIVS": {
		cols: []column{vc("GRANTEE"), vc("GRANTED_ROLE"), vcSized("ADMIN_OPTION", 3), vcSized("DEFAULT_ROLE", 3)},
		rows: func(c *catalog) [][]value {
			var out [][]value
			for _, n := range c.userNames() {
				for _, r := range slices.Sorted(maps.Keys(c.users[n].roles)) {
					out = append(out, []value{n, r, "NO", "YES"})
				}
			}
			return out
		},
	},
	"DBA_SYS_PRIVS": {
		cols: []column{vc("GRANTEE"), vcSized("PRIVILEGE", 40), vcSized("ADMIN_OPTION", 3)},
		rows: func(c *catalog) [][]value {
			var out [][]value
			for _, n := range c.userNames() {
				for _, p := range slices.Sorted(maps.Keys(c.users[n].privs)) {
					out = append(out, []value{n, p, "NO"})
				}
			}
			return out
		},
	},
}

// text is a cell as the string a comparison sees; ok is false for NULL.
func text(v value) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case time.Time:
		return x.UTC().Format("02-JAN-06"), true
	}
	return "", false
}

// jsonValue is a cell as ORDS writes it: DATE as an ISO-8601 UTC timestamp.
func jsonValue(v value) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(time.RFC3339)
	}
	return v
}

// row is one result-set row; it marshals its columns in select-list order
// (as ORDS does), not sorted like a Go map.
type row struct {
	keys []string
	vals []any
}

// MarshalJSON writes the row as an object in column order.
func (r row) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range r.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(r.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// likeMatch is SQL LIKE without ESCAPE: % matches any run, _ any one
// character; case-sensitive. It runs in O(len(s)*len(pattern)).
func likeMatch(s, pattern string) bool {
	sr, pr := []rune(s), []rune(pattern)
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(sr) {
		switch {
		case pi < len(pr) && (pr[pi] == '_' || pr[pi] == sr[si]) && pr[pi] != '%':
			si++
			pi++
		case pi < len(pr) && pr[pi] == '%':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pr) && pr[pi] == '%' {
		pi++
	}
	return pi == len(pr)
}

// sortRows orders rows by column idx (NULLs last, as Oracle sorts ascending).
func sortRows(rows [][]value, idx int, desc bool) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, aok := text(rows[i][idx])
		b, bok := text(rows[j][idx])
		ai, aInt := rows[i][idx].(int)
		bi, bInt := rows[j][idx].(int)
		less := false
		switch {
		case !aok || !bok:
			less = aok && !bok
			if desc {
				less = !aok && bok
			}
			return less
		case aInt && bInt:
			less = ai < bi
			if desc {
				less = bi < ai
			}
		default:
			if ta, ok := rows[i][idx].(time.Time); ok {
				tb, _ := rows[j][idx].(time.Time)
				a, b = ta.Format(time.RFC3339Nano), tb.Format(time.RFC3339Nano)
			}
			less = a < b
			if desc {
				less = b < a
			}
		}
		return less
	})
}
