package ords

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/iamflow/iamflow/emulator/internal/expiring"
	"github.com/iamflow/iamflow/emulator/listen"
)

// Emulator is an emulated ORDS instance serving REST-enabled SQL for one or
// more databases. It is safe for concurrent use.
type Emulator struct {
	cfg     Config
	log     *slog.Logger
	clock   Clock
	dbs     map[string]*database
	aliases []string
	handler http.Handler

	lis *listen.Server
}

// database is one alias: its catalog, statement log, faults, tokens and pool.
type database struct {
	cfg        Database
	now        func() time.Time
	tokenTTL   time.Duration
	cfgMaxRows int
	tokens     *expiring.Map[struct{}] // access tokens of this alias

	mu     sync.Mutex // guards everything below
	cat    *catalog
	log    []string
	faults Faults
	rng    *rand.Rand
	stats  Stats

	pool chan struct{} // one element per connection in use
}

// Stats count what a database has answered since it started or was Reset.
type Stats struct {
	// Requests counts /_/sql requests, Tokens token requests.
	Requests int `json:"requests"`
	Tokens   int `json:"tokens"`
	// Statements counts statements run (successful or not).
	Statements int `json:"statements"`
	// Unauthorized counts 401 answers, PoolExhausted 503s for want of a
	// connection, Faults injected faults (503s and ORA-00054).
	Unauthorized  int `json:"unauthorized"`
	PoolExhausted int `json:"poolExhausted"`
	Faults        int `json:"faults"`
	// InUse is the number of pool connections in use now.
	InUse int `json:"inUse"`
}

// New validates cfg and builds an Emulator with each database's seed loaded.
// Call Start (or serve Handler yourself) to answer HTTP.
func New(cfg Config, opts ...Option) (*Emulator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	o := options{logger: slog.New(slog.DiscardHandler), clock: systemClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil || o.clock == nil {
		return nil, errors.New("ords: nil logger or clock option")
	}
	e := &Emulator{cfg: cfg, log: o.logger, clock: o.clock, dbs: map[string]*database{}, lis: listen.New("ords", "emulator")}
	for _, d := range cfg.Databases {
		db := &database{cfg: d, now: o.clock.Now, tokenTTL: cfg.TokenTTL, cfgMaxRows: cfg.MaxRows,
			tokens: expiring.New[struct{}](tokenSweepAt), pool: make(chan struct{}, d.PoolSize)}
		db.reset()
		e.dbs[d.Alias] = db
		e.aliases = append(e.aliases, d.Alias)
	}
	e.handler = http.HandlerFunc(e.serveHTTP)
	return e, nil
}

// reset reloads the configured seed and faults and forgets tokens, the
// statement log and stats.
func (db *database) reset() {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.cat = newCatalog()
	db.log = nil
	db.stats = Stats{}
	db.tokens.Clear()
	db.setFaults(db.cfg.Faults)
	// checked by withDefaults, so this cannot fail
	_ = db.cat.load(db.cfg.Roles, db.cfg.Users, db.now())
}

func (db *database) setFaults(f Faults) {
	db.faults = f
	db.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x5851f42d4c957f2d))
}

// load adds seed roles and users (already validated against each other) to
// the catalog; a name that exists already is an error.
func (c *catalog) load(roles []Role, users []User, now time.Time) error {
	for _, r := range roles {
		if err := c.createRole(r.Name, authOf(r.ExternalName, "NONE"), r.ExternalName); err != nil {
			return err
		}
	}
	for _, u := range users {
		if err := c.createUser(u.Username, authOf(u.ExternalName, "PASSWORD"), u.ExternalName, now); err != nil {
			return err
		}
		rec := c.users[u.Username]
		if u.AccountStatus != "" {
			rec.status = u.AccountStatus
		}
		if !u.Created.IsZero() {
			rec.created = u.Created
		}
		for _, r := range u.Roles {
			if c.roles[r] == nil {
				return errRoleMissing(r)
			}
			rec.roles[r] = true
		}
		for _, p := range u.Privileges {
			rec.privs[p] = true
		}
	}
	return nil
}

func authOf(external, local string) string {
	if external != "" {
		return "GLOBAL"
	}
	return local
}

// Config returns the configuration with defaults filled in.
func (e *Emulator) Config() Config { return e.cfg }

// Handler returns the HTTP handler: /ords/<alias>/oauth/token,
// /ords/<alias>/_/sql and the /_emulator/ control endpoints.
func (e *Emulator) Handler() http.Handler { return e.handler }

// Aliases returns the database aliases in configuration order.
func (e *Emulator) Aliases() []string { return append([]string(nil), e.aliases...) }

func (e *Emulator) db(alias string) *database { return e.dbs[alias] }

