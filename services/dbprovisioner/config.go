package dbprovisioner

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/validate"
)

// Config is the dbprovisioner section of iamflow's configuration: the
// databases whose accounts and roles follow IAM, the consumers and the
// reconcile schedule.
type Config struct {
	// Databases are the Autonomous Databases provisioned; at least one.
	Databases []DatabaseConfig `yaml:"databases"`
	// Consumer tunes the durable JetStream consumers. Durable is a prefix
	// (default "dbprovisioner"): the service runs one consumer per database,
	// "<durable>-<database>". filter_subjects is derived and must be left
	// empty; concurrency defaults to the database's max_concurrency.
	Consumer bus.ConsumerConfig `yaml:"consumer"`
	// Reconcile schedules full reconciles of every database.
	Reconcile ReconcileConfig `yaml:"reconcile"`
}

// ReconcileConfig schedules full reconciles: every member of every mapped
// group, and every account iamflow manages, checked against the database.
// The interval is 1h by default and at least 5m when set; the defaults run
// one on start and after an outage of 5m.
type ReconcileConfig = servicekit.RepairConfig

// DatabaseConfig is one database and how IAM maps onto it.
type DatabaseConfig struct {
	// Name identifies the database in consumer names, audit records, the
	// admin API and errors: lower-case letters, digits, '-' and '_'. Required, unique.
	Name string `yaml:"name"`
	// ORDS is how to reach the database's REST-enabled SQL service (base
	// URL https://host/ords/<alias>, OAuth client or Basic credentials as
	// secret references). Zero fields take ords.DefaultConfig's values;
	// ords.max_concurrency defaults to max_concurrency.
	ORDS ords.Config `yaml:"ords"`
	// Domain is the short name of the identity domain whose users and
	// groups are in scope. Required.
	Domain string `yaml:"domain"`
	// PrincipalDomain is the identity domain's name in OCI, as the database
	// expects it in IAM_PRINCIPAL_NAME=<principal_domain>/<user> and
	// IAM_GROUP_NAME=<principal_domain>/<group>. "Default" (any case) is the
	// Default domain, which Oracle writes without a prefix
	// (IAM_PRINCIPAL_NAME=<user>). Empty: the domain's oci_name, filled in by
	// the configuration (config.Config.DbprovisionerConfig); it is required
	// by then, because a wrong name creates accounts nobody can sign in to.
	PrincipalDomain string `yaml:"principal_domain"`
	// Mode is how IAM maps onto database accounts:
	//   - "user" (default): one IAM-authenticated account per user in a
	//     mapped group, CREATE USER "X" IDENTIFIED GLOBALLY AS
	//     'IAM_PRINCIPAL_NAME=...', with the roles of the user's groups;
	//   - "shared": one shared schema account per group, IDENTIFIED GLOBALLY
	//     AS 'IAM_GROUP_NAME=...', with the group's roles;
	//   - "global_role": one global role per group, CREATE ROLE "R"
	//     IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=...', created once.
	Mode string `yaml:"mode"`
	// Groups map IAM groups (displayName) to database roles.
	Groups []GroupMapping `yaml:"groups"`
	// OnLeave is what happens to a user's account (user mode) when the user
	// leaves the last mapped group, is deactivated or deleted: "lock"
	// (default; its mapped roles are revoked and the account locked, and
	// unlocked on return) or "drop" (DROP USER ... CASCADE: the account and
	// every object it owns are gone; an explicit opt-in).
	OnLeave string `yaml:"on_leave"`
	// MaxConcurrency bounds the statements in flight against this database
	// (ORDS on Autonomous Database has a small fixed pool); default 2, at most 16.
	MaxConcurrency int `yaml:"max_concurrency"`
	// UserName says how an IAM userName becomes an account name (user mode).
	UserName UserNameConfig `yaml:"user_name"`
}

// GroupMapping maps one IAM group.
type GroupMapping struct {
	// Group is the IAM group's displayName (compared case-insensitively).
	Group string `yaml:"group"`
	// Roles are the database roles the group's members (user mode) or the
	// group's schema (shared) are granted; in global_role mode, exactly one:
	// the global role created for the group. Oracle-maintained roles (DBA,
	// CONNECT, RESOURCE, ...) are refused.
	Roles []string `yaml:"roles"`
	// Schema is the shared schema account (shared mode only). Required there.
	Schema string `yaml:"schema"`
}

