package apiclient

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// URLForm is the base URL a client is configured with, as its errors
// describe it.
type URLForm struct {
	// Name and Example are quoted when the URL is empty or not http(s):
	// "empty; set the <Name>, <Example>", "... not an http(s) URL; write <Example>".
	Name, Example string
	// Credentials is what to use instead of user info in the URL.
	Credentials string
}

// Parse parses raw (spaces around it ignored) as an absolute http(s) URL
// without credentials; errors quote raw as given. What may follow the host
// is the client's to check, then [CheckPlainHTTP].
func (f URLForm) Parse(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, fmt.Errorf("empty; set the %s, %s", f.Name, f.Example)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("%q is not an http(s) URL; write %s", raw, f.Example)
	}
	if u.User != nil {
		return nil, errors.New("credentials in the URL are not accepted; use " + f.Credentials)
	}
	return u, nil
}

// CheckPlainHTTP refuses a plain http URL to a host that is not loopback
// (see [IsLoopback]); raw is quoted in the error.
func CheckPlainHTTP(u *url.URL, raw string) error {
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return fmt.Errorf("%q uses http to a non-loopback host; use https (http is for local emulators only)", raw)
	}
	return nil
}
