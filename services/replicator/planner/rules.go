package planner

import (
	"fmt"
	"regexp"
)

// Rules is a validated link, its patterns compiled, ready to plan with. One
// Rules serves every target of the link and is safe for concurrent use.
type Rules struct {
	link                       Link
	groupInclude, groupExclude []*regexp.Regexp
	userInclude, userExclude   []*regexp.Regexp
	userCopies                 []copyRule // source attr -> target attr
	groupAttrs                 map[string]bool
	// fingerprintAttrs are the user attributes an own-write fingerprint covers.
	fingerprintAttrs []string
}

// copyRule copies one source attribute into one target attribute.
type copyRule struct{ from, to string }

// NewRules validates l (defaults applied) and compiles it.
func NewRules(l Link) (*Rules, error) {
	l = l.withDefaults()
	if errs := l.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("link %q: %v", l.Name, errs[0])
	}
	r := &Rules{link: l, groupAttrs: map[string]bool{}}
	var err error
	compile := func(ps []string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for _, p := range ps {
			re, cerr := compilePattern(p)
			if cerr != nil && err == nil {
				err = cerr
			}
			out = append(out, re)
		}
		return out
	}
	r.groupInclude, r.groupExclude = compile(l.Groups.Include), compile(l.Groups.Exclude)
	r.userInclude, r.userExclude = compile(l.Users.Include), compile(l.Users.Exclude)
	if err != nil {
		return nil, fmt.Errorf("link %q: %w", l.Name, err)
	}
	for _, a := range l.Attributes.User {
		to := a
		if m, ok := l.Attributes.Map[a]; ok {
			to = m
		}
		r.userCopies = append(r.userCopies, copyRule{from: a, to: to})
	}
	for _, a := range l.Attributes.Group {
		r.groupAttrs[a] = true
	}
	r.fingerprintAttrs = fingerprintAttrsOf(r.userCopies)
	return r, nil
}

// Link returns the link, defaults applied.
func (r *Rules) Link() Link { return r.link }

// GroupInScope reports whether the group is replicated, and why not.
func (r *Rules) GroupInScope(g GroupState) (bool, string) {
	if len(r.groupInclude) > 0 && !anyMatch(r.groupInclude, g.DisplayName) {
		return false, fmt.Sprintf("group %q matches no groups.include pattern", g.DisplayName)
	}
	if anyMatch(r.groupExclude, g.DisplayName) {
		return false, fmt.Sprintf("group %q matches a groups.exclude pattern", g.DisplayName)
	}
	return true, ""
}

// UserInScope reports whether the user is replicated, and why not.
func (r *Rules) UserInScope(u UserState) (bool, string) {
	switch {
	case r.link.Users.OnlyFederated && !u.Federated:
		return false, fmt.Sprintf("user %q is not federated (users.only_federated)", u.UserName)
	case r.link.Users.OnlyActive && !u.Active:
		return false, fmt.Sprintf("user %q is not active (users.only_active)", u.UserName)
	case len(r.userInclude) > 0 && !anyMatch(r.userInclude, u.UserName):
		return false, fmt.Sprintf("user %q matches no users.include pattern", u.UserName)
	case anyMatch(r.userExclude, u.UserName):
		return false, fmt.Sprintf("user %q matches a users.exclude pattern", u.UserName)
	}
	return true, ""
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// UsersScoped reports whether the link selects users by anything but their
// id (a mapped member then needs a read of the source to be scope-checked).
func (r *Rules) UsersScoped() bool {
	u := r.link.Users
	return u.OnlyActive || u.OnlyFederated || len(u.Include) > 0 || len(u.Exclude) > 0
}
