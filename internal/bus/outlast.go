package bus

import (
	"context"
	"time"
)

// Outlast calls write until it succeeds, until a repeat cannot help
// ([IsPermanent]), or until within has passed, even when ctx has ended: it
// is for what records work already done (an id mapping, an audit record, a
// grant's state, a deadline timer), which must outlast a JetStream leader
// election (seconds) and a caller that has gone. Each attempt gets at most
// attempt (0: no bound of its own; an acknowledgement asked for while the
// connection was down may never come); the waits between attempts grow
// from 100 ms to 1 s. A write repeated after a lost answer must be
// idempotent or de-duplicated (a message id, a compare-and-set). It returns
// the last error.
func Outlast(ctx context.Context, within, attempt time.Duration, write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), within)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		actx, acancel := ctx, context.CancelFunc(func() {})
		if attempt > 0 {
			actx, acancel = context.WithTimeout(ctx, attempt)
		}
		err := write(actx)
		acancel()
		if err == nil || IsPermanent(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
