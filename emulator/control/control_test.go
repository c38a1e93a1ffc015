package control

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestServe: a value is answered 200 as JSON, a plain error 400, a
// StatusError (also wrapped) its status, an unknown route 404 naming it.
func TestServe(t *testing.T) {
	eps := Endpoints{
		"GET /_emulator/ok":   func(*http.Request) (any, error) { return map[string]int{"n": 1}, nil },
		"POST /_emulator/bad": func(*http.Request) (any, error) { return nil, errors.New("bad body") },
		"GET /_emulator/down": func(*http.Request) (any, error) {
			return nil, fmt.Errorf("keys: %w", WithStatus(http.StatusInternalServerError, errors.New("no keys")))
		},
	}
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/_emulator/ok/", 200, `"n": 1`},
		{"POST", "/_emulator/bad", 400, `{"error":"bad body"}`},
		{"GET", "/_emulator/down", 500, `{"error":"keys: no keys"}`},
		{"POST", "/_emulator/ok", 404, `{"error":"unknown POST /_emulator/ok"}`},
	} {
		w := httptest.NewRecorder()
		Serve(w, httptest.NewRequest(tc.method, tc.path, nil), 1<<10, eps, func(route string) string { return "unknown " + route })
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.path, w.Code, w.Body, tc.status, tc.body)
		}
	}
}
