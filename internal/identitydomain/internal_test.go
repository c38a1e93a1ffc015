package identitydomain

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDecideStatus(t *testing.T) {
	for _, tc := range []struct {
		status  int
		safe    bool
		retry   bool
		outcome outcome
	}{
		{429, false, true, outcomeSuccess},
		{503, false, true, outcomeFailure},
		{500, false, false, outcomeFailure},
		{502, false, false, outcomeFailure},
		{500, true, true, outcomeFailure},
		{504, true, true, outcomeFailure},
		{501, true, false, outcomeSuccess},
		{400, true, false, outcomeSuccess},
		{404, true, false, outcomeSuccess},
		{409, true, false, outcomeSuccess},
	} {
		d := decideStatus(tc.status, tc.safe)
		if d.retry != tc.retry || d.outcome != tc.outcome {
			t.Errorf("decideStatus(%d, safe %v) = %+v", tc.status, tc.safe, d)
		}
	}
	if d := decideError(http.ErrHandlerTimeout, false, false); !d.retry {
		t.Error("an error before writing is not retried for a create")
	}
	if d := decideError(http.ErrHandlerTimeout, false, true); d.retry {
		t.Error("an error after writing is retried for a create")
	}
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestBreakerStates(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	var changes []BreakerState
	b := newBreaker(BreakerConfig{Failures: 2, Cooldown: 10 * time.Second}, clock, func(s BreakerState) { changes = append(changes, s) })
	fail := func() {
		tk, _, ok := b.acquire()
		if !ok {
			t.Fatal("refused while closed")
		}
		b.record(tk, outcomeFailure)
	}
	fail()
	if b.State() != BreakerClosed {
		t.Fatal("opened after one failure")
	}
	// A success resets the count.
	tk, _, _ := b.acquire()
	b.record(tk, outcomeSuccess)
	fail()
	fail()
	if b.State() != BreakerOpen {
		t.Fatal("not open after two consecutive failures")
	}
	if _, rem, ok := b.acquire(); ok || rem != 10*time.Second {
		t.Fatalf("open: ok %v remaining %v", ok, rem)
	}
	clock.now = clock.now.Add(10 * time.Second)
	probe, _, ok := b.acquire()
	if !ok || !probe.probe {
		t.Fatal("no probe after the cooldown")
	}
	if _, _, ok := b.acquire(); ok {
		t.Fatal("a second request got through while the probe is out")
	}
	// An abandoned probe frees the slot.
	b.record(probe, outcomeNeutral)
	probe, _, ok = b.acquire()
	if !ok || !probe.probe {
		t.Fatal("no new probe after an abandoned one")
	}
	b.record(probe, outcomeSuccess)
	if b.State() != BreakerClosed {
		t.Fatal("not closed after a good probe")
	}
	want := []BreakerState{BreakerOpen, BreakerHalfOpen, BreakerClosed}
	if len(changes) != len(want) {
		t.Fatalf("changes = %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes = %v, want %v", changes, want)
		}
	}
}

func TestLimiterSpacing(t *testing.T) {
	l := newLimiter(Limits{PerSecond: 20, PerMinute: 150})
	p := l.groups[groupOthers]
	if p.perSecond.Burst() != 1 || float64(p.perSecond.Limit()) != 18 {
		t.Errorf("per-second bucket: rate %v burst %d", p.perSecond.Limit(), p.perSecond.Burst())
	}
	// Burst plus a minute's refill never exceeds the limit.
	if got := float64(p.perMinute.Burst()) + float64(p.perMinute.Limit())*60; got > 150 {
		t.Errorf("per-minute bucket allows %v in a minute", got)
	}
	if l.groups[groupToken].perSecond != nil {
		t.Error("token limits absent but limited")
	}
}

// PacedDuration is what the buckets allow: at the Free tier (20/s, 150/min;
// per second paced at 90%, per minute a burst of 4% and a refill of 96%)
// the first 6 calls go at 18/s, every later one waits for the minute
// bucket's refill of 2.4/s.
func TestPacedDuration(t *testing.T) {
	free := Limits{PerSecond: 20, PerMinute: 150}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{0, 0},
		{1, 0},
		{6, 5 * time.Second / 18},
		{15, 9 * time.Second * 10 / 24},
		{6 + 144, 60 * time.Second},
		{6 + 288, 120 * time.Second},
	} {
		got := free.PacedDuration(tc.n)
		if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("PacedDuration(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if got := (Limits{PerSecond: -1, PerMinute: -1}).PacedDuration(1000); got != 0 {
		t.Errorf("unlimited: PacedDuration(1000) = %v, want 0", got)
	}
	if got, want := (Limits{PerSecond: 10}).PacedDuration(11), time.Second/9*10; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("per second only: PacedDuration(11) = %v, want %v", got, want)
	}
}
