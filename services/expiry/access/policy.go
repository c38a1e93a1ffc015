// Package access is the access-request workflow of temporary groups (the
// first half of the temporary-admin pattern, docs/oci-sources.md §8: "a
// developer requests elevated access ...; the request is approved manually or
// by a pre-defined workflow with a time limit"): eligibility policies per
// group, requests and their decisions kept durably in JetStream KV, and an
// approved request turned into a grant of the expiry service, which ends by
// itself. Notifications of each step are delivered durably (notify.go).
//
// A request's life:
//
//	pending ──approve (enough)──> approved ──grant made──> active ──> ended | revoked
//	   │ └─deny──> denied                       └─grant failed──> failed
//	   ├─nobody decided by decide_by──> expired
//	   └─cancel──> cancelled
//
// A requester never approves their own request; every decision records who,
// when and why; a request is decided once, whichever replica or approver
// comes first (compare-and-set on the request's KV entry).
package access

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Config is the access section of the expiry configuration.
type Config struct {
	// Policies say who may request which temporary group, and how requests
	// are decided. A group without a policy cannot be requested (operators
	// still grant it directly).
	Policies []Policy `yaml:"policies"`
	// Notify is where each step of a request is announced.
	Notify NotifyConfig `yaml:"notify"`
	// ScanInterval is how often pending requests are checked for their
	// deadline and active ones for their grant's end. Default 15s.
	ScanInterval time.Duration `yaml:"scan_interval"`
}

// Policy is the eligibility policy of one temporary group.
type Policy struct {
	// Domain and Group name the temporary group (its displayName, compared
	// case-insensitively); it must be a temporary group of the expiry
	// service.
	Domain string `yaml:"domain"`
	Group  string `yaml:"group"`
	// Requesters may request the group (users by userName, groups by
	// displayName, in the login domain). Required: nobody is eligible by
	// default.
	Requesters Principals `yaml:"requesters"`
	// Approvers decide requests; Approvals is how many distinct approvals a
	// request needs (default 1). Required unless every requester is
	// auto-approved.
	Approvers Principals `yaml:"approvers"`
	Approvals int        `yaml:"approvals"`
	// AutoApprove: requests of these principals are approved at once
	// (e.g. the on-call group), recorded as approved by the policy.
	AutoApprove Principals `yaml:"auto_approve"`
	// DefaultDuration is the grant's duration when the request names none;
	// MaxDuration the longest a request may ask for (default: the temporary
	// group's max_duration).
	DefaultDuration time.Duration `yaml:"default_duration"`
	MaxDuration     time.Duration `yaml:"max_duration"`
	// Justification: a request must say why.
	Justification bool `yaml:"justification"`
	// Ticket: a request must name a ticket matching the pattern (RE2, whole
	// value), e.g. "INC-[0-9]+".
	Ticket TicketRule `yaml:"ticket"`
	// DecideWithin is how long a request may wait for its decision before it
	// expires. Default 1h.
	DecideWithin time.Duration `yaml:"decide_within"`
	// Extend: a requester with an active grant of the group may request an
	// extension, decided like a request.
	Extend bool `yaml:"extend"`

	ticket *regexp.Regexp
}

// TicketRule is a policy's ticket requirement.
type TicketRule struct {
	Required bool   `yaml:"required"`
	Pattern  string `yaml:"pattern"`
}

// Principals are users (userNames) and groups (displayNames).
type Principals struct {
	Users  []string `yaml:"users"`
	Groups []string `yaml:"groups"`
}

// Empty reports whether p names nobody.
func (p Principals) Empty() bool { return len(p.Users) == 0 && len(p.Groups) == 0 }

// Person is who asks or decides: a logged-in person, or an operator (the
// admin token), who may do anything and is recorded as "operator".
type Person struct {
	UserName string
	UserID   string
	Groups   []string // displayNames
	Operator bool
}

// Name is how the person appears in records.
func (p Person) Name() string {
	if p.Operator {
		return "operator"
	}
	return p.UserName
}

// Has reports whether p names the person.
func (p Principals) Has(who Person) bool {
	if who.UserName != "" && slices.ContainsFunc(p.Users, func(u string) bool { return strings.EqualFold(u, who.UserName) }) {
		return true
	}
	for _, g := range who.Groups {
		if slices.ContainsFunc(p.Groups, func(x string) bool { return strings.EqualFold(x, g) }) {
			return true
		}
	}
	return false
}

// Defaults.
const (
	DefaultDecideWithin = time.Hour
	DefaultScanInterval = 15 * time.Second
)

// Validate checks the configuration against the temporary groups (domain
// and group -> the group's max_duration) and compiles it. Every problem is
// reported, each naming its key.
func (c *Config) Validate(temporary func(domain, group string) (maxDuration time.Duration, ok bool)) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	seen := map[string]bool{}
	if c.ScanInterval == 0 {
		c.ScanInterval = DefaultScanInterval
	} else if c.ScanInterval < time.Second {
		bad("access.scan_interval: %v; at least 1s", c.ScanInterval)
	}
	for i := range c.Policies {
		p := &c.Policies[i]
		at := fmt.Sprintf("access.policies[%d]", i)
		key := strings.ToLower(p.Domain + "/" + p.Group)
		switch {
		case p.Domain == "" || p.Group == "":
			bad("%s: domain and group are required", at)
			continue
		case seen[key]:
			bad("%s: a second policy for %s/%s", at, p.Domain, p.Group)
		}
		seen[key] = true
		groupMax, ok := temporary(p.Domain, p.Group)
		if !ok {
			bad("%s: %s/%s is not a temporary group (expiry.groups): an approved request could not become a grant", at, p.Domain, p.Group)
		}
		errs = append(errs, p.validate(at, groupMax, ok)...)
	}
	errs = append(errs, c.Notify.validate())
	return errors.Join(errs...)
}

