package config

import (
	"fmt"
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
