package identitydomain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind classifies an error by what a caller can do about it. The values are
// stable: they appear in logs and metrics.
type Kind string

// The error kinds.
const (
	// KindNotFound: the resource does not exist (404, or a lookup that
	// matched nothing).
	KindNotFound Kind = "NotFound"
	// KindConflict: a duplicate (uniqueness) or, in IDCS, a version mismatch (409).
	KindConflict Kind = "Conflict"
	// KindPreconditionFailed: If-Match did not match meta.version (412);
	// re-read and reapply.
	KindPreconditionFailed Kind = "PreconditionFailed"
	// KindRateLimited: the domain's rate limit was exceeded (429) and the
	// retries did not get through.
	KindRateLimited Kind = "RateLimited"
	// KindInvalidRequest: the request is wrong (400, 405, 413, other 4xx,
	// 501, or refused before sending); retrying the same request will not help.
	KindInvalidRequest Kind = "InvalidRequest"
	// KindUnauthorized: the token was refused (401) even after a fresh one,
	// or the credentials were refused by the token endpoint.
	KindUnauthorized Kind = "Unauthorized"
	// KindForbidden: the application lacks the role for the call (403).
	KindForbidden Kind = "Forbidden"
	// KindUnavailable: the domain could not answer: 5xx, timeouts, network
	// errors, or the circuit breaker is open.
	KindUnavailable Kind = "Unavailable"
	// KindInconsistentRead: a listing broke a paging invariant (the server
	// ignored startIndex, repeated an id, answered fewer resources than its
	// totalResults, ...) and no fallback strategy read the list whole. What
	// was read is incomplete: nothing may be deleted or deactivated because
	// it is absent from it. Error.Fault names the server's fault. Terminal
	// for the call; a later read may try again.
	KindInconsistentRead Kind = "InconsistentRead"
)

// Sentinels for errors.Is: errors.Is(err, ErrNotFound) is true for an *Error
// of kind KindNotFound, and so on.
var (
	ErrNotFound           = errors.New("identitydomain: not found")
	ErrConflict           = errors.New("identitydomain: conflict")
	ErrPreconditionFailed = errors.New("identitydomain: precondition failed")
	ErrRateLimited        = errors.New("identitydomain: rate limited")
	ErrInvalidRequest     = errors.New("identitydomain: invalid request")
	ErrUnauthorized       = errors.New("identitydomain: unauthorized")
	ErrForbidden          = errors.New("identitydomain: forbidden")
	ErrUnavailable        = errors.New("identitydomain: unavailable")
	ErrInconsistentRead   = errors.New("identitydomain: inconsistent read")
	// ErrCircuitOpen is the cause of the KindUnavailable errors returned
	// without a request because the domain's circuit breaker is open.
	ErrCircuitOpen = errors.New("identitydomain: circuit breaker open")
)

var kindSentinels = map[Kind]error{
	KindNotFound:           ErrNotFound,
	KindConflict:           ErrConflict,
	KindPreconditionFailed: ErrPreconditionFailed,
	KindRateLimited:        ErrRateLimited,
	KindInvalidRequest:     ErrInvalidRequest,
	KindUnauthorized:       ErrUnauthorized,
	KindForbidden:          ErrForbidden,
	KindUnavailable:        ErrUnavailable,
	KindInconsistentRead:   ErrInconsistentRead,
}

// Error is what every failed call returns (possibly wrapped with context, so
// use errors.As). It never holds a secret or a token.
type Error struct {
	// Kind classifies the error.
	Kind Kind
	// Op is the API operation, named as the oci-go-sdk names it
	// (GetUser, PatchGroup, ...; Token for the token endpoint).
	Op string
	// Domain is the short name of the domain.
	Domain string
	// Status is the HTTP status of the last response, 0 when there was none.
	Status int
	// SCIMType is the SCIM error's scimType (RFC 7644 §3.12), e.g.
	// uniqueness, noTarget, invalidFilter; often empty in IDCS answers.
	SCIMType string
	// MessageID is the IDCS messageId, e.g. error.common.validation.uniqueness.
	MessageID string
	// Detail is the human-readable explanation.
	Detail string
	// RequestID is the X-ORACLE-DMS-ECID of the last response, to quote to
	// Oracle support and in the audit trail.
	RequestID string
	// RetryAfter is how long to wait before trying again, when known: the
	// response's Retry-After, or the breaker's remaining cooldown.
	RetryAfter time.Duration
	// Attempts is how many requests the call made.
	Attempts int
	// Fault is the paging fault of a KindInconsistentRead error (the first
	// one seen), empty for other kinds.
	Fault ReadFault
	// Err is the underlying cause, if any (a network error, ErrCircuitOpen, ...).
	Err error
}

