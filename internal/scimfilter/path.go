package scimfilter

import (
	"fmt"
	"strings"
)

// Path is the path of a PATCH operation (RFC 7644 §3.5.2):
//
//	PATH = attrPath / valuePath [subAttr]
//
// e.g. "displayName", "name.givenName",
// "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group:description",
// `members[value eq "2819c223"]` or `emails[type eq "work"].value`.
type Path struct {
	// Attr is the attribute; Attr.Sub is set only for a plain attrPath.
	Attr AttrPath
	// Filter selects values of a multi-valued attribute; nil if none.
	Filter Expr
	// Sub is the sub-attribute after a value filter ("value" in emails[...].value).
	Sub string
}

// String renders the path.
func (p Path) String() string {
	if p.Filter == nil {
		return p.Attr.String()
	}
	s := p.Attr.String() + "[" + p.Filter.String() + "]"
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// ParsePath parses a PATCH path. The error, if any, is an *Error.
func ParsePath(s string) (Path, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Path{}, &Error{Pos: 0, Msg: "empty path"}
	}
	open := strings.IndexByte(s, '[')
	if open < 0 {
		a, err := splitAttrPath(s, 0)
		if err != nil {
			return Path{}, err
		}
		return Path{Attr: a}, nil
	}
	a, err := splitAttrPath(s[:open], 0)
	if err != nil {
		return Path{}, err
	}
	if a.Sub != "" {
		return Path{}, &Error{Pos: open, Msg: fmt.Sprintf("a value filter applies to a multi-valued attribute, not to %q", a.String())}
	}
	end := closingBracket(s, open)
	if end < 0 {
		return Path{}, &Error{Pos: open, Msg: "unterminated \"[\""}
	}
	toks, err := lex(s[open+1 : end])
	if err != nil {
		return Path{}, shift(err, open+1)
	}
	p := &parser{toks: toks, inValue: true}
	f, err := p.parseOr()
	if err != nil {
		return Path{}, shift(err, open+1)
	}
	if t := p.peek(); t.kind != tEOF {
		return Path{}, &Error{Pos: t.pos + open + 1, Msg: "unexpected " + t.describe()}
	}
	out := Path{Attr: a, Filter: f}
	rest := s[end+1:]
	if rest != "" {
		sub, ok := strings.CutPrefix(rest, ".")
		if !ok || !validAttrName(sub) {
			return Path{}, &Error{Pos: end + 1, Msg: fmt.Sprintf("unexpected %q after value filter", rest)}
		}
		out.Sub = sub
	}
	return out, nil
}

// closingBracket returns the index of the "]" closing the "[" at s[open],
// skipping string literals, or -1.
func closingBracket(s string, open int) int {
	for i := open + 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			j, err := scanString(s, i)
			if err != nil {
				return -1
			}
			i = j - 1
		case ']':
			return i
		}
	}
	return -1
}

// shift moves an *Error's position by off, for errors in a sub-string.
func shift(err error, off int) error {
	if e, ok := err.(*Error); ok && e.Pos >= 0 {
		return &Error{Pos: e.Pos + off, Msg: e.Msg}
	}
	return err
}
