package dbprovisioner

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/ords"
)

// What becomes of an event whose statement met each kind of ORDS error.
func TestDBErrResults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		terminal bool
		delay    time.Duration
	}{
		{"pool exhausted, with Retry-After", &ords.Error{Status: 503, Retryable: true, RetryAfter: 4 * time.Second}, false, 4 * time.Second},
		{"user dropped since the read", &ords.Error{Status: 200, Code: ords.ORAUserNotFound}, false, 0},
		{"role revoked since the read", &ords.Error{Status: 200, Code: ords.ORARoleNotGranted}, false, 0},
		{"account created since the read", &ords.Error{Status: 200, Code: ords.ORAUserConflict}, false, 0},
		{"role missing", &ords.Error{Status: 200, Code: ords.ORARoleNotFound}, true, 0},
		{"insufficient privileges", &ords.Error{Status: 200, Code: ords.ORAInsufficientPrivs}, true, 0},
		{"a credential that cannot be read", fmt.Errorf("resolve password: no such file"), true, 0},
		{"cancelled", context.Canceled, false, 0},
	} {
		r := bus.ResultOf(dbErr(tc.err))
		if r.IsDone() || r.IsTerminal() != tc.terminal || r.Delay() != tc.delay {
			t.Errorf("%s: %v, want terminal=%v delay=%v", tc.name, r, tc.terminal, tc.delay)
		}
	}
}