// validate checks one policy and fills in its defaults: approvals 1, the
// group's max_duration, a default duration of at most an hour, the time
// to decide; groupMax is the temporary group's max_duration (known: ok).
func (p *Policy) validate(at string, groupMax time.Duration, ok bool) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.Requesters.Empty() {
		bad("%s.requesters: required (users and/or groups who may ask for %s)", at, p.Group)
	}
	if p.Approvals == 0 {
		p.Approvals = 1
	}
	if p.Approvals < 0 {
		bad("%s.approvals: %d; want at least 1", at, p.Approvals)
	}
	if p.Approvers.Empty() && p.AutoApprove.Empty() {
		bad("%s.approvers: required unless auto_approve covers every requester", at)
	}
	if p.MaxDuration == 0 {
		p.MaxDuration = groupMax
	}
	if ok && p.MaxDuration > groupMax {
		bad("%s.max_duration: %v is longer than the group's max_duration %v", at, p.MaxDuration, groupMax)
	}
	if p.DefaultDuration == 0 {
		p.DefaultDuration = min(time.Hour, p.MaxDuration)
	}
	if p.DefaultDuration <= 0 || p.DefaultDuration > p.MaxDuration {
		bad("%s.default_duration: %v; want a positive duration no longer than max_duration %v", at, p.DefaultDuration, p.MaxDuration)
	}
	if p.DecideWithin == 0 {
		p.DecideWithin = DefaultDecideWithin
	} else if p.DecideWithin < time.Minute {
		bad("%s.decide_within: %v; at least 1m", at, p.DecideWithin)
	}
	if p.Ticket.Pattern != "" {
		re, err := regexp.Compile("^(?:" + p.Ticket.Pattern + ")$")
		if err != nil {
			bad("%s.ticket.pattern: %v", at, err)
		}
		p.ticket = re
	}
	return errs
}

// policy returns the policy of a group.
func (c *Config) policy(domain, group string) (*Policy, bool) {
	for i := range c.Policies {
		p := &c.Policies[i]
		if strings.EqualFold(p.Group, group) && (domain == "" || strings.EqualFold(p.Domain, domain)) {
			return p, true
		}
	}
	return nil, false
}

// Refusal is why a request or a decision is refused, with a stable code.
type Refusal struct {
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Refusal codes.
const (
	CodeNotEligible     = "not_eligible"
	CodeNoPolicy        = "no_policy"
	CodeTooLong         = "duration_too_long"
	CodeJustification   = "justification_required"
	CodeTicket          = "ticket_required"
	CodeSelfApproval    = "self_approval"
	CodeNotApprover     = "not_approver"
	CodeAlreadyDecided  = "already_decided"
	CodeAlreadyApproved = "already_approved_by_you"
	CodeDuplicate       = "duplicate_request"
	CodeNotYours        = "not_yours"
	CodeNotFound        = "not_found"
	CodeInvalid         = "invalid"
)

func refuse(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// check applies the policy to a request: who asks, for how long, why and
// with which ticket. It returns the duration granted.
func (p *Policy) check(who Person, d time.Duration, reason, ticket string) (time.Duration, error) {
	if !who.Operator && !p.Requesters.Has(who) {
		return 0, refuse(CodeNotEligible, "%s may not request %s in %s: not among the policy's requesters", who.Name(), p.Group, p.Domain)
	}
	if d == 0 {
		d = p.DefaultDuration
	}
	if d < 0 {
		return 0, refuse(CodeInvalid, "duration %v: want a positive duration", d)
	}
	if d > p.MaxDuration {
		return 0, refuse(CodeTooLong, "duration %v is longer than the %v %s allows", d, p.MaxDuration, p.Group)
	}
	if p.Justification && strings.TrimSpace(reason) == "" {
		return 0, refuse(CodeJustification, "%s needs a reason: say why (--reason)", p.Group)
	}
	if p.Ticket.Required && strings.TrimSpace(ticket) == "" {
		return 0, refuse(CodeTicket, "%s needs a ticket reference (--ticket)%s", p.Group, patternHint(p.Ticket.Pattern))
	}
	if ticket != "" && p.ticket != nil && !p.ticket.MatchString(ticket) {
		return 0, refuse(CodeTicket, "ticket %q does not match %s", ticket, p.Ticket.Pattern)
	}
	return d, nil
}

func patternHint(pattern string) string {
	if pattern == "" {
		return ""
	}
	return " matching " + pattern
}

// mayDecide says whether who may decide a request of requester under p.
func (p *Policy) mayDecide(who Person, requester string) error {
	if !who.Operator && strings.EqualFold(who.UserName, requester) {
		return refuse(CodeSelfApproval, "%s may not decide their own request", who.Name())
	}
	if !who.Operator && !p.Approvers.Has(who) {
		return refuse(CodeNotApprover, "%s is not an approver of %s in %s", who.Name(), p.Group, p.Domain)
	}
	return nil
}
