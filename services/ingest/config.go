package ingest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
)

// Config is the ingest section of the iamflow configuration.
type Config struct {
	// Listen is the webhook's address. It defaults to loopback: put a TLS
	// load balancer or OCI API Gateway in front, or set tls and 0.0.0.0.
	Listen string `yaml:"listen"`
	// Path is where OCI posts events.
	Path string `yaml:"path"`
	// Username and Password are the HTTP Basic credentials OCI Notifications
	// sends (they are part of the subscription URL). Password is a secret reference.
	Username string     `yaml:"username"`
	Password secret.Ref `yaml:"password"`
	// PreviousPassword, while set, is accepted besides Password: the password
	// being rotated out. A Notifications subscription's URL cannot be changed,
	// so rotating means a second subscription with the new password; both
	// deliver until the old one is deleted (docs/oci-setup.md). A secret
	// reference; remove it once the old subscription is gone.
	PreviousPassword secret.Ref `yaml:"previous_password"`
	// TLS serves HTTPS directly when both files are set; they are read
	// again when they change.
	TLS TLSConfig `yaml:"tls"`
	// MaxBodyBytes bounds a request body; larger bodies get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// PublishTimeout bounds how long a request waits for JetStream to
	// acknowledge its events before answering 503.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// RetryAfter is the Retry-After sent with 503.
	RetryAfter time.Duration `yaml:"retry_after"`
	// Confirm governs Notifications subscription confirmations.
	Confirm ConfirmConfig `yaml:"confirm"`

	// Insecure turns Basic auth off. Only tests set it; it is not a YAML key.
	Insecure bool `yaml:"-"`
}

// TLSConfig names a certificate and key in PEM files.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// ConfirmConfig governs how subscription confirmation URLs are handled. The
// URL comes from the request, so fetching it is a server-side request forgery
// surface: only HTTPS URLs on allowed hosts are fetched, redirects to other
// hosts are refused, and anything else is logged for an operator to confirm.
type ConfirmConfig struct {
	// Auto fetches allowed confirmation URLs. When false, every URL is only logged.
	Auto bool `yaml:"auto"`
	// AllowedHosts are host patterns: "example.com" matches that host only,
	// "*.example.com" any host below it (not example.com itself).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Timeout bounds one confirmation fetch.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the defaults: loopback listener, /v1/events, 1 MiB
// bodies, 5 s publish deadline, automatic confirmation on OCI's hosts.
func DefaultConfig() Config {
	return Config{
		Listen:         "127.0.0.1:8080",
		Path:           "/v1/events",
		Username:       "iamflow",
		MaxBodyBytes:   1 << 20,
		PublishTimeout: 5 * time.Second,
		RetryAfter:     30 * time.Second,
		Confirm: ConfirmConfig{
			Auto: true,
			// OCI's commercial, government and sovereign realms.
			AllowedHosts: []string{"*.oraclecloud.com", "*.oraclegovcloud.com", "*.oraclegovcloud.uk", "*.oraclecloud8.com"},
			Timeout:      10 * time.Second,
		},
	}
}

// Validate checks the section; error messages name the key under "ingest".
func (c Config) Validate() error { return c.validate(false) }

// validate checks the section; passwordGiven means the password comes from
// WithPassword (dev mode) rather than from a reference.
func (c Config) validate(passwordGiven bool) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port (e.g. 127.0.0.1:8080 or :8443)", c.Listen)
	}
	if !strings.HasPrefix(c.Path, "/") {
		add("path: %q must start with /", c.Path)
	}
	if !c.Insecure {
		if c.Username == "" {
			add("username: required (OCI sends it in the subscription URL)")
		}
		if c.Password.IsZero() && !passwordGiven {
			add("password: required, e.g. env:IAMFLOW_WEBHOOK_PASSWORD (or run iamflow dev)")
		} else if err := c.Password.Validate(); err != nil && !c.Password.IsZero() {
			add("password: %v", err)
		}
		if err := c.PreviousPassword.Validate(); err != nil && !c.PreviousPassword.IsZero() {
			add("previous_password: %v", err)
		} else if !c.PreviousPassword.IsZero() && c.PreviousPassword == c.Password {
			add("previous_password: the same reference as password; point it at the old password, or remove it")
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls: set both cert_file and key_file, or neither")
	}
	if c.MaxBodyBytes < 1024 {
		add("max_body_bytes: %d is too small; OCI Notifications messages are up to 64 KiB (default 1048576)", c.MaxBodyBytes)
	}
	if c.PublishTimeout <= 0 {
		add("publish_timeout: must be positive (default 5s)")
	}
	if c.RetryAfter < time.Second {
		add("retry_after: must be at least 1s (default 30s)")
	}
	if c.Confirm.Timeout <= 0 {
		add("confirm.timeout: must be positive (default 10s)")
	}
	for i, h := range c.Confirm.AllowedHosts {
		if err := validHostPattern(h); err != nil {
			add("confirm.allowed_hosts[%d]: %v", i, err)
		}
	}
	return errors.Join(errs...)
}

func validHostPattern(p string) error {
	h := strings.TrimPrefix(p, "*.")
	if h == "" || strings.ContainsAny(h, "*/:@ ") || !strings.Contains(h, ".") {
		return fmt.Errorf("%q is not a host name or *.domain pattern", p)
	}
	return nil
}

// hostAllowed reports whether host matches one of the patterns.
func hostAllowed(host string, patterns []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range patterns {
		p = strings.ToLower(p)
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}
