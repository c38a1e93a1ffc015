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
	if err := Poll(total, sleep, fn); err != nil {
		t.Fatalf("condition not met after %v: %v", total, err)
	}
}

// Poll calls fn every sleep until it returns nil or total has passed, and
// returns fn's last error (nil once it succeeded). It is CheckFor for tests
// that report the failure themselves, or go on after it.
func Poll(total, sleep time.Duration, fn func() error) error {
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(sleep)
	}
}
