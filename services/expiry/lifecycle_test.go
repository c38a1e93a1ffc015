package expiry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"
	"github.com/prometheus/client_golang/prometheus"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

func TestExtend(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	gs := p.grantUsers(t, svc, "ext", 1, time.Second, 0)
	old := gs[0].g.ExpiresAt.AsTime()
	g, err := svc.extend(context.Background(), gs[0].g.Id, 0, old.Add(1500*time.Millisecond), "bob", "still on it")
	if err != nil {
		t.Fatal(err)
	}
	// The old deadline (and its timer) passes: still a member.
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if !p.isMember(gs[0].uid) {
			t.Fatal("membership removed at the old deadline")
		}
		if time.Since(old) < 1200*time.Millisecond {
			return errors.New("old deadline not long past")
		}
		return nil
	})
	p.expectExpiry(t, []granted{{gs[0].uid, g}})
	if n := len(auditRecords(t, p.bus, actionExtend)); n != 1 {
		t.Errorf("%d extend audit records, want 1", n)
	}
	// Beyond the maximum: refused, naming the limit.
	gs = p.grantUsers(t, svc, "ext2", 1, 3*time.Second, 0)
	_, err = svc.extend(context.Background(), gs[0].g.Id, 10*time.Second, time.Time{}, "bob", "")
	if err == nil || !strings.Contains(err.Error(), "max_duration 5s") {
		t.Errorf("extend beyond max: %v", err)
	}
}

func TestRevokeEarly(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	gs := p.grantUsers(t, svc, "rev", 1, 4*time.Second, 0)
	g, err := svc.revoke(context.Background(), gs[0].g.Id, "carol", "done early")
	if err != nil {
		t.Fatal(err)
	}
	if g.State != iamflowv1.GrantState_GRANT_STATE_REVOKED || p.isMember(gs[0].uid) {
		t.Fatalf("after Revoke: state %v member %v", g.State, p.isMember(gs[0].uid))
	}
	if _, err := svc.revoke(context.Background(), g.Id, "carol", ""); err == nil {
		t.Error("second revoke succeeded")
	}
	recs := auditRecords(t, p.bus, actionRevoke)
	if len(recs) != 1 || recs[0].After["requester"] != "carol" {
		t.Errorf("revoke audit records: %v", recs)
	}
	// A new grant for the same membership may be opened after the end.
	grantFor(t, svc, "reva", time.Second)
}

func TestMembershipAddedOutsideBecomesGrant(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	uid := p.createUser("jit")
	added := time.Now()
	if _, err := p.human.AddMembers(context.Background(), p.groupID, uid); err != nil {
		t.Fatal(err)
	}
	var g *iamflowv1.Grant
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		gs, err := svc.list(context.Background(), filter{User: uid})
		if err != nil || len(gs) != 1 {
			return fmt.Errorf("%d grants, %v", len(gs), err)
		}
		g = gs[0]
		return nil
	})
	if g.Source != sourceEvent || g.State != iamflowv1.GrantState_GRANT_STATE_ACTIVE {
		t.Fatalf("adopted grant: %v", g)
	}
	if d := g.ExpiresAt.AsTime().Sub(g.CreatedAt.AsTime()); d != 2*time.Second {
		t.Errorf("adopted grant lasts %v, want the default 2s", d)
	}
	t.Logf("event → grant took %v", g.CreatedAt.AsTime().Sub(added))
	p.expectExpiry(t, []granted{{uid, g}})

	// iamflow's own grant causes a member_added event too: no second grant.
	gs := p.grantUsers(t, svc, "own", 1, 2*time.Second, 0)
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := svc.Status(context.Background()).Counters[counterAdoptSkipped]; n < 1 {
			return fmt.Errorf("own membership event not handled yet (%d)", n)
		}
		return nil
	})
	list, err := svc.list(context.Background(), filter{User: gs[0].uid})
	if err != nil || len(list) != 1 {
		t.Fatalf("own grant: %d grants, %v", len(list), err)
	}
}

func TestReconcileOnStart(t *testing.T) {
	cfg := testConfig()
	cfg.ReconcileOnStart = true
	p := newPipeline(t, cfg)
	uid := p.createUser("old")
	if _, err := p.human.AddMembers(context.Background(), p.groupID, uid); err != nil {
		t.Fatal(err)
	}
	p.cfg.Groups[0].DefaultDuration = 3 * time.Second
	svc, _ := p.start()
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		gs, err := svc.list(context.Background(), filter{User: uid})
		if err != nil || len(gs) != 1 {
			return fmt.Errorf("%d grants, %v", len(gs), err)
		}
		return nil
	})
	p.waitGone(uid, 10*time.Second)
}

