package identitydomain

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/apiclient"
)

// Retries (the SDK's retry policy is not used: it does not recognise SCIM
// 429s, whose body has no OCI error code):
//
//   - retried: 429, 5xx except 501, timeouts and network errors, up to
//     retry.max_attempts requests per call;
//   - a POST that creates something is retried only on 429, 503 and
//     connection errors that happened before the request was written, since
//     any other failure may hide a create that took effect (CreateUser and
//     CreateGroup then recover from the 409 the retry meets);
//   - the wait is drawn uniformly in [0, min(max_delay, base_delay·2^(n-1)))
//     before the n-th retry (full jitter), or is the response's Retry-After
//     (seconds or an HTTP date) when it has one; a Retry-After beyond
//     max_delay ends the retries and is passed on in the error;
//   - a 401 is not counted: the token is dropped, a new one fetched (once per
//     call) and the request sent again.

// Retry reasons, the reason label of iamflow_identitydomain_retries_total.
const (
	reason429          = "429"
	reason5xx          = "5xx"
	reasonTimeout      = "timeout"
	reasonNetwork      = "network"
	reasonUnauthorized = "unauthorized"
)

// SleepFunc waits d or until ctx ends, returning ctx's error in that case.
// Tests inject one that does not wait.
type SleepFunc = apiclient.SleepFunc

// maxRetryAfter bounds what a Retry-After header can ask for. A larger value
// (or one that would overflow a Duration) is read as this bound.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3), between 0 and maxRetryAfter. It returns false when the
// header is absent or invalid.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(v, "-") {
		if secs < 0 {
			return 0, false
		}
		if err != nil || secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(0, t.Sub(now)), maxRetryAfter), true
}

// retryDecision says whether an attempt's failure is retried, why, and
// whether it counts against the breaker.
type retryDecision struct {
	retry   bool
	reason  string
	outcome outcome
}

// decideStatus classifies an HTTP answer. safe tells whether the request may
// be repeated whatever happened (everything but a creating POST).
func decideStatus(status int, safe bool) retryDecision {
	switch {
	case status == http.StatusTooManyRequests:
		return retryDecision{retry: true, reason: reason429, outcome: outcomeSuccess}
	case status == http.StatusNotImplemented:
		return retryDecision{outcome: outcomeSuccess}
	case status == http.StatusServiceUnavailable:
		return retryDecision{retry: true, reason: reason5xx, outcome: outcomeFailure}
	case status >= 500:
		return retryDecision{retry: safe, reason: reason5xx, outcome: outcomeFailure}
	}
	return retryDecision{outcome: outcomeSuccess}
}

// decideError classifies a transport error: wrote tells whether any of the
// request was written to the connection.
func decideError(err error, safe, wrote bool) retryDecision {
	reason := reasonNetwork
	if isTimeout(err) {
		reason = reasonTimeout
	}
	return retryDecision{retry: safe || !wrote, reason: reason, outcome: outcomeFailure}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
