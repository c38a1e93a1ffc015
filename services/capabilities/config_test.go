package capabilities

import (
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
	"gopkg.in/yaml.v3"
)

const exampleYAML = `
domains: [prod, partners]
default:
  can_use_api_keys: false
  can_use_auth_tokens: false
  can_use_console_password: false
  can_use_customer_secret_keys: false
  can_use_oauth2_client_credentials: false
  can_use_smtp_credentials: false
  can_use_db_credentials: false
rules:
  - name: local-admins
    match:
      domains: [prod]
      federated: false
      groups: [Administrators]
    set:
      can_use_api_keys: true
      can_use_console_password: true
  - name: service-accounts
    match:
      user_name: 'svc-[a-z0-9-]+'
      email: '(?i).*@svc\.example\.com'
    set:
      can_use_api_keys: true
      can_use_oauth2_client_credentials: true
sweep:
  interval: 6h
  on_start: true
jit_retry_after: 3s
jit_max_attempts: 4
consumer:
  concurrency: 2
`

func TestConfigDecodesYAML(t *testing.T) {
	cfg := testutil.DecodeValid(t, exampleYAML, DefaultConfig())
	if len(cfg.Rules) != 2 || cfg.Rules[0].Match.Federated == nil || *cfg.Rules[0].Match.Federated {
		t.Fatalf("rules = %+v", cfg.Rules)
	}
	if cfg.Default.CanUseDBCredentials == nil || *cfg.Default.CanUseDBCredentials {
		t.Errorf("default.can_use_db_credentials = %v, want false", cfg.Default.CanUseDBCredentials)
	}
	if cfg.Sweep.Interval != 6*time.Hour || !cfg.Sweep.OnStart || cfg.JITRetryAfter != 3*time.Second || cfg.JITMaxAttempts != 4 {
		t.Errorf("sweep %+v jit %v/%d", cfg.Sweep, cfg.JITRetryAfter, cfg.JITMaxAttempts)
	}
	if cfg.Consumer.Durable != defaultDurable || cfg.Consumer.Concurrency != 2 {
		t.Errorf("consumer = %+v", cfg.Consumer)
	}
}

