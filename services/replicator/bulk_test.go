package replicator

import (
	"context"
	"fmt"
	"testing"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// bulkTarget is a target domain with Bulk as given (disabled: a server
// without it), for pipelineOpts.sites.
func bulkTarget(bulk emu.BulkConfig) func(t testing.TB) *site {
	return func(t testing.TB) *site {
		t.Helper()
		d := pipelinetest.Emulator(t, "tgt", emu.TierUnlimited, "", func(c *emu.Config) { c.Bulk = bulk })
		return &site{name: "tgt", emu: d, client: newClient(t, d, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, false),
			human: newClient(t, d, pipelinetest.HumanClientID, pipelinetest.HumanSecret, false)}
	}
}

// An initial sync sends its user creates as SCIM Bulk where the target
// offers it (a few requests instead of one per user), and one at a time
// where it does not; either way every user is created once, mapped and
// audited once as applied, and the target equals the source.
func TestFullReconcileCreatesUsersInBulk(t *testing.T) {
	const users = 60
	for _, tc := range []struct {
		name     string
		bulk     emu.BulkConfig
		requests int64 // Bulk requests the target answers
		viaBulk  int64
	}{
		{"bulk", emu.BulkConfig{MaxOperations: 25}, 4, users}, // 3 for the users, 1 for the group
		{"no bulk", emu.BulkConfig{Disabled: true}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(link("hub", "src", "tgt"))
			p := newPipeline(t, cfg, pipelineOpts{noRun: true, sites: map[string]func(testing.TB) *site{"tgt": bulkTarget(tc.bulk)}})
			src, tgt := p.sites["src"], p.sites["tgt"]
			for i := range users {
				src.createUser(t, fmt.Sprintf("bulk%03d", i), fmt.Sprintf("Bulk %d", i))
			}
			g := src.createGroup(t, "bulkers", "")
			src.add(t, g, src.emu.Users()[0].ID, src.emu.Users()[1].ID)

			reps, err := p.svc.ReconcileLink(context.Background(), "hub", false)
			if err != nil {
				t.Fatal(err)
			}
			if got := tgt.emu.Stats().Calls[emu.OpBulk]; got != tc.requests {
				t.Errorf("Bulk requests %d, want %d", got, tc.requests)
			}
			if got := p.svc.Status(context.Background()).GetCounters()[counterBulkCreates]; got != tc.viaBulk {
				t.Errorf("users created through Bulk %d, want %d", got, tc.viaBulk)
			}
			if n := len(tgt.emu.Users()); n != users {
				t.Fatalf("target has %d users, want %d (report %v)", n, users, reps[0].Actions)
			}
			d := p.svc.direction("src", "tgt")
			applied := map[string]int{}
			for _, r := range auditRecords(t, p.bus) {
				if r.GetAction() == string(planner.ActCreateUser) && r.GetOutcome() == "applied" {
					applied[r.GetResource().GetId()]++
				}
			}
			for _, u := range src.emu.Users() {
				mp := mustMapping(t, d, u.ID)
				copy, ok := tgt.emu.UserByName(u.UserName)
				if !ok || copy.ID != mp.TargetID {
					t.Fatalf("user %s: mapped to %s, target copy %v %v", u.UserName, mp.TargetID, copy.ID, ok)
				}
				if applied[copy.ID] != 1 {
					t.Fatalf("user %s: %d applied create_user records, want 1", u.UserName, applied[copy.ID])
				}
			}
			// The group found its members (noted in the index once made).
			members, ok := tgt.emu.GroupByName("bulkers")
			if !ok || members.Members != 2 {
				t.Fatalf("group in the target: %v %v, want 2 members", members, ok)
			}
			// Reconciling again finds nothing to do.
			p.reconcileWritesNothing("hub", tgt)
		})
	}
}
