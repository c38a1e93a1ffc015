package scimfilter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Error is a filter that does not parse, or cannot be evaluated (for example
// gt on a boolean attribute). Both map to SCIM's 400 invalidFilter.
type Error struct {
	Pos int // byte offset in the filter text, or -1 when not tied to a position
	Msg string
}

// Error describes the problem and where it is.
func (e *Error) Error() string {
	if e.Pos < 0 {
		return "invalid filter: " + e.Msg
	}
	return fmt.Sprintf("invalid filter: %s at position %d", e.Msg, e.Pos+1)
}

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tLBrack
	tRBrack
	tWord
	tString
	tNumber
)

type token struct {
	kind tokKind
	text string // as written
	pos  int
	str  string  // decoded value of a string literal
	num  float64 // value of a number literal
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of filter"
	case tString:
		return "string " + t.text
	default:
		return strconv.Quote(t.text)
	}
}

// punct is the token kind of each one-character token (tEOF: not one).
var punct = [256]tokKind{'(': tLParen, ')': tRParen, '[': tLBrack, ']': tRBrack}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isWordStart(c byte) bool {
	return c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isWordChar(c byte) bool {
	return isWordStart(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == ':'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lex splits s into tokens.
func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isSpace(c):
			i++
		case punct[c] != tEOF:
			toks = append(toks, token{kind: punct[c], text: s[i : i+1], pos: i})
			i++
		case c == '"':
			j, err := scanString(s, i)
			if err != nil {
				return nil, err
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j]), &v); err != nil {
				return nil, &Error{Pos: i, Msg: "malformed string literal"}
			}
			toks = append(toks, token{kind: tString, text: s[i:j], pos: i, str: v})
			i = j
		case c == '-' || isDigit(c):
			j := scanNumber(s, i)
			if j == i {
				return nil, &Error{Pos: i, Msg: "malformed number"}
			}
			f, err := strconv.ParseFloat(s[i:j], 64)
			if err != nil {
				return nil, &Error{Pos: i, Msg: "malformed number " + strconv.Quote(s[i:j])}
			}
			toks = append(toks, token{kind: tNumber, text: s[i:j], pos: i, num: f})
			i = j
		case isWordStart(c):
			j := i + 1
			for j < len(s) && isWordChar(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tWord, text: s[i:j], pos: i})
			i = j
		default:
			return nil, &Error{Pos: i, Msg: fmt.Sprintf("unexpected character %q", rune(c))}
		}
	}
	return append(toks, token{kind: tEOF, pos: len(s)}), nil
}

// scanString returns the offset just past the string literal starting at s[i] == '"'.
func scanString(s string, i int) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, &Error{Pos: i, Msg: "unterminated string literal"}
}

// scanNumber returns the offset just past a JSON number starting at s[i], or i.
func scanNumber(s string, i int) int {
	j := i
	if j < len(s) && s[j] == '-' {
		j++
	}
	start := j
	j = scanDigits(s, j)
	if j == start || (s[start] == '0' && j-start > 1) {
		return i
	}
	j, ok := scanFraction(s, j)
	if !ok {
		return i
	}
	j, ok = scanExponent(s, j)
	if !ok || (j < len(s) && isWordChar(s[j])) {
		return i
	}
	return j
}

// scanDigits returns the offset just past the decimal digits from s[j] on
// (j itself when there are none).
func scanDigits(s string, j int) int {
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	return j
}

// scanFraction returns the offset just past a JSON fraction ("." and at
// least one digit) at s[j], or j when there is none; ok is false for a "."
// not followed by a digit.
func scanFraction(s string, j int) (end int, ok bool) {
	if j >= len(s) || s[j] != '.' {
		return j, true
	}
	k := scanDigits(s, j+1)
	return k, k > j+1
}

// scanExponent returns the offset just past a JSON exponent ("e" or "E", an
// optional sign and at least one digit) at s[j], or j when there is none;
// ok is false for an exponent without digits.
func scanExponent(s string, j int) (end int, ok bool) {
	if j >= len(s) || (s[j] != 'e' && s[j] != 'E') {
		return j, true
	}
	k := j + 1
	if k < len(s) && (s[k] == '+' || s[k] == '-') {
		k++
	}
	d := k
	k = scanDigits(s, k)
	return k, k > d
}

// ParseAttrPath parses attribute notation: [URN ":"] name ["." sub].
func ParseAttrPath(s string) (AttrPath, error) { return splitAttrPath(s, 0) }

func splitAttrPath(w string, pos int) (AttrPath, error) {
	urn, rest := "", w
	if len(w) >= 4 && strings.EqualFold(w[:4], "urn:") {
		i := strings.LastIndexByte(w, ':')
		urn, rest = w[:i], w[i+1:]
		if !validURN(urn) {
			return AttrPath{}, &Error{Pos: pos, Msg: fmt.Sprintf("invalid schema URN %q", urn)}
		}
	}
	name, sub, hasSub := strings.Cut(rest, ".")
	if !validAttrName(name) {
		return AttrPath{}, &Error{Pos: pos, Msg: fmt.Sprintf("invalid attribute name %q", w)}
	}
	if hasSub && !validAttrName(sub) {
		return AttrPath{}, &Error{Pos: pos, Msg: fmt.Sprintf("invalid sub-attribute in %q", w)}
	}
	return NewAttrPath(urn, name, sub), nil
}

// validAttrName checks RFC 7643 ATTRNAME (ALPHA *(nameChar)), also allowing "$ref".
func validAttrName(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '$' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	c := s[0]
	if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validURN(s string) bool {
	if len(s) <= 4 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == ':' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return !strings.Contains(s, "::") && !strings.HasSuffix(s, ":")
}
