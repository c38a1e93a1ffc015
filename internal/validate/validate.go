// Package validate holds what configuration sections share when they report
// problems: each section's Validate names keys relative to itself, and the
// caller that knows where the section sits puts the section's path in front.
package validate

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Prefix puts prefix before every line of err (a joined error gives one
// message per line), turning section-relative keys into full ones:
// Prefix("nats.", err) makes "streams.replicas: ..." "nats.streams.replicas: ...".
// The result is a joined error with one error per line, or nil for nil.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	lines := strings.Split(err.Error(), "\n")
	out := make([]error, 0, len(lines))
	for _, line := range lines {
		out = append(out, errors.New(prefix+line))
	}
	return errors.Join(out...)
}

// Pattern compiles p, a configured RE2 pattern, anchored so it must match a
// whole value. A bad pattern's error quotes it and names the problem as
// regexp/syntax does (`"(" is not a valid pattern: missing closing )`),
// without the package's prefix. p is compiled alone first: only a balanced
// expression may be wrapped in anchors, or "a)|(b" would turn them into
// alternatives. An empty p compiles to a pattern that matches only "";
// callers decide what an empty pattern means.
func Pattern(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		msg := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			msg = string(se.Code)
			if se.Expr != "" && se.Expr != p {
				msg += ": `" + se.Expr + "`"
			}
		}
		return nil, fmt.Errorf("%q is not a valid pattern: %s", p, msg)
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}
