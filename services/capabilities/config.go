package capabilities

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/validate"
)

// Config is the capabilities section of iamflow's configuration: which
// domains are enforced, the policy, the sweep schedule and the consumer.
//
// # The policy
//
// Default holds the flags every user of an enforced domain should have.
// Rules are tried in order and the FIRST rule that matches the user wins:
// its Set flags overlay Default (a flag the rule sets replaces Default's
// value; a flag it leaves unset keeps Default's). Later rules are not
// consulted, so put specific rules before general ones. A flag that neither
// Default nor the winning rule sets is left as the user has it: iamflow has
// no opinion about it and never writes it.
//
// A rule matches when every criterion it gives holds (criteria it leaves
// empty match anyone):
//   - domains: the user's domain is one of these short names;
//   - federated: the user is (true) or is not (false) a federated user;
//   - groups: the user is a member of at least one of these groups, by
//     displayName, compared case-insensitively as Identity Domains does;
//   - user_name, email: RE2 regular expressions matched against the whole
//     value (they are anchored: "adm-.*" does not match "x-adm-1"); email is
//     the user's primary email (or its first work email when none is
//     primary), never the recovery email, which users can set themselves.
//     Write (?i) in front for a case-insensitive match.
type Config struct {
	// Domains are the short names of the domains whose users are enforced;
	// empty means every configured domain.
	Domains []string `yaml:"domains"`
	// Default are the flags every enforced user should have.
	Default Flags `yaml:"default"`
	// Rules refine Default for some users; the first rule that matches wins.
	Rules []Rule `yaml:"rules"`
	// Sweep applies the policy to every user of every enforced domain on a
	// schedule, covering users no event ever mentions.
	Sweep SweepConfig `yaml:"sweep"`
	// JITRetryAfter is how long to wait before reading again a user whose
	// creation event arrived before the user could be read (the just-in-time
	// provisioning race). Default 2s.
	JITRetryAfter time.Duration `yaml:"jit_retry_after"`
	// JITMaxAttempts is how many times a user.created event reads its user
	// before it is dead-lettered as unreadable. Default 5. It must not
	// exceed consumer.max_deliver.
	JITMaxAttempts int `yaml:"jit_max_attempts"`
	// Consumer tunes the durable JetStream consumer. Durable defaults to
	// "capabilities"; filter_subjects is derived from domains and rules and
	// must be left empty.
	Consumer bus.ConsumerConfig `yaml:"consumer"`
}

// Flags are the seven capability flags of an Identity Domains user. A nil
// field means "no opinion" in a policy and "unknown" in a reading.
type Flags struct {
	CanUseAPIKeys                 *bool `yaml:"can_use_api_keys"`
	CanUseAuthTokens              *bool `yaml:"can_use_auth_tokens"`
	CanUseConsolePassword         *bool `yaml:"can_use_console_password"`
	CanUseCustomerSecretKeys      *bool `yaml:"can_use_customer_secret_keys"`
	CanUseOAuth2ClientCredentials *bool `yaml:"can_use_oauth2_client_credentials"`
	CanUseSMTPCredentials         *bool `yaml:"can_use_smtp_credentials"`
	CanUseDBCredentials           *bool `yaml:"can_use_db_credentials"`
}

// Rule gives the flags of the users it matches.
type Rule struct {
	// Name identifies the rule in audit records, previews and errors. Required, unique.
	Name string `yaml:"name"`
	// Match selects the users; at least one criterion is required (a rule for
	// everyone is Default).
	Match Match `yaml:"match"`
	// Set are the flags the rule gives; at least one is required.
	Set Flags `yaml:"set"`
}

// Match is a rule's criteria; every criterion given must hold. See [Config]
// for their meaning.
type Match struct {
	// Domains are domain short names; the user's domain must be one of them.
	Domains []string `yaml:"domains"`
	// Federated, when set, requires the user to be federated (true) or not (false).
	Federated *bool `yaml:"federated"`
	// Groups are group displayNames; the user must be in at least one.
	Groups []string `yaml:"groups"`
	// UserName is an RE2 expression the whole userName must match.
	UserName string `yaml:"user_name"`
	// Email is an RE2 expression the whole primary email must match.
	Email string `yaml:"email"`
}

// SweepConfig schedules sweeps: the policy applied to every user of every
// enforced domain. The interval is 0 by default (no scheduled sweeps) and
// at least 1m when set; after_outage is 5m by default.
type SweepConfig = servicekit.RepairConfig

// Defaults.
const (
	// defaultDurable is the consumer's durable name.
	defaultDurable = "capabilities"
	// defaultJITRetryAfter is Config.JITRetryAfter's default.
	defaultJITRetryAfter = 2 * time.Second
	// defaultJITMaxAttempts is Config.JITMaxAttempts's default.
	defaultJITMaxAttempts = 5
	// minSweepInterval is the shortest scheduled sweep interval.
	minSweepInterval = time.Minute
)

