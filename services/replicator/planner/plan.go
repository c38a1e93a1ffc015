package planner

import (
	"fmt"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// ActionKind is what an action does in a target.
type ActionKind string

// Action kinds.
const (
	ActCreateUser     ActionKind = "create_user"
	ActUpdateUser     ActionKind = "update_user"
	ActDeactivateUser ActionKind = "deactivate_user"
	ActDeleteUser     ActionKind = "delete_user"
	ActCreateGroup    ActionKind = "create_group"
	ActUpdateGroup    ActionKind = "update_group"
	ActDeleteGroup    ActionKind = "delete_group"
	ActAddMember      ActionKind = "add_member"
	ActRemoveMember   ActionKind = "remove_member"
	// ActAdopt records the mapping of a source object to an existing target
	// object that matched; it writes only the id map.
	ActAdopt ActionKind = "adopt"
	// ActForget forgets the mapping of a user that was retired before (it
	// writes only the id map): the target object stays, no longer managed.
	ActForget ActionKind = "forget"
	// ActSkip writes nothing; Reason says why.
	ActSkip ActionKind = "skip"
)

// Plan is what one reconcile would do in one target, in order.
//
// Actions refer to objects created earlier in the same plan by source id: an
// action with an empty TargetID (or MemberTargetID) means "the object the
// create_user/create_group action of the same source id made". The executor
// records each creation's mapping (OriginCreated) and each adopt's
// (OriginAdopted) in the IDMap, and forgets the mapping of what it deletes.
type Plan struct {
	Link   string
	Source string
	Target string
	// DryRun plans are reported, never applied.
	DryRun  bool
	Actions []Action

	// group is what a group plan leaves its target group holding, for the
	// own-write record (nil for user plans).
	Group *GroupOutcome
	// Recovered is a mapping (of a RecoveredKind object) found again by its
	// copy's externalId, its store having failed once. The replicator
	// stores it under the plan's leases, before the writes that rest on it,
	// and not at all when another source object has taken the copy
	// meanwhile.
	Recovered     *Mapping
	RecoveredKind Kind
}

// groupExpect is a group plan's expected outcome: the copied attributes as
// the plan writes them and the target's members before the plan, which the
// plan's add_member and remove_member actions change.
type GroupOutcome struct {
	SourceID string
	Want     GroupState
	Members  []string
}

// Action is one step of a plan, with enough before/after for the audit trail.
type Action struct {
	Kind ActionKind
	// Entity is the kind of object acted on (memberships act on groups).
	Entity Kind
	// SourceID is the source object's id (the group's, for memberships).
	SourceID string
	// TargetID is the target object's id; empty when it is created earlier
	// in this plan.
	TargetID string
	// Name is the object's userName or displayName, for humans.
	Name string
	// MemberSourceID and MemberTargetID name the user of add_member and
	// remove_member; MemberTargetID is empty when the user is created
	// earlier in this plan.
	MemberSourceID string
	MemberTargetID string
	// MemberName is the member's userName, for people; empty when only the
	// target id is known.
	MemberName string
	// Changes are the attributes changed, with their values before and after.
	Changes []Change
	// Ops are the PATCH operations of update_user, update_group and
	// deactivate_user.
	Ops []identitydomains.Operations
	// User and Group are the objects create_user and create_group make
	// (SDKUser and SDKGroup give the request bodies).
	User  *UserState
	Group *GroupState
	// Reason explains skips, adoptions, deletions and holds.
	Reason string
	// Held deletions wait for approval (see Guard) and must not be applied.
	Held bool
}

// Change is one attribute's value before and after an action.
type Change struct {
	Attr   string
	Before string
	After  string
}

// IsDeletion reports whether the action removes or disables an object:
// delete_user, delete_group or deactivate_user (what the guard counts).
func (a Action) IsDeletion() bool {
	return a.Kind == ActDeleteUser || a.Kind == ActDeleteGroup || a.Kind == ActDeactivateUser
}

// Writes returns the actions to apply: all but skips and held ones.
func (p Plan) Writes() []Action {
	var out []Action
	for _, a := range p.Actions {
		if a.Kind != ActSkip && !a.Held {
			out = append(out, a)
		}
	}
	return out
}

// empty reports whether the plan writes nothing.
func (p Plan) empty() bool { return len(p.Writes()) == 0 }

// Deletions counts the plan's deletions (held or not).
func (p Plan) Deletions() int {
	n := 0
	for _, a := range p.Actions {
		if a.IsDeletion() {
			n++
		}
	}
	return n
}

// Kinds lists the plan's action kinds in order, for tests and logs.
func (p Plan) Kinds() []ActionKind {
	out := make([]ActionKind, len(p.Actions))
	for i, a := range p.Actions {
		out[i] = a.Kind
	}
	return out
}

// ReasonEcho and the other reasons are the Reason of common skips.
const (
	ReasonEcho             = "echo: the object holds what the replicator wrote there"
	ReasonSourceIncomplete = "source read incomplete: nothing is deleted"
	ReasonStale            = "changed since it was listed: its own reconcile already applied a newer state"
)

// String renders the plan one action a line, for logs and dry-run reports.
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan %s %s->%s", p.Link, p.Source, p.Target)
	if p.DryRun {
		b.WriteString(" (dry run)")
	}
	for _, a := range p.Actions {
		fmt.Fprintf(&b, "\n  %s %s %s", a.Kind, a.Entity, a.Name)
		if a.MemberSourceID != "" || a.MemberTargetID != "" {
			fmt.Fprintf(&b, " member=%s/%s", a.MemberSourceID, a.MemberTargetID)
		}
		for _, c := range a.Changes {
			fmt.Fprintf(&b, " %s:%q->%q", c.Attr, c.Before, c.After)
		}
		if a.Held {
			b.WriteString(" HELD")
		}
		if a.Reason != "" {
			fmt.Fprintf(&b, " (%s)", a.Reason)
		}
	}
	return b.String()
}
