package ords

import "strings"

// scriptStatement is one statement of a script with its lines in the script.
type scriptStatement struct {
	text               string
	startLine, endLine int
}

// splitScript splits a script into statements the way SQLcl does for the
// REST-enabled SQL service: a ';' outside quotes and comments ends a
// statement, and so does a line holding only '/'. A PL/SQL block (BEGIN or
// DECLARE) ends only at a '/' line. Blank statements are dropped; text is
// trimmed and has no terminator.
func splitScript(script string) []scriptStatement {
	var out []scriptStatement
	line := 1
	start, startLine := 0, 1
	emit := func(end, endLine int) {
		// leading blanks and comments are not part of the statement; its
		// startLine is where its first word is
		raw := script[start:end]
		body := skipLeading(raw)
		text := strings.TrimSpace(body)
		if text != "" {
			sl := startLine + strings.Count(raw[:len(raw)-len(body)], "\n")
			out = append(out, scriptStatement{text: text, startLine: sl, endLine: endLine})
		}
	}
	atLineStart := true
	i := 0
	// skip moves i past the first delim at or after i+from (a closing
	// quote, the end of a comment), counting the lines it passes; without
	// one, to the end of the script.
	skip := func(from int, delim string) {
		j := strings.Index(script[i+from:], delim)
		if j < 0 {
			i = len(script)
			return
		}
		end := i + from + j + len(delim)
		line += strings.Count(script[i:end], "\n")
		i = end
	}
	for i < len(script) {
		c := script[i]
		if atLineStart {
			// a line of only '/' (and blanks) ends the statement
			j := strings.IndexByte(script[i:], '\n')
			lineText := script[i:]
			if j >= 0 {
				lineText = script[i : i+j]
			}
			if strings.TrimSpace(lineText) == "/" {
				emit(i, line-1)
				if j < 0 {
					return out
				}
				i += j + 1
				line++
				start, startLine = i, line
				continue
			}
			atLineStart = false
		}
		switch {
		case c == '\n':
			line++
			atLineStart = true
			i++
		case c == '\'' || c == '"':
			skip(1, script[i:i+1])
		case c == '-' && strings.HasPrefix(script[i:], "--"):
			skip(2, "\n") // the comment's line ends with it
			atLineStart = true
		case c == '/' && strings.HasPrefix(script[i:], "/*"):
			skip(2, "*/")
		case c == ';' && !isPLSQL(script[start:i]):
			emit(i, line)
			i++
			start, startLine = i, line
		default:
			i++
		}
	}
	emit(len(script), line)
	return out
}

func isPLSQL(text string) bool {
	w := firstWord(text)
	return w == "BEGIN" || w == "DECLARE"
}

// skipLeading drops leading whitespace and comments.
func skipLeading(text string) string {
	for {
		text = strings.TrimLeft(text, " \t\r\n\f\v")
		switch {
		case strings.HasPrefix(text, "--"):
			j := strings.IndexByte(text, '\n')
			if j < 0 {
				return ""
			}
			text = text[j+1:]
		case strings.HasPrefix(text, "/*"):
			j := strings.Index(text[2:], "*/")
			if j < 0 {
				return ""
			}
			text = text[j+4:]
		default:
			return text
		}
	}
}