// DefaultConfig returns the defaults: every configured domain, an empty
// policy (no opinion on any flag, so nothing is ever written until a
// default or rule is configured), no scheduled sweep, 5 reads 2s apart for
// just-provisioned users, and the "capabilities" durable consumer.
func DefaultConfig() Config {
	return Config{
		JITRetryAfter:  defaultJITRetryAfter,
		JITMaxAttempts: defaultJITMaxAttempts,
		Consumer:       bus.ConsumerConfig{Durable: defaultDurable},
		Sweep:          SweepConfig{AfterOutage: 5 * time.Minute},
	}
}

// withDefaults fills the zero fields a YAML section may leave out.
func (c Config) withDefaults() Config {
	if c.JITRetryAfter == 0 {
		c.JITRetryAfter = defaultJITRetryAfter
	}
	if c.JITMaxAttempts == 0 {
		c.JITMaxAttempts = defaultJITMaxAttempts
	}
	if c.Consumer.Durable == "" {
		c.Consumer.Durable = defaultDurable
	}
	return c
}

// Validate reports every problem in the section, one per line, each naming
// its key relative to the section, e.g.
// `rules[2] "admins": match.user_name: "(" is not a valid pattern: ...`.
// Zero durations and counts take their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	enforced := map[string]bool{}
	for i, d := range c.Domains {
		switch {
		case !event.ValidDomainName(d):
			bad("domains[%d]: %q is not a domain short name (lower-case letters, digits, '-' and '_')", i, d)
		case enforced[d]:
			bad("domains[%d]: %q is listed twice", i, d)
		}
		enforced[d] = true
	}
	names := map[string]int{}
	for i, r := range c.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		if strings.TrimSpace(r.Name) == "" {
			bad("%s: name: empty; name the rule (it is quoted in audit records)", key)
		} else {
			key = fmt.Sprintf("rules[%d] %q", i, r.Name)
			if r.Name == defaultRuleName {
				bad("%s: name: %q is reserved for the default flags; choose another", key, r.Name)
			} else if j, dup := names[r.Name]; dup {
				bad("%s: name: also the name of rules[%d]; rule names must be unique", key, j)
			} else {
				names[r.Name] = i
			}
		}
		for _, err := range r.validate(enforced) {
			bad("%s: %v", key, err)
		}
	}
	if c.Sweep.Interval < 0 || (c.Sweep.Interval > 0 && c.Sweep.Interval < minSweepInterval) {
		bad("sweep.interval: %v; set 0 (no scheduled sweep) or at least %v", c.Sweep.Interval, minSweepInterval)
	}
	if c.JITRetryAfter < 0 {
		bad("jit_retry_after: %v; set a positive duration (default %v)", c.JITRetryAfter, defaultJITRetryAfter)
	}
	if c.JITMaxAttempts < 1 {
		bad("jit_max_attempts: %d; set at least 1 (default %d)", c.JITMaxAttempts, defaultJITMaxAttempts)
	}
	if len(c.Consumer.FilterSubjects) > 0 {
		bad("consumer.filter_subjects: set by the service from domains and rules; remove it")
	}
	cc := c.Consumer.WithDefaults()
	if err := cc.Validate(); err != nil {
		// Drop the "invalid consumer config: " wrapper: each line names its key.
		var lines []error
		for _, l := range strings.Split(strings.TrimPrefix(err.Error(), "invalid consumer config: "), "\n") {
			lines = append(lines, errors.New(l))
		}
		errs = append(errs, validate.Prefix("consumer.", errors.Join(lines...)))
	} else if c.JITMaxAttempts > cc.MaxDeliver {
		bad("jit_max_attempts: %d exceeds consumer.max_deliver %d; lower it or raise max_deliver", c.JITMaxAttempts, cc.MaxDeliver)
	}
	return errors.Join(errs...)
}

// validate checks one rule; enforced are the configured domains (empty: any).
func (r Rule) validate(enforced map[string]bool) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	m := r.Match
	if len(m.Domains) == 0 && m.Federated == nil && len(m.Groups) == 0 && m.UserName == "" && m.Email == "" {
		bad("match: empty; give domains, federated, groups, user_name or email (a rule for every user is the default)")
	}
	for i, d := range m.Domains {
		switch {
		case !event.ValidDomainName(d):
			bad("match.domains[%d]: %q is not a domain short name", i, d)
		case len(enforced) > 0 && !enforced[d]:
			bad("match.domains[%d]: %q is not among the enforced domains; add it to domains or remove it here", i, d)
		}
	}
	for i, g := range m.Groups {
		if strings.TrimSpace(g) == "" {
			bad("match.groups[%d]: empty; give a group displayName", i)
		}
	}
	if _, err := compilePattern(m.UserName); err != nil {
		bad("match.user_name: %v", err)
	}
	if _, err := compilePattern(m.Email); err != nil {
		bad("match.email: %v", err)
	}
	if r.Set.IsZero() {
		bad("set: empty; a rule must set at least one flag (can_use_api_keys, can_use_auth_tokens, ...)")
	}
	return errs
}

// compilePattern anchors p so it must match a whole value; "" gives nil.
func compilePattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, nil
	}
	return validate.Pattern(p)
}

// enforcedDomains returns the domains the service enforces: Config.Domains,
// or every domain it has a directory for.
func (c Config) enforcedDomains(all []string) []string {
	if len(c.Domains) > 0 {
		return c.Domains
	}
	return all
}
