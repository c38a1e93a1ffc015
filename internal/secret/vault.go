package secret

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/common/auth"
	"github.com/oracle/oci-go-sdk/v65/secrets"
)

// VaultAuth is how the Secrets client authenticates (docs/oci-sources.md §5).
type VaultAuth string

// The Vault authentication modes.
const (
	VaultAuthResourcePrincipal VaultAuth = "resource_principal"
	VaultAuthInstancePrincipal VaultAuth = "instance_principal"
	VaultAuthConfigFile        VaultAuth = "config_file"
)

// VaultConfig is how to read OCI Vault secrets.
type VaultConfig struct {
	// Auth is resource_principal, instance_principal or config_file.
	Auth VaultAuth `yaml:"auth"`
	// Profile is the config file profile (config_file). Default DEFAULT.
	Profile string `yaml:"profile"`
	// ConfigPath is the OCI config file (config_file). Default ~/.oci/config.
	ConfigPath string `yaml:"config_path"`
	// Region is the region of the vault, e.g. eu-frankfurt-1. Default: the
	// principal's or the config file's region.
	Region string `yaml:"region"`
	// Endpoint overrides the Secrets endpoint (tests, private endpoints):
	// scheme://host[:port], no path.
	Endpoint string `yaml:"endpoint"`
	// RefreshInterval is how long a secret is cached. Default 5m.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
}

// Validate reports problems in c, naming the yaml keys.
func (c VaultConfig) Validate() error {
	var errs []string
	switch c.Auth {
	case VaultAuthResourcePrincipal, VaultAuthInstancePrincipal:
		if c.Profile != "" || c.ConfigPath != "" {
			errs = append(errs, "profile, config_path: only used with auth config_file")
		}
	case VaultAuthConfigFile:
	default:
		errs = append(errs, fmt.Sprintf("auth: %q: use resource_principal, instance_principal or config_file", c.Auth))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
			errs = append(errs, fmt.Sprintf("endpoint: %q: give scheme://host[:port] without a path", c.Endpoint))
		}
	}
	if c.RefreshInterval < 0 {
		errs = append(errs, fmt.Sprintf("refresh_interval: %v: give a positive duration (default 5m)", c.RefreshInterval))
	}
	if len(errs) > 0 {
		return fmt.Errorf("vault config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// vaultReader reads secret bundles with the oci-go-sdk Secrets client.
type vaultReader struct {
	client  secrets.SecretsClient
	refresh time.Duration
}

func newVaultReader(cfg VaultConfig) (*vaultReader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var cp common.ConfigurationProvider
	var err error
	region := common.StringToRegion(cfg.Region)
	switch cfg.Auth {
	case VaultAuthResourcePrincipal:
		if cfg.Region != "" {
			cp, err = auth.ResourcePrincipalConfigurationProviderForRegion(region)
		} else {
			cp, err = auth.ResourcePrincipalConfigurationProvider()
		}
	case VaultAuthInstancePrincipal:
		if cfg.Region != "" {
			cp, err = auth.InstancePrincipalConfigurationProviderForRegion(region)
		} else {
			cp, err = auth.InstancePrincipalConfigurationProvider()
		}
	case VaultAuthConfigFile:
		path, profile := cfg.ConfigPath, cfg.Profile
		if path == "" {
			path = "~/.oci/config"
		}
		if profile == "" {
			profile = "DEFAULT"
		}
		cp, err = common.ConfigurationProviderFromFileWithProfile(path, profile, "")
	}
	if err != nil {
		return nil, fmt.Errorf("vault: auth %s: %w", cfg.Auth, err)
	}
	client, err := secrets.NewSecretsClientWithConfigurationProvider(cp)
	if err != nil {
		return nil, fmt.Errorf("vault: build the OCI Secrets client (auth %s): %w", cfg.Auth, err)
	}
	if cfg.Region != "" {
		client.SetRegion(cfg.Region)
	}
	if cfg.Endpoint != "" {
		client.Host = strings.TrimRight(cfg.Endpoint, "/")
	}
	// A few quick retries of 429, 5xx and network errors; a failed refresh
	// is tried again later anyway (the stale value is served meanwhile).
	policy := common.NewRetryPolicyWithOptions(
		common.WithMaximumNumberAttempts(3),
		common.WithShouldRetryOperation(common.DefaultShouldRetryOperation),
		common.WithExponentialBackoff(4*time.Second, 2),
	)
	client.Configuration.RetryPolicy = &policy
	refresh := cfg.RefreshInterval
	if refresh == 0 {
		refresh = DefaultRefreshInterval
	}
	return &vaultReader{client: client, refresh: refresh}, nil
}

// read fetches the current version of a secret and decodes its content.
// Errors name the OCID, never the content.
func (v *vaultReader) read(ctx context.Context, ocid string) (Value, error) {
	resp, err := v.client.GetSecretBundle(ctx, secrets.GetSecretBundleRequest{SecretId: common.String(ocid)})
	if err != nil {
		if se, ok := common.IsServiceError(err); ok {
			return Value{}, fmt.Errorf("vault: get secret bundle: HTTP %d %s: %s (opc-request-id %s)",
				se.GetHTTPStatusCode(), se.GetCode(), se.GetMessage(), se.GetOpcRequestID())
		}
		return Value{}, fmt.Errorf("vault: get secret bundle: %w", err)
	}
	switch c := resp.SecretBundleContent.(type) {
	case secrets.Base64SecretBundleContentDetails:
		if c.Content == nil || *c.Content == "" {
			return Value{}, fmt.Errorf("vault: %w: empty content", errVaultContent)
		}
		b, err := base64.StdEncoding.DecodeString(*c.Content)
		if err != nil {
			return Value{}, fmt.Errorf("vault: %w: content is not valid base64", errVaultContent)
		}
		if len(b) == 0 {
			return Value{}, fmt.Errorf("vault: %w: empty content", errVaultContent)
		}
		return Value{v: string(b)}, nil
	case nil:
		return Value{}, fmt.Errorf("vault: %w: the bundle has no content", errVaultContent)
	default:
		return Value{}, fmt.Errorf("vault: %w: content type %q, only BASE64 is supported", errVaultContent, contentType(c))
	}
}

// contentType reads the ContentType field of the SDK's unexported fallback
// type for unknown content types, without touching the content.
func contentType(c any) string {
	rv := reflect.ValueOf(c)
	if rv.Kind() == reflect.Struct {
		if f := rv.FieldByName("ContentType"); f.IsValid() && f.Kind() == reflect.String {
			s := f.String()
			if len(s) > 40 {
				s = s[:40]
			}
			return s
		}
	}
	return "unknown"
}
