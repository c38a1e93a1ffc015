package identitydomain

import (
	"sync"
	"time"
)

// Clock tells the time. The client reads it for token expiry and the circuit
// breaker's cooldown; tests inject a manual clock (the emulator's ManualClock
// fits).
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// BreakerState is the state of a domain's circuit breaker.
type BreakerState string

// The breaker states.
const (
	// BreakerClosed lets every request through.
	BreakerClosed BreakerState = "closed"
	// BreakerOpen fails every request fast until the cooldown has passed.
	BreakerOpen BreakerState = "open"
	// BreakerHalfOpen lets one probe request through; its outcome closes or
	// reopens the breaker.
	BreakerHalfOpen BreakerState = "half-open"
)

// breaker is the circuit breaker of one domain. Only failures that are the
// domain's fault count (5xx, timeouts, network errors); any other answer,
// 4xx and 429 included, shows the domain is up and resets the count.
type breaker struct {
	threshold int
	cooldown  time.Duration
	clock     Clock
	onChange  func(BreakerState)

	mu          sync.Mutex
	state       BreakerState
	consecutive int
	openedAt    time.Time
	probing     bool
}

// outcome is what a request told the breaker.
type outcome int

const (
	outcomeSuccess outcome = iota // the domain answered (2xx, 4xx, 429, 501)
	outcomeFailure                // 5xx, timeout, network error
	outcomeNeutral                // abandoned before an answer (caller cancelled)
)

// ticket is the permission to send one request.
type ticket struct{ probe bool }

func newBreaker(cfg BreakerConfig, clock Clock, onChange func(BreakerState)) *breaker {
	if onChange == nil {
		onChange = func(BreakerState) {}
	}
	return &breaker{threshold: cfg.Failures, cooldown: cfg.Cooldown, clock: clock, onChange: onChange, state: BreakerClosed}
}

// State returns the current state; an open breaker whose cooldown has passed
// reports half-open.
func (b *breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !b.clock.Now().Before(b.openedAt.Add(b.cooldown)) {
		return BreakerHalfOpen
	}
	return b.state
}

// check reports whether a request would be refused now, and for how long,
// without taking the probe. Used before work that should not start against
// an open breaker (fetching a token).
func (b *breaker) check() (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refusal()
}

func (b *breaker) refusal() (time.Duration, bool) {
	switch b.state {
	case BreakerOpen:
		if rem := b.openedAt.Add(b.cooldown).Sub(b.clock.Now()); rem > 0 {
			return rem, true
		}
	case BreakerHalfOpen:
		if b.probing {
			return min(time.Second, b.cooldown), true
		}
	}
	return 0, false
}

// acquire returns a ticket for one request, or the remaining cooldown and
// false when the breaker refuses it. After the cooldown the first caller
// gets the probe and the others are refused until it reports.
func (b *breaker) acquire() (ticket, time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rem, refused := b.refusal(); refused {
		return ticket{}, rem, false
	}
	if b.state == BreakerClosed {
		return ticket{}, 0, true
	}
	b.setState(BreakerHalfOpen)
	b.probing = true
	return ticket{probe: true}, 0, true
}

// record reports the outcome of a request made with t.
func (b *breaker) record(t ticket, o outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch o {
	case outcomeNeutral:
		if t.probe {
			b.probing = false
		}
	case outcomeSuccess:
		b.consecutive = 0
		b.probing = false
		b.setState(BreakerClosed)
	case outcomeFailure:
		b.consecutive++
		switch {
		case t.probe:
			b.open()
		case b.state == BreakerClosed && b.consecutive >= b.threshold:
			b.open()
		}
	}
}

func (b *breaker) open() {
	b.openedAt = b.clock.Now()
	b.probing = false
	b.setState(BreakerOpen)
}

func (b *breaker) setState(s BreakerState) {
	if b.state != s {
		b.state = s
		b.onChange(s)
	}
}
