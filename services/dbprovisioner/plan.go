package dbprovisioner

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/iamflow/iamflow/internal/ords"
)

// Actions of the statements a plan holds; they are also the actions of the
// service's audit records.
const (
	actionCreateUser         = "create_user"
	actionGrantCreateSession = "grant_create_session"
	actionGrantRole          = "grant_role"
	actionRevokeRole         = "revoke_role"
	actionLockUser           = "lock_user"
	actionUnlockUser         = "unlock_user"
	actionDropUser           = "drop_user"
	actionCreateRole         = "create_role"
	// actionSkip is the audit action of an account left alone on purpose.
	actionSkip = "skip"
	// actionRefuse is the audit action of a user in scope who cannot have
	// an account (the userName cannot be an Oracle identifier).
	actionRefuse = "refuse"
)

// errUnsafeName is matched (errors.Is) by the error of a plan refused
// because a name cannot safely become an Oracle identifier or IAM literal;
// such a plan holds no statement at all. It is ords.ErrUnsafeName.
var errUnsafeName = ords.ErrUnsafeName

// Mapping is one database's configuration compiled for planning: every
// configured name already validated by internal/ords. It is immutable and
// safe for concurrent use.
type Mapping struct {
	database        string
	domain          string
	principalDomain string
	mode            string
	onLeave         string
	nameFrom        string
	prefix          string
	groups          []groupMap
	byGroup         map[string]int  // lower-case displayName -> index in groups
	managed         map[string]bool // upper-case role names the mapping grants
}

type groupMap struct {
	name   string
	roles  []ords.Identifier
	schema ords.Identifier // shared mode
	global ords.GlobalName // IAM_GROUP_NAME=..., shared and global_role modes
}

// NewMapping validates one database's mapping (everything but the ORDS
// connection) and compiles it.
func NewMapping(d DatabaseConfig) (*Mapping, error) {
	d = d.withDefaults()
	if errs := d.validateMapping(); len(errs) > 0 {
		return nil, fmt.Errorf("database %q: %w", d.Name, errors.Join(errs...))
	}
	m := &Mapping{
		database: d.Name, domain: d.Domain, principalDomain: d.iamDomain(), mode: d.Mode, onLeave: d.OnLeave,
		nameFrom: d.UserName.From, prefix: d.UserName.Prefix, byGroup: map[string]int{}, managed: map[string]bool{},
	}
	for i, g := range d.Groups {
		gm := groupMap{name: g.Group}
		for _, r := range g.Roles {
			id, err := ords.Ident(r)
			if err != nil {
				return nil, err // validate refused it already
			}
			gm.roles = append(gm.roles, id)
			m.managed[id.Name()] = true
		}
		if d.Mode != modeUser {
			var err error
			if gm.global, err = ords.GlobalGroup(d.iamDomain(), g.Group); err != nil {
				return nil, err
			}
		}
		if d.Mode == modeShared {
			var err error
			if gm.schema, err = ords.Ident(g.Schema); err != nil {
				return nil, err
			}
		}
		m.groups = append(m.groups, gm)
		m.byGroup[strings.ToLower(g.Group)] = i
	}
	return m, nil
}

// Database is the database's configured name.
func (m *Mapping) Database() string { return m.database }

// Domain is the short name of the domain in scope.
func (m *Mapping) Domain() string { return m.domain }

// Mode is user, shared or global_role.
func (m *Mapping) Mode() string { return m.mode }

// Groups are the mapped groups' displayNames, in configuration order.
func (m *Mapping) Groups() []string {
	out := make([]string, len(m.groups))
	for i, g := range m.groups {
		out[i] = g.name
	}
	return out
}

// GroupRoles are the roles each mapped group gives, in configuration order.
func (m *Mapping) GroupRoles() map[string][]string {
	out := make(map[string][]string, len(m.groups))
	for _, g := range m.groups {
		roles := make([]string, len(g.roles))
		for i, r := range g.roles {
			roles[i] = r.Name()
		}
		out[g.name] = roles
	}
	return out
}

// principalPattern is the LIKE pattern matching the external names of the
// accounts this mapping creates (user mode).
func (m *Mapping) principalPattern() (string, error) {
	return ords.DomainPattern(ords.GlobalKindPrincipal, m.principalDomain)
}

