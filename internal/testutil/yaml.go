package testutil

import (
	"strings"
	"testing"

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

// DecodeValid is DecodeYAMLStrict for a section that must also pass its
// Validate; either failure fails t.
func DecodeValid[T interface{ Validate() error }](t testing.TB, src string, base T) T {
	t.Helper()
	cfg, err := DecodeYAMLStrict(src, base)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return cfg
}
