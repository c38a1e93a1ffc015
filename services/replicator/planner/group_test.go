package planner

import (
	"slices"
	"strings"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

func srcGroup() *GroupState {
	return &GroupState{ID: "g1", DisplayName: "ops-admins", Description: "on call", Members: []string{"s1"}}
}

func groupCopy(g *GroupState, id string, members ...string) *GroupState {
	return &GroupState{ID: id, ExternalID: g.ID, DisplayName: g.DisplayName, Description: g.Description, Members: members}
}

func withGroup(g *GroupState, edit func(*GroupState)) *GroupState {
	c := *g
	c.Members = slices.Clone(g.Members)
	edit(&c)
	return &c
}

func gmapped(id string) *Mapping {
	return &Mapping{SourceID: "g1", TargetID: id, Origin: OriginCreated}
}

// member is a source member s1 resolved in the target.
func member(target *UserState, m *Mapping) UserInput {
	return UserInput{Source: srcUser(), SourceComplete: true, Mapping: m, Mapped: target}
}

func TestPlanGroup(t *testing.T) {
	runPlanCases(t, (*Rules).PlanGroup, []planCase[GroupInput]{
		{name: "new group is created with externalId and description",
			in:   GroupInput{Source: srcGroup(), SourceComplete: true},
			want: []ActionKind{ActCreateGroup},
			check: func(t *testing.T, p Plan) {
				g := p.Actions[0].Group
				if g.DisplayName != "ops-admins" || g.ExternalID != "g1" || g.Description != "on call" {
					t.Errorf("created %+v", g)
				}
			}},
		{name: "in sync writes nothing",
			in:   GroupInput{Source: srcGroup(), SourceComplete: true, Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{}},
		{name: "renamed group is found by mapping and renamed, not duplicated",
			in: GroupInput{Source: withGroup(srcGroup(), func(g *GroupState) { g.DisplayName = "ops-oncall" }), SourceComplete: true,
				Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{ActUpdateGroup},
			check: func(t *testing.T, p Plan) {
				c := p.Actions[0].Changes[0]
				if c != (Change{Attr: "displayName", Before: "ops-admins", After: "ops-oncall"}) || p.Actions[0].TargetID != "t1" {
					t.Errorf("update = %+v", p.Actions[0])
				}
			}},
		{name: "unmapped group matched by name is adopted",
			in:   GroupInput{Source: srcGroup(), SourceComplete: true, Matched: withGroup(groupCopy(srcGroup(), "t7"), func(g *GroupState) { g.ExternalID = "" })},
			want: []ActionKind{ActAdopt},
			check: func(t *testing.T, p Plan) {
				if p.Actions[0].TargetID != "t7" || len(p.Actions[0].Ops) != 1 {
					t.Errorf("adopt = %+v", p.Actions[0])
				}
			}},
		{name: "mapping wins over a different group of the same name",
			in: GroupInput{Source: srcGroup(), SourceComplete: true, Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1"),
				Matched: groupCopy(srcGroup(), "t2")},
			want: []ActionKind{}},
		{name: "description changed",
			in: GroupInput{Source: withGroup(srcGroup(), func(g *GroupState) { g.Description = "" }), SourceComplete: true,
				Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{ActUpdateGroup},
			check: func(t *testing.T, p Plan) {
				op := p.Actions[0].Ops[0]
				if op.Op != identitydomains.OperationsOpRemove || !strings.HasSuffix(*op.Path, ":description") {
					t.Errorf("op = %s %s", op.Op, *op.Path)
				}
			}},
		{name: "description not copied when not listed",
			link: func(l *Link) { l.Attributes.Group = []string{"displayName"} },
			in: GroupInput{Source: withGroup(srcGroup(), func(g *GroupState) { g.Description = "new" }), SourceComplete: true,
				Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{}},
		{name: "deleted in source: managed group deleted",
			in:   GroupInput{SourceComplete: true, Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{ActDeleteGroup}},
		{name: "deleted in source: delete.groups keep",
			link: func(l *Link) { l.Delete.Groups = PolicyKeep },
			in:   GroupInput{SourceComplete: true, Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{ActSkip}},
		{name: "deleted in source: unmanaged group refused",
			in:   GroupInput{SourceComplete: true, Matched: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{ActSkip}},
		{name: "deleted in source: unmanaged group deleted when only_managed is false",
			link: func(l *Link) { f := false; l.Delete.OnlyManaged = &f },
			in:   GroupInput{SourceComplete: true, Matched: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{ActDeleteGroup}},
		{name: "empty source read deletes nothing",
			in:   GroupInput{SourceComplete: false, Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{ActSkip}},
		{name: "excluded group is skipped",
			link: func(l *Link) { l.Groups.Exclude = []string{"ops-.*"} },
			in:   GroupInput{Source: srcGroup(), SourceComplete: true},
			want: []ActionKind{ActSkip}},
		{name: "include is anchored: a partial match is out of scope",
			link: func(l *Link) { l.Groups.Include = []string{"admins"} },
			in:   GroupInput{Source: srcGroup(), SourceComplete: true},
			want: []ActionKind{ActSkip}},
		{name: "renamed out of scope: the group iamflow created is deleted",
			link: func(l *Link) { l.Groups.Include = []string{"ops-.*"} },
			in: GroupInput{Source: withGroup(srcGroup(), func(g *GroupState) { g.DisplayName = "finance" }), SourceComplete: true,
				Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1")},
			want: []ActionKind{ActDeleteGroup}},
		{name: "members: new group, missing user: create group, create user, add member",
			in: GroupInput{Source: srcGroup(), SourceComplete: true,
				Members: &MembersInput{Users: []UserInput{member(nil, nil)}}},
			want: []ActionKind{ActCreateGroup, ActCreateUser, ActAddMember},
			check: func(t *testing.T, p Plan) {
				a := p.Actions[2]
				if a.TargetID != "" || a.MemberSourceID != "s1" || a.MemberTargetID != "" || a.MemberName != srcUser().UserName {
					t.Errorf("add = %+v", a)
				}
			}},
		{name: "members: out-of-scope member is not created",
			link: func(l *Link) { l.Users.Exclude = []string{"ana@.*"} },
			in: GroupInput{Source: srcGroup(), SourceComplete: true, Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1"),
				Members: &MembersInput{Users: []UserInput{member(nil, nil)}}},
			want: []ActionKind{}},
		{name: "members: in sync writes nothing",
			in: GroupInput{Source: srcGroup(), SourceComplete: true, Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1", "u1"),
				Members: &MembersInput{Users: []UserInput{member(copyOf(srcUser(), "u1"), created("u1"))}}},
			want: []ActionKind{}},
		{name: "members: managed extra member removed, unmanaged left",
			in: GroupInput{Source: srcGroup(), SourceComplete: true, Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1", "u1", "u2", "local"),
				Members: &MembersInput{Users: []UserInput{member(copyOf(srcUser(), "u1"), created("u1"))},
					ManagedTargetUsers: map[string]bool{"u1": true, "u2": true}}},
			want: []ActionKind{ActRemoveMember},
			check: func(t *testing.T, p Plan) {
				if p.Actions[0].MemberTargetID != "u2" || p.Actions[0].TargetID != "t1" {
					t.Errorf("remove = %+v", p.Actions[0])
				}
			}},
		{name: "members: incomplete source read removes no member",
			in: GroupInput{Source: withGroup(srcGroup(), func(g *GroupState) { g.Members = nil }), SourceComplete: false,
				Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1", "u1"),
				Members: &MembersInput{ManagedTargetUsers: map[string]bool{"u1": true}}},
			want: []ActionKind{}},
		{name: "members: existing unmanaged user is adopted then added",
			in: GroupInput{Source: srcGroup(), SourceComplete: true, Mapping: gmapped("t1"), Mapped: groupCopy(srcGroup(), "t1"),
				Members: &MembersInput{Users: []UserInput{{Source: srcUser(), SourceComplete: true, Matched: copyOf(srcUser(), "u5")}}}},
			want: []ActionKind{ActAdopt, ActAddMember},
			check: func(t *testing.T, p Plan) {
				if p.Actions[1].MemberTargetID != "u5" {
					t.Errorf("add = %+v", p.Actions[1])
				}
			}},
	})
}
