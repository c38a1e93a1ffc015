package oidc

import (
	"errors"
	"fmt"
)

// Code names why a token was refused. Codes are stable: tests, metrics and
// clients may match them.
type Code string

// The refusal codes.
const (
	// CodeMalformed: not a compact JWS, or a header or claim that does not
	// decode.
	CodeMalformed Code = "malformed"
	// CodeAlgorithm: the header's alg is not allowed (none, HMAC, or not in
	// Config.Algorithms).
	CodeAlgorithm Code = "algorithm_not_allowed"
	// CodeUnknownKey: the kid is not in the login domain's JWKS, even after
	// fetching it again.
	CodeUnknownKey Code = "unknown_key"
	// CodeSignature: the signature does not verify with the key the kid
	// names (a forged or altered token, or another domain's).
	CodeSignature Code = "bad_signature"
	// CodeIssuer: iss is not Config.Issuer.
	CodeIssuer Code = "wrong_issuer"
	// CodeAudience: aud holds none of Config.Audience.
	CodeAudience Code = "wrong_audience"
	// CodeTenant: the tenant claim is not Config.Tenant's domain.
	CodeTenant Code = "wrong_tenant"
	// CodeExpired: exp has passed (beyond the clock skew).
	CodeExpired Code = "expired"
	// CodeNotYetValid: nbf or iat is in the future (beyond the clock skew).
	CodeNotYetValid Code = "not_yet_valid"
	// CodeNotAPerson: the token speaks for a client, not a user.
	CodeNotAPerson Code = "not_a_person"
	// CodeUserUnknown: the domain has no such user (any more).
	CodeUserUnknown Code = "user_unknown"
	// CodeUserInactive: the user is deactivated in the domain.
	CodeUserInactive Code = "user_inactive"
	// CodeKeysUnavailable: the JWKS could not be fetched and no cached
	// key applies. Temporary.
	CodeKeysUnavailable Code = "keys_unavailable"
	// CodeDirectoryUnavailable: the user could not be read from the
	// domain. Temporary.
	CodeDirectoryUnavailable Code = "directory_unavailable"
)

// Error is a refused token or a failed identity look-up. Its message never
// holds the token.
type Error struct {
	Code Code
	// Message says what was wrong, for a person.
	Message string
	// Err is the underlying cause, if any (a network error, a JSON error).
	Err error
}

func (e *Error) Error() string {
	s := "login token refused (" + string(e.Code) + "): " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure lies with the domain being out of
// reach, not with the token: the call may succeed later.
func (e *Error) Temporary() bool {
	return e.Code == CodeKeysUnavailable || e.Code == CodeDirectoryUnavailable
}

// IsCode reports whether err is an *Error with code c.
func IsCode(err error, c Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
}

func refuse(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}
