package identitydomain

import (
	"sync"
	"time"
)

// Rate limits (docs/oci-sources.md §4) are per domain, per API group, per second and per
// minute. How IDCS counts is not documented; the emulator uses fixed windows
// aligned to the clock's second and minute, counts only requests it lets
// through, and checks the limit before authentication (so 401s count too).
// A request over either limit gets 429 with the SCIM error body and, unless
// Faults.RetryAfter is set, no Retry-After header (none is documented).

type bucket int

const (
	bucketOthers bucket = iota
	bucketToken
	bucketBulk
)

type window struct {
	perSec, perMin int
	sec, min       int64
	secN, minN     int
}

func (w *window) allow(now time.Time) bool {
	s := now.Unix()
	m := s / 60
	if s < 0 && s%60 != 0 {
		m--
	}
	if s != w.sec {
		w.sec, w.secN = s, 0
	}
	if m != w.min {
		w.min, w.minN = m, 0
	}
	if (w.perSec > 0 && w.secN >= w.perSec) || (w.perMin > 0 && w.minN >= w.perMin) {
		return false
	}
	w.secN++
	w.minN++
	return true
}

type rateLimiter struct {
	mu      sync.Mutex
	windows [3]window
}

func newRateLimiter(l Limits) *rateLimiter {
	rl := &rateLimiter{}
	rl.set(l)
	return rl
}

func (rl *rateLimiter) set(l Limits) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.windows[bucketOthers] = window{perSec: l.PerSecond, perMin: l.PerMinute}
	rl.windows[bucketToken] = window{perSec: l.TokenPerSecond, perMin: l.TokenPerMinute}
	rl.windows[bucketBulk] = window{perSec: l.BulkPerSecond, perMin: l.BulkPerMinute}
}

func (rl *rateLimiter) allow(b bucket, now time.Time) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.windows[b].allow(now)
}
