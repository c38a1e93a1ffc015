package ords

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Oracle error numbers the provisioner cares about (Error.Code).
const (
	ORAResourceBusy        = 54    // ORA-00054 resource busy (retryable)
	ORAMaxSessions         = 18    // ORA-00018 maximum number of sessions exceeded (retryable)
	ORAMaxProcesses        = 20    // ORA-00020 maximum number of processes exceeded (retryable)
	ORAInvalidSQL          = 900   // ORA-00900 invalid SQL statement
	ORATableNotFound       = 942   // ORA-00942 table or view does not exist
	ORAInsufficientPrivs   = 1031  // ORA-01031 insufficient privileges
	ORAUserNotFound        = 1918  // ORA-01918 user does not exist
	ORARoleNotFound        = 1919  // ORA-01919 role does not exist
	ORAUserConflict        = 1920  // ORA-01920 user name conflicts with another user or role name
	ORARoleConflict        = 1921  // ORA-01921 role name conflicts with another user or role name
	ORARoleNotGranted      = 1951  // ORA-01951 role not granted
	ORAListenerNoHandler   = 12516 // ORA-12516 listener could not find available handler (retryable)
	ORAListenerNoHandler19 = 12519 // ORA-12519 TNS:no appropriate service handler found (retryable)
	ORAListenerNoHandler20 = 12520 // ORA-12520 listener could not find available handler for requested type of server (retryable)
)

var retryableORA = map[int]bool{
	ORAResourceBusy: true, ORAMaxSessions: true, ORAMaxProcesses: true,
	ORAListenerNoHandler: true, ORAListenerNoHandler19: true, ORAListenerNoHandler20: true,
}

// Error is what a failed Query, Exec or token request returns (possibly
// wrapped: use errors.As). It never holds a secret or a token.
type Error struct {
	// Database is the client's name (New's name argument).
	Database string
	// Op is "query", "exec" or "token".
	Op string
	// Statement is the SQL text (statements hold names, never secrets);
	// empty for token requests.
	Statement string
	// Status is the HTTP status of the last answer, 0 when there was none.
	// An SQL error comes in a 200 answer.
	Status int
	// Code is the Oracle error number (942 for ORA-00942), 0 when none.
	Code int
	// Detail is the server's explanation, cut to 512 bytes.
	Detail string
	// Retryable tells whether the failure is transient (see Retryable).
	Retryable bool
	// Attempts is how many requests the call made.
	Attempts int
	// RetryAfter is the answer's Retry-After, when it had one.
	RetryAfter time.Duration
	// Err is the underlying cause (a network error), if any.
	Err error
}

// ORA is the Oracle error code in its usual form, "ORA-00942", or "".
func (e *Error) ORA() string {
	if e.Code == 0 {
		return ""
	}
	return fmt.Sprintf("ORA-%05d", e.Code)
}

// Error renders the error on one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ords " + e.Database + " " + e.Op)
	if e.Statement != "" {
		b.WriteString(" [" + cut(e.Statement, 200) + "]")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if ora := e.ORA(); ora != "" && !strings.HasPrefix(e.Detail, ora) {
		b.WriteString(": " + ora)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (%d attempts)", e.Attempts)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// RetryHint implements internal/bus's RetryHinter: whether the failure is
// transient (see [Retryable]) and the answer's Retry-After.
func (e *Error) RetryHint() (retry bool, after time.Duration) { return Retryable(e), e.RetryAfter }

// Retryable reports whether err is a transient failure worth retrying later:
// HTTP 429, 5xx other than 501, an exhausted connection pool, a network error
// or timeout of a request, ORA-00054 (resource busy), ORA-00018/00020 and
// ORA-12516/12519/12520 (no session or server handler). Everything else is
// terminal: ORA-01031, ORA-00900, ORA-00942, 4xx, a bad response, and a
// cancelled caller context.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// Code returns the Oracle error number carried by err (942 for ORA-00942),
// or 0.
func Code(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// classifyStatus says whether an HTTP status (other than 200/401) is retryable.
func classifyStatus(status int, body string) bool {
	switch {
	case status == 429:
		return true
	case status == 501:
		return false
	case status >= 500:
		return true
	}
	return isPoolExhausted(body)
}

// isPoolExhausted recognises ORDS's answers when its connection pool has no
// free connection (the UCP messages mention the pool and exhaustion or a
// wait timeout).
func isPoolExhausted(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "pool") && (strings.Contains(s, "exhaust") || strings.Contains(s, "no available connection") || strings.Contains(s, "timeout"))
}

// parseORA finds the first ORA-NNNNN in s and returns its number.
func parseORA(s string) int {
	for {
		i := strings.Index(s, "ORA-")
		if i < 0 {
			return 0
		}
		s = s[i+4:]
		j := 0
		for j < len(s) && j < 5 && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == 5 {
			n, _ := strconv.Atoi(s[:j])
			return n
		}
	}
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// do not split a UTF-8 sequence
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}