// UserNameConfig derives account names from IAM userNames. The result is
// upper-cased and must be a name ords.Ident accepts (letters, digits and
// _ $ # . @ -, starting with a letter or digit, not an Oracle name); a user
// whose name cannot be one is refused with the reason, and nothing is run.
type UserNameConfig struct {
	// From is "user_name" (default: the whole userName, e.g.
	// ALICE@EXAMPLE.COM) or "local_part" (before the '@': ALICE).
	From string `yaml:"from"`
	// Prefix is put in front of the name, e.g. "IAM_".
	Prefix string `yaml:"prefix"`
}

// Modes, OnLeave policies and user name sources.
const (
	modeUser       = "user"
	modeShared     = "shared"
	modeGlobalRole = "global_role"

	onLeaveLock = "lock"
	onLeaveDrop = "drop"

	userNameFromUserName  = "user_name"
	userNameFromLocalPart = "local_part"
)

// Defaults and limits.
const (
	// defaultDurable is the consumers' durable name prefix.
	defaultDurable = "dbprovisioner"
	// defaultMaxConcurrency is DatabaseConfig.MaxConcurrency's default.
	defaultMaxConcurrency = 2
	// maxMaxConcurrency is the largest MaxConcurrency accepted.
	maxMaxConcurrency = 16
	// defaultReconcileInterval is DefaultConfig's reconcile interval.
	defaultReconcileInterval = time.Hour
	// minReconcileInterval is the shortest scheduled reconcile interval.
	minReconcileInterval = 5 * time.Minute
)

// DefaultConfig returns the defaults: no database, the "dbprovisioner"
// consumers, a full reconcile every hour and at start.
func DefaultConfig() Config {
	return Config{
		Consumer:  bus.ConsumerConfig{Durable: defaultDurable},
		Reconcile: ReconcileConfig{Interval: defaultReconcileInterval, OnStart: true, AfterOutage: 5 * time.Minute},
	}
}

// withDefaults fills the zero fields a YAML section may leave out.
func (c Config) withDefaults() Config {
	if c.Consumer.Durable == "" {
		c.Consumer.Durable = defaultDurable
	}
	dbs := make([]DatabaseConfig, len(c.Databases))
	for i, d := range c.Databases {
		dbs[i] = d.withDefaults()
	}
	c.Databases = dbs
	return c
}

func (d DatabaseConfig) withDefaults() DatabaseConfig {
	if d.Mode == "" {
		d.Mode = modeUser
	}
	if d.OnLeave == "" {
		d.OnLeave = onLeaveLock
	}
	if d.MaxConcurrency == 0 {
		d.MaxConcurrency = defaultMaxConcurrency
	}
	if d.UserName.From == "" {
		d.UserName.From = userNameFromUserName
	}
	def := ords.DefaultConfig()
	if d.ORDS.Auth == "" {
		d.ORDS.Auth = def.Auth
	}
	if d.ORDS.Timeout == 0 {
		d.ORDS.Timeout = def.Timeout
	}
	if d.ORDS.MaxConcurrency == 0 {
		d.ORDS.MaxConcurrency = d.MaxConcurrency
	}
	if d.ORDS.PageSize == 0 {
		d.ORDS.PageSize = def.PageSize
	}
	if d.ORDS.Retry == (ords.RetryConfig{}) {
		d.ORDS.Retry = def.Retry
	}
	return d
}

// WithDefaults returns d with its zero fields (ORDS's included) set to
// their defaults: what the service uses, and what to build the ORDS client
// from.
func (d DatabaseConfig) WithDefaults() DatabaseConfig { return d.withDefaults() }

// defaultDomainName is the OCI name of every tenancy's Default identity
// domain. Autonomous Database names its users and groups without a domain
// prefix (https://docs.oracle.com/en/cloud/paas/autonomous-database/adbsa/iam-create-users.html).
const defaultDomainName = "Default"

// iamDomain is the domain part of the database's IAM mappings:
// PrincipalDomain, or ords.DefaultDomain (no prefix) for the Default domain.
func (d DatabaseConfig) iamDomain() string {
	if strings.EqualFold(d.PrincipalDomain, defaultDomainName) {
		return ords.DefaultDomain
	}
	return d.PrincipalDomain
}

// durable is the consumer name of the named database: "<prefix>-<database>".
func (c Config) durable(database string) string {
	return c.withDefaults().Consumer.Durable + "-" + database
}

var dbNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// Validate reports every problem in the section, one per line, each naming
// its key relative to the section, e.g.
// `databases[0] "hr": groups[1] "Ops": roles[0]: ords: identifier "DBA" refused: Oracle-maintained name`.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Databases) == 0 {
		bad("databases: empty; configure at least one database")
	}
	names := map[string]int{}
	for i, d := range c.Databases {
		key := fmt.Sprintf("databases[%d]", i)
		switch {
		case d.Name == "":
			bad("%s: name: empty; name the database (lower-case letters, digits, '-', '_')", key)
		case !dbNameRE.MatchString(d.Name):
			bad("%s: name: %q is not a database name; use 1 to 40 lower-case letters, digits, '-' and '_'", key, d.Name)
		default:
			if j, dup := names[d.Name]; dup {
				bad("%s: name: %q is also the name of databases[%d]; names must be unique", key, d.Name, j)
			}
			names[d.Name] = i
			key = fmt.Sprintf("databases[%d] %q", i, d.Name)
		}
		for _, err := range d.validate() {
			bad("%s: %v", key, err)
		}
	}
	if c.Reconcile.Interval < 0 || (c.Reconcile.Interval > 0 && c.Reconcile.Interval < minReconcileInterval) {
		bad("reconcile.interval: %v; set 0 (no scheduled reconcile) or at least %v", c.Reconcile.Interval, minReconcileInterval)
	}
	if len(c.Consumer.FilterSubjects) > 0 {
		bad("consumer.filter_subjects: set by the service from each database's domain; remove it")
	}
	cc := c.Consumer.WithDefaults()
	if len(c.Databases) > 0 && dbNameRE.MatchString(c.Databases[0].Name) {
		cc.Durable = c.durable(c.Databases[0].Name) // the longest name is checked below
	}
	if err := cc.Validate(); err != nil {
		var lines []error
		for _, l := range strings.Split(strings.TrimPrefix(err.Error(), "invalid consumer config: "), "\n") {
			lines = append(lines, errors.New(l))
		}
		errs = append(errs, validate.Prefix("consumer.", errors.Join(lines...)))
	}
	for i, d := range c.Databases {
		if dur := c.durable(d.Name); d.Name != "" && len(dur) > 64 {
			bad("databases[%d] %q: the consumer name %q is longer than 64 characters; shorten consumer.durable or the name", i, d.Name, dur)
		}
	}
	return errors.Join(errs...)
}

// validate checks one database (defaults applied).
func (d DatabaseConfig) validate() []error {
	var errs []error
	if err := d.ORDS.Validate(); err != nil {
		for _, l := range strings.Split(err.Error(), "\n") {
			errs = append(errs, errors.New("ords."+l))
		}
	}
	return append(errs, d.validateMapping()...)
}

// validateMapping checks everything but the ORDS connection: where the
// users come from, how accounts are made, then each group's mapping.
func (d DatabaseConfig) validateMapping() []error {
	errs := d.validateScope()
	errs = append(errs, d.validateAccounts()...)
	return append(errs, d.validateGroups()...)
}

// problems collects configuration errors in the order they are found.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// validateScope checks the domain whose users are in scope and the
// principal domain that names them in the database.
func (d DatabaseConfig) validateScope() problems {
	var errs problems
	switch {
	case d.Domain == "":
		errs.add("domain: empty; give the short name of the identity domain whose users are in scope")
	case !event.ValidDomainName(d.Domain):
		errs.add("domain: %q is not a domain short name (lower-case letters, digits, '-' and '_')", d.Domain)
	}
	if d.PrincipalDomain == "" {
		errs.add("principal_domain: unknown; set oci_name on domain %q (its name in OCI, %s for the Default domain) or principal_domain", d.Domain, defaultDomainName)
	} else if _, err := ords.GlobalPrincipal(d.iamDomain(), "user"); err != nil {
		errs.add("principal_domain: %v", err)
	}
	return errs
}

