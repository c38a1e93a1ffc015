// Package config is iamflow's one configuration file. Each section belongs to
// the package that uses it (bus.Config, admin.Config, ingest.Config, ...);
// this package composes them, applies defaults, environment overrides and
// validation, and names the full key in every error. It sits beside
// internal/app, the composition root: the only packages that know every
// service, so nothing below them imports one.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/oidc"
	"github.com/iamflow/iamflow/internal/scimserver"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/validate"
	"github.com/iamflow/iamflow/services/capabilities"
	"github.com/iamflow/iamflow/services/dbprovisioner"
	"github.com/iamflow/iamflow/services/expiry"
	"github.com/iamflow/iamflow/services/ingest"
	"github.com/iamflow/iamflow/services/replicator"
)

// Config is the whole iamflow configuration.
type Config struct {
	// NATS is the connection to NATS, or the embedded server, and the streams.
	NATS bus.Config `yaml:"nats"`
	// Admin is the gRPC and REST admin API every process serves.
	Admin admin.Config `yaml:"admin"`
	// Telemetry is logging; tracing is configured by the OTEL_* variables.
	Telemetry telemetry.Config `yaml:"telemetry"`
	// Domains are the identity domains iamflow knows.
	Domains []Domain `yaml:"domains"`
	// Ingest is the webhook OCI delivers events to.
	Ingest ingest.Config `yaml:"ingest"`
	// Replicator is the replication links between domains.
	Replicator replicator.Config `yaml:"replicator"`
	// Capabilities is the credential policy the capabilities service enforces.
	Capabilities capabilities.Config `yaml:"capabilities"`
	// Expiry is the temporary groups whose memberships revoke themselves.
	Expiry expiry.Config `yaml:"expiry"`
	// Dbprovisioner is the Autonomous Databases whose accounts and roles
	// follow IAM group membership.
	Dbprovisioner dbprovisioner.Config `yaml:"dbprovisioner"`
	// Secrets is how vault: secret references are read (OCI Vault).
	Secrets Secrets `yaml:"secrets"`
	// Login lets people call the admin API with their Identity Domain
	// login (OIDC), beside the admin token; see login.go.
	Login oidc.Config `yaml:"login"`

	// Dev is set by `iamflow dev`: the admin API needs no token.
	Dev bool `yaml:"-"`
}

// Domain is one identity domain.
type Domain struct {
	// Name is the short name used in subjects and config references
	// (lower-case letters, digits, '-' and '_').
	Name string `yaml:"name"`
	// OCIName is the domain's name in OCI (events carry it as domainName), e.g. "Default".
	OCIName string `yaml:"oci_name"`
	// ID is the domain's OCID (ocid1.domain...) or IDCS id, as events carry it in domainId.
	ID string `yaml:"id"`
	// Config is how iamflow calls the domain's REST API: url, auth,
	// client_id, client_secret, tier, limits, timeout, retry, breaker. Only
	// services that change or read the domain need it; ingest recognises a
	// domain's events by id, url or oci_name alone.
	identitydomain.Config `yaml:",inline"`
	// Push makes the domain a pushed source: an identity provider (Okta,
	// Entra ID) pushes it to ingest over SCIM, and iamflow's services read
	// it from there (push.go).
	Push *scimserver.Push `yaml:"push"`
}

// HasAPI reports whether the domain is configured for API access (a client
// id, a static token or the resource principal).
func (d Domain) HasAPI() bool {
	return d.Push != nil || d.ClientID != "" || !d.StaticToken.IsZero() || d.Auth == identitydomain.AuthResourcePrincipal
}

// Default returns a configuration that works with no file: an embedded NATS
// server and loopback listeners. Credentials still have to be given, except in
// dev mode.
func Default() Config {
	return Config{
		NATS:          bus.DefaultConfig(),
		Admin:         admin.DefaultConfig(),
		Telemetry:     telemetry.DefaultConfig(),
		Ingest:        ingest.DefaultConfig(),
		Replicator:    replicator.DefaultConfig(),
		Capabilities:  capabilities.DefaultConfig(),
		Expiry:        expiry.DefaultConfig(),
		Dbprovisioner: dbprovisioner.DefaultConfig(),
	}
}

// Load reads the file at path (none if empty) over the defaults, then applies
// environment overrides. It does not validate; call Validate.
func Load(path string, env func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		if err := decode(bytes.NewReader(b), &cfg); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if env == nil {
		env = os.LookupEnv
	}
	if err := applyEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	cfg.fillDomainDefaults()
	cfg.fillPushDefaults()
	return cfg, nil
}

