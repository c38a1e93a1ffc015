package identitydomain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
)

// The transport is where every request to the domain goes, the SDK's and the
// token requests alike: breaker, token, rate limit, timeout, retries,
// metrics. The SDK client is given a dispatcher (sdkDispatcher) that runs each
// request it builds through exchange; the SDK's own retry policy and circuit
// breaker are off.

const (
	headerECID = "X-ORACLE-DMS-ECID"
	// maxResponseBody bounds one response body (a page of 10,000 members is
	// a few MB).
	maxResponseBody = 64 << 20
	opToken         = "Token"
)

// callKey is the context key of the *callInfo of the call in progress.
type callKey struct{}

// callInfo is one call of the client's API: what it is, and what its
// requests did. The transport writes it while the call's goroutine waits for
// the SDK, which hands its result back over a channel, so no lock is needed.
type callInfo struct {
	// ctx is the caller's context, with the call's span: requests use it
	// (the SDK is given a context without cancellation, see Client.call).
	ctx context.Context
	op  string
	// safe: the request may be repeated whatever happened to an earlier
	// attempt (everything but a POST that creates).
	safe bool

	attempts   int
	retries    int
	status     int
	requestID  string
	requestIDs []string // of every answer, in order
	// ambiguous: an attempt of a write failed in a way that may hide a
	// change that took effect (5xx, or a network error after sending).
	ambiguous bool
	// prepaid: the call already waited for its first request's rate-limit
	// turn (see Client.call).
	prepaid bool
}

func callFrom(ctx context.Context) *callInfo {
	ci, _ := ctx.Value(callKey{}).(*callInfo)
	return ci
}

// exchangeSpec is one logical request, sent up to retry.max_attempts times.
type exchangeSpec struct {
	group apiGroup
	// authorize: set the bearer token on each attempt, renewing it once on 401.
	authorize bool
	// build makes the request for one attempt, body included, bound to ctx.
	build func(ctx context.Context) (*http.Request, error)
}

// response is a successful answer with its body read.
type response struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
}

