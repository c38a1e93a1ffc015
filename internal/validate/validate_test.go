package validate

import (
	"errors"
	"testing"
)

func TestPrefix(t *testing.T) {
	if Prefix("x.", nil) != nil {
		t.Fatal("nil error prefixed into non-nil")
	}
	err := Prefix("nats.", errors.Join(errors.New("urls[0]: empty"), errors.New("streams.replicas: 0")))
	if got, want := err.Error(), "nats.urls[0]: empty\nnats.streams.replicas: 0"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 2 {
		t.Fatalf("%d errors, want one per line", n)
	}
}
