package expiry

import (
	"context"
	"sync"
	"time"
)

// deadlineClock is the time the service decides deadlines on. A wall clock
// may step (an NTP correction, a resumed VM, an operator's date): a step
// forward would end open grants early, a step back would keep them for
// hours. So the wall clock is read once, at the first use, and from then on
// advanced by the monotonic clock, which does not step; each scan sets it
// to the NATS server's time (the clock the deadline timers fire on), also
// advanced by the monotonic clock from when it was read.
type deadlineClock struct {
	wall func() time.Time // the service's clock (servicekit.WithClock)

	mu   sync.Mutex
	base time.Time // a wall or server time ...
	at   time.Time // ... and time.Now() when it was read (its monotonic reading counts)
}

// now returns the current time on the clock.
func (c *deadlineClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		c.base, c.at = c.wall(), time.Now()
	}
	return c.base.Add(time.Since(c.at))
}

// set sets the clock to t, read (from the NATS server) at or just before
// read; the zero t is ignored.
func (c *deadlineClock) set(t, read time.Time) {
	if t.IsZero() {
		return
	}
	c.mu.Lock()
	c.base, c.at = t, read
	c.mu.Unlock()
}

// now is the service's time for deadlines (see deadlineClock).
func (s *Service) now() time.Time { return s.clock.now() }

// syncClock sets the deadline clock to the NATS server's time, read from
// the stream of the deadline timers.
func (s *Service) syncClock(ctx context.Context) {
	sent := time.Now()
	st, err := s.bus.JetStream().Stream(ctx, Stream)
	if err != nil {
		return // the scan reports JetStream's trouble
	}
	if at, ok := serverTimeAt(sent, time.Now()); ok {
		s.clock.set(st.CachedInfo().TimeStamp, at)
	}
}

// maxClockRTT is the slowest answer the deadline clock is set from: the
// server stamps its time somewhere between the request and the answer, so
// an answer held up (a JetStream leader being elected, a server cut off)
// could set the clock behind by the delay, and then grants would end late
// by as much.
const maxClockRTT = 250 * time.Millisecond

// serverTimeAt is when a server time read between sent and received is
// taken to have been stamped, and whether the answer came soon enough to be
// used. It is the latest instant the stamp can have been taken (received),
// so the clock may run behind the server by up to the round trip but never
// ahead of it: a clock ahead would end grants before their deadline (seen
// with the halfway point under load: a membership removed 18 ms early).
func serverTimeAt(sent, received time.Time) (time.Time, bool) {
	rtt := received.Sub(sent)
	if rtt < 0 || rtt > maxClockRTT {
		return time.Time{}, false
	}
	return received, true
}
