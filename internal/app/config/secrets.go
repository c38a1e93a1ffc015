package config

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/iamflow/iamflow/internal/secret"
)

// Secrets is how secret references that need more than the process's
// environment and files are read: today vault:<secret ocid>, through the OCI
// Secrets API.
type Secrets struct {
	// Vault is how vault: references are read. Leave it out and vault:
	// references are refused; set auth to enable them.
	Vault secret.VaultConfig `yaml:"vault"`
}

// VaultConfigured reports whether any secrets.vault setting is given, which
// makes vault: references usable (and auth required).
func (s Secrets) VaultConfigured() bool { return s.Vault != (secret.VaultConfig{}) }

// validate checks the section when it is given.
func (s Secrets) validate() error {
	if !s.VaultConfigured() {
		return nil
	}
	if err := s.Vault.Validate(); err != nil {
		var errs []string
		for _, p := range strings.Split(strings.TrimPrefix(err.Error(), "vault config: "), "; ") {
			errs = append(errs, "secrets.vault."+p)
		}
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// CheckSecrets resolves every env: and file: secret reference, reading
// environment variables through lookup, and checks that the admin token and
// the webhook password are strong enough; it reports every problem at once,
// each naming its key ("admin.token: secret env:X: environment variable X is
// not set"). vault: references are checked for form only: reading them
// needs OCI. In dev mode the admin token is not used, so not checked.
func (c *Config) CheckSecrets(ctx context.Context, lookup func(string) (string, bool)) error {
	var errs []error
	walkSecretRefs(reflect.ValueOf(c).Elem(), "", func(key string, ref secret.Ref) {
		if ref.IsZero() || ref.Scheme() == "vault" || ref.Validate() != nil {
			return // empty, read from OCI Vault, or already reported by Validate
		}
		if key == "admin.token" && c.Dev {
			return
		}
		v, err := secret.ResolveWith(ctx, ref, lookup)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return
		}
		if key == "admin.token" || key == "ingest.password" || key == "ingest.previous_password" {
			if err := secret.CheckStrength(key, v); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}
