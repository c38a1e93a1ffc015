package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// errNotAllowed marks a confirmation URL that is not fetched by policy.
var errNotAllowed = errors.New("confirmation URL not allowed")

// checkConfirmURL says whether raw may be fetched under cfg.
func checkConfirmURL(raw string, cfg ConfirmConfig) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return nil, fmt.Errorf("%w: the message carries no confirmation URL", errNotAllowed)
	case err != nil:
		return nil, fmt.Errorf("%w: not a URL", errNotAllowed)
	case !cfg.Auto:
		return nil, fmt.Errorf("%w: automatic confirmation is off (ingest.confirm.auto)", errNotAllowed)
	case u.Scheme != "https":
		return nil, fmt.Errorf("%w: scheme %q is not https", errNotAllowed, u.Scheme)
	case u.User != nil:
		return nil, fmt.Errorf("%w: URL carries user info", errNotAllowed)
	case !hostAllowed(u.Hostname(), cfg.AllowedHosts):
		return nil, fmt.Errorf("%w: host %q is not in ingest.confirm.allowed_hosts", errNotAllowed, u.Hostname())
	}
	return u, nil
}

// newConfirmClient returns the HTTP client that fetches confirmation URLs. It
// never connects to loopback, private, link-local or otherwise non-public
// addresses, whatever a host name resolves to, and follows redirects only on
// the same host over https.
func newConfirmClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: refuseNonPublic}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: timeout,
		MaxIdleConns:        1,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

func refuseNonPublic(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("confirmation fetch: unexpected address %q", address)
	}
	a := ap.Addr().Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return fmt.Errorf("confirmation fetch: refusing non-public address %s", a)
	}
	return nil
}

// sameHostRedirects wraps a client so redirects stay on the original host and scheme.
func sameHostRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("confirmation fetch: too many redirects")
		}
		if req.URL.Scheme != "https" || req.URL.Host != via[0].URL.Host {
			return fmt.Errorf("confirmation fetch: refusing redirect to %s://%s", req.URL.Scheme, req.URL.Host)
		}
		return nil
	}
	return &cc
}

// fetchConfirmation GETs the confirmation URL and succeeds on any 2xx.
func fetchConfirmation(ctx context.Context, c *http.Client, u *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("confirm subscription: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("confirm subscription at %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("confirm subscription at %s: HTTP %d", u.Host, resp.StatusCode)
	}
	return nil
}
