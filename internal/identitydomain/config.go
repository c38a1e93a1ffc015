package identitydomain

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/apiclient"
	"github.com/iamflow/iamflow/internal/secret"
)

// AuthMode is how the client gets the bearer token it sends to the domain.
type AuthMode string

// The authentication modes accepted by auth.
const (
	// AuthClientCredentials is the OAuth client credentials grant of a
	// confidential application: POST /oauth2/v1/token with HTTP Basic
	// client_id:client_secret (docs/oci-sources.md §4). The default.
	AuthClientCredentials AuthMode = "client_credentials"
	// AuthResourcePrincipal exchanges the OCI resource principal (a function,
	// a container instance, ...) for a domain token: the token-exchange grant
	// of docs/oci-sources.md §1a, the request signed by the SDK's resource principal signer.
	AuthResourcePrincipal AuthMode = "resource_principal"
	// AuthStatic sends a fixed token from static_token and never renews it.
	// For tests and one-off tools.
	AuthStatic AuthMode = "static"
)

// Tier is an identity domain type; it decides the documented rate limits
// (docs/oci-sources.md §4).
type Tier string

// The domain types of docs/oci-sources.md §4.
const (
	TierFree              Tier = "free"
	TierOracleApps        Tier = "oracle_apps"
	TierOracleAppsPremium Tier = "oracle_apps_premium"
	TierPremium           Tier = "premium"
	TierExternalUser      Tier = "external_user"
)

// DefaultScope is the scope asked for with every token: all the scopes the
// application was granted.
const DefaultScope = "urn:opc:idm:__myscopes__"

// Limits are request rates for one domain. In Config, a zero field takes the
// tier's value and a negative one means no client-side limit (for emulators
// with the unlimited tier; the real service always has limits).
type Limits struct {
	// PerSecond and PerMinute limit the "Others" API group: /admin/v1/Users,
	// /admin/v1/Groups, /admin/v1/UserCapabilitiesChanger.
	PerSecond int `yaml:"per_second"`
	PerMinute int `yaml:"per_minute"`
	// TokenPerSecond and TokenPerMinute limit /oauth2/v1/token ("Token Mgmt").
	TokenPerSecond int `yaml:"token_per_second"`
	TokenPerMinute int `yaml:"token_per_minute"`
	// BulkPerSecond and BulkPerMinute limit /admin/v1/Bulk ("Bulk"): 5 per
	// second and 200 per minute on every tier.
	BulkPerSecond int `yaml:"bulk_per_second"`
	BulkPerMinute int `yaml:"bulk_per_minute"`
}

// tierLimits are the documented limits (docs/oci-sources.md §4): Others 20/50/55/90/80 per
// second and 150/1500/1750/5000/4000 per minute; Token Mgmt 10/40/50/65/60
// per second and 150/1000/1700/3400/2300 per minute; Bulk 5 per second and
// 200 per minute on every tier.
var tierLimits = map[Tier]Limits{
	TierFree:              {PerSecond: 20, PerMinute: 150, TokenPerSecond: 10, TokenPerMinute: 150, BulkPerSecond: 5, BulkPerMinute: 200},
	TierOracleApps:        {PerSecond: 50, PerMinute: 1500, TokenPerSecond: 40, TokenPerMinute: 1000, BulkPerSecond: 5, BulkPerMinute: 200},
	TierOracleAppsPremium: {PerSecond: 55, PerMinute: 1750, TokenPerSecond: 50, TokenPerMinute: 1700, BulkPerSecond: 5, BulkPerMinute: 200},
	TierPremium:           {PerSecond: 90, PerMinute: 5000, TokenPerSecond: 65, TokenPerMinute: 3400, BulkPerSecond: 5, BulkPerMinute: 200},
	TierExternalUser:      {PerSecond: 80, PerMinute: 4000, TokenPerSecond: 60, TokenPerMinute: 2300, BulkPerSecond: 5, BulkPerMinute: 200},
}

// TierLimits returns the documented limits of a tier, and false for an
// unknown tier.
func TierLimits(t Tier) (Limits, bool) {
	l, ok := tierLimits[t]
	return l, ok
}

