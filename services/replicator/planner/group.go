package planner

import (
	"fmt"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// GroupInput is what a group reconcile read; see UserInput for the fields
// they share.
type GroupInput struct {
	// Declares says which attributes the target takes (nil: all); see
	// UserInput.Declares.
	Declares       Declares
	Source         *GroupState
	SourceComplete bool
	Mapping        *Mapping
	// Mapped is the target group Mapping names (found by id, so a renamed
	// group is still found); Matched is the one found by the link's match
	// rule (match.group: displayName, or externalId equal to the source id).
	Mapped  *GroupState
	Matched *GroupState
	// Members, when set, reconciles the group's membership too (a full
	// reconcile or a group event); nil leaves memberships alone.
	Members *MembersInput
}

// MembersInput is what a membership reconcile of one group read.
type MembersInput struct {
	// Users has one entry per member of the source group, each resolved in
	// the target as for PlanUser (Source set). A member with no copy in the
	// target is created first, scope permitting.
	Users []UserInput
	// ManagedTargetUsers are the target group's members that iamflow
	// created or adopted (IDMap.ManagedTarget). Only they are removed
	// when they are not members in the source, unless delete.only_managed is
	// false. The target group's members are Mapped's/Matched's Members.
	ManagedTargetUsers map[string]bool
	// Dangling are the target group's members that are not users of the
	// target any more (a user deleted where the domain did not cascade the
	// delete into its groups). They are removed whoever made them.
	Dangling map[string]bool
}

// targetGroup is targetUser for groups.
func (r *Rules) targetGroup(in GroupInput) (*GroupState, target) {
	return pickTarget(in.Mapping, in.Mapped, in.Matched, in.Source, groupID, r.groupMatches)
}

// TargetGroup is the target group PlanGroup(in) compares the source with
// (nil: it creates one).
func (r *Rules) TargetGroup(in GroupInput) *GroupState {
	t, _ := r.targetGroup(in)
	return t
}

// groupMatches applies match.group (displayName compares
// case-insensitively, as Identity Domains does).
func (r *Rules) groupMatches(src, t GroupState) bool {
	if r.link.Match.Group == MatchExternalID {
		return t.ExternalID == src.ID
	}
	// By name, or a copy iamflow made (see userMatches).
	return strings.EqualFold(t.DisplayName, src.DisplayName) || (t.ExternalID != "" && t.ExternalID == src.ID)
}

func (in GroupInput) sourceID() string { return sourceIDOf(in.Source, groupID, in.Mapping) }

func groupID(g *GroupState) string { return g.ID }

// PlanGroup plans the minimal change that makes the target's copy of one
// group (and, with Members, its membership) match the source.
func (r *Rules) PlanGroup(target string, in GroupInput) Plan {
	p := r.NewPlan(target)
	t, how := r.targetGroup(in)
	switch {
	case in.Source == nil && !in.SourceComplete:
		p.Actions = append(p.Actions, Skip(KindGroup, in.sourceID(), ReasonSourceIncomplete))
		return p
	case in.Source == nil:
		if t != nil {
			r.retireGroup(&p, in.sourceID(), t, how.managed, "deleted in the source")
		}
		return p
	}
	src := *in.Source
	if ok, why := r.GroupInScope(src); !ok {
		if t != nil && how.managed {
			r.retireGroup(&p, src.ID, t, how.managed, "left the link's scope: "+why)
		} else {
			p.Actions = append(p.Actions, Skip(KindGroup, src.ID, "out of scope: "+why))
		}
		return p
	}
	p.Actions = append(p.Actions, r.ensureGroup(src, t, how, in.Declares)...)
	var current []string
	targetID := ""
	if t != nil {
		targetID, current = t.ID, t.Members
		if cs, ops := r.groupDiff(src, *t, in.Declares); len(cs) > 0 {
			p.Actions = append(p.Actions, Action{Kind: ActUpdateGroup, Entity: KindGroup, SourceID: src.ID,
				TargetID: t.ID, Name: t.DisplayName, Changes: cs, Ops: ops})
		}
	}
	if in.Members != nil {
		r.planMembers(&p, src, targetID, current, in.SourceComplete, *in.Members, in.Declares)
		want := GroupState{DisplayName: src.DisplayName}
		if r.groupAttrs[AttrDescription] && in.Declares.ok(ResourceGroup, GroupAttrPath(AttrDescription)) {
			want.Description = src.Description
		}
		p.Group = &GroupOutcome{SourceID: src.ID, Want: want, Members: current}
	}
	return p
}

// ensureGroup is ensureUser for groups.
func (r *Rules) ensureGroup(src GroupState, t *GroupState, how target, dc Declares) []Action {
	switch {
	case t == nil:
		want := GroupState{DisplayName: src.DisplayName, ExternalID: src.ID}
		if r.groupAttrs[AttrDescription] && dc.ok(ResourceGroup, GroupAttrPath(AttrDescription)) {
			want.Description = src.Description
		}
		cs := []Change{{Attr: AttrDisplayName, After: want.DisplayName}, {Attr: "externalId", After: want.ExternalID}}
		if want.Description != "" {
			cs = append(cs, Change{Attr: AttrDescription, After: want.Description})
		}
		return []Action{{Kind: ActCreateGroup, Entity: KindGroup, SourceID: src.ID, Name: want.DisplayName, Group: &want, Changes: cs}}
	case !how.mapped:
		return []Action{adopt(KindGroup, src.ID, t.ID, t.DisplayName, t.ExternalID, r.link.Match.Group)}
	}
	return nil
}

// groupDiff compares the copied group attributes. displayName compares
// exactly: a change of case is a rename too.
func (r *Rules) groupDiff(src, tgt GroupState, dc Declares) ([]Change, []identitydomains.Operations) {
	var cs []Change
	var ops []identitydomains.Operations
	for _, a := range GroupAttributes {
		if !r.groupAttrs[a] || !dc.ok(ResourceGroup, GroupAttrPath(a)) {
			continue
		}
		sv, tv := src.DisplayName, tgt.DisplayName
		if a == AttrDescription {
			sv, tv = src.Description, tgt.Description
		}
		if sv == tv {
			continue
		}
		cs = append(cs, Change{Attr: a, Before: tv, After: sv})
		if sv == "" {
			ops = append(ops, identitydomain.Remove(GroupAttrPath(a)))
		} else {
			ops = append(ops, identitydomain.Replace(GroupAttrPath(a), sv))
		}
	}
	return cs, ops
}

// planMembers adds the in-scope source members the target group lacks
// (creating or adopting users first) and, when the source read is
// complete, removes the managed target members the source group lacks.
func (r *Rules) planMembers(p *Plan, src GroupState, groupTargetID string, current []string, complete bool, in MembersInput, dc Declares) {
	have := map[string]bool{}
	for _, id := range current {
		have[id] = true
	}
	wanted := map[string]bool{}
	for _, u := range in.Users {
		if u.Source == nil {
			continue
		}
		if ok, _ := r.UserInScope(*u.Source); !ok {
			continue // out-of-scope users are not replicated, nor their memberships
		}
		t, how := r.targetUser(u)
		p.Actions = append(p.Actions, r.ensureUser(*u.Source, t, how, dc)...)
		tid := ""
		if t != nil {
			tid = t.ID
			wanted[tid] = true
		}
		if tid == "" || !have[tid] {
			p.Actions = append(p.Actions, Action{Kind: ActAddMember, Entity: KindGroup, SourceID: src.ID, TargetID: groupTargetID,
				Name: src.DisplayName, MemberSourceID: u.Source.ID, MemberTargetID: tid, MemberName: u.Source.UserName})
		}
	}
	if !complete {
		return
	}
	for _, id := range current {
		reason := "not a member in the source"
		switch {
		case wanted[id]:
			continue
		case in.Dangling[id]:
			reason = "not a user of the target any more"
		case !in.ManagedTargetUsers[id] && r.link.Delete.ManagedOnly():
			continue
		}
		p.Actions = append(p.Actions, Action{Kind: ActRemoveMember, Entity: KindGroup, SourceID: src.ID, TargetID: groupTargetID,
			Name: src.DisplayName, MemberTargetID: id, Reason: reason})
	}
}

// retireGroup applies the groups delete policy to target group t.
func (r *Rules) retireGroup(p *Plan, sourceID string, t *GroupState, managed bool, why string) {
	switch {
	case !managed && r.link.Delete.ManagedOnly():
		p.Actions = append(p.Actions, Skip(KindGroup, sourceID, fmt.Sprintf(
			"%s, but target group %q was not created or adopted by iamflow: not touched (delete.only_managed)", why, t.DisplayName)))
	case r.link.Delete.Groups == PolicyKeep:
		p.Actions = append(p.Actions, Skip(KindGroup, sourceID, why+"; kept (delete.groups: keep)"))
	default:
		p.Actions = append(p.Actions, Action{Kind: ActDeleteGroup, Entity: KindGroup, SourceID: sourceID, TargetID: t.ID,
			Name: t.DisplayName, Reason: why})
	}
}
