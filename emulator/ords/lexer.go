package ords

import (
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a SQL token.
type tokKind int

const (
	tokEOF    tokKind = iota
	tokIdent          // unquoted identifier or keyword; val is upper-cased
	tokQuoted         // "quoted identifier"; val is the name as written
	tokString         // 'string literal'; val has '' unescaped
	tokBind           // :1 or :name; val is what follows the colon
	tokNumber         // 123 or 1.5
	tokSymbol         // one of , ( ) = * . ; < > !
)

// token is one lexical token with its 1-based position in the statement.
type token struct {
	kind      tokKind
	val       string
	line, col int
}

// is reports whether t is the unquoted keyword kw (kw upper-case).
func (t token) is(kw string) bool { return t.kind == tokIdent && t.val == kw }

// sym reports whether t is the symbol s.
func (t token) sym(s string) bool { return t.kind == tokSymbol && t.val == s }

// maxIdentBytes is Oracle's identifier limit since 12.2 (128 bytes).
const maxIdentBytes = 128

// lex splits one statement into tokens the way Oracle's SQL scanner does for
// the subset the emulator understands: keywords and unquoted identifiers are
// case-insensitive (upper-cased), quoted identifiers keep their case, string
// literals double a quote to escape it, -- and /* */ are comments. Errors
// carry the Oracle code the database would give.
func lex(text string) ([]token, *oraError) {
	var toks []token
	line, col := 1, 1
	i := 0
	advance := func(n int) {
		for k := 0; k < n && i < len(text); k++ {
			if text[i] == '\n' {
				line, col = line+1, 1
			} else if text[i]&0xC0 != 0x80 { // count runes, not continuation bytes
				col++
			}
			i++
		}
	}
	for i < len(text) {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			advance(1)
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			for i < len(text) && text[i] != '\n' {
				advance(1)
			}
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				advance(len(text) - i) // Oracle treats an open comment as running to the end
				break
			}
			advance(end + 4)
		case isIdentStart(c):
			l, cl := line, col
			j := i
			for j < len(text) && isIdentPart(text[j]) {
				j++
			}
			word := text[i:j]
			if len(word) > maxIdentBytes {
				return nil, oraErr(972, l, cl, "identifier is too long")
			}
			toks = append(toks, token{tokIdent, strings.ToUpper(word), l, cl})
			advance(j - i)
		case c == '"':
			l, cl := line, col
			end := strings.IndexByte(text[i+1:], '"')
			if end < 0 {
				return nil, oraErr(1740, l, cl, "missing double quote in identifier")
			}
			name := text[i+1 : i+1+end]
			switch {
			case name == "":
				return nil, oraErr(1741, l, cl, "illegal zero-length identifier")
			case len(name) > maxIdentBytes:
				return nil, oraErr(972, l, cl, "identifier is too long")
			case !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\n\r"):
				return nil, oraErr(911, l, cl, "invalid character")
			}
			toks = append(toks, token{tokQuoted, name, l, cl})
			advance(end + 2)
		case c == '\'':
			l, cl := line, col
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(text) {
				if text[j] == '\'' {
					if j+1 < len(text) && text[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				b.WriteByte(text[j])
				j++
			}
			if !closed {
				return nil, oraErr(1756, l, cl, "quoted string not properly terminated")
			}
			toks = append(toks, token{tokString, b.String(), l, cl})
			advance(j - i)
		case c == ':':
			l, cl := line, col
			j := i + 1
			for j < len(text) && isIdentPart(text[j]) {
				j++
			}
			if j == i+1 {
				return nil, oraErr(911, l, cl, "invalid character")
			}
			toks = append(toks, token{tokBind, strings.ToUpper(text[i+1 : j]), l, cl})
			advance(j - i)
		case c >= '0' && c <= '9':
			l, cl := line, col
			j := i
			for j < len(text) && (text[j] >= '0' && text[j] <= '9' || text[j] == '.') {
				j++
			}
			toks = append(toks, token{tokNumber, text[i:j], l, cl})
			advance(j - i)
		case strings.IndexByte(",()=*.;<>!%", c) >= 0:
			toks = append(toks, token{tokSymbol, string(c), line, col})
			advance(1)
		default:
			return nil, oraErr(911, line, col, "invalid character")
		}
	}
	toks = append(toks, token{kind: tokEOF, line: line, col: col})
	return toks, nil
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isIdentPart(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '_' || c == '$' || c == '#'
}