// inDB returns what f reads from the database of alias, with the database
// locked; an unknown alias gives the zero T.
func inDB[T any](e *Emulator, alias string, f func(db *database) T) T {
	db := e.db(alias)
	if db == nil {
		var zero T
		return zero
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	return f(db)
}

// Users returns the users of a database, sorted by name with their grants;
// nil for an unknown alias.
func (e *Emulator) Users(alias string) []User {
	return inDB(e, alias, func(db *database) []User {
		out := []User{}
		for _, n := range db.cat.userNames() {
			out = append(out, db.cat.users[n].export())
		}
		return out
	})
}

// User returns one user by its exact stored name.
func (e *Emulator) User(alias, username string) (User, bool) {
	u := inDB(e, alias, func(db *database) *User {
		if u := db.cat.users[username]; u != nil {
			exported := u.export()
			return &exported
		}
		return nil
	})
	if u == nil {
		return User{}, false
	}
	return *u, true
}

// Roles returns the roles of a database, sorted by name.
func (e *Emulator) Roles(alias string) []Role {
	return inDB(e, alias, func(db *database) []Role {
		out := []Role{}
		for _, n := range db.cat.roleNames() {
			r := db.cat.roles[n]
			out = append(out, Role{Name: r.name, ExternalName: r.external})
		}
		return out
	})
}

// Grants returns the roles granted to a user (DBA_ROLE_PRIVS), sorted; nil
// when the user does not exist. System privileges are in Privileges.
func (e *Emulator) Grants(alias, username string) []string {
	return e.userNames(alias, username, func(u User) []string { return u.Roles })
}

// Privileges returns the system privileges granted to a user
// (DBA_SYS_PRIVS, e.g. "CREATE SESSION"), sorted; nil when the user does
// not exist.
func (e *Emulator) Privileges(alias, username string) []string {
	return e.userNames(alias, username, func(u User) []string { return u.Privileges })
}

// userNames returns the list pick reads from a user: nil when the user does
// not exist, empty (not nil) when it has none.
func (e *Emulator) userNames(alias, username string, pick func(User) []string) []string {
	u, ok := e.User(alias, username)
	if !ok {
		return nil
	}
	if names := pick(u); names != nil {
		return names
	}
	return []string{}
}

// Statements returns the text of every statement that reached the database,
// in order, whether it succeeded or failed (ORA errors and injected ORA-00054
// included); requests refused with 401, 415, 400 or 503 add nothing. An empty
// log means nothing ran.
func (e *Emulator) Statements(alias string) []string {
	return inDB(e, alias, func(db *database) []string { return append([]string{}, db.log...) })
}

// Stats returns a database's counters.
func (e *Emulator) Stats(alias string) Stats {
	return inDB(e, alias, func(db *database) Stats {
		s := db.stats
		s.InUse = len(db.pool)
		return s
	})
}

// InUse is how many pool connections of a database are in use now.
func (e *Emulator) InUse(alias string) int {
	db := e.db(alias)
	if db == nil {
		return 0
	}
	return len(db.pool)
}

// SetFaults replaces the active faults of one database, or of every
// database when alias is "".
func (e *Emulator) SetFaults(alias string, f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("ords: set faults: %w", err)
	}
	targets, err := e.targets(alias)
	if err != nil {
		return fmt.Errorf("ords: set faults: %w", err)
	}
	for _, db := range targets {
		db.mu.Lock()
		db.setFaults(f)
		db.mu.Unlock()
	}
	return nil
}

// Faults returns the active faults of a database (BusyNext counts down).
func (e *Emulator) Faults(alias string) Faults {
	return inDB(e, alias, func(db *database) Faults { return db.faults })
}

func (e *Emulator) targets(alias string) ([]*database, error) {
	if alias == "" {
		out := make([]*database, 0, len(e.aliases))
		for _, a := range e.aliases {
			out = append(out, e.dbs[a])
		}
		return out, nil
	}
	db := e.db(alias)
	if db == nil {
		return nil, fmt.Errorf("no database with alias %q", alias)
	}
	return []*database{db}, nil
}

// Reset puts every database back as New left it: the configured seed and
// faults, no tokens, an empty statement log and zero stats. Requests in
// flight keep their pool connections.
func (e *Emulator) Reset() {
	for _, a := range e.aliases {
		e.dbs[a].reset()
	}
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves Handler in the
// background until Close.
func (e *Emulator) Start(addr string) error {
	url, err := e.lis.Start(addr, e.handler, e.log)
	if err != nil {
		return err
	}
	e.log.Info("ords emulator listening", "url", url, "databases", e.aliases)
	return nil
}

// URL returns the root URL served after Start, e.g. "http://127.0.0.1:40123".
func (e *Emulator) URL() string { return e.lis.URL() }

// BaseURL returns a database's base URL after Start, as iamflow's config
// takes it: URL() + "/ords/<alias>" (token URL = base + "/oauth/token",
// SQL URL = base + "/_/sql").
func (e *Emulator) BaseURL(alias string) string {
	u := e.URL()
	if u == "" {
		return ""
	}
	return u + "/ords/" + alias
}

// Close stops serving; requests in flight are cut off after 5s. It is safe
// to call more than once.
func (e *Emulator) Close() error { return e.lis.Close() }

// Run serves an emulator built from cfg on addr until ctx is cancelled; it is
// what an `iamflow emulate ords` command would run. ready, if not nil, is
// called with the started emulator (to print its URLs).
func Run(ctx context.Context, cfg Config, addr string, logger *slog.Logger, ready func(*Emulator)) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e, err := New(cfg, WithLogger(logger))
	if err != nil {
		return err
	}
	return listen.Run(ctx, e, addr, func() {
		if ready != nil {
			ready(e)
		}
	})
}
