package planner

import (
	"slices"
	"strings"
	"testing"
)

// rules compiles a hub -> spoke link after edit.
func rules(t *testing.T, edit func(*Link)) *Rules {
	t.Helper()
	l := Link{Name: "hub-to-spoke", Source: "hub", Targets: []string{"spoke"}}
	if edit != nil {
		edit(&l)
	}
	r, err := NewRules(l)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func srcUser() *UserState {
	return &UserState{ID: "s1", UserName: "ana@example.com", DisplayName: "Ana", GivenName: "Ana", FamilyName: "Lima",
		Emails: []Email{{Value: "ana@example.com", Type: "work", Primary: true}}, Active: true, Federated: true,
		Custom: map[string]string{"department": "Ops"}}
}

// copyOf is the target's copy of srcUser, as iamflow made it.
func copyOf(u *UserState, id string) *UserState {
	c := u.clone()
	c.ID, c.ExternalID, c.Federated, c.Custom = id, u.ID, false, nil
	return &c
}

func created(id string) *Mapping {
	return &Mapping{SourceID: "s1", TargetID: id, Origin: OriginCreated}
}

func with(u *UserState, edit func(*UserState)) *UserState {
	c := u.clone()
	edit(&c)
	return &c
}

func TestPlanUser(t *testing.T) {
	runPlanCases(t, (*Rules).PlanUser, []planCase[UserInput]{
		{name: "new user is created with userName, externalId and copied attributes",
			in:   UserInput{Source: srcUser(), SourceComplete: true},
			want: []ActionKind{ActCreateUser},
			check: func(t *testing.T, p Plan) {
				u := p.Actions[0].User
				if u.UserName != "ana@example.com" || u.ExternalID != "s1" || u.DisplayName != "Ana" || len(u.Emails) != 1 || u.Custom != nil {
					t.Errorf("created %+v", u)
				}
			}},
		{name: "in sync writes nothing",
			in:   UserInput{Source: srcUser(), SourceComplete: true, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{}},
		{name: "replay of the same state writes nothing (found by match after adoption)",
			in: UserInput{Source: srcUser(), SourceComplete: true, Mapping: &Mapping{SourceID: "s1", TargetID: "t1", Origin: OriginAdopted},
				Matched: copyOf(srcUser(), "t1")},
			want: []ActionKind{}},
		{name: "changed displayName is one replace",
			in: UserInput{Source: with(srcUser(), func(u *UserState) { u.DisplayName = "Ana L." }), SourceComplete: true,
				Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActUpdateUser},
			check: func(t *testing.T, p Plan) {
				a := p.Actions[0]
				if len(a.Changes) != 1 || a.Changes[0] != (Change{Attr: "displayName", Before: "Ana", After: "Ana L."}) || len(a.Ops) != 1 || *a.Ops[0].Path != "displayName" {
					t.Errorf("update = %+v", a)
				}
			}},
		{name: "email change replaces emails; case alone is no change",
			in: UserInput{Source: with(srcUser(), func(u *UserState) { u.Emails = []Email{{Value: "ANA@example.com", Type: "work", Primary: true}} }),
				SourceComplete: true, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{}},
		{name: "mapped attribute writes the target attribute",
			link: func(l *Link) {
				l.Attributes.User = []string{"displayName", "department"}
				l.Attributes.Map = map[string]string{"department": "costCenter"}
			},
			in:   UserInput{Source: srcUser(), SourceComplete: true, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActUpdateUser},
			check: func(t *testing.T, p Plan) {
				a := p.Actions[0]
				if a.Changes[0] != (Change{Attr: "costCenter", After: "Ops"}) || !strings.HasSuffix(*a.Ops[0].Path, ":costCenter") {
					t.Errorf("update = %+v, path %s", a, *a.Ops[0].Path)
				}
			}},
		{name: "attributes not listed are not copied",
			link: func(l *Link) { l.Attributes.User = []string{"emails"} },
			in: UserInput{Source: with(srcUser(), func(u *UserState) { u.DisplayName = "changed" }), SourceComplete: true,
				Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{}},
		{name: "existing target user is adopted and stamped, not duplicated",
			in: UserInput{Source: srcUser(), SourceComplete: true,
				Matched: with(copyOf(srcUser(), "t9"), func(u *UserState) { u.ExternalID = "" })},
			want: []ActionKind{ActAdopt},
			check: func(t *testing.T, p Plan) {
				a := p.Actions[0]
				if a.TargetID != "t9" || len(a.Ops) != 1 || *a.Ops[0].Path != "externalId" {
					t.Errorf("adopt = %+v", a)
				}
			}},
		{name: "adopted user with a foreign externalId keeps it",
			in: UserInput{Source: srcUser(), SourceComplete: true,
				Matched: with(copyOf(srcUser(), "t9"), func(u *UserState) { u.ExternalID = "idp-123"; u.DisplayName = "old" })},
			want: []ActionKind{ActAdopt, ActUpdateUser},
			check: func(t *testing.T, p Plan) {
				if len(p.Actions[0].Ops) != 0 {
					t.Errorf("adopt stamps over a foreign externalId: %+v", p.Actions[0])
				}
			}},
		{name: "deleted in source, its copy gone too: only the mapping is forgotten",
			in:   UserInput{Source: nil, SourceComplete: true, Mapping: created("gone")},
			want: []ActionKind{ActForget}},
		{name: "mapped target gone is created again",
			in:   UserInput{Source: srcUser(), SourceComplete: true, Mapping: created("gone")},
			want: []ActionKind{ActCreateUser}},
		{name: "deleted in source: leaves the link's groups, then is deactivated",
			in: UserInput{Source: nil, SourceComplete: true, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1"),
				Groups: []MemberOf{{SourceID: "sg1", TargetID: "tg1", Name: "ops"}, {SourceID: "sg2", TargetID: "tg2", Name: "dev"}}},
			want: []ActionKind{ActRemoveMember, ActRemoveMember, ActDeactivateUser},
			check: func(t *testing.T, p Plan) {
				if a := p.Actions[0]; a.SourceID != "sg1" || a.TargetID != "tg1" || a.MemberTargetID != "t1" {
					t.Errorf("remove = %+v", a)
				}
			}},
		{name: "deleted in source, already inactive: leaves the groups, mapping forgotten",
			in: UserInput{Source: nil, SourceComplete: true, Mapping: created("t1"),
				Mapped: with(copyOf(srcUser(), "t1"), func(u *UserState) { u.Active = false }),
				Groups: []MemberOf{{SourceID: "sg1", TargetID: "tg1", Name: "ops"}}},
			want: []ActionKind{ActRemoveMember, ActForget}},
		{name: "deleted in source, delete policy: leaves the groups, then is deleted",
			link: func(l *Link) { l.Delete.Users = PolicyDelete },
			in: UserInput{Source: nil, SourceComplete: true, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1"),
				Groups: []MemberOf{{SourceID: "sg1", TargetID: "tg1", Name: "ops"}}},
			want: []ActionKind{ActRemoveMember, ActDeleteUser}},
		{name: "deleted in source, keep policy: memberships kept too",
			link: func(l *Link) { l.Delete.Users = PolicyKeep },
			in: UserInput{Source: nil, SourceComplete: true, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1"),
				Groups: []MemberOf{{SourceID: "sg1", TargetID: "tg1", Name: "ops"}}},
			want: []ActionKind{ActSkip}},
		{name: "failed source read deletes nothing",
			in:   UserInput{Source: nil, SourceComplete: false, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActSkip},
			check: func(t *testing.T, p Plan) {
				if p.Actions[0].Reason != ReasonSourceIncomplete {
					t.Errorf("reason = %q", p.Actions[0].Reason)
				}
			}},
		{name: "deleted in source deactivates by default",
			in:   UserInput{Source: nil, SourceComplete: true, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActDeactivateUser},
			check: func(t *testing.T, p Plan) {
				a := p.Actions[0]
				if a.TargetID != "t1" || a.SourceID != "s1" || *a.Ops[0].Path != "active" {
					t.Errorf("deactivate = %+v", a)
				}
			}},
		{name: "deleted in source, already inactive: only the mapping is forgotten",
			in: UserInput{Source: nil, SourceComplete: true, Mapping: created("t1"),
				Mapped: with(copyOf(srcUser(), "t1"), func(u *UserState) { u.Active = false })},
			want: []ActionKind{ActForget}},
		{name: "delete policy delete",
			link: func(l *Link) { l.Delete.Users = PolicyDelete },
			in:   UserInput{Source: nil, SourceComplete: true, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActDeleteUser}},
		{name: "delete policy keep",
			link: func(l *Link) { l.Delete.Users = PolicyKeep },
			in:   UserInput{Source: nil, SourceComplete: true, Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActSkip}},
		{name: "unmanaged target user is never deleted by default",
			link: func(l *Link) { l.Delete.Users = PolicyDelete },
			in:   UserInput{Source: nil, SourceComplete: true, Matched: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActSkip},
			check: func(t *testing.T, p Plan) {
				if !strings.Contains(p.Actions[0].Reason, "only_managed") {
					t.Errorf("reason = %q", p.Actions[0].Reason)
				}
			}},
		{name: "unmanaged target user is deleted when only_managed is false",
			link: func(l *Link) { l.Delete.Users = PolicyDelete; f := false; l.Delete.OnlyManaged = &f },
			in:   UserInput{Source: nil, SourceComplete: true, Matched: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActDeleteUser}},
		{name: "deleted in source and absent in target: nothing",
			in:   UserInput{Source: nil, SourceComplete: true},
			want: []ActionKind{}},
		{name: "out of scope user is skipped",
			link: func(l *Link) { l.Users.Exclude = []string{"ana@.*"} },
			in:   UserInput{Source: srcUser(), SourceComplete: true},
			want: []ActionKind{ActSkip}},
		{name: "non-federated user is out of scope with only_federated",
			link: func(l *Link) { l.Users.OnlyFederated = true },
			in:   UserInput{Source: with(srcUser(), func(u *UserState) { u.Federated = false }), SourceComplete: true},
			want: []ActionKind{ActSkip}},
		{name: "user deactivated in source leaves only_active scope and is deactivated",
			link: func(l *Link) { l.Users.OnlyActive = true },
			in: UserInput{Source: with(srcUser(), func(u *UserState) { u.Active = false }), SourceComplete: true,
				Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActDeactivateUser},
			check: func(t *testing.T, p Plan) {
				if !strings.Contains(p.Actions[0].Reason, "left the link's scope") {
					t.Errorf("reason = %q", p.Actions[0].Reason)
				}
			}},
		{name: "user leaving scope that iamflow never managed is left alone",
			link: func(l *Link) { l.Users.Include = []string{"bob@.*"} },
			in:   UserInput{Source: srcUser(), SourceComplete: true, Matched: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActSkip}},
		{name: "bidirectional: reverse mapping copies changes back to the original",
			in: UserInput{Source: with(srcUser(), func(u *UserState) { u.DisplayName = "Ana B." }), SourceComplete: true,
				Mapping: &Mapping{SourceID: "s1", TargetID: "t1", Origin: OriginCreated, Reverse: true}, Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActUpdateUser}},
		{name: "bidirectional: the original is never deleted through a reverse mapping",
			link: func(l *Link) { l.Delete.Users = PolicyDelete },
			in: UserInput{SourceComplete: true, Mapping: &Mapping{SourceID: "s1", TargetID: "t1", Origin: OriginCreated, Reverse: true},
				Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActSkip}},
		{name: "a matched user that does not match the rule is ignored",
			in: UserInput{Source: srcUser(), SourceComplete: true, Matched: with(copyOf(srcUser(), "t1"), func(u *UserState) {
				u.UserName, u.ExternalID = "bob", "another-source-id"
			})},
			want: []ActionKind{ActCreateUser}},
		{name: "by name, a copy carrying the source id is adopted under another name (its mapping was lost, then the source renamed)",
			in:   UserInput{Source: srcUser(), SourceComplete: true, Matched: with(copyOf(srcUser(), "t1"), func(u *UserState) { u.UserName = "old-name" })},
			want: []ActionKind{ActAdopt}},
		{name: "match by externalId adopts the user stamped with the source id",
			link: func(l *Link) { l.Match.User = MatchExternalID },
			in:   UserInput{Source: srcUser(), SourceComplete: true, Matched: with(copyOf(srcUser(), "t1"), func(u *UserState) { u.UserName = "renamed" })},
			want: []ActionKind{ActAdopt}},
		{name: "source deactivation copies active without the guard's deactivate",
			in: UserInput{Source: with(srcUser(), func(u *UserState) { u.Active = false }), SourceComplete: true,
				Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
			want: []ActionKind{ActUpdateUser}},
	})
}

// planCase is one case of a table of plans: the edit of the test link, the
// input, the kinds of the actions wanted and, if set, more checks.
type planCase[In any] struct {
	name  string
	link  func(*Link)
	in    In
	want  []ActionKind
	check func(t *testing.T, p Plan)
}

// runPlanCases plans each case's input to "spoke" on the rules of its link
// and checks the plan's header and kinds, then the case's own checks.
func runPlanCases[In any](t *testing.T, plan func(*Rules, string, In) Plan, cases []planCase[In]) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			p := plan(rules(t, tt.link), "spoke", tt.in)
			if got := p.Kinds(); !slices.Equal(got, tt.want) {
				t.Fatalf("kinds = %v, want %v\n%s", got, tt.want, p)
			}
			if p.Link != "hub-to-spoke" || p.Source != "hub" || p.Target != "spoke" {
				t.Errorf("plan header = %+v", p)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestDryRunPlanIsMarked(t *testing.T) {
	p := rules(t, func(l *Link) { l.DryRun = true }).PlanUser("spoke", UserInput{Source: srcUser(), SourceComplete: true})
	if !p.DryRun || !strings.Contains(p.String(), "(dry run)") {
		t.Fatalf("plan = %+v", p)
	}
}

// An empty source read must not reach the guard as deletions at all.
func TestEmptySourceReadPlansNoDeletions(t *testing.T) {
	r := rules(t, func(l *Link) { l.Delete.Users = PolicyDelete })
	for _, in := range []UserInput{
		{Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1")},
		{Mapping: created("t1"), Mapped: copyOf(srcUser(), "t1"), SourceComplete: false},
	} {
		if p := r.PlanUser("spoke", in); p.Deletions() != 0 || !p.empty() {
			t.Fatalf("plan %s", p)
		}
	}
}