func TestServiceRestartKeepsDeadlines(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, stop := p.start()
	gs := p.grantUsers(t, svc, "rs", 3, 2*time.Second, 200*time.Millisecond)
	stop()
	p.start()
	p.expectExpiry(t, gs)
}

func TestNATSRestartKeepsDeadlines(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	gs := p.grantUsers(t, svc, "ns", 3, 2500*time.Millisecond, 200*time.Millisecond)
	p.srv.Shutdown()
	p.srv.Restart(t)
	// A deadline the outage (or the reconnect) covered is kept once the
	// server is back: on a loaded machine the restart can outlast it.
	p.natsBack = time.Now()
	p.expectExpiry(t, gs)
}

func TestTwoReplicasRevokeOnce(t *testing.T) {
	p := newPipeline(t, testConfig())
	a, _ := p.start()
	p.start()
	const n = 6
	before := p.domain.CallCount(emu.OpPatchGroup)
	gs := p.grantUsers(t, a, "rep", n, time.Second, 100*time.Millisecond)
	adds := before + n // one PatchGroup per grant adds the member (the first may expire before the last is made)
	p.expectExpiry(t, gs)
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got := len(auditRecords(t, p.bus, actionExpire)); got != n {
			return fmt.Errorf("%d expire audit records, want %d", got, n)
		}
		return nil
	})
	// Let both replicas' scans and any stray redelivery run past the deadlines.
	last := gs[n-1].g.ExpiresAt.AsTime()
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if time.Since(last) < 3*time.Second {
			return errors.New("waiting")
		}
		return nil
	})
	if removes := p.domain.CallCount(emu.OpPatchGroup) - adds; removes != n {
		t.Errorf("%d PatchGroup removals for %d grants, want exactly one each", removes, n)
	}
	if got := len(auditRecords(t, p.bus, actionExpire)); got != n {
		t.Errorf("%d expire audit records, want %d", got, n)
	}
}

func TestTargetDownAtDeadline(t *testing.T) {
	p := newPipeline(t, testConfig())
	reg := prometheus.NewRegistry()
	svc, _ := p.start(servicekit.WithRegisterer(reg))
	gs := p.grantUsers(t, svc, "down", 1, time.Second, 0)
	if err := p.domain.SetFaults(emu.Faults{Outage: true}); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		g, err := svc.get(context.Background(), gs[0].g.Id)
		if err != nil {
			return err
		}
		if !g.Overdue || g.State != iamflowv1.GrantState_GRANT_STATE_ACTIVE {
			return fmt.Errorf("grant %v overdue %v", g.State, g.Overdue)
		}
		if st := svc.Status(context.Background()); st.Counters[counterOverdue] != 1 || st.State != iamflowv1.State_STATE_DEGRADED {
			return fmt.Errorf("status: overdue %d, state %v", st.Counters[counterOverdue], st.State)
		}
		if v := gauge(t, reg, "iamflow_expiry_overdue_grants"); v != 1 {
			return fmt.Errorf("iamflow_expiry_overdue_grants = %v", v)
		}
		return nil
	})
	if err := p.domain.SetFaults(emu.Faults{}); err != nil {
		t.Fatal(err)
	}
	p.waitGone(gs[0].uid, 15*time.Second)
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		g, err := svc.get(context.Background(), gs[0].g.Id)
		if err != nil {
			return err
		}
		if g.State != iamflowv1.GrantState_GRANT_STATE_EXPIRED || g.Overdue {
			return fmt.Errorf("grant %v overdue %v", g.State, g.Overdue)
		}
		if st := svc.Status(context.Background()); st.Counters[counterOverdue] != 0 {
			return fmt.Errorf("status: overdue %d", st.Counters[counterOverdue])
		}
		if v := gauge(t, reg, "iamflow_expiry_overdue_grants"); v != 0 {
			return fmt.Errorf("iamflow_expiry_overdue_grants = %v", v)
		}
		return nil
	})
}

// gauge is the value of the metric name in reg (a counter's too), -1 when
// it has no series.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	v, ok := testutil.Metric(t, reg, name, nil)
	if !ok {
		return -1
	}
	return v
}

// A member removed by other means before the deadline: the grant simply
// expires at its deadline, with no error.
func TestRemovedByOtherMeansFirst(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	gs := p.grantUsers(t, svc, "gone", 1, 1500*time.Millisecond, 0)
	if _, err := p.human.RemoveMembers(context.Background(), p.groupID, gs[0].uid); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		g, err := svc.get(context.Background(), gs[0].g.Id)
		if err != nil {
			return err
		}
		if g.State != iamflowv1.GrantState_GRANT_STATE_EXPIRED || g.LastError != "" {
			return fmt.Errorf("grant %v (%s)", g.State, g.LastError)
		}
		return nil
	})
	if st := svc.Status(context.Background()); len(st.Consumers) != 2 {
		t.Errorf("status consumers: %v", st.Consumers)
	}
}

