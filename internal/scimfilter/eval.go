package scimfilter

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Object is a SCIM resource, or one value of a complex attribute, that a
// filter reads attributes from.
//
// Attr returns the value of the attribute whose lower-cased name is name, or
// nil when it has none. A name may also be a lower-cased schema URN, for which
// Attr returns the extension's Object (or the Object itself for its core
// schema). Values may be: nil, string, CaseExact, bool, any integer or float
// type, json.Number, time.Time, Object, map[string]any, []any, []string,
// []map[string]any, []Object or Multi.
type Object interface {
	Attr(name string) any
}

// Multi is a multi-valued attribute read lazily, one value at a time.
type Multi interface {
	Len() int
	At(i int) any
}

// CaseExact is a string attribute value compared case-sensitively
// (caseExact=true in its schema). Plain strings compare case-insensitively.
type CaseExact string

// Map adapts a JSON object to Object, matching keys case-insensitively.
type Map map[string]any

// Attr returns the value of the key equal to name ignoring case.
func (m Map) Attr(name string) any {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// Match reports whether obj satisfies the filter. The error, an *Error, is
// for filters that cannot be evaluated, such as gt on a boolean attribute.
func (f *Filter) Match(obj Object) (bool, error) { return match(f.root, obj) }

// Match evaluates one expression node against obj.
func Match(e Expr, obj Object) (bool, error) { return match(e, obj) }

func match(e Expr, obj Object) (bool, error) {
	switch e := e.(type) {
	case *And:
		ok, err := match(e.Left, obj)
		if err != nil || !ok {
			return false, err
		}
		return match(e.Right, obj)
	case *Or:
		ok, err := match(e.Left, obj)
		if err != nil || ok {
			return ok, err
		}
		return match(e.Right, obj)
	case *Not:
		ok, err := match(e.X, obj)
		return !ok && err == nil, err
	case *ValuePath:
		return matchValuePath(e, obj)
	case *Compare:
		return matchCompare(e, obj)
	default:
		return false, &Error{Pos: -1, Msg: fmt.Sprintf("unknown expression %T", e)}
	}
}

// base resolves a path's URN and name against obj.
func base(p AttrPath, obj Object) any {
	urn, name, _ := p.Lower()
	if urn != "" {
		ext, ok := asObject(obj.Attr(urn))
		if !ok {
			return nil
		}
		obj = ext
	}
	return obj.Attr(name)
}

func asObject(v any) (Object, bool) {
	switch v := v.(type) {
	case Object:
		return v, true
	case map[string]any:
		return Map(v), true
	}
	return nil, false
}

// each calls fn for every value of a possibly multi-valued attribute and stops
// when fn returns true.
func each(v any, fn func(any) bool) bool {
	switch v := v.(type) {
	case nil:
		return false
	case []any:
		return anyOf(v, fn)
	case []string:
		return anyOf(v, fn)
	case []map[string]any:
		return anyOf(v, fn)
	case []Object:
		return anyOf(v, fn)
	case Multi:
		for i, n := 0, v.Len(); i < n; i++ {
			if fn(v.At(i)) {
				return true
			}
		}
		return false
	default:
		return fn(v)
	}
}

// anyOf reports whether fn returns true for one of xs, stopping at the first.
func anyOf[T any](xs []T, fn func(any) bool) bool {
	for _, x := range xs {
		if fn(x) {
			return true
		}
	}
	return false
}

func matchValuePath(e *ValuePath, obj Object) (bool, error) {
	var err error
	found := each(base(e.Path, obj), func(x any) bool {
		o, ok := asObject(x)
		if !ok {
			return false
		}
		var m bool
		m, err = match(e.Filter, o)
		return err != nil || m
	})
	if err != nil {
		return false, err
	}
	return found, nil
}

// values calls fn with each leaf value the path selects.
func values(p AttrPath, obj Object, implicitValue bool, fn func(any) bool) bool {
	_, _, sub := p.Lower()
	return each(base(p, obj), func(x any) bool {
		if o, ok := asObject(x); ok {
			switch {
			case sub != "":
				return each(o.Attr(sub), fn)
			case implicitValue:
				return each(o.Attr("value"), fn)
			}
			return fn(x)
		}
		if sub != "" {
			return false
		}
		return fn(x)
	})
}

func matchCompare(c *Compare, obj Object) (bool, error) {
	if c.Op == Pr {
		return values(c.Path, obj, false, present), nil
	}
	if c.Value == nil {
		has := values(c.Path, obj, true, present)
		switch c.Op {
		case Eq:
			return !has, nil
		case Ne:
			return has, nil
		}
	}
	op := c.Op
	if op == Ne {
		op = Eq
	}
	var err error
	found := values(c.Path, obj, true, func(x any) bool {
		var m bool
		m, err = compare(op, x, c.Value)
		return err != nil || m
	})
	if err != nil {
		return false, err
	}
	if c.Op == Ne {
		return !found, nil
	}
	return found, nil
}

func present(x any) bool {
	switch x := x.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case CaseExact:
		return x != ""
	case Object, map[string]any:
		o, _ := asObject(x)
		if m, ok := o.(Map); ok {
			for _, v := range m {
				if present(v) {
					return true
				}
			}
			return false
		}
		return true
	}
	return true
}