// fillDomainDefaults gives each domain entry the API defaults where the file
// is silent (YAML decodes list entries from zero values, not from defaults).
func (c *Config) fillDomainDefaults() {
	for i := range c.Domains {
		fillZero(&c.Domains[i].Config, identitydomain.DefaultConfig())
	}
}

// decode reads YAML strictly: an unknown key is an error that names it.
func decode(r io.Reader, cfg *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Validate checks every section and returns all problems at once, one per
// line, each naming its key ("nats.streams.duplicate_window: ...").
func (c *Config) Validate() error {
	ingestCfg := c.Ingest
	if c.Dev && ingestCfg.Password.IsZero() {
		ingestCfg.Insecure = true // dev mode generates the webhook password
	}
	adminCfg := c.Admin
	adminCfg.Insecure = adminCfg.Insecure || c.Dev
	errs := []error{
		validate.Prefix("nats.", c.NATS.Validate()),
		validate.Prefix("admin.", adminCfg.Validate()),
		validate.Prefix("telemetry.", c.Telemetry.Validate()),
		validate.Prefix("ingest.", ingestCfg.Validate()),
		validate.Prefix("replicator.", c.Replicator.Validate()),
		validate.Prefix("capabilities.", c.Capabilities.Validate()),
		validate.Prefix("expiry.", c.Expiry.Validate()),
		c.Secrets.validate(),
	}
	if len(c.Dbprovisioner.Databases) > 0 {
		errs = append(errs, validate.Prefix("dbprovisioner.", c.DbprovisionerConfig().Validate()))
	}
	errs = append(errs, c.validateDomains()...)
	errs = append(errs, c.validatePushedDomains()...)
	errs = append(errs, c.validateCapabilityDomains()...)
	errs = append(errs, c.validateExpiryDomains()...)
	errs = append(errs, c.validateReplicatorDomains()...)
	errs = append(errs, c.validateDbprovisionerDomains()...)
	errs = append(errs, c.validateVaultPlaces()...)
	errs = append(errs, c.validateLogin()...)
	return errors.Join(errs...)
}

// validateVaultPlaces refuses vault: references where they cannot be read:
// only the DB provisioner's ORDS credentials are resolved through OCI Vault
// today. Everywhere else the process would accept the file and then fail to
// start.
func (c *Config) validateVaultPlaces() []error {
	var errs []error
	walkSecretRefs(reflect.ValueOf(c).Elem(), "", func(key string, ref secret.Ref) {
		if ref.Scheme() == "vault" && !strings.HasPrefix(key, "dbprovisioner.") {
			errs = append(errs, fmt.Errorf("%s: vault: references are read only for dbprovisioner ORDS credentials; write env:NAME or file:/path here", key))
		}
	})
	return errs
}

func (c *Config) validateDomains() []error {
	var errs []error
	seen := map[string]bool{}
	for i, d := range c.Domains {
		key := fmt.Sprintf("domains[%d]", i)
		if !event.ValidDomainName(d.Name) {
			errs = append(errs, fmt.Errorf("%s.name: %q must be 1-63 lower-case letters, digits, '-' or '_' (it is a NATS subject token)", key, d.Name))
		} else if seen[d.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", key, d.Name))
		}
		seen[d.Name] = true
		if d.Push != nil {
			continue // validatePushedDomains
		}
		switch {
		case d.HasAPI():
			if err := validate.Prefix(key+".", d.Config.Validate()); err != nil {
				errs = append(errs, err)
			}
		case d.URL != "":
			if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				errs = append(errs, fmt.Errorf("%s.url: %q is not a domain URL like https://idcs-<id>.identity.oraclecloud.com", key, d.URL))
			}
		}
		if d.URL == "" && d.OCIName == "" && d.ID == "" {
			errs = append(errs, fmt.Errorf("%s: give at least one of url, oci_name or id, so events from the domain can be recognised", key))
		}
	}
	return errs
}

// validateCapabilityDomains checks that the capabilities section names only
// configured domains.
func (c *Config) validateCapabilityDomains() []error {
	var errs []error
	known := func(key string, names []string) {
		for i, n := range names {
			if _, ok := c.Domain(n); !ok {
				errs = append(errs, fmt.Errorf("%s[%d]: %q is not a configured domain (domains[].name)", key, i, n))
			}
		}
	}
	known("capabilities.domains", c.Capabilities.Domains)
	for i, r := range c.Capabilities.Rules {
		known(fmt.Sprintf("capabilities.rules[%d] %q: match.domains", i, r.Name), r.Match.Domains)
	}
	return errs
}