// exchange sends the request described by spec for the call ci, retrying
// as retry.go says, and returns the first 2xx answer or the error.
func (c *Client) exchange(ci *callInfo, spec exchangeSpec) (*response, error) {
	ctx := ci.ctx
	renewed := false
	var lastErr *Error
	for attempt := 1; ; attempt++ {
		if rem, refused := c.breaker.check(); refused {
			return nil, c.breakerError(ci, rem, lastErr)
		}
		var tok secret.Value
		if spec.authorize {
			t, err := c.tokens.Token(ctx)
			if err != nil {
				return nil, err
			}
			tok = t
		}
		if ci.prepaid {
			ci.prepaid = false // Client.call waited for this request's turn
		} else if err := c.waitTurn(ctx, spec.group); err != nil {
			return nil, err
		}
		tk, rem, ok := c.breaker.acquire()
		if !ok {
			return nil, c.breakerError(ci, rem, lastErr)
		}

		ci.attempts++
		res := c.attempt(ci, spec, tok)
		c.breaker.record(tk, res.outcome)
		if res.canceled {
			return nil, ctx.Err()
		}
		if res.err == nil {
			return res.resp, nil
		}
		lastErr = res.err
		lastErr.Attempts = ci.attempts

		if res.status == http.StatusUnauthorized && spec.authorize && !renewed && c.tokens.Renewable() {
			// Not counted as an attempt: the token was stale, not the domain.
			renewed = true
			attempt--
			c.tokens.Invalidate(tok)
			c.countRetry(ci, reasonUnauthorized)
			continue
		}
		if !res.retry || attempt >= c.cfg.Retry.MaxAttempts {
			return nil, lastErr
		}
		delay := c.cfg.Retry.Backoff(attempt, c.rnd)
		if res.hasRetryAfter {
			if res.retryAfter > c.cfg.Retry.MaxDelay {
				return nil, lastErr // the caller decides whether to wait that long
			}
			delay = res.retryAfter
		}
		c.countRetry(ci, res.reason)
		c.log.DebugContext(ctx, "identity domain request retried", "domain", c.domain, "op", ci.op,
			"attempt", attempt, "reason", res.reason, "delay", delay, "ecid", lastErr.RequestID)
		if err := c.sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

// waitTurn waits for a rate-limit turn of group g and records the wait.
func (c *Client) waitTurn(ctx context.Context, g apiGroup) error {
	waited, err := c.limiter.wait(ctx, g)
	c.metrics.rateWait.WithLabelValues(c.domain).Observe(waited.Seconds())
	return err
}

func (c *Client) countRetry(ci *callInfo, reason string) {
	ci.retries++
	c.metrics.Retries.WithLabelValues(c.domain, ci.op, reason).Inc()
}

// attemptResult is what one request did.
type attemptResult struct {
	resp          *response
	err           *Error
	status        int
	canceled      bool // the caller's context ended
	retry         bool
	reason        string
	outcome       outcome
	retryAfter    time.Duration
	hasRetryAfter bool
}

// attempt sends one request and reads its answer.
func (c *Client) attempt(ci *callInfo, spec exchangeSpec, tok secret.Value) attemptResult {
	actx, cancel := context.WithTimeout(ci.ctx, c.cfg.Timeout)
	defer cancel()
	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteHeaderField: func(string, []string) { wrote.Store(true) },
		WroteRequest:     func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	req, err := spec.build(actx)
	if err != nil {
		return attemptResult{outcome: outcomeNeutral, err: &Error{Kind: KindInvalidRequest, Op: ci.op, Domain: c.domain,
			Detail: "building the request", Err: err}}
	}
	if !tok.IsZero() {
		setBearer(req, tok)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	var body []byte
	if err == nil {
		body, err = readBody(resp)
	}
	elapsed := time.Since(start)
	c.metrics.Seconds.WithLabelValues(c.domain, ci.op).Observe(elapsed.Seconds())

	if err != nil {
		if ci.ctx.Err() != nil {
			c.metrics.Requests.WithLabelValues(c.domain, ci.op, "canceled").Inc()
			return attemptResult{canceled: true, outcome: outcomeNeutral}
		}
		sent := wrote.Load() || resp != nil
		d := decideError(err, ci.safe, sent)
		if sent && req.Method != http.MethodGet {
			ci.ambiguous = true
		}
		c.metrics.Requests.WithLabelValues(c.domain, ci.op, d.reason).Inc()
		detail := "network error"
		if d.reason == reasonTimeout {
			detail = fmt.Sprintf("no answer within %v", c.cfg.Timeout)
		}
		c.log.DebugContext(ci.ctx, "identity domain request failed", "domain", c.domain, "op", ci.op,
			"method", req.Method, "path", req.URL.Path, "attempt", ci.attempts, "duration", elapsed, "err", err)
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err // without the URL, which the error's context already says
		}
		return attemptResult{retry: d.retry, reason: d.reason, outcome: d.outcome,
			err: &Error{Kind: KindUnavailable, Op: ci.op, Domain: c.domain, Detail: detail, Err: cause}}
	}

	ecid := resp.Header.Get(headerECID)
	ci.status, ci.requestID = resp.StatusCode, ecid
	if ecid != "" {
		ci.requestIDs = append(ci.requestIDs, ecid)
	}
	if resp.StatusCode >= 500 && req.Method != http.MethodGet {
		ci.ambiguous = true
	}
	c.metrics.Requests.WithLabelValues(c.domain, ci.op, strconv.Itoa(resp.StatusCode)).Inc()
	c.log.DebugContext(ci.ctx, "identity domain request", "domain", c.domain, "op", ci.op, "method", req.Method,
		"path", req.URL.RequestURI(), "status", resp.StatusCode, "attempt", ci.attempts, "duration", elapsed, "ecid", ecid)

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return attemptResult{outcome: outcomeSuccess, status: resp.StatusCode,
			resp: &response{status: resp.StatusCode, header: resp.Header, body: body, requestID: ecid}}
	}
	d := decideStatus(resp.StatusCode, ci.safe)
	e := errorFromResponse(ci.op, c.domain, resp.StatusCode, resp.Header, body)
	ra, hasRA := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if hasRA {
		e.RetryAfter = ra
	}
	return attemptResult{err: e, status: resp.StatusCode, retry: d.retry, reason: d.reason, outcome: d.outcome,
		retryAfter: ra, hasRetryAfter: hasRA}
}

// breakerError is the error of a request refused by the open breaker.
func (c *Client) breakerError(ci *callInfo, remaining time.Duration, last *Error) *Error {
	c.metrics.Requests.WithLabelValues(c.domain, ci.op, "breaker_open").Inc()
	e := &Error{Kind: KindUnavailable, Op: ci.op, Domain: c.domain, RetryAfter: remaining, Attempts: ci.attempts,
		Detail: "the domain failed repeatedly; not sending requests until the cooldown ends", Err: ErrCircuitOpen}
	if last != nil {
		e.Status, e.RequestID = last.Status, last.RequestID
	}
	return e
}

// sdkDispatcher is the SDK client's HTTPClient: it sends each request the
// SDK built through exchange, and answers with the 2xx response (body
// buffered) or the *Error.
type sdkDispatcher struct{ c *Client }

// Do implements common.HTTPRequestDispatcher.
func (d sdkDispatcher) Do(req *http.Request) (*http.Response, error) {
	ci := callFrom(req.Context())
	if ci == nil {
		ci = &callInfo{ctx: req.Context(), op: "unknown", safe: req.Method != http.MethodPost}
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, &Error{Kind: KindInvalidRequest, Op: ci.op, Domain: d.c.domain, Detail: "reading the request body", Err: err}
		}
		body = b
	}
	build := func(ctx context.Context) (*http.Request, error) {
		r := req.Clone(ctx)
		if d.c.scimPath != sdkSCIMPath {
			// The SDK's paths are /admin/v1/...: move them under the server's SCIM path.
			if rest, ok := strings.CutPrefix(r.URL.Path, sdkSCIMPath); ok {
				r.URL.Path = d.c.scimPath + rest
				if raw, ok := strings.CutPrefix(r.URL.RawPath, sdkSCIMPath); ok {
					r.URL.RawPath = d.c.scimPath + raw
				} else {
					r.URL.RawPath = ""
				}
			}
		}
		r.Body, r.ContentLength = http.NoBody, 0
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		return r, nil
	}
	res, err := d.c.exchange(ci, exchangeSpec{group: groupOthers, authorize: true, build: build})
	if err != nil {
		return nil, err
	}
	if res.status == http.StatusNoContent && len(res.body) == 0 && req.Method != http.MethodDelete {
		// A PATCH or PUT may answer 204 without the resource (RFC 7644
		// §3.5.2; identity domains answer 200, other servers 204 when nothing
		// changed): the SDK, which always reads the body, gets an empty one.
		res.body = []byte("{}")
	}
	return &http.Response{
		Status:        strconv.Itoa(res.status) + " " + http.StatusText(res.status),
		StatusCode:    res.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        res.header,
		Body:          io.NopCloser(bytes.NewReader(res.body)),
		ContentLength: int64(len(res.body)),
		Request:       req,
	}, nil
}

// readBody reads and closes resp's body, at most maxResponseBody of it,
// into a buffer of the size the response declares, if it does: a page of
// a thousand users is a megabyte, and io.ReadAll's doubling would hold up
// to twice that, and as much again in garbage, for each page in flight.
func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	r := io.LimitReader(resp.Body, maxResponseBody)
	n := resp.ContentLength
	if n <= 0 || n > maxResponseBody {
		return io.ReadAll(r)
	}
	buf := make([]byte, n)
	if m, err := io.ReadFull(r, buf); err != nil {
		return buf[:m], err
	}
	rest, err := io.ReadAll(r) // nothing, unless the length was wrong
	return append(buf, rest...), err
}