// Effective returns the limits the client applies for tier t: each zero field
// of l replaced by the tier's value. Negative fields (no limit) stay negative.
func (l Limits) Effective(t Tier) Limits {
	base := tierLimits[t]
	pick := func(o, b int) int {
		if o != 0 {
			return o
		}
		return b
	}
	return Limits{
		PerSecond:      pick(l.PerSecond, base.PerSecond),
		PerMinute:      pick(l.PerMinute, base.PerMinute),
		TokenPerSecond: pick(l.TokenPerSecond, base.TokenPerSecond),
		TokenPerMinute: pick(l.TokenPerMinute, base.TokenPerMinute),
		BulkPerSecond:  pick(l.BulkPerSecond, base.BulkPerSecond),
		BulkPerMinute:  pick(l.BulkPerMinute, base.BulkPerMinute),
	}
}

// RetryConfig bounds the retries of one call. A Retry-After longer than
// MaxDelay ends the retries: the error carries the Retry-After for the
// caller to honour.
type RetryConfig = apiclient.RetryConfig

// BreakerConfig configures the circuit breaker of the domain.
type BreakerConfig struct {
	// Failures is how many consecutive failures that are the domain's fault
	// (5xx, timeouts, network errors) open the breaker.
	Failures int `yaml:"failures"`
	// Cooldown is how long the breaker stays open before letting one probe
	// request through.
	Cooldown time.Duration `yaml:"cooldown"`
}

// Config is how to reach and talk to one identity domain. It is meant to be
// inlined into each domains[] entry of iamflow's configuration; keys in
// Validate's errors are relative to that entry. Start from [DefaultConfig]:
// zero values are not replaced by defaults, they are invalid.
type Config struct {
	// URL is the domain URL, https://idcs-<id>.identity.oraclecloud.com
	// (an optional :443 and trailing / are accepted). http:// is accepted
	// only for loopback hosts (emulators).
	URL string `yaml:"url"`
	// Auth is client_credentials (default), resource_principal or static.
	Auth AuthMode `yaml:"auth"`
	// ClientID is the confidential application's client id (client_credentials).
	ClientID string `yaml:"client_id"`
	// ClientSecret is a reference to the application's secret (env:NAME,
	// file:/path or vault:ocid1.vaultsecret...), for client_credentials.
	ClientSecret secret.Ref `yaml:"client_secret"`
	// StaticToken is a reference to a bearer token, for auth static.
	StaticToken secret.Ref `yaml:"static_token"`
	// Scope is the OAuth scope asked for. Default urn:opc:idm:__myscopes__.
	Scope string `yaml:"scope"`
	// Tier is the domain type deciding the rate limits: free (default),
	// oracle_apps, oracle_apps_premium, premium or external_user.
	Tier Tier `yaml:"tier"`
	// Limits override single limits of the tier.
	Limits Limits `yaml:"limits"`
	// Timeout bounds one HTTP request, response body included. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Retry bounds retries of 429s, 5xx and network errors.
	Retry RetryConfig `yaml:"retry"`
	// Breaker configures the circuit breaker.
	Breaker BreakerConfig `yaml:"breaker"`
	// SCIMPath is the path of the SCIM API under URL: /admin/v1 for an
	// identity domain (the default, also when empty). Another SCIM 2.0
	// server is reached at its own base path, e.g. /scim/v2, with auth
	// static (docs/scim-compatibility.md).
	SCIMPath string `yaml:"scim_path"`
	// DiscoveryInterval is how often the domain's /ServiceProviderConfig,
	// /ResourceTypes and /Schemas are read again. Default (also when zero) 1h.
	DiscoveryInterval time.Duration `yaml:"discovery_interval"`
}

// sdkSCIMPath is where the oci-go-sdk puts the SCIM API.
const sdkSCIMPath = "/admin/v1"

// scimPath returns SCIMPath without a trailing slash, or /admin/v1.
func (c Config) scimPath() string {
	p := strings.TrimRight(strings.TrimSpace(c.SCIMPath), "/")
	if p == "" {
		return sdkSCIMPath
	}
	return p
}