// validateExpiryDomains checks that every temporary group lives in a
// configured domain iamflow can call: revoking needs the API.
func (c *Config) validateExpiryDomains() []error {
	var errs []error
	for i, g := range c.Expiry.Groups {
		key := fmt.Sprintf("expiry.groups[%d] %q: domain", i, g.Group)
		switch d, ok := c.Domain(g.Domain); {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: %q is not a configured domain (domains[].name)", key, g.Domain))
		case !d.HasAPI():
			errs = append(errs, fmt.Errorf("%s: domain %q has no API access configured (client_id, client_secret), and revoking needs it", key, g.Domain))
		}
	}
	return errs
}

// validateReplicatorDomains checks that every linked domain is configured
// with API access: the replicator reads sources and writes targets.
func (c *Config) validateReplicatorDomains() []error {
	var names []string
	for _, d := range c.Domains {
		names = append(names, d.Name)
	}
	errs := []error{validate.Prefix("replicator.", c.Replicator.CheckDomains(names))}
	for i, l := range c.Replicator.Links {
		for _, n := range append([]string{l.Source}, l.Targets...) {
			if d, ok := c.Domain(n); ok && !d.HasAPI() {
				errs = append(errs, fmt.Errorf("replicator.links[%d] %q: domain %q has no API access configured (client_id, client_secret)", i, l.Name, n))
			}
		}
	}
	return errs
}

// validateDbprovisionerDomains checks that every database's domain is
// configured with API access (the service reads users and groups from it),
// and that vault: credentials have secrets.vault to be read with.
func (c *Config) validateDbprovisionerDomains() []error {
	var errs []error
	for i, db := range c.Dbprovisioner.Databases {
		key := fmt.Sprintf("dbprovisioner.databases[%d] %q", i, db.Name)
		switch d, ok := c.Domain(db.Domain); {
		case db.Domain == "":
			// reported by the section's own validation
		case !ok:
			errs = append(errs, fmt.Errorf("%s: domain: %q is not a configured domain (domains[].name)", key, db.Domain))
		case !d.HasAPI():
			errs = append(errs, fmt.Errorf("%s: domain: %q has no API access configured (client_id, client_secret), and reading its users and groups needs it", key, db.Domain))
		}
		for _, r := range []struct {
			key string
			ref secret.Ref
		}{{"ords.client_secret", db.ORDS.ClientSecret}, {"ords.password", db.ORDS.Password}} {
			if r.ref.Scheme() == "vault" && !c.Secrets.VaultConfigured() {
				errs = append(errs, fmt.Errorf("%s: %s: a vault: reference needs secrets.vault (auth: resource_principal, instance_principal or config_file)", key, r.key))
			}
		}
	}
	return errs
}

// Domain returns the configured domain with that short name.
func (c *Config) Domain(name string) (Domain, bool) {
	for _, d := range c.Domains {
		if d.Name == name {
			return d, true
		}
	}
	return Domain{}, false
}

// DbprovisionerConfig is the dbprovisioner section as the service runs it:
// a database without principal_domain takes its domain's oci_name, the name
// Autonomous Database expects in IAM_PRINCIPAL_NAME (no prefix for the
// Default domain), never iamflow's short name for the domain.
func (c *Config) DbprovisionerConfig() dbprovisioner.Config {
	out := c.Dbprovisioner
	out.Databases = make([]dbprovisioner.DatabaseConfig, len(c.Dbprovisioner.Databases))
	for i, db := range c.Dbprovisioner.Databases {
		if d, ok := c.Domain(db.Domain); ok && db.PrincipalDomain == "" {
			db.PrincipalDomain = d.OCIName
		}
		out.Databases[i] = db
	}
	return out
}

// IngestDomains is the domain list in the form ingest matches events with.
func (c *Config) IngestDomains() []ingest.Domain {
	out := make([]ingest.Domain, 0, len(c.Domains))
	for _, d := range c.Domains {
		if d.Push != nil {
			continue // its events come from ingest's SCIM endpoint, not from OCI
		}
		out = append(out, ingest.Domain{Name: d.Name, OCIName: d.OCIName, ID: d.ID, URL: d.URL})
	}
	return out
}
