package planner

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// UserInput is what a user reconcile read: the user in the source, its
// recorded mapping, and what the target holds.
type UserInput struct {
	// Source is the user in the source domain; nil when the read found none.
	Source *UserState
	// SourceComplete says the source read succeeded and is authoritative. A
	// nil Source counts as "deleted in the source" only when it is set; an
	// empty or failed read must leave it false, and then nothing is deleted.
	SourceComplete bool
	// Mapping is the recorded mapping of the source id (IDMap.Get); nil if none.
	Mapping *Mapping
	// Mapped is the target user Mapping names; nil if none or gone.
	Mapped *UserState
	// Matched is the target user found by the link's match rule
	// (match.user: userName, or externalId equal to the source id); nil if none.
	Matched *UserState
	// Declares says which attributes the target takes (nil: all). An
	// attribute it does not take is neither sent nor compared, so it never
	// keeps an object out of step.
	Declares Declares
	// Groups are the target groups the link manages that hold the target
	// user, read only when the user is to be retired (deleted or deactivated
	// in the target): its memberships are removed first, whether or not the
	// target would drop them itself.
	Groups []MemberOf
}

// MemberOf is a target group (managed by the link) that holds a user.
type MemberOf struct {
	SourceID string // the group's source id
	TargetID string
	Name     string
}

// target is how a reconcile found the target object.
type target struct {
	// mapped: found through the recorded mapping (no adoption needed).
	mapped bool
	// managed: iamflow created or adopted it (it may be deleted).
	managed bool
}

// targetUser picks the target user: by mapping first, then by match (a
// Matched user that does not match the source under the link's rule is
// ignored).
func (r *Rules) targetUser(in UserInput) (*UserState, target) {
	return pickTarget(in.Mapping, in.Mapped, in.Matched, in.Source, userID, r.userMatches)
}

// pickTarget is targetUser and targetGroup: the mapped or matched target
// whose id the mapping names, else the matched one when it matches the
// source (or the source is gone), else none.
func pickTarget[S any](m *Mapping, mapped, matched, src *S, id func(*S) string, matches func(src, t S) bool) (*S, target) {
	if m != nil {
		for _, c := range []*S{mapped, matched} {
			if c != nil && id(c) == m.TargetID {
				return c, target{mapped: true, managed: m.Managed()}
			}
		}
	}
	if matched == nil || (src != nil && !matches(*src, *matched)) {
		return nil, target{}
	}
	return matched, target{}
}

// RetiredUser returns the target user PlanUser(in) retires (deletes or
// deactivates) when the delete policy lets it, nil when none: such a user
// leaves the link's groups first, so the caller reads in.Groups for it.
func (r *Rules) RetiredUser(in UserInput) *UserState {
	t, how := r.targetUser(in)
	retiring := in.Source == nil
	if in.Source != nil {
		ok, _ := r.UserInScope(*in.Source)
		retiring = !ok
	}
	if t != nil && retiring && (how.managed || !r.link.Delete.ManagedOnly()) && r.link.Delete.Users != PolicyKeep {
		return t
	}
	return nil
}

// userMatches applies match.user.
func (r *Rules) userMatches(src, t UserState) bool {
	if r.link.Match.User == MatchExternalID {
		return t.ExternalID == src.ID
	}
	// By name, or a copy iamflow made (it carries the source id as its
	// externalId) whose source was renamed before its mapping was stored.
	return strings.EqualFold(t.UserName, src.UserName) || (t.ExternalID != "" && t.ExternalID == src.ID)
}

// NewPlan starts a plan for target.
func (r *Rules) NewPlan(target string) Plan {
	return Plan{Link: r.link.Name, Source: r.link.Source, Target: target, DryRun: r.link.DryRun}
}