// TestStaleMemberAddedEventOpensNoGrant: a member_added event that arrives
// after the membership is gone (late delivery, replay) must not open a
// grant: the event is a trigger and the domain says the user is no member.
func TestStaleMemberAddedEventOpensNoGrant(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	uid := p.createUser("late")
	e := &iamflowv1.IdentityEvent{
		Id: "stale-1", Domain: domainShort, Kind: iamflowv1.Kind_KIND_MEMBERSHIP, Action: iamflowv1.Action_ACTION_MEMBER_ADDED,
		Type:     event.Type(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED),
		Resource: &iamflowv1.Resource{Id: p.groupID, Name: tempGroup}, Related: &iamflowv1.Resource{Id: uid, Name: "late"},
	}
	pipelinetest.PublishEvent(t, p.bus, e)
	// Handled means acked: the membership consumer has nothing pending.
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		for _, c := range svc.Status(context.Background()).GetConsumers() {
			if c.GetStream() == bus.StreamEvents && (c.GetDelivered() == 0 || c.GetAckPending() > 0 || c.GetPending() > 0) {
				return fmt.Errorf("event not settled yet: %v", c)
			}
		}
		return nil
	})
	gs, err := svc.list(context.Background(), filter{User: uid})
	if err != nil || len(gs) != 0 {
		t.Fatalf("grants for a user who is no member: %v, %v", gs, err)
	}
}

// An event whose names are stale or forged (the temporary group's name on
// another group's id, another user's name) opens no grant on the wrong
// group and labels no grant with the wrong user: the names are read from
// the domain.
func TestForgedMembershipEventOpensNoGrant(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	ctx := context.Background()
	other := "Payroll"
	g, _, err := p.human.CreateGroup(ctx, identitydomains.Group{DisplayName: &other})
	if err != nil {
		t.Fatal(err)
	}
	uid := p.createUser("paula")
	if _, err := p.human.AddMembers(ctx, *g.Id, uid); err != nil {
		t.Fatal(err)
	}
	publish := func(id, groupID, groupName, userID, userName string) {
		t.Helper()
		ev := &iamflowv1.IdentityEvent{Id: id, Domain: domainShort, Kind: iamflowv1.Kind_KIND_MEMBERSHIP,
			Action: iamflowv1.Action_ACTION_MEMBER_ADDED, Type: event.Type(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED),
			Resource: &iamflowv1.Resource{Id: groupID, Name: groupName, Type: "Group"},
			Related:  &iamflowv1.Resource{Id: userID, Name: userName, Type: "User"}}
		pipelinetest.PublishEvent(t, p.bus, ev)
	}
	// Payroll's id, the temporary group's name.
	publish("forged-1", *g.Id, tempGroup, uid, "paula")
	// The temporary group, a real membership, somebody else's name.
	if _, err := p.human.AddMembers(ctx, p.groupID, uid); err != nil {
		t.Fatal(err)
	}
	publish("forged-2", p.groupID, tempGroup, uid, "the-ceo")
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		gs, err := svc.list(ctx, filter{User: uid})
		if err != nil || len(gs) != 1 {
			return fmt.Errorf("%d grants, %v", len(gs), err)
		}
		return nil
	})
	gs, err := svc.list(ctx, filter{User: uid})
	if err != nil {
		t.Fatal(err)
	}
	if gs[0].GroupId != p.groupID || gs[0].GroupName != tempGroup || gs[0].UserName != "paula" {
		t.Fatalf("grant %v: want the temporary group and the user's own name", gs[0])
	}
	// Payroll keeps its member: no grant was made there, so none expires.
	if ms, _ := p.domain.Members(*g.Id); len(ms) != 1 {
		t.Fatalf("Payroll members %v", ms)
	}
}

