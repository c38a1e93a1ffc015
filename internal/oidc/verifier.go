package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Option changes how New builds a Verifier or an Authenticator.
type Option func(*options)

type options struct {
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
}

// WithHTTPClient fetches the JWKS with c (default: a client with a 10 s
// timeout).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithClock reads the time from now (default time.Now), for tests of
// expiry and of the refresh rate limit.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger logs to l (default: nothing).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Verifier checks tokens issued by the login domain. It is safe for
// concurrent use.
type Verifier struct {
	cfg  Config
	algs []jose.SignatureAlgorithm
	keys *keySet
	now  func() time.Time
}

// Token is what a verified token says.
type Token struct {
	// Type is tok_type: "AT" (access token) or "IT" (ID token); "" if absent.
	Type string
	// Subject is sub: the user's mapping attribute, by default the userName.
	Subject string
	// UserID is user_id: the user's SCIM id in the domain.
	UserID string
	// DisplayName is user_displayname.
	DisplayName string
	// Tenant is the domain's IDCS id (tenant).
	Tenant string
	// ClientID is the application the token was issued to.
	ClientID string
	// Audience is aud.
	Audience []string
	// Scopes are the access token's scopes (scope).
	Scopes []string
	// IssuedAt and Expiry are iat and exp.
	IssuedAt, Expiry time.Time
	// KeyID is the kid of the key that signed it.
	KeyID string
}

// NewVerifier builds a verifier of tokens from the login domain at
// domainURL (its keys at cfg.JWKSURL, else domainURL +
// /admin/v1/SigningCert/jwk). cfg gets its defaults and must be valid.
func NewVerifier(cfg Config, domainURL string, opts ...Option) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if !cfg.Enabled() {
		return nil, errors.New("login: no login domain configured")
	}
	cfg = cfg.WithDefaults()
	o := options{client: &http.Client{Timeout: 10 * time.Second}, now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		if domainURL == "" {
			return nil, errors.New("login: the login domain has no url, and login.jwks_url is not set")
		}
		jwksURL = strings.TrimSuffix(domainURL, "/") + "/admin/v1/SigningCert/jwk"
	}
	v := &Verifier{cfg: cfg, now: o.now}
	for _, a := range cfg.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	v.keys = &keySet{url: jwksURL, client: o.client, now: o.now, maxAge: cfg.JWKSMaxAge, minRefresh: cfg.JWKSMinRefresh, log: o.log}
	return v, nil
}

// Config returns the configuration in force, defaults filled in.
func (v *Verifier) Config() Config { return v.cfg }

// JWKSFetches is how many times the JWKS has been fetched (for tests of
// the refresh rate limit).
func (v *Verifier) JWKSFetches() int {
	v.keys.mu.Lock()
	defer v.keys.mu.Unlock()
	return v.keys.fetches
}

// claims are the claims Verify reads.
type claims struct {
	Iss         string          `json:"iss"`
	Sub         string          `json:"sub"`
	Aud         audience        `json:"aud"`
	Exp         *json.Number    `json:"exp"`
	Nbf         *json.Number    `json:"nbf"`
	Iat         *json.Number    `json:"iat"`
	TokType     string          `json:"tok_type"`
	SubType     string          `json:"sub_type"`
	UserID      string          `json:"user_id"`
	DisplayName string          `json:"user_displayname"`
	Tenant      string          `json:"tenant"`
	ClientID    string          `json:"client_id"`
	Scope       json.RawMessage `json:"scope"`
}