// compare applies op (never Ne, Pr) to one attribute value and the literal.
func compare(op Op, attr, lit any) (bool, error) {
	switch a := attr.(type) {
	case string:
		return compareString(op, a, lit, false)
	case CaseExact:
		return compareString(op, string(a), lit, true)
	case bool:
		b, ok := lit.(bool)
		switch op {
		case Eq:
			return ok && a == b, nil
		case Gt, Ge, Lt, Le:
			return false, &Error{Pos: -1, Msg: fmt.Sprintf("operator %q cannot be applied to a boolean attribute", op)}
		}
		return false, nil
	case time.Time:
		s, ok := lit.(string)
		if !ok {
			return false, nil
		}
		t, err := parseTime(s)
		if err != nil {
			return false, &Error{Pos: -1, Msg: fmt.Sprintf("%q is not a dateTime", s)}
		}
		switch op {
		case Co, Sw, Ew:
			return false, &Error{Pos: -1, Msg: fmt.Sprintf("operator %q cannot be applied to a dateTime attribute", op)}
		}
		return ordered(op, a.Compare(t)), nil
	}
	if n, ok := number(attr); ok {
		l, ok := lit.(float64)
		if !ok {
			return false, nil
		}
		switch {
		case n < l:
			return ordered(op, -1), nil
		case n > l:
			return ordered(op, 1), nil
		default:
			return ordered(op, 0), nil
		}
	}
	return false, nil
}

func compareString(op Op, a string, lit any, exact bool) (bool, error) {
	l, ok := lit.(string)
	if !ok {
		return false, nil
	}
	if !exact {
		if op == Eq {
			return strings.EqualFold(a, l), nil
		}
		a, l = strings.ToLower(a), strings.ToLower(l)
	}
	switch op {
	case Eq:
		return a == l, nil
	case Co:
		return strings.Contains(a, l), nil
	case Sw:
		return strings.HasPrefix(a, l), nil
	case Ew:
		return strings.HasSuffix(a, l), nil
	}
	return ordered(op, strings.Compare(a, l)), nil
}

func ordered(op Op, c int) bool {
	switch op {
	case Eq:
		return c == 0
	case Gt:
		return c > 0
	case Ge:
		return c >= 0
	case Lt:
		return c < 0
	case Le:
		return c <= 0
	}
	return false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n)
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func parseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// Values returns the values path selects in obj, flattening multi-valued
// attributes; a complex value without a sub-attribute yields its "value".
func Values(p AttrPath, obj Object) []any {
	var out []any
	values(p, obj, true, func(x any) bool {
		out = append(out, x)
		return false
	})
	return out
}

// CompareValues orders two attribute values for sorting (RFC 7644
// §3.4.2.3): strings case-insensitively (CaseExact ones exactly), numbers,
// booleans (false first) and dateTimes by value. Values of different kinds
// order by kind; nil sorts after everything.
func CompareValues(a, b any) int {
	ka, kb := kind(a), kind(b)
	if ka != kb {
		return ka - kb
	}
	switch ka {
	case 0:
		sa, ea := str(a)
		sb, eb := str(b)
		if !ea || !eb {
			sa, sb = strings.ToLower(sa), strings.ToLower(sb)
		}
		return strings.Compare(sa, sb)
	case 1:
		na, _ := number(a)
		nb, _ := number(b)
		switch {
		case na < nb:
			return -1
		case na > nb:
			return 1
		}
		return 0
	case 2:
		ba, bb := a.(bool), b.(bool)
		switch {
		case ba == bb:
			return 0
		case !ba:
			return -1
		}
		return 1
	case 3:
		return a.(time.Time).Compare(b.(time.Time))
	}
	return 0
}

func str(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, false
	case CaseExact:
		return string(v), true
	}
	return "", false
}

func kind(v any) int {
	switch v.(type) {
	case string, CaseExact:
		return 0
	case bool:
		return 2
	case time.Time:
		return 3
	case nil:
		return 5
	}
	if _, ok := number(v); ok {
		return 1
	}
	return 4
}
