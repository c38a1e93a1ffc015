package apiclient

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// Normalize refuses what no client can be configured with, each error
// naming the form to write, then asks the client's Base, and lets plain
// http reach loopback only.
func TestURLForm(t *testing.T) {
	f := URLForm{Name: "base URL", Example: "https://host/x", Credentials: "client_id",
		Base: func(u *url.URL, raw string) (string, error) {
			if u.Path == "/bad" {
				return "", errors.New("bad path")
			}
			return u.Scheme + "://" + u.Host + u.Path, nil
		}}
	for _, tc := range []struct {
		raw, want string // want: the base URL, or the error
		ok        bool
	}{
		{" https://h.example/x ", "https://h.example/x", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"http://h.example", `"http://h.example" uses http to a non-loopback host; use https (http is for local emulators only)`, false},
		{"http://h.example/bad", "bad path", false}, // Base before the loopback rule
		{"  ", "empty; set the base URL, https://host/x", false},
		{"ftp://h.example", `"ftp://h.example" is not an http(s) URL; write https://host/x`, false},
		{"h.example/x", `"h.example/x" is not an http(s) URL; write https://host/x`, false},
		{"https://u:p@h.example", "credentials in the URL are not accepted; use client_id", false},
	} {
		got, err := f.Normalize(tc.raw)
		switch {
		case tc.ok && (err != nil || got != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.raw, got, err, tc.want)
		case !tc.ok && (err == nil || err.Error() != tc.want):
			t.Errorf("%q: %q, %v; want the error %q", tc.raw, got, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "u:p") {
			t.Errorf("%q: the error repeats the credentials", tc.raw)
		}
	}
}