// validateAccounts checks how accounts are made and ended: mode, on_leave,
// max_concurrency and user_name.
func (d DatabaseConfig) validateAccounts() problems {
	var errs problems
	switch d.Mode {
	case modeUser, modeShared, modeGlobalRole:
	default:
		errs.add("mode: %q; use %s (default), %s or %s", d.Mode, modeUser, modeShared, modeGlobalRole)
	}
	switch d.OnLeave {
	case onLeaveLock:
	case onLeaveDrop:
		if d.Mode != modeUser {
			errs.add("on_leave: %q applies to mode %s only; remove it", d.OnLeave, modeUser)
		}
	default:
		errs.add("on_leave: %q; use %s (default) or %s (DROP USER ... CASCADE)", d.OnLeave, onLeaveLock, onLeaveDrop)
	}
	if d.MaxConcurrency < 1 || d.MaxConcurrency > maxMaxConcurrency {
		errs.add("max_concurrency: %d; set 1 to %d (default %d)", d.MaxConcurrency, maxMaxConcurrency, defaultMaxConcurrency)
	}
	switch d.UserName.From {
	case userNameFromUserName, userNameFromLocalPart:
	default:
		errs.add("user_name.from: %q; use %s (default) or %s", d.UserName.From, userNameFromUserName, userNameFromLocalPart)
	}
	if d.UserName.Prefix != "" {
		if d.Mode != modeUser {
			errs.add("user_name.prefix: applies to mode %s only; remove it", modeUser)
		} else if _, err := ords.Ident(d.UserName.Prefix + "X"); err != nil {
			errs.add("user_name.prefix: %q cannot start an account name: %v", d.UserName.Prefix, err)
		}
	}
	return errs
}

// groupsSeen is what the group mappings checked so far claimed: groups
// (lower-case), shared schemas and global roles, each by the index of the
// mapping that claimed it.
type groupsSeen struct{ groups, schemas, roles map[string]int }

// validateGroups checks every group mapping: at least one, each group
// once, and each schema and global role claimed by one group only.
func (d DatabaseConfig) validateGroups() problems {
	var errs problems
	if len(d.Groups) == 0 {
		errs.add("groups: empty; map at least one IAM group")
	}
	seen := groupsSeen{groups: map[string]int{}, schemas: map[string]int{}, roles: map[string]int{}}
	for i, g := range d.Groups {
		key := fmt.Sprintf("groups[%d]", i)
		if strings.TrimSpace(g.Group) == "" {
			errs.add("%s: group: empty; give the IAM group's displayName", key)
		} else {
			key = fmt.Sprintf("groups[%d] %q", i, g.Group)
			d.validateGroupName(&errs, seen, i, key, g.Group)
		}
		for j, r := range g.Roles {
			if _, err := ords.Ident(r); err != nil {
				errs.add("%s: roles[%d]: %v", key, j, err)
			}
		}
		d.validateGroupMode(&errs, seen, i, key, g)
	}
	return errs
}

// validateGroupName checks that group i is mapped once and, outside mode
// user, can be named as a global group.
func (d DatabaseConfig) validateGroupName(errs *problems, seen groupsSeen, i int, key, group string) {
	if j, dup := seen.groups[strings.ToLower(group)]; dup {
		errs.add("%s: group: also mapped by groups[%d]; map each group once", key, j)
	}
	seen.groups[strings.ToLower(group)] = i
	if d.Mode != modeUser && d.PrincipalDomain != "" {
		if _, err := ords.GlobalGroup(d.iamDomain(), group); err != nil {
			errs.add("%s: group: %v", key, err)
		}
	}
}

// validateGroupMode checks what group i's mapping needs in the mode: a
// schema of its own in mode shared, exactly one global role of its own in
// mode global_role, no schema otherwise.
func (d DatabaseConfig) validateGroupMode(errs *problems, seen groupsSeen, i int, key string, g GroupMapping) {
	switch d.Mode {
	case modeShared:
		if g.Schema == "" {
			errs.add("%s: schema: empty; name the shared schema account of the group", key)
		} else if id, err := ords.Ident(g.Schema); err != nil {
			errs.add("%s: schema: %v", key, err)
		} else {
			if j, dup := seen.schemas[id.Name()]; dup {
				errs.add("%s: schema: %s is also the schema of groups[%d]", key, id.Name(), j)
			}
			seen.schemas[id.Name()] = i
		}
	case modeGlobalRole:
		if len(g.Roles) != 1 {
			errs.add("%s: roles: %d given; a global role mapping names exactly one role, the one created for the group", key, len(g.Roles))
		} else if id, err := ords.Ident(g.Roles[0]); err == nil {
			if j, dup := seen.roles[id.Name()]; dup {
				errs.add("%s: roles[0]: %s is also the global role of groups[%d]", key, id.Name(), j)
			}
			seen.roles[id.Name()] = i
		}
		if g.Schema != "" {
			errs.add("%s: schema: applies to mode %s only; remove it", key, modeShared)
		}
	default:
		if g.Schema != "" {
			errs.add("%s: schema: applies to mode %s only; remove it", key, modeShared)
		}
	}
}
