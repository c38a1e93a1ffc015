package planner

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/validate"
)

// Link replicates users, groups and memberships from Source to each of Targets.
type Link struct {
	// Name identifies the link in keys, audit records and errors. Required,
	// unique; lower-case letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// Source is the short name of the domain copied from.
	Source string `yaml:"source"`
	// Targets are the short names of the domains copied to.
	Targets []string `yaml:"targets"`
	// Groups selects the groups replicated.
	Groups GroupScope `yaml:"groups"`
	// Users selects the users replicated.
	Users UserScope `yaml:"users"`
	// Attributes are the attributes copied.
	Attributes Attributes `yaml:"attributes"`
	// Match says how objects are matched in a target on first contact.
	Match Match `yaml:"match"`
	// Delete says what happens in a target when an object is deleted in
	// the source or leaves the link's scope.
	Delete DeletePolicy `yaml:"delete"`
	// Guard is the mass-deletion guard.
	Guard GuardConfig `yaml:"guard"`
	// Bidirectional runs the link both ways (target back to source too);
	// it needs exactly one target. Changes made by iamflow itself are not
	// echoed back.
	Bidirectional bool `yaml:"bidirectional"`
	// DryRun plans and reports but changes nothing.
	DryRun bool `yaml:"dry_run"`
}

// GroupScope selects groups by displayName. Patterns are RE2 expressions
// matched against the whole name ("ops-.*" does not match "x-ops-1"); write
// (?i) in front for a case-insensitive match.
type GroupScope struct {
	// Include: a group is replicated only if it matches one of these; empty
	// includes every group.
	Include []string `yaml:"include"`
	// Exclude: a group matching one of these is not replicated, even if included.
	Exclude []string `yaml:"exclude"`
}

// UserScope selects users. Include and Exclude are whole-value RE2
// patterns on userName, as for GroupScope.
type UserScope struct {
	// OnlyFederated replicates only federated users.
	OnlyFederated bool `yaml:"only_federated"`
	// OnlyActive replicates only active users; a user deactivated in the
	// source leaves scope, and the delete policy applies in the targets.
	OnlyActive bool `yaml:"only_active"`
	// Include: a user is replicated only if its userName matches one of
	// these; empty includes every user.
	Include []string `yaml:"include"`
	// Exclude: a user whose userName matches one of these is not replicated.
	Exclude []string `yaml:"exclude"`
}

// Attributes lists what is copied. Names are the replicator's attribute
// names (see UserAttributes and GroupAttributes). userName is always set
// when a user is created; list it to also copy renames.
type Attributes struct {
	// User attributes copied; default displayName, name.givenName,
	// name.familyName, emails, active.
	User []string `yaml:"user"`
	// Group attributes copied; default displayName, description.
	Group []string `yaml:"group"`
	// Map copies a listed user attribute into another target attribute of
	// the same type: {department: costCenter} writes the source's
	// department into the target's costCenter. A key must be listed in User.
	Map map[string]string `yaml:"map"`
}

// Match says how an object with no recorded mapping is found in a target.
type Match struct {
	// User: "userName" (default; same userName) or "externalId" (the
	// target's externalId is the source user's id, as iamflow stamps it).
	User string `yaml:"user"`
	// Group: "displayName" (default; same name, compared case-insensitively)
	// or "externalId" (the target's externalId is the source group's id).
	Group string `yaml:"group"`
}

// DeletePolicy is what happens in a target when an object is deleted in the
// source or leaves scope.
type DeletePolicy struct {
	// Users: "deactivate" (default), "delete" or "keep".
	Users string `yaml:"users"`
	// Groups: "delete" (default) or "keep".
	Groups string `yaml:"groups"`
	// OnlyManaged (default true) limits deletions, deactivations and
	// membership removals to objects iamflow created or adopted. Set false
	// to let the link also delete target objects it only matched.
	OnlyManaged *bool `yaml:"only_managed"`
}

// GuardConfig is a link's mass-deletion guard: when planned deletions
// (deletions and deactivations) exceed MaxDeletions within Window, or exceed
// MaxPercent of the target's objects in one reconcile, deletions are held
// for approval.
type GuardConfig struct {
	// MaxDeletions allowed per target within Window; default 10.
	MaxDeletions int `yaml:"max_deletions"`
	// MaxPercent of the target's objects one reconcile may delete; default
	// 20. Checked only when the target's object count is known.
	MaxPercent float64 `yaml:"max_percent"`
	// Window over which MaxDeletions is counted; default 1h.
	Window time.Duration `yaml:"window"`
}

