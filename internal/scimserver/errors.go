package scimserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// SchemaError is the schema URN of a SCIM error body (RFC 7644 §3.12).
const SchemaError = "urn:ietf:params:scim:api:messages:2.0:Error"

// The scimType values of RFC 7644 §3.12 the server answers with.
const (
	TypeInvalidFilter = "invalidFilter"
	TypeTooMany       = "tooMany"
	TypeUniqueness    = "uniqueness"
	TypeMutability    = "mutability"
	TypeInvalidSyntax = "invalidSyntax"
	TypeInvalidPath   = "invalidPath"
	TypeNoTarget      = "noTarget"
	TypeInvalidValue  = "invalidValue"
	TypeInvalidVers   = "invalidVers"
)

// Error is a SCIM error: an HTTP status, an optional scimType and a detail
// that says what was wrong. It is answered with the RFC 7644 error body,
// status as a string.
type Error struct {
	Status   int
	SCIMType string
	Detail   string
	// RetryAfter, when positive, is sent as Retry-After (seconds), with 429 and 503.
	RetryAfter int
}

// Error returns the status, scimType and detail.
func (e *Error) Error() string {
	if e.SCIMType != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.SCIMType, e.Detail)
	}
	return fmt.Sprintf("%d: %s", e.Status, e.Detail)
}

func errorf(status int, scimType, format string, args ...any) *Error {
	return &Error{Status: status, SCIMType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func invalidValue(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, TypeInvalidValue, format, args...)
}

func invalidSyntax(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, TypeInvalidSyntax, format, args...)
}

func invalidPath(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, TypeInvalidPath, format, args...)
}

func noTarget(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, TypeNoTarget, format, args...)
}

func mutability(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, TypeMutability, format, args...)
}

func notFound(format string, args ...any) *Error {
	return errorf(http.StatusNotFound, "", format, args...)
}

// errorBody is the JSON of a SCIM error.
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	SCIMType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail"`
}

func writeError(w http.ResponseWriter, e *Error) int {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="iamflow SCIM"`)
	}
	body, _ := json.Marshal(errorBody{Schemas: []string{SchemaError}, Status: strconv.Itoa(e.Status), SCIMType: e.SCIMType, Detail: e.Detail})
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
	return e.Status
}
