package identitydomain_test

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

func TestConfigYAML(t *testing.T) {
	t.Parallel()
	cfg := identitydomain.DefaultConfig()
	doc := `
url: https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com:443/
client_id: abc
client_secret: env:IDCS_SECRET
tier: premium
limits: {per_second: 60, token_per_minute: 100}
timeout: 10s
retry: {max_attempts: 3, base_delay: 250ms, max_delay: 5s}
breaker: {failures: 5, cooldown: 1m}
`
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cfg.Scope != identitydomain.DefaultScope || cfg.Auth != identitydomain.AuthClientCredentials ||
		cfg.Timeout != 10*time.Second || cfg.Retry.BaseDelay != 250*time.Millisecond || cfg.Breaker.Cooldown != time.Minute {
		t.Errorf("decoded = %+v", cfg)
	}
	want := identitydomain.Limits{PerSecond: 60, PerMinute: 5000, TokenPerSecond: 65, TokenPerMinute: 100, BulkPerSecond: 5, BulkPerMinute: 200}
	if got := cfg.Limits.Effective(cfg.Tier); got != want {
		t.Errorf("effective limits = %+v, want %+v", got, want)
	}
	if l, ok := identitydomain.TierLimits(identitydomain.TierFree); !ok || l.PerSecond != 20 || l.PerMinute != 150 || l.TokenPerSecond != 10 {
		t.Errorf("free tier = %+v", l)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() identitydomain.Config {
		c := identitydomain.DefaultConfig()
		c.URL = "https://idcs-x.identity.oraclecloud.com"
		c.ClientID = "abc"
		c.ClientSecret = "env:IDCS_SECRET"
		return c
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*identitydomain.Config)
		want string
	}{
		{"no url", func(c *identitydomain.Config) { c.URL = "" }, "url: empty"},
		{"path in url", func(c *identitydomain.Config) { c.URL += "/admin/v1" }, "url: "},
		{"http to remote", func(c *identitydomain.Config) { c.URL = "http://idcs-x.identity.oraclecloud.com" }, "use https"},
		{"http to loopback", func(c *identitydomain.Config) { c.URL = "http://127.0.0.1:8080" }, ""},
		{"userinfo", func(c *identitydomain.Config) { c.URL = "https://u:p@idcs-x.example" }, "credentials in the URL"},
		{"bad auth", func(c *identitydomain.Config) { c.Auth = "basic" }, "auth: \"basic\""},
		{"no client id", func(c *identitydomain.Config) { c.ClientID = "" }, "client_id: empty"},
		{"no secret", func(c *identitydomain.Config) { c.ClientSecret = "" }, "client_secret: empty"},
		{"literal secret", func(c *identitydomain.Config) { c.ClientSecret = "hunter2" }, "client_secret: not a secret reference"},
		{"static without token", func(c *identitydomain.Config) {
			c.Auth, c.ClientSecret = identitydomain.AuthStatic, ""
		}, "static_token: empty"},
		{"rp with secret", func(c *identitydomain.Config) { c.Auth = identitydomain.AuthResourcePrincipal }, "auth: resource_principal uses"},
		{"no scope", func(c *identitydomain.Config) { c.Scope = " " }, "scope: empty"},
		{"bad tier", func(c *identitydomain.Config) { c.Tier = "gold" }, "tier: \"gold\""},
		{"timeout", func(c *identitydomain.Config) { c.Timeout = 0 }, "timeout: 0s"},
		{"attempts", func(c *identitydomain.Config) { c.Retry.MaxAttempts = 0 }, "retry.max_attempts: 0"},
		{"base delay", func(c *identitydomain.Config) { c.Retry.BaseDelay = 0 }, "retry.base_delay"},
		{"max delay", func(c *identitydomain.Config) { c.Retry.MaxDelay = time.Millisecond }, "retry.max_delay"},
		{"failures", func(c *identitydomain.Config) { c.Breaker.Failures = 0 }, "breaker.failures: 0"},
		{"cooldown", func(c *identitydomain.Config) { c.Breaker.Cooldown = -time.Second }, "breaker.cooldown"},
	} {
		c := valid()
		tc.edit(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error reveals the literal secret", tc.name)
		}
	}
	// Every problem is reported, one per line.
	c := identitydomain.Config{}
	err := c.Validate()
	if err == nil || strings.Count(err.Error(), "\n") < 6 {
		t.Errorf("zero config: %v", err)
	}
}

func TestConfigSCIMPathAndDiscovery(t *testing.T) {
	t.Parallel()
	base := identitydomain.DefaultConfig()
	base.URL, base.ClientID, base.ClientSecret = "https://idcs-0123.identity.oraclecloud.com", "id", "env:X"
	for _, tc := range []struct {
		path string
		ok   bool
	}{{"", true}, {"/admin/v1", true}, {"/scim/v2/", true}, {"scim/v2", false}, {"/scim?x=1", false}, {"/a/../b", false}, {"//host/x", false}} {
		c := base
		c.SCIMPath = tc.path
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("scim_path %q: %v", tc.path, err)
		} else if err != nil && !strings.Contains(err.Error(), "scim_path") {
			t.Errorf("scim_path %q: error does not name the key: %v", tc.path, err)
		}
	}
	c := base
	c.DiscoveryInterval = -time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "discovery_interval") {
		t.Errorf("negative discovery_interval: %v", err)
	}
}
