package expiry

import (
	"testing"
	"time"
)

// The deadline clock is set from the NATS server's time only when the
// answer came at once (an answer held up by a leader election would set the
// clock behind by the delay; seen in the cluster proof: grants ended 1.5 s
// late), and as of the answer, so that it is never ahead of the server's
// clock (halfway, a slow answer put it ahead and a grant ended early).
func TestServerTimeAt(t *testing.T) {
	sent := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		rtt  time.Duration
		want time.Duration // offset from sent
		ok   bool
	}{
		{"instant", 0, 0, true},
		{"fast", 20 * time.Millisecond, 20 * time.Millisecond, true},
		{"at the limit", maxClockRTT, maxClockRTT, true},
		{"held up by an election", 2 * time.Second, 0, false},
		{"clock went backwards", -time.Millisecond, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, ok := serverTimeAt(sent, sent.Add(tc.rtt))
			if ok != tc.ok || (ok && !at.Equal(sent.Add(tc.want))) {
				t.Fatalf("serverTimeAt = %v, %v; want %v, %v", at, ok, sent.Add(tc.want), tc.ok)
			}
		})
	}
}
