package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestExampleFileIsValid(t *testing.T) {
	cfg, err := Load("../../../deploy/iamflow.example.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the documented example does not validate:\n%v", err)
	}
	if len(cfg.Domains) != 3 || cfg.Domains[0].Name != "hub" || !cfg.Domains[0].HasAPI() || cfg.Domains[1].HasAPI() || !cfg.Domains[2].HasAPI() {
		t.Fatalf("domains = %+v", cfg.Domains)
	}
	if l := cfg.Replicator.Links; len(l) != 1 || l[0].Source != "hub" || l[0].Targets[0] != "spoke-eu" || l[0].Groups.Exclude[0] != "(?i)break-glass.*" {
		t.Fatalf("replicator links = %+v", l)
	}
	if cfg.NATS.Streams.DuplicateWindow != 2*time.Hour+15*time.Minute {
		t.Fatalf("duplicate_window = %v", cfg.NATS.Streams.DuplicateWindow)
	}
}

func TestDefaultsValidInDevMode(t *testing.T) {
	cfg, err := Load("", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dev = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("dev defaults do not validate: %v", err)
	}
	cfg.Dev = false
	err = cfg.Validate()
	for _, want := range []string{"admin.token", "ingest.password"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("outside dev mode, Validate() = %v, want an error naming %s", err, want)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg, err := Load("", envMap(map[string]string{
		"IAMFLOW_NATS_URL":                              "nats://a:4222, nats://b:4222",
		"IAMFLOW_INGEST_MAX_BODY_BYTES":                 "2048",
		"IAMFLOW_INGEST_PUBLISH_TIMEOUT":                "2s",
		"IAMFLOW_INGEST_CONFIRM_AUTO":                   "false",
		"IAMFLOW_ADMIN_TOKEN":                           "env:MY_TOKEN",
		"IAMFLOW_NATS_STREAMS_DUPLICATE_WINDOW":         "3h",
		"IAMFLOW_CAPABILITIES_DEFAULT_CAN_USE_API_KEYS": "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.NATS.URLs, "|"); got != "nats://a:4222|nats://b:4222" {
		t.Errorf("nats.urls = %q", got)
	}
	if cfg.Ingest.MaxBodyBytes != 2048 || cfg.Ingest.PublishTimeout != 2*time.Second || cfg.Ingest.Confirm.Auto {
		t.Errorf("ingest = %+v", cfg.Ingest)
	}
	if cfg.Admin.Token != "env:MY_TOKEN" {
		t.Errorf("admin.token = %q", cfg.Admin.Token)
	}
	if f := cfg.Capabilities.Default.CanUseAPIKeys; f == nil || *f {
		t.Errorf("capabilities.default.can_use_api_keys = %v, want false", f)
	}
	if cfg.NATS.Streams.DuplicateWindow != 3*time.Hour {
		t.Errorf("duplicate_window = %v", cfg.NATS.Streams.DuplicateWindow)
	}
}

func TestEnvOverrideErrorsNameTheVariable(t *testing.T) {
	for name, val := range map[string]string{
		"IAMFLOW_INGEST_MAX_BODY_BYTES":  "lots",
		"IAMFLOW_INGEST_PUBLISH_TIMEOUT": "5",
		"IAMFLOW_INGEST_CONFIRM_AUTO":    "maybe",
	} {
		_, err := Load("", envMap(map[string]string{name: val}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v does not name the variable", name, val, err)
		}
	}
}

func TestEnvNames(t *testing.T) {
	names := strings.Join(EnvNames(), " ")
	for _, want := range []string{"IAMFLOW_NATS_URLS", "IAMFLOW_INGEST_PASSWORD", "IAMFLOW_ADMIN_GRPC_ADDR", "IAMFLOW_INGEST_CONFIRM_ALLOWED_HOSTS"} {
		if !strings.Contains(names, want) {
			t.Errorf("EnvNames() lacks %s", want)
		}
	}
	if strings.Contains(names, "IAMFLOW_DOMAINS") {
		t.Errorf("EnvNames() lists domains, which are file-only")
	}
}

func TestValidationNamesTheKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown key", "ingest:\n  listne: :8080\n", "field listne not found"},
		{"bad domain name", "domains:\n  - name: Hub One\n    oci_name: Default\n", `domains[0].name: "Hub One"`},
		{"duplicate domain", "domains:\n  - {name: a, oci_name: A}\n  - {name: a, oci_name: B}\n", `domains[1].name: "a" is used twice`},
		{"domain url with path", "domains:\n  - {name: a, url: 'https://idcs-x.identity.oraclecloud.com/admin/v1'}\n", "domains[0].url"},
		{"unrecognisable domain", "domains:\n  - {name: a}\n", "domains[0]: give at least one of url, oci_name or id"},
		{"literal password", "ingest:\n  password: hunter2\n", "ingest.password: not a secret reference"},
		{"short duplicate window", "nats:\n  streams:\n    duplicate_window: 10m\n", "nats.streams.duplicate_window"},
		{"bad listen", "ingest:\n  listen: eight-thousand\n", "ingest.listen"},
		{"api without secret", "domains:\n  - {name: a, url: 'https://idcs-x.identity.oraclecloud.com', client_id: abc}\n", "domains[0].client_secret: empty"},
		{"api with bad tier", "domains:\n  - {name: a, url: 'https://idcs-x.identity.oraclecloud.com', client_id: abc, client_secret: env:X, tier: gold}\n", `domains[0].tier: "gold"`},
		{"unknown domain key", "domains:\n  - {name: a, oci_name: A, clientid: abc}\n", "field clientid not found"},
		{"capabilities bad pattern", "capabilities:\n  rules:\n    - name: admins\n      match: {user_name: '('}\n      set: {can_use_api_keys: true}\n", `capabilities.rules[0] "admins": match.user_name: "(" is not a valid pattern`},
		{"capabilities unknown flag", "capabilities:\n  default: {can_use_api_keyz: false}\n", "can_use_api_keyz"},
		{"capabilities unknown domain", "capabilities:\n  domains: [nope]\n", `capabilities.domains[0]: "nope" is not a configured domain`},
		{"capabilities rule domain", "domains:\n  - {name: a, oci_name: A}\ncapabilities:\n  rules:\n    - name: r1\n      match: {domains: [b]}\n      set: {can_use_api_keys: false}\n", `capabilities.rules[0] "r1": match.domains[0]: "b" is not a configured domain`},
		{"bad allowed host", "ingest:\n  confirm:\n    allowed_hosts: ['http://x']\n", "ingest.confirm.allowed_hosts[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadDev(t, tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error reveals a literal secret: %v", err)
			}
		})
	}
}