// PlanUser plans the minimal change that makes the target's copy of one
// user match the source.
func (r *Rules) PlanUser(target string, in UserInput) Plan {
	p := r.NewPlan(target)
	t, how := r.targetUser(in)
	switch {
	case in.Source == nil && !in.SourceComplete:
		p.Actions = append(p.Actions, Skip(KindUser, in.sourceID(), ReasonSourceIncomplete))
	case in.Source == nil:
		if t != nil {
			r.retireUser(&p, in.sourceID(), t, how.managed, in.Groups, "deleted in the source")
		} else if m := in.Mapping; m != nil {
			// Nothing is left on either side: what no longer exists is
			// done, and only the mapping is left to forget.
			p.Actions = append(p.Actions, Action{Kind: ActForget, Entity: KindUser, SourceID: m.SourceID, TargetID: m.TargetID,
				Name: m.SourceID, Reason: "deleted in the source; its copy is gone from the target too"})
		}
	default:
		if ok, why := r.UserInScope(*in.Source); !ok {
			if t != nil && how.managed {
				r.retireUser(&p, in.Source.ID, t, how.managed, in.Groups, "left the link's scope: "+why)
			} else {
				p.Actions = append(p.Actions, Skip(KindUser, in.Source.ID, "out of scope: "+why))
			}
			return p
		}
		p.Actions = append(p.Actions, r.ensureUser(*in.Source, t, how, in.Declares)...)
		if t != nil {
			changes, ops := r.userDiff(*in.Source, *t, in.Declares)
			if len(changes) > 0 {
				p.Actions = append(p.Actions, Action{Kind: ActUpdateUser, Entity: KindUser, SourceID: in.Source.ID,
					TargetID: t.ID, Name: t.UserName, Changes: changes, Ops: ops})
			}
		}
	}
	return p
}

func (in UserInput) sourceID() string { return sourceIDOf(in.Source, userID, in.Mapping) }

func userID(u *UserState) string { return u.ID }

// sourceIDOf is the id of the source object of an input: src's when it
// exists, else the one its mapping records.
func sourceIDOf[S any](src *S, id func(*S) string, m *Mapping) string {
	switch {
	case src != nil:
		return id(src)
	case m != nil:
		return m.SourceID
	}
	return ""
}

// ensureUser makes sure the in-scope source user has a managed copy in the
// target: create_user when t is nil, adopt when t was only matched, nothing
// when t is already mapped.
func (r *Rules) ensureUser(src UserState, t *UserState, how target, dc Declares) []Action {
	switch {
	case t == nil:
		want := r.desiredUser(src, dc)
		return []Action{{Kind: ActCreateUser, Entity: KindUser, SourceID: src.ID, Name: want.UserName,
			User: &want, Changes: userChanges(want)}}
	case !how.mapped:
		return []Action{adopt(KindUser, src.ID, t.ID, t.UserName, t.ExternalID, r.link.Match.User)}
	}
	return nil
}

// adopt is the action that makes the target object targetID (called name),
// matched by the rule match, the managed copy of the source's sourceID: its
// externalId is set to sourceID when it has none.
func adopt(k Kind, sourceID, targetID, name, externalID, match string) Action {
	a := Action{Kind: ActAdopt, Entity: k, SourceID: sourceID, TargetID: targetID, Name: name,
		Reason: fmt.Sprintf("matched by %s", match)}
	if externalID == "" {
		a.Changes = []Change{{Attr: "externalId", After: sourceID}}
		a.Ops = []identitydomains.Operations{identitydomain.Replace("externalId", sourceID)}
	}
	return a
}

// desiredUser is the target copy of src: userName, externalId (the source
// id) and the copied attributes.
func (r *Rules) desiredUser(src UserState, dc Declares) UserState {
	return r.copyUser(UserState{UserName: src.UserName, ExternalID: src.ID, Active: true}, src, dc)
}

// UpdatedUser is target user tgt once the update_user action the rules plan
// for it from src is applied: its copied attributes (those the target
// declares) are src's, the rest are tgt's.
func (r *Rules) UpdatedUser(src, tgt UserState, dc Declares) UserState {
	return r.copyUser(tgt.clone(), src, dc)
}

// copyUser returns want with the copied attributes the target declares
// taken from src.
func (r *Rules) copyUser(want, src UserState, dc Declares) UserState {
	for _, c := range r.userCopies {
		if !dc.ok(ResourceUser, userAttrPath(c.to)) {
			continue
		}
		switch c.from {
		case AttrEmails:
			want.Emails = sortEmails(append([]Email(nil), src.Emails...))
		case AttrActive:
			want.Active = src.Active
		default:
			want.setUserString(c.to, src.userString(c.from))
		}
	}
	return want
}

// userChanges lists the attributes a created user gets.
func userChanges(u UserState) []Change {
	cs := []Change{{Attr: AttrUserName, After: u.UserName}, {Attr: "externalId", After: u.ExternalID}}
	for _, a := range UserAttributes[1:] {
		var v string
		switch a {
		case AttrEmails:
			v = emailsString(u.Emails)
		case AttrActive:
			v = strconv.FormatBool(u.Active)
		default:
			v = u.userString(a)
		}
		if v != "" {
			cs = append(cs, Change{Attr: a, After: v})
		}
	}
	return cs
}

