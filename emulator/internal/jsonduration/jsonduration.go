// Package jsonduration writes the time.Duration fields of the emulators'
// JSON (their fault settings) as Go duration strings ("250ms") and reads
// either those or integer nanoseconds, the form encoding/json gives a
// Duration by default.
package jsonduration

import (
	"encoding/json"
	"fmt"
	"time"
)

// Format returns d as a Go duration string, or "" for zero so that an
// omitempty field stays out of the JSON.
func Format(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Parse reads raw, a JSON string such as "1.5s" or a JSON integer of
// nanoseconds, into *into. Empty raw (the field was absent) leaves *into as
// it is.
func Parse(raw json.RawMessage, into *time.Duration) error {
	if len(raw) == 0 {
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*into = d
		return nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return fmt.Errorf("want a duration string or nanoseconds, got %s", raw)
	}
	*into = time.Duration(n)
	return nil
}
