// Package apiclient holds what iamflow's HTTP API clients share: the retry
// settings and their full-jitter backoff, the wait between attempts, the
// checks of their configured base URL (http(s), no credentials, plain HTTP
// to loopback only) and the registration of their Prometheus collectors. internal/identitydomain (Identity Domains SCIM)
// and internal/ords (ORDS REST-enabled SQL) build on it; what differs
// between them (which answers are retried, how Retry-After is read) stays
// in each.
package apiclient

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/telemetry"
)

// RetryConfig bounds the retries of one call.
type RetryConfig struct {
	// MaxAttempts is the most requests one call makes, the first included
	// (the one extra request after a token refresh on 401 is not counted).
	MaxAttempts int `yaml:"max_attempts"`
	// BaseDelay is the backoff cap of the first retry; it doubles with each
	// retry up to MaxDelay, and the wait is drawn uniformly below the cap
	// (full jitter).
	BaseDelay time.Duration `yaml:"base_delay"`
	// MaxDelay caps one wait. What a client does with a Retry-After beyond
	// it is the client's (see its package documentation).
	MaxDelay time.Duration `yaml:"max_delay"`
}

// Validate reports each problem of r as "retry.<key>: ..."; defaults are
// the client's defaults, quoted in the fixes.
func (r RetryConfig) Validate(defaults RetryConfig) []error {
	var errs []error
	if r.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("retry.max_attempts: %d; set at least 1 (1 means no retries; default %d)", r.MaxAttempts, defaults.MaxAttempts))
	}
	if r.BaseDelay <= 0 {
		errs = append(errs, fmt.Errorf("retry.base_delay: %v; set a positive duration (default %v)", r.BaseDelay, defaults.BaseDelay))
	}
	if r.MaxDelay < r.BaseDelay {
		errs = append(errs, fmt.Errorf("retry.max_delay: %v is below retry.base_delay %v; raise it (default %v)", r.MaxDelay, r.BaseDelay, defaults.MaxDelay))
	}
	return errs
}

// Backoff returns the wait before retry number n (1 for the first retry):
// full jitter under min(MaxDelay, BaseDelay·2^(n-1)); rnd returns a float in
// [0, 1).
func (r RetryConfig) Backoff(n int, rnd func() float64) time.Duration {
	limit := r.BaseDelay
	for i := 1; i < n && limit < r.MaxDelay; i++ {
		limit *= 2
	}
	limit = min(limit, r.MaxDelay)
	return time.Duration(rnd() * float64(limit))
}

// SleepFunc waits d or until ctx ends, returning ctx's error in that case.
// Tests inject one that does not wait.
type SleepFunc func(ctx context.Context, d time.Duration) error

// Sleep is the SleepFunc that waits.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// IsLoopback reports whether host is localhost or a loopback address: the
// only hosts a client reaches over plain http (local emulators).
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Register registers c on reg and returns it, or the collector already
// registered under its name (clients of several domains or databases share
// one set, told apart by a label). The first error is kept in *err and
// later calls do nothing, so a client registers its collectors in a row and
// checks once.
func Register[C prometheus.Collector](reg prometheus.Registerer, err *error, c C) C {
	if *err != nil {
		return c
	}
	out, rerr := telemetry.Register(reg, c)
	if rerr != nil {
		*err = rerr
	}
	return out
}
