// Package defaults fills in the emulators' configuration the way both
// document it: a zero field takes its default, a negative one is an error
// naming the field.
package defaults

import "fmt"

// Positive sets *v to def when it is zero and returns an error naming field
// when it is negative, e.g. `tokenTTL -1s: must be positive`.
func Positive[T ~int | ~int64](field string, v *T, def T) error {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		return fmt.Errorf("%s %v: must be positive", field, *v)
	}
	return nil
}
