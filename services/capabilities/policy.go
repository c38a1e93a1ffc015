package capabilities

import (
	"fmt"
	"regexp"
	"strings"
)

// defaultRuleName names the default flags where a rule name is expected: in
// decision.Rule, previews and audit records.
const defaultRuleName = "default"

// policy is a validated, compiled capability policy: Config.Default and
// Config.Rules. It is immutable and safe for concurrent use.
type policy struct {
	def         Flags
	rules       []rule
	needsGroups bool
}

type rule struct {
	name      string
	domains   map[string]bool
	federated *bool
	groups    map[string]bool // lower-cased displayNames
	userName  *regexp.Regexp
	email     *regexp.Regexp
	set       Flags
}

// decision is what the policy wants for one user.
type decision struct {
	// Rule is the name of the rule that matched, or defaultRuleName.
	Rule string
	// Target are the flags the policy sets for the user: Default overlaid
	// with the matching rule's Set. Flags it leaves nil are not managed.
	Target Flags
}

// newPolicy validates cfg and compiles its policy.
func newPolicy(cfg Config) (*policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &policy{def: cfg.Default.clone()}
	for _, r := range cfg.Rules {
		cr := rule{name: r.Name, set: r.Set.clone()}
		if len(r.Match.Domains) > 0 {
			cr.domains = map[string]bool{}
			for _, d := range r.Match.Domains {
				cr.domains[d] = true
			}
		}
		if r.Match.Federated != nil {
			cr.federated = ptr(*r.Match.Federated)
		}
		if len(r.Match.Groups) > 0 {
			cr.groups = map[string]bool{}
			for _, g := range r.Match.Groups {
				cr.groups[strings.ToLower(strings.TrimSpace(g))] = true
			}
			p.needsGroups = true
		}
		var err error
		if cr.userName, err = compilePattern(r.Match.UserName); err != nil {
			return nil, fmt.Errorf("rules %q: match.user_name: %w", r.Name, err) // Validate caught it
		}
		if cr.email, err = compilePattern(r.Match.Email); err != nil {
			return nil, fmt.Errorf("rules %q: match.email: %w", r.Name, err)
		}
		p.rules = append(p.rules, cr)
	}
	return p, nil
}

// readsGroups reports whether some rule matches on group membership: then
// users are read with their groups, and membership events trigger
// reconciles.
func (p *policy) readsGroups() bool { return p.needsGroups }

// decide returns the flags the policy wants for u, a user of domain: the
// first rule that matches wins and overlays the default. u.Groups must be
// filled when readsGroups.
func (p *policy) decide(domain string, u User) decision {
	for i := range p.rules {
		if r := &p.rules[i]; r.matches(domain, u) {
			return decision{Rule: r.name, Target: p.def.overlay(r.set)}
		}
	}
	return decision{Rule: defaultRuleName, Target: p.def.clone()}
}

func (r *rule) matches(domain string, u User) bool {
	if r.domains != nil && !r.domains[domain] {
		return false
	}
	if r.federated != nil && *r.federated != u.Federated {
		return false
	}
	if r.groups != nil && !r.inGroup(u.Groups) {
		return false
	}
	if r.userName != nil && !r.userName.MatchString(u.UserName) {
		return false
	}
	if r.email != nil && (u.Email == "" || !r.email.MatchString(u.Email)) {
		return false
	}
	return true
}

func (r *rule) inGroup(groups []string) bool {
	for _, g := range groups {
		if r.groups[strings.ToLower(g)] {
			return true
		}
	}
	return false
}
