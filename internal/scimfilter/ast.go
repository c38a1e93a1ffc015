// Package scimfilter parses and evaluates SCIM 2.0 filter expressions
// (RFC 7644 §3.4.2.2) and PATCH paths (RFC 7644 §3.5.2).
//
// Supported: the comparison operators eq, ne, co, sw, ew, gt, ge, lt, le and
// the presence operator pr; the logical operators and, or, not; grouping with
// parentheses; complex attribute filters (valuePath) such as
// members[value eq "x"] and emails[type eq "work" and value co "@example.com"];
// attribute paths with sub-attributes (name.givenName) and schema URN prefixes
// (urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User:isFederatedUser).
//
// Attribute names and operators are case-insensitive. String comparison is
// case-insensitive unless the attribute value is a CaseExact string, as
// RFC 7643 §2.2 prescribes for caseExact=false attributes.
//
// Choices where RFC 7644 leaves room (and Oracle does not document):
//   - not must be followed by a parenthesised filter, as in the RFC grammar
//     (not (userName eq "x")); "not userName eq "x"" is rejected.
//   - a valuePath may not be nested and may not be followed by ".subAttr"
//     inside a filter (that form is only valid in PATCH paths).
//   - on multi-valued attributes, every operator except ne matches when any
//     value matches; ne matches when no value is equal (so it is exactly
//     not (attr eq v)); an absent attribute is "ne" to everything.
//   - "attr eq null" matches an absent attribute, "attr ne null" a present one.
//   - gt/ge/lt/le on a boolean attribute, or with a boolean or null operand,
//     is an invalidFilter error, as RFC 7644 requires.
//   - a complex attribute compared without a sub-attribute (emails co "x")
//     compares its "value" sub-attribute, as RFC 7644's examples do.
//   - nesting deeper than MaxDepth is rejected rather than recursed into.
package scimfilter

import (
	"bytes"
	"encoding/json"
	"strings"
)

// MaxDepth is how deeply parentheses, not and valuePaths may nest in one filter.
const MaxDepth = 50

// Op is a comparison operator, always lower case.
type Op string

// The comparison operators of RFC 7644 §3.4.2.2.
const (
	Eq Op = "eq" // equal
	Ne Op = "ne" // not equal
	Co Op = "co" // contains
	Sw Op = "sw" // starts with
	Ew Op = "ew" // ends with
	Pr Op = "pr" // present (has value)
	Gt Op = "gt" // greater than
	Ge Op = "ge" // greater than or equal to
	Lt Op = "lt" // less than
	Le Op = "le" // less than or equal to
)

var ops = map[string]Op{"eq": Eq, "ne": Ne, "co": Co, "sw": Sw, "ew": Ew, "pr": Pr, "gt": Gt, "ge": Ge, "lt": Lt, "le": Le}

// Expr is a node of a parsed filter: *Compare, *And, *Or, *Not or *ValuePath.
type Expr interface {
	// String renders the node back as filter text that parses to the same tree.
	String() string
	isExpr()
}

// AttrPath names an attribute: an optional schema URN, an attribute name and an
// optional sub-attribute, as written (original case).
type AttrPath struct {
	URN  string // e.g. "urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User"; "" for none
	Name string // e.g. "emails"
	Sub  string // e.g. "value"; "" for none

	lurn, lname, lsub string
}

// NewAttrPath builds an AttrPath from its parts.
func NewAttrPath(urn, name, sub string) AttrPath {
	return AttrPath{URN: urn, Name: name, Sub: sub,
		lurn: strings.ToLower(urn), lname: strings.ToLower(name), lsub: strings.ToLower(sub)}
}

// Lower returns the path's parts lower-cased, the form attribute lookups use.
func (p AttrPath) Lower() (urn, name, sub string) {
	if p.lname == "" && p.Name != "" {
		return strings.ToLower(p.URN), strings.ToLower(p.Name), strings.ToLower(p.Sub)
	}
	return p.lurn, p.lname, p.lsub
}

// String renders the path in attribute notation.
func (p AttrPath) String() string {
	s := p.Name
	if p.URN != "" {
		s = p.URN + ":" + s
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// Compare is an attribute expression: Path Op Value, or Path pr.
type Compare struct {
	Path AttrPath
	Op   Op
	// Value is the comparison value: string, bool, float64 or nil (null).
	// It is nil and unused for pr.
	Value any

	raw string // the literal as written, for numbers
}

// And is a logical conjunction.
type And struct{ Left, Right Expr }

// Or is a logical disjunction.
type Or struct{ Left, Right Expr }

// Not negates a filter.
type Not struct{ X Expr }

// ValuePath filters the values of a multi-valued complex attribute:
// Path[Filter], where Filter's attribute names are relative to each value.
type ValuePath struct {
	Path   AttrPath
	Filter Expr
}

func (*Compare) isExpr()   {}
func (*And) isExpr()       {}
func (*Or) isExpr()        {}
func (*Not) isExpr()       {}
func (*ValuePath) isExpr() {}

// String renders the comparison as filter text.
func (c *Compare) String() string {
	if c.Op == Pr {
		return c.Path.String() + " pr"
	}
	return c.Path.String() + " " + string(c.Op) + " " + literal(c.Value, c.raw)
}

// String renders the conjunction, parenthesising a disjunction operand.
func (a *And) String() string { return andOperand(a.Left) + " and " + andOperand(a.Right) }

// String renders the disjunction.
func (o *Or) String() string { return o.Left.String() + " or " + o.Right.String() }

// String renders the negation.
func (n *Not) String() string { return "not (" + n.X.String() + ")" }

// String renders the value path.
func (v *ValuePath) String() string { return v.Path.String() + "[" + v.Filter.String() + "]" }

func andOperand(e Expr) string {
	if _, ok := e.(*Or); ok {
		return "(" + e.String() + ")"
	}
	return e.String()
}

func literal(v any, raw string) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		if v {
			return "true"
		}
		return "false"
	case string:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSuffix(b.String(), "\n")
	default:
		if raw != "" {
			return raw
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// Filter is a parsed filter expression.
type Filter struct {
	root Expr
	src  string
}

// Expr returns the root of the parsed expression tree.
func (f *Filter) Expr() Expr { return f.root }

// String renders the filter in canonical form; parsing it again gives the same tree.
func (f *Filter) String() string { return f.root.String() }

// Source returns the text the filter was parsed from.
func (f *Filter) Source() string { return f.src }
