package apiclient

import (
	"strings"
	"testing"
)

// Parse refuses what no client can be configured with, each error naming
// the form to write; CheckPlainHTTP lets plain http reach loopback only.
func TestURLForm(t *testing.T) {
	f := URLForm{Name: "base URL", Example: "https://host/x", Credentials: "client_id"}
	for _, tc := range []struct {
		raw, want string // want: "" for accepted, else the error
	}{
		{" https://h.example/x ", ""},
		{"http://127.0.0.1:8080", ""},
		{"http://h.example", `"http://h.example" uses http to a non-loopback host; use https (http is for local emulators only)`},
		{"  ", "empty; set the base URL, https://host/x"},
		{"ftp://h.example", `"ftp://h.example" is not an http(s) URL; write https://host/x`},
		{"h.example/x", `"h.example/x" is not an http(s) URL; write https://host/x`},
		{"https://u:p@h.example", "credentials in the URL are not accepted; use client_id"},
	} {
		u, err := f.Parse(tc.raw)
		if err == nil {
			err = CheckPlainHTTP(u, tc.raw)
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.raw, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%q: %v, want %q", tc.raw, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "u:p") {
			t.Errorf("%q: the error repeats the credentials", tc.raw)
		}
	}
}
