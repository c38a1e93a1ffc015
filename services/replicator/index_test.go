package replicator

import (
	"reflect"
	"testing"
	"time"

	"github.com/iamflow/iamflow/services/replicator/planner"
)

// The full reconcile's index drops a source user's attributes once its
// plan leaves it mapped and writes nothing: the group pass reads only the
// id, names and state of a mapped member. A user about to be created or
// updated keeps them (its copy, or a Bulk update's own-write record, is
// made from them), as does an unmapped one (the group pass may create it).
func TestDonePlanningSlimsOnlyMappedUsersInSync(t *testing.T) {
	full := func() *planner.UserState {
		return &planner.UserState{ID: "s1", ExternalID: "e1", UserName: "ann", DisplayName: "Ann N", GivenName: "Ann", FamilyName: "N",
			Emails: []planner.Email{{Value: "ann@example.com", Type: "work", Primary: true}}, Active: true, Federated: true,
			Custom: map[string]string{"costCenter": "42"}, Groups: []string{"g1"}}
	}
	mapped := &planner.Mapping{SourceID: "s1", TargetID: "t1", Origin: planner.OriginCreated}
	skip := planner.Plan{Actions: []planner.Action{planner.Skip(planner.KindUser, "s1", "in sync")}}
	update := planner.Plan{Actions: []planner.Action{{Kind: planner.ActUpdateUser, Entity: planner.KindUser, SourceID: "s1", TargetID: "t1"}}}
	create := planner.Plan{Actions: []planner.Action{{Kind: planner.ActCreateUser, Entity: planner.KindUser, SourceID: "s1"}}}
	for _, c := range []struct {
		name    string
		mapping *planner.Mapping
		plan    planner.Plan
		slim    bool
	}{
		{"mapped, in sync", mapped, skip, true},
		{"mapped, nothing planned", mapped, planner.Plan{}, true},
		{"mapped, updated", mapped, update, false},
		{"mapped, copy gone so created again", mapped, create, false},
		{"unmapped, created", nil, create, false},
		{"unmapped, out of scope", nil, skip, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := full()
			(&fullRun{}).donePlanning(planner.UserInput{Source: src, Mapping: c.mapping}, c.plan)
			want := full()
			if c.slim {
				want = &planner.UserState{ID: "s1", ExternalID: "e1", UserName: "ann", Active: true, Federated: true}
			}
			if !reflect.DeepEqual(src, want) {
				t.Errorf("source user after planning = %+v, want %+v", *src, *want)
			}
		})
	}
}

// The index's compact user mapping gives the planner the mapping it was
// made from, all but the time it was stored (which no plan reads).
func TestIndexedMappingRoundTrips(t *testing.T) {
	for _, mp := range []planner.Mapping{
		{SourceID: "s1", TargetID: "t1", Origin: planner.OriginCreated, Updated: time.Unix(1, 0)},
		{SourceID: "s2", TargetID: "t2", Origin: planner.OriginAdopted},
		{SourceID: "t3", TargetID: "s3", Origin: planner.OriginCreated, Reverse: true},
		{SourceID: "s4", TargetID: "t4", Origin: "something new"},
	} {
		got := indexed(mp).mapping(mp.SourceID)
		want := mp
		want.Updated = time.Time{}
		if got != want {
			t.Errorf("indexed(%+v).mapping = %+v, want %+v", mp, got, want)
		}
		if got.Managed() != mp.Managed() {
			t.Errorf("%+v: managed %v, want %v", mp, got.Managed(), mp.Managed())
		}
	}
}