// accountName is the account an IAM userName maps to, validated. A name
// that cannot be a safe identifier is an error matching errUnsafeName.
func (m *Mapping) accountName(userName string) (ords.Identifier, error) {
	n := userName
	if m.nameFrom == userNameFromLocalPart {
		if at := strings.LastIndexByte(n, '@'); at > 0 {
			n = n[:at]
		}
	}
	id, err := ords.Ident(m.prefix + n)
	if err != nil {
		return ords.Identifier{}, fmt.Errorf("IAM user %q cannot have an account in database %s: %w", userName, m.database, err)
	}
	return id, nil
}

// wantsAccount reports whether the user should have an account (user
// mode): it exists, is active and is in a mapped group.
func (m *Mapping) wantsAccount(v UserView) bool {
	if !v.Found || !v.User.Active {
		return false
	}
	for _, g := range v.User.Groups {
		if _, ok := m.byGroup[strings.ToLower(g)]; ok {
			return true
		}
	}
	return false
}

// UserView is what the planner knows about one IAM user: the user as the
// domain has it and the user's account as the database has it.
type UserView struct {
	// User is the IAM user; Found is false when the domain has no such user
	// (deleted), and then only User.UserName is set.
	User  User
	Found bool
	// Account is the account the user maps to; nil when it does not exist.
	Account *DBUser
	// Roles are the roles granted to Account (DBA_ROLE_PRIVS).
	Roles []string
}

// groupView is what the planner knows about one mapped group in the
// database (shared and global_role modes).
type groupView struct {
	// Account is the group's shared schema account (shared); nil when absent.
	Account *DBUser
	// Roles are the roles granted to the shared schema (shared).
	Roles []string
	// RoleExists says whether the group's global role exists (global_role).
	RoleExists bool
}

// Plan is what it takes to bring one account (or role) in line.
type Plan struct {
	// Database is the database's configured name.
	Database string
	// Subject is the account (user, shared modes) or role (global_role)
	// the statements are about.
	Subject string
	// IAMName is the IAM user (user mode) or group followed.
	IAMName string
	// Groups are the mapped groups the user is in (user mode).
	Groups []string
	// Steps are the statements to run, in order; empty when in line.
	Steps []Step
	// Skipped says why the account is left alone, when it is; Steps is then empty.
	Skipped string
}

// Step is one planned statement.
type Step struct {
	// Action is one of the Action constants.
	Action string
	// Role is the role granted, revoked or created, if any.
	Role string
	// Statement is the SQL, built by internal/ords from validated names.
	Statement ords.Statement
}

// SQL lists the plan's statement texts.
func (p Plan) SQL() []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = s.Statement.Text
	}
	return out
}

// planner accumulates steps; the first error wins and the plan is dropped.
type planner struct {
	steps []Step
	err   error
}

func (p *planner) add(action string, role ords.Identifier, build func() (ords.Statement, error)) {
	if p.err != nil {
		return
	}
	st, err := build()
	if err != nil {
		p.err = err
		return
	}
	p.steps = append(p.steps, Step{Action: action, Role: role.Name(), Statement: st})
}

// PlanUser plans one IAM user's account (user mode): created with CREATE
// SESSION and the roles of the user's mapped groups; roles the mapping
// manages and the user should no longer have revoked (roles it does not
// manage are never touched); on leaving the last mapped group (or being
// deactivated or deleted) locked after its mapped roles are revoked, or
// dropped with on_leave: drop; unlocked on return once its roles are right.
// An account that exists but is not IAM_PRINCIPAL_NAME=<domain>/<user> was
// not created by iamflow and is skipped. A name that cannot be a safe
// identifier is an error matching errUnsafeName, and no statement is planned.
// Applying the plan and planning again gives no step.
func (m *Mapping) PlanUser(v UserView) (Plan, error) {
	if m.mode != modeUser {
		return Plan{}, fmt.Errorf("database %s: mode %s has no per-user accounts", m.database, m.mode)
	}
	userName := v.User.UserName
	p := Plan{Database: m.database, IAMName: userName}
	acct, err := m.accountName(userName)
	if err != nil {
		return p, err
	}
	p.Subject = acct.Name()
	principal, err := ords.GlobalPrincipal(m.principalDomain, userName)
	if err != nil {
		return p, fmt.Errorf("IAM user %q cannot have an account in database %s: %w", userName, m.database, err)
	}
	if v.Account != nil && !strings.EqualFold(v.Account.Name, acct.Name()) {
		return p, fmt.Errorf("database %s: account %q read for %q, which maps to %s", m.database, v.Account.Name, userName, acct.Name())
	}
	var want map[string]ords.Identifier
	p.Groups, want = m.wantedRoles(v)
	if v.Account != nil {
		if why := m.notOurs(*v.Account, principal); why != "" {
			p.Skipped = why
			return p, nil
		}
	}
	s := userSteps{m: m, acct: acct, want: want, granted: map[string]bool{}}
	for _, r := range v.Roles {
		s.granted[strings.ToUpper(r)] = true
	}
	s.plan(v.Account, principal, len(p.Groups) > 0)
	if s.pl.err != nil {
		return Plan{Database: m.database, Subject: p.Subject, IAMName: userName},
			fmt.Errorf("database %s: account %s: %w", m.database, acct.Name(), s.pl.err)
	}
	p.Steps = s.pl.steps
	return p, nil
}

