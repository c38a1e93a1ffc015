// Package testutil holds helpers shared by tests. Nothing here is used by
// production code.
package testutil

import (
	"testing"
	"time"
)

// CheckFor calls fn every sleep until it returns nil or total has passed, then
// fails the test with fn's last error. It is how tests wait for something to
// happen; tests never sleep to synchronise.
func CheckFor(t testing.TB, total, sleep time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", total, err)
		}
		time.Sleep(sleep)
	}
}