// TestLostTimerIsEnforcedByTheScan: a grant whose deadline timer is gone
// (its schedule removed from the stream) still ends, by the safety scan,
// after timerGrace; and that is recorded as a fault, not passed off as an
// expiry on time.
func TestLostTimerIsEnforcedByTheScan(t *testing.T) {
	p := newPipeline(t, testConfig())
	p.timersLost = true
	reg := prometheus.NewRegistry()
	svc, _ := p.start(servicekit.WithRegisterer(reg))
	gs := p.grantUsers(t, svc, "lost", 1, time.Second, 0)
	ctx := context.Background()
	stream, err := p.bus.JetStream().Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(scheduleSubject+"."+gs[0].g.Id+".>")); err != nil {
		t.Fatal(err)
	}
	gone := p.waitGone(gs[0].uid, timerGrace+10*time.Second)
	if late := gone.Sub(gs[0].g.ExpiresAt.AsTime()); late < timerGrace {
		t.Errorf("membership gone %v after the deadline: before the timer's grace of %v, so not by the scan", late, timerGrace)
	}
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := svc.Status(ctx).Counters[counterTimersMissed]; n != 1 {
			return fmt.Errorf("timers_missed = %d, want 1", n)
		}
		return nil
	})
	if v := counter(t, reg, "iamflow_expiry_timers_missed_total"); v != 1 {
		t.Errorf("iamflow_expiry_timers_missed_total = %v, want 1", v)
	}
	g, err := svc.get(ctx, gs[0].g.Id)
	if err != nil {
		t.Fatal(err)
	}
	if last := g.History[len(g.History)-1]; g.State != iamflowv1.GrantState_GRANT_STATE_EXPIRED || !strings.Contains(last.Note, noteTimerMissed) {
		t.Errorf("grant %v, last transition %q: want expired, noted as missed by the timer", g.State, last.Note)
	}
}

// counter is gauge for a counter.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 { return gauge(t, reg, name) }

// A grant made while JetStream does not take its deadline timer (the
// stream refuses it, as while a leader is elected) still ends on time: the
// timer is set again once it can be, instead of leaving the grant to the
// scan, which would end it timerGrace late.
func TestTimerNotTakenIsSetAgain(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	ctx := context.Background()
	stream, err := p.bus.JetStream().Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	// The stream takes no timers for a while: their publish finds no stream.
	cfg := stream.CachedInfo().Config
	refusing := cfg
	refusing.Subjects = []string{dueSubject + ".>"}
	if _, err := p.bus.JetStream().UpdateStream(ctx, refusing); err != nil {
		t.Fatal(err)
	}
	gs := p.grantUsers(t, svc, "untimed", 1, 2*time.Second, 0)
	time.Sleep(300 * time.Millisecond) // the timer stays refused a while (not synchronisation)
	if _, err := p.bus.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	gone := p.waitGone(gs[0].uid, timerGrace+10*time.Second)
	if late := gone.Sub(gs[0].g.ExpiresAt.AsTime()); late > 2*time.Second {
		t.Errorf("membership gone %v after the deadline: the timer was not set again (the scan ended it)", late)
	}
	if n := svc.Status(ctx).Counters[counterTimersMissed]; n != 0 {
		t.Errorf("timers_missed = %d, want 0", n)
	}
}

// TestStatusCountsGrantsAtOnce: a grant made, a grant revoked and a
// membership adopted as a grant show in the grant counts and the active
// gauge at once, not at the next scan (an hour away here).
func TestStatusCountsGrantsAtOnce(t *testing.T) {
	cfg := testConfig()
	cfg.ScanInterval = time.Hour
	p := newPipeline(t, cfg)
	reg := prometheus.NewRegistry()
	svc, _ := p.start(servicekit.WithRegisterer(reg))
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		svc.counters.mu.Lock()
		defer svc.counters.mu.Unlock()
		if !svc.counters.scanned {
			return errors.New("the scan on start has not counted the grants yet")
		}
		return nil
	})
	counts := func(want map[string]int64, gauge float64) {
		t.Helper()
		got := svc.Status(context.Background()).Counters
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s = %d, want %d (counters %v)", k, got[k], n, got)
			}
		}
		if g, _ := testutil.Metric(t, reg, "iamflow_expiry_active_grants", nil); g != gauge {
			t.Errorf("iamflow_expiry_active_grants = %v, want %v", g, gauge)
		}
	}
	p.createUser("now")
	g := grantFor(t, svc, "now", 4*time.Second)
	counts(map[string]int64{counterActive: 1, counterPending: 0, counterRevoked: 0}, 1)
	if _, err := svc.revoke(context.Background(), g.Id, "carol", "done"); err != nil {
		t.Fatal(err)
	}
	counts(map[string]int64{counterActive: 0, counterPending: 0, counterRevoked: 1}, 0)
	uid := p.createUser("outside")
	if _, err := p.human.AddMembers(context.Background(), p.groupID, uid); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := svc.Status(context.Background()).Counters[counterAdopted]; n != 1 {
			return fmt.Errorf("membership not adopted yet (%d)", n)
		}
		return nil
	})
	counts(map[string]int64{counterActive: 1, counterRevoked: 1}, 1)
}