// Attribute names, match rules and delete policies.
const (
	AttrUserName       = "userName"
	AttrDisplayName    = "displayName"
	AttrGivenName      = "name.givenName"
	AttrFamilyName     = "name.familyName"
	AttrEmails         = "emails"
	AttrActive         = "active"
	AttrEmployeeNumber = "employeeNumber"
	AttrCostCenter     = "costCenter"
	AttrOrganization   = "organization"
	AttrDivision       = "division"
	AttrDepartment     = "department"
	AttrDescription    = "description"

	MatchUserName    = "userName"
	MatchDisplayName = "displayName"
	MatchExternalID  = "externalId"

	PolicyDelete     = "delete"
	PolicyDeactivate = "deactivate"
	PolicyKeep       = "keep"
)

// UserAttributes are the user attributes a link may copy. The last five
// are the enterprise extension's (urn:...:extension:enterprise:2.0:User),
// the custom attributes the SDK model carries.
var UserAttributes = []string{AttrUserName, AttrDisplayName, AttrGivenName, AttrFamilyName, AttrEmails, AttrActive,
	AttrEmployeeNumber, AttrCostCenter, AttrOrganization, AttrDivision, AttrDepartment}

// Guard defaults.
const (
	// DefaultMaxDeletions is GuardConfig.MaxDeletions's default.
	DefaultMaxDeletions = 10
	// DefaultMaxPercent is GuardConfig.MaxPercent's default.
	DefaultMaxPercent = 20.0
	// DefaultGuardWindow is GuardConfig.Window's default.
	DefaultGuardWindow = time.Hour
)

// defaultUserAttributes and defaultGroupAttributes are copied when a link lists none.
var (
	defaultUserAttributes  = []string{AttrDisplayName, AttrGivenName, AttrFamilyName, AttrEmails, AttrActive}
	defaultGroupAttributes = []string{AttrDisplayName, AttrDescription}
)

// WithDefaults returns the link with its zero fields set to the defaults.
func (l Link) WithDefaults() Link { return l.withDefaults() }

func (l Link) withDefaults() Link {
	if len(l.Attributes.User) == 0 {
		l.Attributes.User = slices.Clone(defaultUserAttributes)
	}
	if len(l.Attributes.Group) == 0 {
		l.Attributes.Group = slices.Clone(defaultGroupAttributes)
	}
	if l.Match.User == "" {
		l.Match.User = MatchUserName
	}
	if l.Match.Group == "" {
		l.Match.Group = MatchDisplayName
	}
	if l.Delete.Users == "" {
		l.Delete.Users = PolicyDeactivate
	}
	if l.Delete.Groups == "" {
		l.Delete.Groups = PolicyDelete
	}
	if l.Delete.OnlyManaged == nil {
		t := true
		l.Delete.OnlyManaged = &t
	}
	if l.Guard.MaxDeletions == 0 {
		l.Guard.MaxDeletions = DefaultMaxDeletions
	}
	if l.Guard.MaxPercent == 0 {
		l.Guard.MaxPercent = DefaultMaxPercent
	}
	if l.Guard.Window == 0 {
		l.Guard.Window = DefaultGuardWindow
	}
	return l
}

// onlyManaged reports Delete.OnlyManaged, true when unset.
func (d DeletePolicy) ManagedOnly() bool { return d.OnlyManaged == nil || *d.OnlyManaged }

// linkNameRE is what a link name may be: it is part of KV keys and durables.
var linkNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate checks one link (with defaults applied) and returns one error
// per problem, each naming its key relative to the link.
func (l Link) Validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case strings.TrimSpace(l.Name) == "":
		bad("name: empty; name the link (it is part of id-mapping keys and audit records)")
	case !linkNameRE.MatchString(l.Name):
		bad("name: %q; use lower-case letters, digits, '-' and '_' (at most 64)", l.Name)
	}
	errs = append(errs, l.validateEnds()...)
	for _, p := range []struct {
		key  string
		pats []string
	}{{"groups.include", l.Groups.Include}, {"groups.exclude", l.Groups.Exclude},
		{"users.include", l.Users.Include}, {"users.exclude", l.Users.Exclude}} {
		for i, s := range p.pats {
			if _, err := compilePattern(s); err != nil {
				bad("%s[%d]: %v", p.key, i, err)
			}
		}
	}
	errs = append(errs, l.Attributes.validate()...)
	return append(errs, l.validatePolicies()...)
}

