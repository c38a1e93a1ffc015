package identitydomain

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// Rate limits (docs/oci-sources.md §4) are per domain, per API group ("others" for
// /admin/v1/*, "token" for /oauth2/v1/token, "bulk" for /admin/v1/Bulk),
// per second and per minute. How
// IDCS counts is not documented (the emulator uses fixed windows aligned to
// the clock's seconds and minutes), so the client spaces its requests so that
// no window of either length can hold more than the limit whatever the
// alignment:
//
//   - per second: a token bucket refilled at 90% of the limit with a burst
//     of 1, so at most ceil(0.9·N)+1 <= N requests fall in any second (N >= 10);
//     the spare request absorbs network jitter (two requests sent 1/N s apart
//     can arrive closer together) and clock skew;
//   - per minute: refilled at 96% of the limit with a burst of 4%, so at
//     most N fall in any minute. A long run (an initial sync is minutes of
//     Bulk at 200/min) goes at 96% of the limit; a larger headroom would only
//     slow it, since burst and refill together are what bound a window.
//
// Every request waits on both
// buckets, minute first, so the per-second spacing holds right up to the
// send. A request waits for its turn, respecting its context; a burst of
// concurrent calls is queued, never sent above the rate.
//
// The limiter is per Client: make one Client per domain per process. Other
// processes using the same domain share its limit without coordination; the
// 429 retries cover that.

// secondHeadroom and minuteHeadroom are the shares of each limit the client
// leaves unused.
const (
	secondHeadroom = 0.10
	minuteHeadroom = 0.04
)

// apiGroup is one of the rate-limited API groups.
type apiGroup int

const (
	groupOthers apiGroup = iota
	groupToken
	groupBulk
)

func (g apiGroup) String() string {
	switch g {
	case groupToken:
		return "token"
	case groupBulk:
		return "bulk"
	}
	return "others"
}

// bucketPair limits one API group per second and per minute; a nil bucket
// means no limit.
type bucketPair struct {
	perSecond *rate.Limiter
	perMinute *rate.Limiter
}

type limiter struct {
	groups [3]bucketPair
}

func newLimiter(l Limits) *limiter {
	return &limiter{groups: [3]bucketPair{
		groupOthers: {perSecond: secondBucket(l.PerSecond), perMinute: minuteBucket(l.PerMinute)},
		groupToken:  {perSecond: secondBucket(l.TokenPerSecond), perMinute: minuteBucket(l.TokenPerMinute)},
		groupBulk:   {perSecond: secondBucket(l.BulkPerSecond), perMinute: minuteBucket(l.BulkPerMinute)},
	}}
}

func secondBucket(n int) *rate.Limiter {
	if n <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(float64(n)*(1-secondHeadroom)), 1)
}

func minuteBucket(n int) *rate.Limiter {
	if n <= 0 {
		return nil
	}
	burst := max(1, int(float64(n)*minuteHeadroom))
	return rate.NewLimiter(rate.Limit(float64(n)*(1-minuteHeadroom)/60), burst)
}

// wait blocks until a request of group g may be sent, and returns how long it
// waited. Its error wraps ctx's error when ctx ends first (or would end
// before the turn comes).
func (l *limiter) wait(ctx context.Context, g apiGroup) (time.Duration, error) {
	start := time.Now()
	p := l.groups[g]
	for _, b := range []*rate.Limiter{p.perMinute, p.perSecond} {
		if b == nil {
			continue
		}
		if err := b.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return time.Since(start), ctx.Err()
			}
			// rate reports a wait that would outlast the deadline before the
			// deadline passes; it is the deadline that ends the call.
			return time.Since(start), fmt.Errorf("waiting for the %s rate limit: %w (%v)", g, context.DeadlineExceeded, err)
		}
	}
	return time.Since(start), nil
}

// PacedDuration is the least time the client's limiter lets n requests of
// the "Others" group (every /admin/v1 call but Bulk) through at limits l
// (Limits.Effective's result): from rest, with both buckets full, and no
// time spent on the requests themselves. It is the bound a workload of n
// such calls can at best reach; benchmarks compare their wall time with it.
func (l Limits) PacedDuration(n int) time.Duration {
	p := newLimiter(l).groups[groupOthers]
	start := time.Unix(0, 0) // any fixed instant: the buckets start full
	at := start
	for range n {
		for _, b := range []*rate.Limiter{p.perMinute, p.perSecond} {
			if b != nil {
				at = at.Add(b.ReserveN(at, 1).DelayFrom(at))
			}
		}
	}
	return at.Sub(start)
}