// loadDev writes yaml to a file, loads it and validates it in dev mode; the
// error is Load's or else Validate's.
func loadDev(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	cfg, err := loadFile(t, yaml)
	if err != nil {
		return cfg, err
	}
	cfg.Dev = true
	err = cfg.Validate()
	return cfg, err
}

// loadFile writes yaml to a file and loads it, with no environment.
func loadFile(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path, envMap(nil))
}

func TestDomainDefaultsAreFilledPerEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("domains:\n  - {name: a, url: 'https://idcs-x.identity.oraclecloud.com', client_id: abc, client_secret: env:X, retry: {max_attempts: 2}}\n"), 0o600)
	cfg, err := Load(path, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Domains[0]
	if d.Tier != "free" || d.Timeout != 30*time.Second || d.Retry.MaxAttempts != 2 || d.Retry.BaseDelay != 500*time.Millisecond || d.Scope == "" {
		t.Fatalf("defaults not filled around the given values: %+v", d.Config)
	}
	cfg.Dev = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid domain rejected: %v", err)
	}
}

func TestReplicatorLinksNeedConfiguredDomainsWithAPI(t *testing.T) {
	cfg, err := Load("../../../deploy/iamflow.example.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Replicator.Links[0].Targets = []string{"spoke", "nowhere"}
	err = cfg.Validate()
	for _, want := range []string{
		`replicator.links[0] "hub-to-spokes": targets[1]: "nowhere" is not a configured domain`,
		`replicator.links[0] "hub-to-spokes": domain "spoke" has no API access configured`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to contain %q", err, want)
		}
	}
}

// A variable named like a secret setting that holds the secret itself (not a
// reference) is what a reference points to, not an override.
func TestSecretVariableHoldingTheSecretIsNotAnOverride(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte("admin:\n  token: env:IAMFLOW_ADMIN_TOKEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p, envMap(map[string]string{"IAMFLOW_ADMIN_TOKEN": "s3cret-token-value"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Token != "env:IAMFLOW_ADMIN_TOKEN" {
		t.Fatalf("admin.token = %q, want the reference kept", cfg.Admin.Token)
	}
	cfg, err = Load(p, envMap(map[string]string{"IAMFLOW_ADMIN_TOKEN": "file:/run/secrets/admin"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Token != "file:/run/secrets/admin" {
		t.Fatalf("admin.token = %q, want the reference from the environment", cfg.Admin.Token)
	}
}

func TestLoginNeedsADomainWithAPI(t *testing.T) {
	cfg, err := Load("../../../deploy/iamflow.example.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Login.Enabled() || cfg.Login.Domain != "hub" || cfg.Login.ClockSkew != time.Minute {
		t.Fatalf("login = %+v", cfg.Login)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Login.Domain = "nowhere" }, `login.domain: "nowhere" is not among the domains`},
		{func(c *Config) { c.Login.Domain = "spoke" }, `login.domain: domain "spoke" has no API access`},
		{func(c *Config) { c.Login.ClockSkew = time.Hour }, "login.clock_skew: 1h0m0s is outside"},
		{func(c *Config) { c.Login.Algorithms = []string{"HS256"} }, `login.algorithms[0]: "HS256" is not accepted`},
		{func(c *Config) { c.Login.ClientID = "" }, "login.client_id: required"},
		{func(c *Config) { c.Login.Domain = "" }, "login.domain: required when any other login setting is given"},
	} {
		c := cfg
		c.Login.Algorithms = append([]string(nil), cfg.Login.Algorithms...)
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
	c := cfg
	c.Login = Default().Login
	if err := c.Validate(); err != nil {
		t.Errorf("no login section: %v", err)
	}
}