// wantedRoles is the mapped groups an active user is in (sorted, once
// each) and the roles they give, by name.
func (m *Mapping) wantedRoles(v UserView) ([]string, map[string]ords.Identifier) {
	want := map[string]ords.Identifier{}
	if !v.Found || !v.User.Active {
		return nil, want
	}
	var groups []string
	for _, g := range v.User.Groups {
		i, ok := m.byGroup[strings.ToLower(g)]
		if !ok {
			continue
		}
		groups = append(groups, m.groups[i].name)
		for _, r := range m.groups[i].roles {
			want[r.Name()] = r
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups), want
}

// userSteps plans the statements for one user's account.
type userSteps struct {
	m       *Mapping
	acct    ords.Identifier
	want    map[string]ords.Identifier // the roles the user should have
	granted map[string]bool            // the roles the account has (upper-case)
	pl      planner
}

// plan picks the account's steps: create it for a user in scope, bring its
// roles in line (and unlock it) while in scope, and on leaving drop it or
// lock it and revoke its mapped roles.
func (s *userSteps) plan(account *DBUser, principal ords.GlobalName, inScope bool) {
	acct, none := s.acct, ords.Identifier{}
	switch {
	case account == nil && inScope:
		s.pl.add(actionCreateUser, none, func() (ords.Statement, error) { return ords.CreateUserGlobal(acct, principal) })
		s.pl.add(actionGrantCreateSession, none, func() (ords.Statement, error) { return ords.GrantCreateSession(acct) })
		s.grants()
	case account == nil:
		// Not in scope and no account: nothing to do.
	case inScope:
		s.revokes()
		s.grants()
		if account.locked() {
			s.pl.add(actionUnlockUser, none, func() (ords.Statement, error) { return ords.UnlockUser(acct) })
		}
	case s.m.onLeave == onLeaveDrop:
		s.pl.add(actionDropUser, none, func() (ords.Statement, error) { return ords.DropUserCascade(acct) })
	default:
		if !account.locked() {
			s.pl.add(actionLockUser, none, func() (ords.Statement, error) { return ords.LockUser(acct) })
		}
		s.revokes()
	}
}

// grants grants the wanted roles the account lacks, in name order.
func (s *userSteps) grants() {
	for _, r := range sortedIdents(s.want) {
		if !s.granted[r.Name()] {
			s.pl.add(actionGrantRole, r, func() (ords.Statement, error) { return ords.GrantRole(r, s.acct) })
		}
	}
}

// revokes revokes, in name order, the roles the mapping manages that the
// account has and the user should no longer have; roles it does not manage
// are never touched.
func (s *userSteps) revokes() {
	var stale []ords.Identifier
	for r := range s.granted {
		if _, keep := s.want[r]; s.m.managed[r] && !keep {
			id, err := ords.Ident(r)
			if err != nil {
				continue // never a managed role: those were validated
			}
			stale = append(stale, id)
		}
	}
	slices.SortFunc(stale, func(a, b ords.Identifier) int { return strings.Compare(a.Name(), b.Name()) })
	for _, r := range stale {
		s.pl.add(actionRevokeRole, r, func() (ords.Statement, error) { return ords.RevokeRole(r, s.acct) })
	}
}

// notOurs explains why an existing account is not iamflow's to manage, or
// returns "" when it maps to exactly this IAM principal (or group).
func (m *Mapping) notOurs(a DBUser, want ords.GlobalName) string {
	if a.ExternalName == "" {
		return fmt.Sprintf("account %s exists and is not IAM-authenticated (no external name): not created by iamflow, left alone", a.Name)
	}
	got, err := ords.ParseGlobalName(a.ExternalName)
	if err != nil || got.Kind() != want.Kind() || !strings.EqualFold(got.Domain(), want.Domain()) ||
		!strings.EqualFold(got.Name(), want.Name()) {
		return fmt.Sprintf("account %s exists and maps to %q, not %s: not created by iamflow, left alone",
			a.Name, a.ExternalName, want.Value())
	}
	return ""
}

// groupCount is the number of mapped groups; PlanGroup takes 0..groupCount()-1.
func (m *Mapping) groupCount() int { return len(m.groups) }

// groupSubject is the account (shared) or role (global_role) of mapped group i.
func (m *Mapping) groupSubject(i int) ords.Identifier {
	g := m.groups[i]
	if m.mode == modeShared {
		return g.schema
	}
	if len(g.roles) == 1 {
		return g.roles[0]
	}
	return ords.Identifier{}
}

// PlanGroup plans mapped group i (shared and global_role modes). Shared:
// the schema account IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=<domain>/<group>'
// is created with CREATE SESSION and the group's roles; mapped roles it
// should no longer have are revoked. Global role: the role is created once,
// IDENTIFIED GLOBALLY AS 'IAM_GROUP_NAME=...'. A schema account that exists
// with another mapping is skipped.
func (m *Mapping) PlanGroup(i int, v groupView) (Plan, error) {
	if i < 0 || i >= len(m.groups) {
		return Plan{}, fmt.Errorf("database %s: no mapped group %d", m.database, i)
	}
	g := m.groups[i]
	subject := m.groupSubject(i)
	p := Plan{Database: m.database, Subject: subject.Name(), IAMName: g.name, Groups: []string{g.name}}
	var pl planner
	none := ords.Identifier{}
	switch m.mode {
	case modeGlobalRole:
		if !v.RoleExists {
			pl.add(actionCreateRole, subject, func() (ords.Statement, error) { return ords.CreateRoleGlobal(subject, g.global) })
		}
	case modeShared:
		if v.Account != nil {
			if why := m.notOurs(*v.Account, g.global); why != "" {
				p.Skipped = why
				return p, nil
			}
		}
		want := map[string]ords.Identifier{}
		for _, r := range g.roles {
			want[r.Name()] = r
		}
		granted := map[string]bool{}
		for _, r := range v.Roles {
			granted[strings.ToUpper(r)] = true
		}
		if v.Account == nil {
			pl.add(actionCreateUser, none, func() (ords.Statement, error) { return ords.CreateUserGlobal(subject, g.global) })
			pl.add(actionGrantCreateSession, none, func() (ords.Statement, error) { return ords.GrantCreateSession(subject) })
		}
		var stale []string
		for r := range granted {
			if _, keep := want[r]; m.managed[r] && !keep {
				stale = append(stale, r)
			}
		}
		slices.Sort(stale)
		for _, r := range stale {
			id, err := ords.Ident(r)
			if err != nil {
				continue
			}
			pl.add(actionRevokeRole, id, func() (ords.Statement, error) { return ords.RevokeRole(id, subject) })
		}
		for _, r := range sortedIdents(want) {
			if !granted[r.Name()] {
				pl.add(actionGrantRole, r, func() (ords.Statement, error) { return ords.GrantRole(r, subject) })
			}
		}
	default:
		return Plan{}, fmt.Errorf("database %s: mode %s has no per-group objects", m.database, m.mode)
	}
	if pl.err != nil {
		return Plan{Database: m.database, Subject: p.Subject, IAMName: g.name}, fmt.Errorf("database %s: group %q: %w", m.database, g.name, pl.err)
	}
	p.Steps = pl.steps
	return p, nil
}

// groupIndex returns the index of the mapped group with that displayName
// (case-insensitive), or -1.
func (m *Mapping) groupIndex(name string) int {
	if i, ok := m.byGroup[strings.ToLower(name)]; ok {
		return i
	}
	return -1
}

func sortedIdents(set map[string]ords.Identifier) []ords.Identifier {
	out := make([]ords.Identifier, 0, len(set))
	for _, id := range set {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b ords.Identifier) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}
