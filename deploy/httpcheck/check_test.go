package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(http.StatusOK)
		case "/notready":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow":
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{"ready", srv.URL + "/readyz", ""},
		{"not ready", srv.URL + "/notready", "503"},
		{"not found", srv.URL + "/nope", "404"},
		{"slow", srv.URL + "/slow", "deadline"},
		{"no scheme", "127.0.0.1:9091/readyz", "not an http(s) URL"},
		{"other scheme", "ftp://127.0.0.1/readyz", "not an http(s) URL"},
		{"refused", "http://127.0.0.1:1/readyz", "GET http://127.0.0.1:1/readyz"},
		{"user info is not echoed", "ftp://user:hunter2@127.0.0.1/", "xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := check(ctx, srv.Client(), tt.url)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("check: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("check error = %v, want one containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("check error %q reveals the password", err)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	tests := []struct {
		args []string
		want int
	}{
		{[]string{srv.URL + "/readyz"}, 0},
		{[]string{"-timeout", "2s", srv.URL + "/readyz"}, 0},
		{[]string{srv.URL + "/down"}, 1},
		{[]string{}, 2},
		{[]string{"a", "b"}, 2},
		{[]string{"-timeout", "0s", srv.URL}, 2},
		{[]string{"-bogus", srv.URL}, 2},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if got := run(tt.args, &stderr); got != tt.want {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", tt.args, got, tt.want, stderr.String())
		}
	}
}
