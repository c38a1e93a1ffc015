package testutil

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// DecodeYAMLStrict decodes src into v as internal/app/config reads a
// configuration file: unknown keys are errors.
func DecodeYAMLStrict(src string, v any) error {
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	return dec.Decode(v)
}
