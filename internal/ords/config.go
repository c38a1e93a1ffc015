package ords

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/apiclient"
	"github.com/iamflow/iamflow/internal/secret"
)

// AuthMode is how the client authenticates to ORDS.
type AuthMode string

// The authentication modes.
const (
	// AuthOAuth is the ORDS OAuth client credentials grant: POST
	// <base>/oauth/token with HTTP Basic client_id:client_secret, then
	// "Authorization: Bearer <token>" (docs/oci-sources.md §6). The default.
	AuthOAuth AuthMode = "oauth"
	// AuthBasic sends HTTP Basic user:password with every request (the
	// schema user of a REST-enabled schema).
	AuthBasic AuthMode = "basic"
)

// RetryConfig bounds the retries of one request (one call is one page). A
// Retry-After header raises the wait, up to MaxDelay.
type RetryConfig = apiclient.RetryConfig

// DefaultPageSize is the "limit" sent with every query page.
const DefaultPageSize = 10000

// Config is how to reach one database's ORDS. Start from DefaultConfig:
// zero values are invalid, not defaults.
type Config struct {
	// URL is the ORDS base URL of the REST-enabled schema,
	// https://host/ords/<alias> (a trailing / is accepted). http:// is
	// accepted only for loopback hosts (emulators).
	URL string `yaml:"url"`
	// Auth is oauth (default) or basic.
	Auth AuthMode `yaml:"auth"`
	// ClientID is the ORDS OAuth client id (auth oauth).
	ClientID string `yaml:"client_id"`
	// ClientSecret references the OAuth client secret (auth oauth).
	ClientSecret secret.Ref `yaml:"client_secret"`
	// User is the schema user (auth basic).
	User string `yaml:"user"`
	// Password references the schema user's password (auth basic).
	Password secret.Ref `yaml:"password"`
	// Timeout bounds one HTTP request, response body included. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConcurrency is the most requests in flight to this database at once.
	// ORDS on Autonomous Database has a small fixed connection pool; default 2.
	MaxConcurrency int `yaml:"max_concurrency"`
	// PageSize is the "limit" of each query page. Default 10000.
	PageSize int `yaml:"page_size"`
	// Retry bounds retries of retryable failures (see Retryable).
	Retry RetryConfig `yaml:"retry"`
}

// DefaultConfig returns the defaults: oauth, 60s per request, 2 requests in
// flight, pages of 10000 rows, 5 attempts with 250ms..10s backoff. URL and
// the credentials have no default.
func DefaultConfig() Config {
	return Config{
		Auth:           AuthOAuth,
		Timeout:        60 * time.Second,
		MaxConcurrency: 2,
		PageSize:       DefaultPageSize,
		Retry:          defaultRetry,
	}
}

// defaultRetry is DefaultConfig's retry: 5 attempts, 250ms..10s backoff.
var defaultRetry = RetryConfig{MaxAttempts: 5, BaseDelay: 250 * time.Millisecond, MaxDelay: 10 * time.Second}

// Validate reports every problem in c, one per line, each naming its yaml key
// and the fix. It never prints a secret reference's content beyond what
// secret.Ref.Validate prints.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, err := normalizeBaseURL(c.URL); err != nil {
		bad("url: %v", err)
	}
	checkRef := func(key string, r secret.Ref, what string) {
		if err := r.Require(key, "set a reference to the "+what+" (env:NAME, file:/path or vault:<secret ocid>)"); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Auth {
	case AuthOAuth:
		if strings.TrimSpace(c.ClientID) == "" {
			bad("client_id: empty; set the ORDS OAuth client id (user_ords_clients.client_id)")
		}
		checkRef("client_secret", c.ClientSecret, "OAuth client secret")
		if c.User != "" || !c.Password.IsZero() {
			bad("user, password: only used with auth basic; remove them or set auth: basic")
		}
	case AuthBasic:
		if strings.TrimSpace(c.User) == "" || strings.Contains(c.User, ":") {
			bad("user: %q; set the REST-enabled schema user (no ':')", c.User)
		}
		checkRef("password", c.Password, "schema user's password")
		if c.ClientID != "" || !c.ClientSecret.IsZero() {
			bad("client_id, client_secret: only used with auth oauth; remove them or set auth: oauth")
		}
	default:
		bad("auth: %q is not an authentication mode: use oauth or basic", c.Auth)
	}
	if c.Timeout <= 0 {
		bad("timeout: %v; set a positive duration for one request (default 60s)", c.Timeout)
	}
	if c.MaxConcurrency < 1 {
		bad("max_concurrency: %d; set at least 1 (default 2: ORDS on Autonomous Database has a small pool)", c.MaxConcurrency)
	}
	if c.PageSize < 1 {
		bad("page_size: %d; set at least 1 (default %d)", c.PageSize, DefaultPageSize)
	}
	errs = append(errs, c.Retry.Validate(defaultRetry)...)
	return errors.Join(errs...)
}

// normalizeBaseURL checks an ORDS base URL and returns it without a trailing slash.
// Its errors quote the URL without the spaces around it.
func normalizeBaseURL(raw string) (string, error) {
	return schemaURL.Normalize(strings.TrimSpace(raw))
}

// schemaURL is the form of Config.URL: the base URL of a REST-enabled
// schema, https://host/ords/<alias>.
var schemaURL = apiclient.URLForm{Name: "ORDS base URL", Example: "https://host/ords/<alias>",
	Credentials: "auth with client_id/client_secret or user/password",
	Base: func(u *url.URL, raw string) (string, error) {
		if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			return "", fmt.Errorf("%q has a query or fragment; give https://host/ords/<alias>", raw)
		}
		p := strings.TrimRight(u.Path, "/")
		if p == "" || strings.HasSuffix(p, "/_/sql") || strings.HasSuffix(p, "/oauth/token") {
			return "", fmt.Errorf("%q: give the schema's base URL, https://host/ords/<alias>, without /_/sql or /oauth/token", raw)
		}
		return u.Scheme + "://" + u.Host + p, nil
	}}
