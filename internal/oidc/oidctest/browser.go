// Package oidctest drives an Identity Domain's login page the way a person
// at a browser does, for tests of the authorization code flow: it opens
// the authorization URL, fills in the form it finds and submits it, and
// returns where the domain sends the browser back (the redirect URI with
// code and state, or error).
package oidctest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

var (
	formRE   = regexp.MustCompile(`(?s)<form[^>]*method="post"[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	alertRE  = regexp.MustCompile(`(?s)role="alert">(.*?)</p>`)
)

// PageError is a login page that answered with an error instead of a
// redirect: wrong credentials, an unknown client, an unregistered
// redirect URI.
type PageError struct {
	Status int
	// Message is the page's alert text.
	Message string
}

func (e *PageError) Error() string {
	return fmt.Sprintf("login page answered %d: %s", e.Status, e.Message)
}

// Login opens authURL with client (which must not follow redirects; Login
// makes its own copy that does not), signs in as userName with password,
// and returns the URL the domain redirects the browser to. An error
// redirect (error=...) is returned as a URL too: the caller's redirect
// handler decides what it means.
func Login(ctx context.Context, client *http.Client, authURL, userName, password string) (*url.URL, error) {
	c := noFollow(client)
	resp, err := get(ctx, c, authURL)
	if err != nil {
		return nil, err
	}
	if loc, ok := redirected(resp, authURL); ok {
		return loc, nil // the domain refused before showing the page
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read login page: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, pageError(resp.StatusCode, body)
	}
	m := formRE.FindSubmatch(body)
	if m == nil {
		return nil, errors.New("the login page has no form")
	}
	action, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	action, err = action.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return nil, fmt.Errorf("form action: %w", err)
	}
	form := url.Values{}
	for _, h := range hiddenRE.FindAllSubmatch(m[2], -1) {
		form.Set(html.UnescapeString(string(h[1])), html.UnescapeString(string(h[2])))
	}
	form.Set("username", userName)
	form.Set("password", password)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("submit login form: %w", err)
	}
	if loc, ok := redirected(resp, action.String()); ok {
		return loc, nil
	}
	body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return nil, pageError(resp.StatusCode, body)
}

// Follow delivers the browser to u (the redirect URI), as the browser does
// after Login, and returns the status and body the redirect target
// answered.
func Follow(ctx context.Context, client *http.Client, u *url.URL) (int, string, error) {
	resp, err := get(ctx, noFollow(client), u.String())
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

func noFollow(client *http.Client) *http.Client {
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func get(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", redact(u), err)
	}
	return resp, nil
}

func redirected(resp *http.Response, base string) (*url.URL, bool) {
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return nil, false
	}
	resp.Body.Close()
	b, err := url.Parse(base)
	if err != nil {
		return nil, false
	}
	loc, err := b.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, false
	}
	return loc, true
}

func pageError(status int, body []byte) error {
	msg := "no message"
	if m := alertRE.FindSubmatch(body); m != nil {
		msg = html.UnescapeString(string(m[1]))
	} else if m := regexp.MustCompile(`(?s)class="error"[^>]*>(.*?)</p>`).FindSubmatch(body); m != nil {
		msg = html.UnescapeString(string(m[1]))
	}
	return &PageError{Status: status, Message: strings.TrimSpace(msg)}
}

// redact drops the query of u (it may carry a code or state).
func redact(u string) string {
	s, _, _ := strings.Cut(u, "?")
	return s
}
