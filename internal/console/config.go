package console

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultSessionTTL  = 8 * time.Hour
	DefaultIdleTimeout = 30 * time.Minute
	// MinSessionTTL is the shortest session that can be configured.
	MinSessionTTL = time.Minute
)

// Config is the admin.console section of the configuration.
type Config struct {
	// Disabled turns the console off: the admin HTTP listener then answers
	// 404 at / as before.
	Disabled bool `yaml:"disabled"`
	// SessionTTL is how long a sign-in lasts, however busy (default 8h).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// IdleTimeout ends a session nobody used for this long (default 30m;
	// an open console page keeps its session in use).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// TraceURL links an audit record or a dead letter to its trace in a
	// trace viewer: {trace_id} is replaced by the trace id, e.g.
	// http://127.0.0.1:16686/trace/{trace_id} for Jaeger. Empty: the trace
	// id is shown as text.
	TraceURL string `yaml:"trace_url"`
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = min(DefaultIdleTimeout, c.SessionTTL)
	}
	return c
}

// Validate reports every problem, each naming its key relative to the
// console section.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if c.SessionTTL < MinSessionTTL {
		errs = append(errs, fmt.Errorf("session_ttl: %v is shorter than %v; a sign-in must last long enough to act (default %v)", c.SessionTTL, MinSessionTTL, DefaultSessionTTL))
	}
	if c.IdleTimeout < 0 || c.IdleTimeout > c.SessionTTL {
		errs = append(errs, fmt.Errorf("idle_timeout: %v must be positive and at most session_ttl (%v); default %v", c.IdleTimeout, c.SessionTTL, DefaultIdleTimeout))
	}
	if c.TraceURL != "" {
		u, err := url.Parse(strings.ReplaceAll(c.TraceURL, "{trace_id}", "0"))
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("trace_url: %q is not an http(s) URL, e.g. http://127.0.0.1:16686/trace/{trace_id}", c.TraceURL))
		case !strings.Contains(c.TraceURL, "{trace_id}"):
			errs = append(errs, fmt.Errorf("trace_url: %q has no {trace_id} to replace, e.g. http://127.0.0.1:16686/trace/{trace_id}", c.TraceURL))
		case u.User != nil:
			errs = append(errs, errors.New("trace_url: must not carry user info (it is shown in pages)"))
		}
	}
	return errors.Join(errs...)
}
