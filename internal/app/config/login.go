package config

import (
	"fmt"
	"strings"

	"github.com/iamflow/iamflow/internal/oidc"
	"github.com/iamflow/iamflow/internal/validate"
)

// validateLogin checks the login section and that its domain is one iamflow
// can read people from: configured, with a url and API credentials (groups
// are read from it).
func (c *Config) validateLogin() []error {
	if err := c.Login.Validate(); err != nil {
		return []error{validate.Prefix("login.", err)}
	}
	if !c.Login.Enabled() {
		return nil
	}
	d, ok := c.Domain(c.Login.Domain)
	switch {
	case !ok:
		names := make([]string, 0, len(c.Domains))
		for _, d := range c.Domains {
			names = append(names, d.Name)
		}
		return []error{fmt.Errorf("login.domain: %q is not among the domains (%s)", c.Login.Domain, strings.Join(names, ", "))}
	case !d.HasAPI():
		return []error{fmt.Errorf("login.domain: domain %q has no API access (url, client_id, client_secret): iamflow reads a person's groups from it", d.Name)}
	}
	return nil
}

// LoginConfig is the login section with what the login domain implies: the
// tenant check against its IDCS id when it has one.
func (c *Config) LoginConfig() (cfg oidc.Config, domainURL string) {
	cfg = c.Login.WithDefaults()
	d, ok := c.Domain(c.Login.Domain)
	if !ok {
		return cfg, ""
	}
	if cfg.Tenant == "" && strings.HasPrefix(d.ID, "idcs-") && len(d.ID) == len("idcs-")+32 {
		cfg.Tenant = d.ID
	}
	return cfg, d.URL
}
