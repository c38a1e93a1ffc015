package oidc

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Config is the login section: which Identity Domain people log in with
// and what iamflow accepts from it.
type Config struct {
	// Domain is the name of the login domain in the configuration's
	// domains list. Its url is where the keys and the login endpoints are;
	// its API credentials read people's groups. Empty: people cannot log
	// in, and only the admin token is accepted.
	Domain string `yaml:"domain"`
	// ClientID is the client id of the application registered in the
	// domain for iamflow (a public client with PKCE for the CLI; the
	// redirect URI http://127.0.0.1/callback).
	ClientID string `yaml:"client_id"`
	// Audience lists the aud values accepted; default: ClientID, the
	// audience of the ID tokens the application gets. Add the
	// application's primary audience to accept its access tokens too.
	Audience []string `yaml:"audience"`
	// Issuer is the iss tokens must carry. Default:
	// https://identity.oraclecloud.com/, which every OCI domain uses.
	Issuer string `yaml:"issuer"`
	// Tenant, when set, is the domain's IDCS id (idcs-<32 hex>) the tenant
	// claim must match. Default: the login domain's id when it is of that
	// form.
	Tenant string `yaml:"tenant"`
	// ClockSkew is how far the clocks of iamflow and the domain may
	// disagree when exp, nbf and iat are checked. Default 1m; at most 5m.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// Algorithms are the signature algorithms accepted: RS256 (what OCI
	// signs with, the default) and ES256. none and HMAC are never accepted.
	Algorithms []string `yaml:"algorithms"`
	// JWKSURL is where the domain's keys are. Default: the domain's url and
	// /admin/v1/SigningCert/jwk. (The domain must allow clients to read its
	// signing certificate without logging in: the domain's settings,
	// "Access signing certificate".)
	JWKSURL string `yaml:"jwks_url"`
	// JWKSMaxAge is how long fetched keys are used before they are fetched
	// again. Default 1h.
	JWKSMaxAge time.Duration `yaml:"jwks_max_age"`
	// JWKSMinRefresh is the least time between two fetches caused by a
	// token whose kid is unknown. Default 30s.
	JWKSMinRefresh time.Duration `yaml:"jwks_min_refresh"`
	// GroupsCacheTTL is how long a person's groups, read from the domain,
	// are reused. Default 30s.
	GroupsCacheTTL time.Duration `yaml:"groups_cache_ttl"`
	// Scopes are asked for at login. Default: openid profile.
	Scopes []string `yaml:"scopes"`
}

// DefaultIssuer is the issuer of every OCI Identity Domain (docs/oci-sources.md §7).
const DefaultIssuer = "https://identity.oraclecloud.com/"

// MaxClockSkew bounds Config.ClockSkew.
const MaxClockSkew = 5 * time.Minute

// Enabled reports whether people may log in (a login domain is named).
func (c Config) Enabled() bool { return c.Domain != "" }

var tenantRE = regexp.MustCompile(`^idcs-[0-9a-f]{32}$`)

// WithDefaults returns c with every empty setting at its default.
func (c Config) WithDefaults() Config {
	if len(c.Audience) == 0 && c.ClientID != "" {
		c.Audience = []string{c.ClientID}
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = time.Minute
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{"RS256"}
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = time.Hour
	}
	if c.JWKSMinRefresh == 0 {
		c.JWKSMinRefresh = 30 * time.Second
	}
	if c.GroupsCacheTTL == 0 {
		c.GroupsCacheTTL = 30 * time.Second
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile"}
	}
	return c
}

// Validate reports every problem, each naming its key relative to the
// login section. A Config that is not Enabled must be empty.
func (c Config) Validate() error {
	if !c.Enabled() {
		if c.ClientID != "" || len(c.Audience) > 0 || c.Tenant != "" || c.JWKSURL != "" {
			return errors.New("domain: required when any other login setting is given (the name of the domain people log in with)")
		}
		return nil
	}
	c = c.WithDefaults()
	var errs []error
	if c.ClientID == "" {
		errs = append(errs, errors.New("client_id: required (the client id of iamflow's application in the login domain)"))
	}
	for i, a := range c.Audience {
		if strings.TrimSpace(a) == "" {
			errs = append(errs, fmt.Errorf("audience[%d]: empty", i))
		}
	}
	errs = append(errs, c.validateTokens()...)
	for _, d := range []struct {
		key string
		d   time.Duration
	}{{"jwks_max_age", c.JWKSMaxAge}, {"jwks_min_refresh", c.JWKSMinRefresh}, {"groups_cache_ttl", c.GroupsCacheTTL}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s: %v is negative", d.key, d.d))
		}
	}
	if !slices.Contains(c.Scopes, "openid") {
		errs = append(errs, errors.New("scopes: must include openid"))
	}
	return errors.Join(errs...)
}

// validateTokens checks what token verification uses: the issuer, the
// tenant, the clock skew, the algorithms and the key set's URL.
func (c Config) validateTokens() []error {
	var errs []error
	if u, err := url.Parse(c.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		errs = append(errs, fmt.Errorf("issuer: %q is not an absolute URL (OCI's is %s)", c.Issuer, DefaultIssuer))
	}
	if c.Tenant != "" && !tenantRE.MatchString(c.Tenant) {
		errs = append(errs, fmt.Errorf("tenant: %q is not an IDCS id (idcs- and 32 lower-case hex digits)", c.Tenant))
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		errs = append(errs, fmt.Errorf("clock_skew: %v is outside 0s..%v", c.ClockSkew, MaxClockSkew))
	}
	for i, a := range c.Algorithms {
		if !slices.Contains(supportedAlgorithms, a) {
			errs = append(errs, fmt.Errorf("algorithms[%d]: %q is not accepted; choose from %s (none and HMAC never are)", i, a, strings.Join(supportedAlgorithms, ", ")))
		}
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("jwks_url: %q is not an http(s) URL", c.JWKSURL))
		}
	}
	return errs
}

// supportedAlgorithms are the algorithms Config.Algorithms may name.
var supportedAlgorithms = []string{"RS256", "ES256"}