// audience is aud: a string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// Verify checks raw (see the package documentation) and returns what it
// says, or an *Error saying why it is refused.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Token, error) {
	h, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(v.algs, jose.SignatureAlgorithm(h.Alg)) {
		what := fmt.Sprintf("%q", h.Alg)
		switch {
		case h.Alg == "" || strings.EqualFold(h.Alg, "none"):
			what = "none (an unsigned token)"
		case strings.HasPrefix(strings.ToUpper(h.Alg), "HS"):
			what = fmt.Sprintf("%q (HMAC, a shared secret)", h.Alg)
		}
		return nil, refuse(CodeAlgorithm, "the token is signed with %s; the login domain's tokens are signed with %s", what, strings.Join(v.cfg.Algorithms, " or "))
	}
	if h.unsigned {
		return nil, refuse(CodeMalformed, "the token has no signature")
	}
	if h.Kid == "" {
		return nil, refuse(CodeMalformed, "the token's header names no key (kid)")
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		return nil, &Error{Code: CodeMalformed, Message: "the token does not parse as a signed JWT", Err: err}
	}
	key, err := v.keys.key(ctx, h.Kid)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, refuse(CodeSignature, "the signature does not verify with the login domain's key %q: the token was altered, forged, or signed by another domain", h.Kid)
	}
	var c claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, &Error{Code: CodeMalformed, Message: "the token's claims are not a JSON object of the expected types", Err: err}
	}
	return v.check(c, h.Kid)
}

func (v *Verifier) check(c claims, kid string) (*Token, error) {
	cfg := v.cfg
	if strings.TrimSuffix(c.Iss, "/") != strings.TrimSuffix(cfg.Issuer, "/") {
		return nil, refuse(CodeIssuer, "the token was issued by %q, not by %q", c.Iss, cfg.Issuer)
	}
	if !slices.ContainsFunc(c.Aud, func(a string) bool { return slices.Contains(cfg.Audience, a) }) {
		return nil, refuse(CodeAudience, "the token is for %q, not for iamflow (login.audience: %q)", []string(c.Aud), cfg.Audience)
	}
	now := v.now()
	skew := cfg.ClockSkew
	exp, err := numericDate("exp", c.Exp)
	if err != nil {
		return nil, err
	}
	if exp.IsZero() {
		return nil, refuse(CodeMalformed, "the token has no expiry (exp)")
	}
	if !now.Before(exp.Add(skew)) {
		return nil, refuse(CodeExpired, "the token expired at %s, %s ago (clock skew allowed: %s): log in again", exp.UTC().Format(time.RFC3339), now.Sub(exp).Round(time.Second), skew)
	}
	for _, t := range []struct {
		name string
		n    *json.Number
	}{{"nbf", c.Nbf}, {"iat", c.Iat}} {
		at, err := numericDate(t.name, t.n)
		if err != nil {
			return nil, err
		}
		if !at.IsZero() && now.Add(skew).Before(at) {
			return nil, refuse(CodeNotYetValid, "the token is not valid before %s (%s), %s from now (clock skew allowed: %s): check the clocks of iamflow and the domain",
				at.UTC().Format(time.RFC3339), t.name, at.Sub(now).Round(time.Second), skew)
		}
	}
	if cfg.Tenant != "" && c.Tenant != cfg.Tenant {
		return nil, refuse(CodeTenant, "the token comes from the domain %q, not from the login domain %q", c.Tenant, cfg.Tenant)
	}
	if c.SubType != "" && c.SubType != "user" {
		return nil, refuse(CodeNotAPerson, "the token speaks for a %s (sub_type %q), not a person: machines use the admin token", c.SubType, c.SubType)
	}
	if c.Sub == "" && c.UserID == "" {
		return nil, refuse(CodeNotAPerson, "the token names no user (neither sub nor user_id)")
	}
	iat, _ := numericDate("iat", c.Iat)
	t := &Token{Type: c.TokType, Subject: c.Sub, UserID: c.UserID, DisplayName: c.DisplayName, Tenant: c.Tenant,
		ClientID: c.ClientID, Audience: c.Aud, IssuedAt: iat, Expiry: exp, KeyID: kid}
	if len(c.Scope) > 0 {
		var s string
		if json.Unmarshal(c.Scope, &s) == nil {
			t.Scopes = strings.Fields(s)
		} else {
			_ = json.Unmarshal(c.Scope, &t.Scopes)
		}
	}
	return t, nil
}

// numericDate reads a NumericDate claim; the zero time when absent.
func numericDate(name string, n *json.Number) (time.Time, error) {
	if n == nil {
		return time.Time{}, nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, refuse(CodeMalformed, "the token's %s is not a time in seconds", name)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}
