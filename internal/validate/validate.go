// Package validate holds what configuration sections share when they report
// problems: each section's Validate names keys relative to itself, and the
// caller that knows where the section sits puts the section's path in front.
package validate

import (
	"errors"
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
