package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
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

// userInfoRE finds the user:password@ part of a URL that url.Parse refuses.
var userInfoRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@`)

// redactURL is raw without its user info (user:password@), for logs: the
// rest (the confirmation token an operator needs) is kept.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return userInfoRE.ReplaceAllString(raw, "${1}REDACTED@")
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}

// newConfirmClient returns the HTTP client that fetches confirmation URLs. It
// connects only to public addresses (see checkPublic), whatever a host name
// resolves to, checked when the connection is made, so a DNS answer that
// changes between check and use changes nothing. No proxy is used.
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

// errNonPublic marks a connection refused because the address is not public.
var errNonPublic = errors.New("refusing non-public address")

func refuseNonPublic(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("confirmation fetch: unexpected address %q", address)
	}
	if err := checkPublic(ap.Addr()); err != nil {
		return fmt.Errorf("confirmation fetch: %w", err)
	}
	return nil
}

// The address blocks a confirmation fetch never connects to: every entry of
// the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (https://www.iana.org/assignments/iana-ipv4-special-registry/,
// https://www.iana.org/assignments/iana-ipv6-special-registry/), those
// marked globally reachable included (anycast service addresses, AS112,
// AMT: nothing OCI serves a confirmation from), and multicast. Outside
// these, IPv4 must be global unicast and IPv6 must be in 2000::/3, the
// global unicast space. testdata/special-purpose-addresses.txt lists the
// registries' entries the tests check against.
var (
	refusedV4 = prefixes(
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
	)
	globalV6  = netip.MustParsePrefix("2000::/3")
	refusedV6 = prefixes( // the special-purpose blocks inside 2000::/3
		"2001::/23", "2001:db8::/32", "2620:4f:8000::/48", "3fff::/20",
	)
	// IPv6 forms that carry an IPv4 address; it decides for them.
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: the last 32 bits
	sixToFour = netip.MustParsePrefix("2002::/16")    // RFC 3056: bits 16 to 47
)

func prefixes(ps ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// checkPublic returns an error wrapping errNonPublic unless a is a public
// unicast address. IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d)
// and 6to4 (2002:AABB:CCDD::) addresses are judged by the IPv4 address
// they carry, so that 64:ff9b::10.0.0.1 or 2002:7f00:1:: does not reach a
// private or loopback address through a translator.
func checkPublic(a netip.Addr) error {
	a = a.WithZone("")
	switch {
	case a.Is4In6():
		return embedded(a, a.Unmap(), "IPv4-mapped")
	case nat64.Contains(a):
		b := a.As16()
		return embedded(a, netip.AddrFrom4([4]byte(b[12:16])), "NAT64")
	case sixToFour.Contains(a):
		b := a.As16()
		return embedded(a, netip.AddrFrom4([4]byte(b[2:6])), "6to4")
	case a.Is4():
		if !a.IsGlobalUnicast() || inAny(a, refusedV4) {
			return fmt.Errorf("%w %s", errNonPublic, a)
		}
	default:
		if !globalV6.Contains(a) || inAny(a, refusedV6) {
			return fmt.Errorf("%w %s", errNonPublic, a)
		}
	}
	return nil
}

func embedded(outer, v4 netip.Addr, form string) error {
	if err := checkPublic(v4); err != nil {
		return fmt.Errorf("%w %s (the %s form of %s)", errNonPublic, outer, form, v4)
	}
	return nil
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// errRedirect marks a redirect the confirmation client refused.
var errRedirect = errors.New("refusing redirect")

// sameHostRedirects wraps a client so redirects stay on the original host
// and scheme, without user info.
func sameHostRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("confirmation fetch: %w: too many redirects", errRedirect)
		}
		if req.URL.Scheme != "https" || req.URL.Host != via[0].URL.Host || req.URL.User != nil {
			return fmt.Errorf("confirmation fetch: %w to %s://%s", errRedirect, req.URL.Scheme, req.URL.Host)
		}
		return nil
	}
	return &cc
}

// statusError is a confirmation URL answered with a status other than 2xx.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

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
		return fmt.Errorf("confirm subscription at %s: %w", u.Host, statusError{resp.StatusCode})
	}
	return nil
}

// confirmFailure says why a confirmation fetch failed in fixed words that
// reveal nothing about the network iamflow runs in: no resolver, no
// internal address, no dial details. The full error goes to the log.
func confirmFailure(err error) string {
	var (
		dnsErr  *net.DNSError
		status  statusError
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		recErr  tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, errNonPublic):
		return "the host resolves to an address that is not public, which iamflow never connects to"
	case errors.Is(err, errRedirect):
		return "it redirected to another host, scheme or user, which iamflow does not follow"
	case errors.As(err, &status):
		return fmt.Sprintf("the host answered HTTP %d", status.code)
	case errors.As(err, &dnsErr):
		return "the host name could not be resolved"
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &hostErr), errors.As(err, &recErr):
		return "the TLS handshake failed (certificate not trusted or not for this host)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return "no answer within ingest.confirm.timeout"
	}
	return "the connection failed"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