func TestConfigRejectsUnknownKeys(t *testing.T) {
	const flags = "can_use_api_keys, can_use_auth_tokens, can_use_console_password, can_use_customer_secret_keys, " +
		"can_use_oauth2_client_credentials, can_use_smtp_credentials, can_use_db_credentials"
	for _, tc := range []struct{ name, src, want string }{
		{"flag in default", "default:\n  can_use_api_key: false\n",
			`line 2: unknown flag "can_use_api_key"; the flags are ` + flags},
		{"flag in rule", "rules:\n  - name: x\n    match: {federated: true}\n    set: {can_use_everything: false}\n",
			`line 4: unknown flag "can_use_everything"; the flags are ` + flags},
		{"flag value", "default:\n  can_use_api_keys: nope\n", "line 2: can_use_api_keys: want true or false"},
		{"flag twice", "default:\n  can_use_api_keys: true\n  can_use_api_keys: false\n", "line 3: can_use_api_keys is given twice"},
		{"match key", "rules:\n  - name: x\n    match: {group: [a]}\n    set: {can_use_api_keys: false}\n",
			"line 3: field group not found in type capabilities.Match"},
		{"section key", "sweeps: {interval: 1h}\n", "line 1: field sweeps not found in type capabilities.Config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := testutil.DecodeYAMLStrict(tc.src, DefaultConfig())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decode error = %v, want %q", err, tc.want)
			}
		})
	}
	// Flags stay strict even for a lax decoder.
	var cfg Config
	if err := yaml.Unmarshal([]byte("default: {can_use_api_key: false}\n"), &cfg); err == nil {
		t.Error("a lax decoder accepted an unknown flag")
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	// A zero section takes the defaults too.
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesTheRule(t *testing.T) {
	f := false
	set := Flags{CanUseAPIKeys: &f}
	tests := []struct {
		name string
		cfg  func(*Config)
		want []string // each a whole line of the error
	}{
		{"bad pattern", func(c *Config) {
			c.Rules = []Rule{{Name: "ok", Match: Match{UserName: "a.*"}, Set: set}, {Name: "y", Match: Match{Email: ".*"}, Set: set},
				{Name: "admins", Match: Match{UserName: "("}, Set: set}}
		}, []string{`rules[2] "admins": match.user_name: "(" is not a valid pattern: missing closing )`}},
		{"bad email pattern", func(c *Config) {
			c.Rules = []Rule{{Name: "x", Match: Match{Email: "a**"}, Set: set}}
		}, []string{"rules[0] \"x\": match.email: \"a**\" is not a valid pattern: invalid nested repetition operator: `**`"}},
		{"unbalanced pattern cannot escape the anchors", func(c *Config) {
			c.Rules = []Rule{{Name: "x", Match: Match{UserName: "a)|(b"}, Set: set}}
		}, []string{`rules[0] "x": match.user_name: "a)|(b" is not a valid pattern: unexpected )`}},
		{"duplicate names", func(c *Config) {
			c.Rules = []Rule{{Name: "x", Match: Match{Federated: &f}, Set: set}, {Name: "x", Match: Match{Groups: []string{"g"}}, Set: set}}
		}, []string{`rules[1] "x": name: also the name of rules[0]; rule names must be unique`}},
		{"empty rule", func(c *Config) { c.Rules = []Rule{{Name: "nothing"}} }, []string{
			`rules[0] "nothing": match: empty; give domains, federated, groups, user_name or email (a rule for every user is the default)`,
			`rules[0] "nothing": set: empty; a rule must set at least one flag (can_use_api_keys, can_use_auth_tokens, ...)`,
		}},
		{"no name", func(c *Config) { c.Rules = []Rule{{Match: Match{Federated: &f}, Set: set}} },
			[]string{`rules[0]: name: empty; name the rule (it is quoted in audit records)`}},
		{"reserved name", func(c *Config) { c.Rules = []Rule{{Name: "default", Match: Match{Federated: &f}, Set: set}} },
			[]string{`rules[0] "default": name: "default" is reserved for the default flags; choose another`}},
		{"blank group", func(c *Config) { c.Rules = []Rule{{Name: "g", Match: Match{Groups: []string{" "}}, Set: set}} },
			[]string{`rules[0] "g": match.groups[0]: empty; give a group displayName`}},
		{"rule domain not enforced", func(c *Config) {
			c.Domains = []string{"prod"}
			c.Rules = []Rule{{Name: "d", Match: Match{Domains: []string{"dev"}}, Set: set}}
		}, []string{`rules[0] "d": match.domains[0]: "dev" is not among the enforced domains; add it to domains or remove it here`}},
		{"domains", func(c *Config) { c.Domains = []string{"Prod", "a", "a"} }, []string{
			`domains[0]: "Prod" is not a domain short name (lower-case letters, digits, '-' and '_')`,
			`domains[2]: "a" is listed twice`,
		}},
		{"sweep interval", func(c *Config) { c.Sweep.Interval = time.Second },
			[]string{`sweep.interval: 1s; set 0 (no scheduled sweep) or at least 1m0s`}},
		{"jit", func(c *Config) { c.JITMaxAttempts = -1; c.JITRetryAfter = -time.Second }, []string{
			`jit_retry_after: -1s; set a positive duration (default 2s)`,
			`jit_max_attempts: -1; set at least 1 (default 5)`,
		}},
		{"jit above max_deliver", func(c *Config) { c.JITMaxAttempts = 8; c.Consumer.MaxDeliver = 3 },
			[]string{`jit_max_attempts: 8 exceeds consumer.max_deliver 3; lower it or raise max_deliver`}},
		{"consumer", func(c *Config) { c.Consumer.Durable = "a b"; c.Consumer.FilterSubjects = []string{"x"} }, []string{
			`consumer.filter_subjects: set by the service from domains and rules; remove it`,
			`consumer.durable: "a b" is not a consumer name; use 1 to 64 letters, digits, '-' and '_'`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.cfg(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("missing line\n  %s\nin\n  %s", w, strings.Join(lines, "\n  "))
				}
			}
			if len(lines) != len(tt.want) {
				t.Errorf("got %d lines, want %d:\n  %s", len(lines), len(tt.want), strings.Join(lines, "\n  "))
			}
		})
	}
}