// Error renders the error on one line: kind, status, scimType, detail,
// messageId and request id. Op and Domain are left out: the client's methods
// wrap the error with what they were doing ("patch group <id> in <domain>: ").
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Kind))
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.Status)
		if e.SCIMType != "" {
			b.WriteString(" " + e.SCIMType)
		}
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	var extra []string
	if e.MessageID != "" {
		extra = append(extra, "messageId "+e.MessageID)
	}
	if e.RequestID != "" {
		extra = append(extra, "ecid "+e.RequestID)
	}
	if e.Attempts > 1 {
		extra = append(extra, strconv.Itoa(e.Attempts)+" attempts")
	}
	if e.RetryAfter > 0 {
		extra = append(extra, "retry after "+e.RetryAfter.String())
	}
	if len(extra) > 0 {
		b.WriteString(" [" + strings.Join(extra, ", ") + "]")
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	s, ok := kindSentinels[e.Kind]
	return ok && s == target
}

// IsKind reports whether err is, or wraps, an *Error of kind k.
func IsKind(err error, k Kind) bool {
	got, ok := kindOf(err)
	return ok && got == k
}

// kindOf returns the kind of the *Error err is or wraps; false when it is
// another error.
func kindOf(err error) (Kind, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return "", false
	}
	return e.Kind, true
}

// Retryable reports whether the same call may succeed later: rate limits,
// unavailability (5xx, network, open breaker) and failed preconditions (after
// re-reading the resource). Conflicts, invalid requests, missing resources,
// refused credentials, inconsistent reads (the server pages wrongly: the same
// read would break the same way) and cancelled contexts are terminal.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	k, ok := kindOf(err)
	return ok && (k == KindRateLimited || k == KindUnavailable || k == KindPreconditionFailed)
}

// RetryHint implements internal/bus's RetryHinter: whether the call may
// succeed later (see [Retryable]) and the wait the domain asked for.
func (e *Error) RetryHint() (retry bool, after time.Duration) { return Retryable(e), e.RetryAfter }

// RetryAfter returns how long the domain asked to wait before trying again
// (Retry-After, or the breaker's remaining cooldown), or 0 when it did not
// say; then the caller picks its own backoff.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// statusKinds are the HTTP statuses with a kind of their own.
var statusKinds = map[int]Kind{
	http.StatusNotFound:           KindNotFound,
	http.StatusConflict:           KindConflict,
	http.StatusPreconditionFailed: KindPreconditionFailed,
	http.StatusTooManyRequests:    KindRateLimited,
	http.StatusUnauthorized:       KindUnauthorized,
	http.StatusForbidden:          KindForbidden,
	http.StatusNotImplemented:     KindInvalidRequest, // the operation does not exist there; retrying will not help
}

// kindForStatus maps an HTTP status to a kind: its own (statusKinds),
// else Unavailable for a 5xx and InvalidRequest for the rest.
func kindForStatus(status int) Kind {
	if k, ok := statusKinds[status]; ok {
		return k
	}
	if status >= 500 {
		return KindUnavailable
	}
	return KindInvalidRequest
}

// scimErrorBody is the IDCS SCIM error (docs/oci-sources.md §4); status is a string.
type scimErrorBody struct {
	Schemas  []string        `json:"schemas"`
	Detail   string          `json:"detail"`
	Status   json.RawMessage `json:"status"`
	ScimType string          `json:"scimType"`
	Ext      struct {
		MessageID string `json:"messageId"`
	} `json:"urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error"`
	// OAuth 2.0 errors from /oauth2/v1/token (RFC 6749 §5.2).
	OAuthError       string `json:"error"`
	OAuthDescription string `json:"error_description"`
	// OCI-style errors ({"code","message"}) from proxies in front of IDCS.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// maxErrorDetail bounds the detail taken from a response that is not JSON.
const maxErrorDetail = 512

// errorFromResponse builds the error for a non-2xx answer; body is the
// whole response body.
func errorFromResponse(op, domain string, status int, header http.Header, body []byte) *Error {
	e := &Error{
		Kind:      kindForStatus(status),
		Op:        op,
		Domain:    domain,
		Status:    status,
		RequestID: header.Get(headerECID),
	}
	var sb scimErrorBody
	if err := json.Unmarshal(body, &sb); err == nil {
		e.SCIMType = sb.ScimType
		e.MessageID = sb.Ext.MessageID
		switch {
		case sb.Detail != "":
			e.Detail = sb.Detail
		case sb.OAuthError != "":
			e.Detail = sb.OAuthError
			if sb.OAuthDescription != "" {
				e.Detail += ": " + sb.OAuthDescription
			}
		case sb.Message != "":
			e.Detail = strings.TrimSpace(sb.Code + " " + sb.Message)
		}
	} else if s := strings.TrimSpace(string(body)); s != "" {
		if len(s) > maxErrorDetail {
			s = s[:maxErrorDetail] + "..."
		}
		e.Detail = s
	}
	if e.Detail == "" {
		e.Detail = http.StatusText(status)
	}
	return e
}
