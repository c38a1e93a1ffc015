package identitydomain

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// scimError is an error answered with the SCIM error body in the IDCS shape
// (docs/oci-sources.md §4):
//
//	{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error",
//	            "urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error"],
//	 "detail":"...","status":"409",
//	 "urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error":{"messageId":"..."}}
//
// status is a string. scimType (RFC 7644 §3.12) is added for the 400 and 409
// errors RFC 7644 defines one for; IDCS's published samples do not show it, so
// clients must not depend on it. The messageId values are the emulator's own
// except error.common.validation.missingReqAttributes, which docs/oci-sources.md quotes.
type scimError struct {
	status    int
	scimType  string
	messageID string
	detail    string
	header    http.Header // extra response headers, e.g. Retry-After
}

func (e *scimError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.messageID, e.detail) }

func errorf(status int, scimType, messageID, format string, args ...any) *scimError {
	return &scimError{status: status, scimType: scimType, messageID: messageID, detail: fmt.Sprintf(format, args...)}
}

func errInvalidFilter(err error) *scimError {
	return errorf(http.StatusBadRequest, "invalidFilter", "error.common.common.invalidFilter", "%v", err)
}

func errInvalidValue(format string, args ...any) *scimError {
	return errorf(http.StatusBadRequest, "invalidValue", "error.common.validation.invalidValue", format, args...)
}

func errInvalidSyntax(format string, args ...any) *scimError {
	return errorf(http.StatusBadRequest, "invalidSyntax", "error.common.common.invalidSyntax", format, args...)
}

func errInvalidPath(format string, args ...any) *scimError {
	return errorf(http.StatusBadRequest, "invalidPath", "error.common.common.invalidPath", format, args...)
}

func errNoTarget(format string, args ...any) *scimError {
	return errorf(http.StatusBadRequest, "noTarget", "error.common.common.noTarget", format, args...)
}

func errMutability(format string, args ...any) *scimError {
	return errorf(http.StatusBadRequest, "mutability", "error.common.validation.readOnlyAttribute", format, args...)
}

func errMissing(attr string) *scimError {
	return errorf(http.StatusBadRequest, "invalidValue", "error.common.validation.missingReqAttributes",
		"Missing required attribute(s): %s.", attr)
}

func errNotFound(kind, id string) *scimError {
	return errorf(http.StatusNotFound, "", "error.common.common.resourceNotFound", "Resource %s not found.", id)
}

func errUnauthorized(detail string) *scimError {
	e := errorf(http.StatusUnauthorized, "", "error.common.common.unauthorized", "%s", detail)
	e.header = http.Header{"WWW-Authenticate": {`Bearer error="invalid_token"`}}
	return e
}

func errConflict(format string, args ...any) *scimError {
	return errorf(http.StatusConflict, "uniqueness", "error.common.validation.uniqueness", format, args...)
}

func errPrecondition(id string) *scimError {
	return errorf(http.StatusPreconditionFailed, "", "error.common.common.versionMismatch",
		"Resource %s has been modified since it was read (If-Match does not match meta.version).", id)
}

func errTooMany(format string, args ...any) *scimError {
	return errorf(http.StatusBadRequest, "tooMany", "error.common.common.tooManyResults", format, args...)
}

func errRateLimited() *scimError {
	return errorf(http.StatusTooManyRequests, "", "error.common.common.tooManyRequests",
		"Too many requests. The rate limit for this identity domain has been exceeded.")
}

// errorBody renders the SCIM error body.
func (e *scimError) body() map[string]any {
	b := map[string]any{
		"schemas": []string{SchemaError, SchemaErrorExt},
		"detail":  e.detail,
		"status":  strconv.Itoa(e.status),
		SchemaErrorExt: map[string]any{
			"messageId": e.messageID,
		},
	}
	if e.scimType != "" {
		b["scimType"] = e.scimType
	}
	return b
}

// writeError answers with err's SCIM error body; any other error becomes a 500.
func writeError(w http.ResponseWriter, err error) {
	se, ok := err.(*scimError)
	if !ok {
		se = errorf(http.StatusInternalServerError, "", "error.common.common.internalServerError", "Internal error: %v", err)
	}
	for k, v := range se.header {
		w.Header()[k] = v
	}
	writeJSON(w, se.status, se.body())
}

// contentTypeSCIM is the media type of SCIM responses (RFC 7644 §3.1).
const contentTypeSCIM = "application/scim+json;charset=UTF-8"

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", contentTypeSCIM)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
