package testutil

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// DecodeYAMLStrict decodes a configuration section from src over base (the
// section's DefaultConfig) as internal/app/config reads a configuration
// file: unknown keys are errors.
func DecodeYAMLStrict[T any](src string, base T) (T, error) {
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&base)
	return base, err
}