// DefaultConfig returns the defaults: client credentials with the
// __myscopes__ scope, free-tier limits, 30s per request, 6 attempts with
// 500ms..30s backoff, a breaker opening after 10 consecutive failures for 30s.
// URL, ClientID and ClientSecret have no default.
func DefaultConfig() Config {
	return Config{
		Auth:    AuthClientCredentials,
		Scope:   DefaultScope,
		Tier:    TierFree,
		Timeout: 30 * time.Second,
		Retry:   defaultRetry,
		Breaker: BreakerConfig{Failures: 10, Cooldown: 30 * time.Second},

		SCIMPath:          sdkSCIMPath,
		DiscoveryInterval: DefaultDiscoveryInterval,
	}
}

// defaultRetry is DefaultConfig's retry: 6 attempts, 500ms..30s backoff.
var defaultRetry = RetryConfig{MaxAttempts: 6, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second}

// Validate reports every problem in c, one per line; each names its yaml key
// (relative to the domain entry) and the fix.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if _, err := domainURL.Normalize(c.URL); err != nil {
		bad("url: %v", err)
	}
	errs = append(errs, c.validateAuth()...)
	if strings.TrimSpace(c.Scope) == "" && c.Auth != AuthStatic {
		bad("scope: empty; use %s (the default) or the scopes the application needs", DefaultScope)
	}
	if _, ok := tierLimits[c.Tier]; !ok {
		bad("tier: %q is not a domain type: use free, oracle_apps, oracle_apps_premium, premium or external_user", c.Tier)
	}
	if c.Timeout <= 0 {
		bad("timeout: %v; set a positive duration for one request (default 30s)", c.Timeout)
	}
	errs = append(errs, c.Retry.Validate(defaultRetry)...)
	if c.Breaker.Failures < 1 {
		bad("breaker.failures: %d; set at least 1 consecutive failure (default 10)", c.Breaker.Failures)
	}
	if c.Breaker.Cooldown <= 0 {
		bad("breaker.cooldown: %v; set a positive duration (default 30s)", c.Breaker.Cooldown)
	}
	if p := strings.TrimSpace(c.SCIMPath); p != "" {
		if u, err := url.Parse(p); err != nil || !strings.HasPrefix(p, "/") || u.RawQuery != "" || u.Fragment != "" || u.Host != "" || strings.Contains(p, "..") {
			bad("scim_path: %q is not a path; write the SCIM API's path under url, e.g. /admin/v1 (the default) or /scim/v2", c.SCIMPath)
		}
	}
	if c.DiscoveryInterval < 0 {
		bad("discovery_interval: %v; set a positive duration (default 1h)", c.DiscoveryInterval)
	}
	return errors.Join(errs...)
}

// validateAuth checks the credentials the auth mode needs, and that none
// it does not use are set.
func (c Config) validateAuth() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Auth {
	case AuthClientCredentials:
		if strings.TrimSpace(c.ClientID) == "" {
			bad("client_id: empty; set the client id of the domain's confidential application")
		}
		if err := c.ClientSecret.Require("client_secret", "set a reference to the application's secret (env:NAME, file:/path or vault:<secret ocid>)"); err != nil {
			errs = append(errs, err)
		}
		if !c.StaticToken.IsZero() {
			bad("static_token: only used with auth static; remove it or set auth: static")
		}
	case AuthResourcePrincipal:
		if c.ClientID != "" || !c.ClientSecret.IsZero() || !c.StaticToken.IsZero() {
			bad("auth: resource_principal uses the OCI resource principal, not client_id, client_secret or static_token; remove them or set auth: client_credentials")
		}
	case AuthStatic:
		if err := c.StaticToken.Require("static_token", "set a reference to a bearer token (env:NAME or file:/path), or use auth: client_credentials"); err != nil {
			errs = append(errs, err)
		}
		if !c.ClientSecret.IsZero() {
			bad("client_secret: not used with auth static; remove it or set auth: client_credentials")
		}
	default:
		bad("auth: %q is not an authentication mode: use client_credentials, resource_principal or static", c.Auth)
	}
	return errs
}

// domainURL is the form of Config.URL: a domain URL, normalized to
// scheme://host[:port], the form the SDK accepts as its Host.
var domainURL = apiclient.URLForm{Name: "domain URL", Example: "https://idcs-<id>.identity.oraclecloud.com",
	Credentials: "client_id and client_secret",
	Base: func(u *url.URL, raw string) (string, error) {
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("%q has a path, query or fragment; give only the domain URL (without /admin/v1)", raw)
		}
		return u.Scheme + "://" + u.Host, nil
	}}