// userDiff returns what differs in the copied attributes and the PATCH
// operations that fix it.
func (r *Rules) userDiff(src, tgt UserState, dc Declares) ([]Change, []identitydomains.Operations) {
	var cs []Change
	var ops []identitydomains.Operations
	for _, c := range r.userCopies {
		if !dc.ok(ResourceUser, userAttrPath(c.to)) {
			continue
		}
		switch c.from {
		case AttrEmails:
			if !sameEmails(src.Emails, tgt.Emails) {
				cs = append(cs, Change{Attr: AttrEmails, Before: emailsString(tgt.Emails), After: emailsString(src.Emails)})
				if len(src.Emails) == 0 {
					ops = append(ops, identitydomain.Remove(AttrEmails))
				} else {
					ops = append(ops, identitydomain.Replace(AttrEmails, emailsValue(src.Emails)))
				}
			}
		case AttrActive:
			if src.Active != tgt.Active {
				cs = append(cs, Change{Attr: AttrActive, Before: strconv.FormatBool(tgt.Active), After: strconv.FormatBool(src.Active)})
				ops = append(ops, identitydomain.Replace(AttrActive, src.Active))
			}
		default:
			sv, tv := src.userString(c.from), tgt.userString(c.to)
			if sv == tv {
				continue
			}
			cs = append(cs, Change{Attr: c.to, Before: tv, After: sv})
			if sv == "" {
				ops = append(ops, identitydomain.Remove(userAttrPath(c.to)))
			} else {
				ops = append(ops, identitydomain.Replace(userAttrPath(c.to), sv))
			}
		}
	}
	return cs, ops
}

// retireUser applies the users delete policy to target user t. A user that
// is deleted or deactivated first leaves the link's groups it is in, so no
// target keeps a member the source no longer has, whether or not it
// cascades deletes into groups; the mapping is forgotten, so a user that
// comes back is matched and adopted again.
func (r *Rules) retireUser(p *Plan, sourceID string, t *UserState, managed bool, groups []MemberOf, why string) {
	if !managed && r.link.Delete.ManagedOnly() {
		p.Actions = append(p.Actions, Skip(KindUser, sourceID, fmt.Sprintf(
			"%s, but target user %q was not created or adopted by iamflow: not touched (delete.only_managed)", why, t.UserName)))
		return
	}
	if r.link.Delete.Users == PolicyKeep {
		p.Actions = append(p.Actions, Skip(KindUser, sourceID, why+"; kept (delete.users: keep)"))
		return
	}
	for _, g := range groups {
		p.Actions = append(p.Actions, Action{Kind: ActRemoveMember, Entity: KindGroup, SourceID: g.SourceID, TargetID: g.TargetID,
			Name: g.Name, MemberSourceID: sourceID, MemberTargetID: t.ID, MemberName: t.UserName, Reason: "user " + why})
	}
	switch r.link.Delete.Users {
	case PolicyDeactivate:
		if !t.Active {
			// Already inactive: only the mapping is left to forget.
			p.Actions = append(p.Actions, Action{Kind: ActForget, Entity: KindUser, SourceID: sourceID, TargetID: t.ID,
				Name: t.UserName, Reason: why + "; already inactive"})
			return
		}
		p.Actions = append(p.Actions, Action{Kind: ActDeactivateUser, Entity: KindUser, SourceID: sourceID, TargetID: t.ID,
			Name: t.UserName, Reason: why, Changes: []Change{{Attr: AttrActive, Before: "true", After: "false"}},
			Ops: []identitydomains.Operations{identitydomain.Replace(AttrActive, false)}})
	default:
		p.Actions = append(p.Actions, Action{Kind: ActDeleteUser, Entity: KindUser, SourceID: sourceID, TargetID: t.ID,
			Name: t.UserName, Reason: why})
	}
}

// Declares says whether a target takes an attribute: resource "User" or
// "Group", path as in a PATCH ("displayName", "name.givenName", a full
// extension path). A nil Declares takes everything.
type Declares func(resource, path string) bool

// ok applies dc; nil takes everything.
func (dc Declares) ok(resource, path string) bool { return dc == nil || dc(resource, path) }

// The resource names Declares takes.
const (
	ResourceUser  = "User"
	ResourceGroup = "Group"
)

// Skip returns a skip action.
func Skip(k Kind, sourceID, reason string) Action {
	return Action{Kind: ActSkip, Entity: k, SourceID: sourceID, Reason: reason}
}
