// Package control serves the emulators' control endpoints (/_emulator/...):
// a table of endpoints by method and path, each answering a value that is
// written as indented JSON or an error written as {"error": "..."}.
package control

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Endpoint answers one control request with the value to write as JSON, or
// an error (a *StatusError says its HTTP status; any other is a 400).
type Endpoint func(r *http.Request) (any, error)

// Endpoints are the control endpoints by "METHOD /path" (no trailing slash).
type Endpoints map[string]Endpoint

// StatusError is an error answered with a given HTTP status.
type StatusError struct {
	Status int
	Err    error
}

// Error returns the wrapped error's message.
func (e *StatusError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *StatusError) Unwrap() error { return e.Err }

// WithStatus returns err answered with status.
func WithStatus(status int, err error) error { return &StatusError{Status: status, Err: err} }

// Serve answers r from endpoints, reading at most maxBody bytes of its
// body. A route not in endpoints is answered 404 with unknown(route), which
// names the endpoints there are.
func Serve(w http.ResponseWriter, r *http.Request, maxBody int64, endpoints Endpoints, unknown func(route string) string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	route := r.Method + " " + strings.TrimSuffix(r.URL.Path, "/")
	ep := endpoints[route]
	if ep == nil {
		Fail(w, http.StatusNotFound, unknown(route))
		return
	}
	v, err := ep(r)
	if err != nil {
		status := http.StatusBadRequest
		if se, ok := errors.AsType[*StatusError](err); ok {
			status = se.Status
		}
		Fail(w, status, err.Error())
		return
	}
	OK(w, v)
}

// OK writes v as indented JSON with status 200.
func OK(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Fail writes {"error": msg} with status.
func Fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
