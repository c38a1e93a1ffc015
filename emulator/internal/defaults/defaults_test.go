package defaults

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	ttl := time.Duration(0)
	if err := Positive("tokenTTL", &ttl, time.Hour); err != nil || ttl != time.Hour {
		t.Errorf("zero: %v %v, want the default", ttl, err)
	}
	ttl = 5 * time.Second
	if err := Positive("tokenTTL", &ttl, time.Hour); err != nil || ttl != 5*time.Second {
		t.Errorf("set: %v %v, want it kept", ttl, err)
	}
	ttl = -time.Second
	if err := Positive("tokenTTL", &ttl, time.Hour); err == nil || err.Error() != "tokenTTL -1s: must be positive" || ttl != -time.Second {
		t.Errorf("negative duration: %v %v", ttl, err)
	}
	n := -3
	if err := Positive("maxRows", &n, 10000); err == nil || err.Error() != "maxRows -3: must be positive" {
		t.Errorf("negative int: %v", err)
	}
}
