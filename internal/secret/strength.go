package secret

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// What CheckStrength requires of a password or token that guards an
// endpoint: at least MinLength characters, of which at least MinDistinct
// are different.
const (
	MinLength   = 16
	MinDistinct = 8
)

// GenerateHint says how to make a secret CheckStrength accepts.
const GenerateHint = "generate one with: openssl rand -base64 32"

// ErrWeak marks a password or token too short or too repetitive to guard an
// endpoint.
var ErrWeak = errors.New("too weak")

// CheckStrength returns an error wrapping ErrWeak for the first of values
// that is too short or too repetitive to guard a network endpoint. values
// are the secrets one setting accepts (a password and the one it replaces,
// during a rotation); key names the setting in the error, with the index
// when there are several. The error never contains a secret, only its
// length.
func CheckStrength(key string, values ...Value) error {
	for i, v := range values {
		name := key
		if len(values) > 1 {
			name = fmt.Sprintf("%s[%d]", key, i)
		}
		s := v.Reveal()
		n := utf8.RuneCountInString(s)
		distinct := map[rune]bool{}
		for _, r := range s {
			distinct[r] = true
		}
		switch {
		case n < MinLength:
			return fmt.Errorf("%s: %w: %s; use at least %d random ones (%s)", name, ErrWeak, characters(n), MinLength, GenerateHint)
		case len(distinct) < MinDistinct:
			return fmt.Errorf("%s: %w: only %s different; use at least %d random ones (%s)", name, ErrWeak, characters(len(distinct)), MinLength, GenerateHint)
		}
	}
	return nil
}

func characters(n int) string {
	if n == 1 {
		return "1 character"
	}
	return fmt.Sprintf("%d characters", n)
}
