package config

import (
	"strings"
	"testing"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

func loadYAML(t *testing.T, yaml string) Config {
	t.Helper()
	cfg, err := loadFile(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dev = true
	return cfg
}

func TestPushedSourceIsReadThroughIngest(t *testing.T) {
	cfg := loadYAML(t, `
ingest: {listen: "0.0.0.0:8443"}
domains:
  - name: okta
    push: {token: env:OKTA_SCIM_TOKEN}
  - name: entra
    url: https://ingest.internal:8443
    push: {path: /scim/entra/, token: file:/etc/iamflow/entra-token}
replicator:
  links: [{name: l, source: okta, targets: [entra]}]
`)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	okta, _ := cfg.Domain("okta")
	if okta.URL != "http://127.0.0.1:8443" || okta.SCIMPath != "/scim/v2/okta" || okta.Auth != identitydomain.AuthStatic ||
		okta.StaticToken != "env:OKTA_SCIM_TOKEN" || okta.Limits.PerSecond != -1 || !okta.HasAPI() {
		t.Fatalf("okta = %+v", okta.Config)
	}
	entra, _ := cfg.Domain("entra")
	if entra.URL != "https://ingest.internal:8443" || entra.SCIMPath != "/scim/entra" {
		t.Fatalf("entra = %+v", entra.Config)
	}
	if got := cfg.IngestDomains(); len(got) != 0 {
		t.Fatalf("pushed sources among the OCI domains ingest recognises: %+v", got)
	}
}

func TestPushedSourceErrors(t *testing.T) {
	cfg := loadYAML(t, `
domains:
  - name: a
    push: {}
  - name: b
    client_id: x
    push: {path: /v1/events/b, token: env:B}
  - name: c
    push: {path: /scim/v2/a, token: "plain"}
`)
	err := cfg.Validate()
	for _, want := range []string{
		`domains[0] "a": push.token: required`,
		`domains[1] "b": a pushed source is no OCI domain: remove client_id`,
		`domains[1] "b": push.path: "/v1/events/b" overlaps ingest.path "/v1/events"`,
		`domains[2] "c": push.path: "/scim/v2/a" is also the path of "a"`,
		`domains[2] "c": push.token:`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v\nwant it to contain %s", err, want)
		}
	}
}
