package apiclient

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// URLForm is the base URL a client is configured with: how its errors
// describe it, and what the client accepts after the host.
type URLForm struct {
	// Name and Example are quoted when the URL is empty or not http(s):
	// "empty; set the <Name>, <Example>", "... not an http(s) URL; write <Example>".
	Name, Example string
	// Credentials is what to use instead of user info in the URL.
	Credentials string
	// Base checks what follows the host of u and returns the base URL the
	// client sends its requests under; raw is quoted in its errors.
	Base func(u *url.URL, raw string) (string, error)
}

// Normalize checks raw and returns the client's base URL: raw (spaces
// around it ignored) must be an absolute http(s) URL without credentials,
// then pass Base, and use plain http to a loopback host only. Errors
// quote raw as given.
func (f URLForm) Normalize(raw string) (string, error) {
	u, err := f.parse(raw)
	if err != nil {
		return "", err
	}
	base, err := f.Base(u, raw)
	if err != nil {
		return "", err
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return "", fmt.Errorf("%q uses http to a non-loopback host; use https (http is for local emulators only)", raw)
	}
	return base, nil
}

func (f URLForm) parse(raw string) (*url.URL, error) {
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
