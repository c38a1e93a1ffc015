package ords

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/iamflow/iamflow/emulator/internal/defaults"
)

// Config describes the emulated ORDS instance: one or more databases, each
// reached at /ords/<alias>/. The zero value of every optional field means the
// default documented on it; New validates the rest.
type Config struct {
	// Databases are the REST-enabled schemas served. At least one is required.
	Databases []Database `json:"databases" yaml:"databases"`
	// TokenTTL is the lifetime of an OAuth access token. Default: 3600s (the
	// expires_in of the documented token answer, docs/oci-sources.md §6).
	TokenTTL time.Duration `json:"tokenTTL,omitempty" yaml:"tokenTTL,omitempty"`
	// MaxRows is both the default and the largest "limit" of a query page.
	// Default: 10000 (the limit ORDS reports when none is asked, docs/oci-sources.md §6).
	MaxRows int `json:"maxRows,omitempty" yaml:"maxRows,omitempty"`
}

// Database is one REST-enabled schema alias and its in-memory catalog.
type Database struct {
	// Alias is the URL path segment: /ords/<alias>/_/sql. Lower-case letters,
	// digits, '_' and '-'.
	Alias string `json:"alias" yaml:"alias"`
	// ClientID and ClientSecret are the ORDS OAuth client (client
	// credentials) allowed to get tokens at /ords/<alias>/oauth/token.
	ClientID     string `json:"clientId,omitempty" yaml:"clientId,omitempty"`
	ClientSecret string `json:"clientSecret,omitempty" yaml:"clientSecret,omitempty"`
	// BasicUser and BasicPassword, when set, also allow HTTP Basic auth with
	// the schema's user and password on /_/sql (the Oracle sample's way).
	// At least one of the client and the Basic user is required.
	BasicUser     string `json:"basicUser,omitempty" yaml:"basicUser,omitempty"`
	BasicPassword string `json:"basicPassword,omitempty" yaml:"basicPassword,omitempty"`
	// PoolSize is how many /_/sql requests run at once; more get HTTP 503.
	// Default: 2.
	PoolSize int `json:"poolSize,omitempty" yaml:"poolSize,omitempty"`
	// PoolWait is how long a request waits for a free connection before the
	// 503. Default: 0, no wait (deterministic for tests; real ORDS waits a
	// few seconds in its connection pool).
	PoolWait time.Duration `json:"poolWait,omitempty" yaml:"poolWait,omitempty"`
	// Unprivileged makes the schema an ordinary user: DDL fails ORA-01031
	// and the DBA_ views are ORA-00942, as for a schema without the ADMIN
	// grants the provisioner needs.
	Unprivileged bool `json:"unprivileged,omitempty" yaml:"unprivileged,omitempty"`
	// Roles and Users are loaded when the database starts and on Reset.
	Roles []Role `json:"roles,omitempty" yaml:"roles,omitempty"`
	Users []User `json:"users,omitempty" yaml:"users,omitempty"`
	// Faults are active from the start and after Reset; see SetFaults.
	Faults Faults `json:"faults,omitzero" yaml:"faults,omitempty"`
}

var aliasRE = regexp.MustCompile(`^[a-z0-9_][a-z0-9_-]{0,62}$`)

// withDefaults returns cfg with defaults filled in, or an error naming every
// invalid field. Errors never include secrets.
func (cfg Config) withDefaults() (Config, error) {
	var errs []error
	if len(cfg.Databases) == 0 {
		errs = append(errs, errors.New("databases: at least one database is required"))
	}
	if err := defaults.Positive("tokenTTL", &cfg.TokenTTL, time.Hour); err != nil {
		errs = append(errs, err)
	}
	if err := defaults.Positive("maxRows", &cfg.MaxRows, 10000); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	dbs := make([]Database, len(cfg.Databases))
	for i, d := range cfg.Databases {
		where := fmt.Sprintf("databases[%d] (%s)", i, d.Alias)
		if !aliasRE.MatchString(d.Alias) {
			errs = append(errs, fmt.Errorf("%s: alias %q: want lower-case letters, digits, '_' or '-' (at most 63)", where, d.Alias))
		}
		if seen[d.Alias] {
			errs = append(errs, fmt.Errorf("%s: duplicate alias", where))
		}
		seen[d.Alias] = true
		if (d.ClientID == "") != (d.ClientSecret == "") {
			errs = append(errs, fmt.Errorf("%s: clientId and clientSecret go together", where))
		}
		if (d.BasicUser == "") != (d.BasicPassword == "") {
			errs = append(errs, fmt.Errorf("%s: basicUser and basicPassword go together", where))
		}
		if d.ClientID == "" && d.BasicUser == "" {
			errs = append(errs, fmt.Errorf("%s: set an OAuth client (clientId, clientSecret) or a Basic user (basicUser, basicPassword)", where))
		}
		if err := defaults.Positive("poolSize", &d.PoolSize, 2); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if d.PoolWait < 0 {
			errs = append(errs, fmt.Errorf("%s: poolWait %v: must not be negative", where, d.PoolWait))
		}
		if err := checkSeed(d.Roles, d.Users, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if err := d.Faults.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: faults: %w", where, err))
		}
		dbs[i] = d
	}
	cfg.Databases = dbs
	if len(errs) > 0 {
		return cfg, fmt.Errorf("ords: invalid config: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// checkSeed validates seed roles and users: names non-empty and unique
// across users and roles, statuses OPEN or LOCKED, granted roles seeded,
// privileges known.
func checkSeed(roles []Role, users []User, existingRoles map[string]bool) error {
	var errs []error
	names := map[string]bool{}
	// claim checks one role or user name (field of where): users and roles
	// share one namespace in Oracle, and names are 1 to maxIdentBytes bytes.
	claim := func(where, field, name string) {
		if strings.TrimSpace(name) == "" || len(name) > maxIdentBytes {
			errs = append(errs, fmt.Errorf("%s: %s %q: want 1 to %d bytes", where, field, name, maxIdentBytes))
		}
		if names[name] {
			errs = append(errs, fmt.Errorf("%s: %s %q conflicts with another user or role", where, field, name))
		}
		names[name] = true
	}
	for i, r := range roles {
		claim(fmt.Sprintf("roles[%d]", i), "name", r.Name)
	}
	roleSet := map[string]bool{}
	for r := range existingRoles {
		roleSet[r] = true
	}
	for _, r := range roles {
		roleSet[r.Name] = true
	}
	for i, u := range users {
		claim(fmt.Sprintf("users[%d]", i), "username", u.Username)
		switch u.AccountStatus {
		case "", StatusOpen, StatusLocked:
		default:
			errs = append(errs, fmt.Errorf("users[%d]: accountStatus %q: want OPEN or LOCKED", i, u.AccountStatus))
		}
		for _, r := range u.Roles {
			if !roleSet[r] {
				errs = append(errs, fmt.Errorf("users[%d]: role %q is not seeded", i, r))
			}
		}
		for _, p := range u.Privileges {
			if p != PrivCreateSession {
				errs = append(errs, fmt.Errorf("users[%d]: privilege %q: only %q is known", i, p, PrivCreateSession))
			}
		}
	}
	return errors.Join(errs...)
}

// Option changes how New builds an Emulator.
type Option func(*options)

type options struct {
	logger *slog.Logger
	clock  Clock
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock used for token expiry and CREATED dates.
// Default: the system clock.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// Clock tells the time; the identitydomain emulator's ManualClock is one that tests move by hand.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