// validateEnds checks the source and the targets: domain short names,
// none the source, none twice, one only for a bidirectional link.
func (l Link) validateEnds() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !event.ValidDomainName(l.Source) {
		bad("source: %q is not a domain short name", l.Source)
	}
	if len(l.Targets) == 0 {
		bad("targets: empty; give at least one target domain")
	}
	seen := map[string]bool{}
	for i, t := range l.Targets {
		switch {
		case !event.ValidDomainName(t):
			bad("targets[%d]: %q is not a domain short name", i, t)
		case t == l.Source:
			bad("targets[%d]: %q is the source; a domain cannot replicate to itself", i, t)
		case seen[t]:
			bad("targets[%d]: %q is listed twice", i, t)
		}
		seen[t] = true
	}
	if l.Bidirectional && len(l.Targets) != 1 {
		bad("bidirectional: needs exactly one target, not %d", len(l.Targets))
	}
	return errs
}

// validatePolicies checks how objects are matched and deleted, and the
// mass-deletion guard.
func (l Link) validatePolicies() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if l.Match.User != MatchUserName && l.Match.User != MatchExternalID {
		bad("match.user: %q; use %q or %q", l.Match.User, MatchUserName, MatchExternalID)
	}
	if l.Match.Group != MatchDisplayName && l.Match.Group != MatchExternalID {
		bad("match.group: %q; use %q or %q", l.Match.Group, MatchDisplayName, MatchExternalID)
	}
	if !slices.Contains([]string{PolicyDelete, PolicyDeactivate, PolicyKeep}, l.Delete.Users) {
		bad("delete.users: %q; use %q, %q or %q", l.Delete.Users, PolicyDeactivate, PolicyDelete, PolicyKeep)
	}
	if l.Delete.Groups != PolicyDelete && l.Delete.Groups != PolicyKeep {
		bad("delete.groups: %q; use %q or %q (groups cannot be deactivated)", l.Delete.Groups, PolicyDelete, PolicyKeep)
	}
	if l.Guard.MaxDeletions < 0 {
		bad("guard.max_deletions: %d; give a positive count (default %d)", l.Guard.MaxDeletions, DefaultMaxDeletions)
	}
	if l.Guard.MaxPercent < 0 || l.Guard.MaxPercent > 100 {
		bad("guard.max_percent: %v; give a percentage in (0, 100] (default %v)", l.Guard.MaxPercent, DefaultMaxPercent)
	}
	if l.Guard.Window < 0 {
		bad("guard.window: %v; give a positive duration (default %v)", l.Guard.Window, DefaultGuardWindow)
	}
	return errs
}

// validate checks the attribute lists and the map.
func (a Attributes) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for i, n := range a.User {
		if !slices.Contains(UserAttributes, n) {
			bad("attributes.user[%d]: %q is not a user attribute; use one of %s", i, n, strings.Join(UserAttributes, ", "))
		}
	}
	for i, n := range a.Group {
		if !slices.Contains(GroupAttributes, n) {
			bad("attributes.group[%d]: %q is not a group attribute; use one of %s", i, n, strings.Join(GroupAttributes, ", "))
		}
	}
	into := map[string]string{}
	for _, from := range slices.Sorted(maps.Keys(a.Map)) {
		to := a.Map[from]
		key := fmt.Sprintf("attributes.map[%s]", from)
		switch {
		case !slices.Contains(a.User, from):
			bad("%s: %q is not listed in attributes.user; list it there to copy it", key, from)
		case !stringAttr(from) || !stringAttr(to):
			bad("%s: %q -> %q; only string attributes map (displayName, name.*, %s, ...)", key, from, to, AttrDepartment)
		case into[to] != "":
			bad("%s: %q is also written from %q; each target attribute has one source", key, to, into[to])
		}
		into[to] = from
	}
	// A listed attribute that is not mapped writes itself: it must not
	// collide with a mapped one.
	for _, n := range a.User {
		if _, mapped := a.Map[n]; !mapped && into[n] != "" {
			bad("attributes.map[%s]: %q is also copied from itself (listed in attributes.user)", into[n], n)
		}
	}
	return errs
}

// stringAttr reports whether the user attribute holds a single string.
func stringAttr(n string) bool {
	return slices.Contains(UserAttributes, n) && n != AttrEmails && n != AttrActive
}

// compilePattern anchors p so it must match a whole value.
func compilePattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, errors.New(`"" is not a valid pattern: empty; remove it or write ".*"`)
	}
	return validate.Pattern(p)
}

// GroupAttributes are the group attributes a link may copy.
var GroupAttributes = []string{AttrDisplayName, AttrDescription}
