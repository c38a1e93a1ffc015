package config

import (
	"bytes"
	"os"
	"testing"
)

// FuzzDecode: no configuration file, however malformed, makes loading or
// validating it panic; it is accepted or refused with an error.
func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile("../../../deploy/iamflow.example.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{"", "nats: {urls: [x]}", "domains:\n  - {name: a, client_id: b}", "capabilities:\n  rules:\n    - {name: r, match: {user_name: '('}}",
		"ingest: [1, 2]", "a: &a [*a]", "domains: {x: 1}", "nats:\n  streams:\n    duplicate_window: 1y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := Default()
		if err := decode(bytes.NewReader(b), &cfg); err != nil {
			return
		}
		cfg.fillDomainDefaults()
		cfg.Dev = true
		_ = cfg.Validate()
	})
}
