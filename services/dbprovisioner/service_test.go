package dbprovisioner

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

const (
	aliceID = "a0000000000000000000000000000001"
	evilID  = "e0000000000000000000000000000666"
)

// harness runs the service on a real embedded JetStream with fakes for the
// domain and the database.
type harness struct {
	t     *testing.T
	bus   *bus.Bus
	dir   *fakeDir
	db    *fakeDB
	audit *testutil.Auditor
	svc   *Service
	seq   int
	// lastSeq is the stream sequence of the last event published.
	lastSeq uint64
}

func testConfig(mod ...func(*DatabaseConfig)) Config {
	cfg := DefaultConfig()
	cfg.Reconcile = ReconcileConfig{}
	cfg.Consumer.Backoff = []time.Duration{20 * time.Millisecond}
	cfg.Consumer.MaxDeliver = 5
	cfg.Databases = []DatabaseConfig{userDB(mod...)}
	return cfg
}

func newHarness(t *testing.T, cfg Config, run bool) *harness {
	t.Helper()
	h := &harness{t: t, dir: newFakeDir(), db: newFakeDB(), audit: &testutil.Auditor{}}
	srv := bustest.RunServer(t)
	h.bus = srv.Open(t)
	var err error
	h.svc, err = New(context.Background(), cfg, h.bus, map[string]Directory{"prod": h.dir},
		map[string]Database{"hr": h.db}, servicekit.WithLogger(pipelinetest.Logger(t)), servicekit.WithAuditWriter(h.audit))
	if err != nil {
		t.Fatal(err)
	}
	if run {
		pipelinetest.Run(t, h.svc) // RUNNING once its consumer exists
	}
	return h
}

// publish publishes a membership (or user) event about a user.
func (h *harness) publish(kind iamflowv1.Kind, action iamflowv1.Action, userID, userName string) {
	h.t.Helper()
	h.seq++
	ev := &iamflowv1.IdentityEvent{Id: fmt.Sprintf("ev-%d", h.seq), Domain: "prod", Kind: kind, Action: action}
	u := &iamflowv1.Resource{Id: userID, Name: userName, Type: "User"}
	if kind == iamflowv1.Kind_KIND_MEMBERSHIP {
		ev.Resource, ev.Related = &iamflowv1.Resource{Id: "g1", Type: "Group"}, u
	} else {
		ev.Resource = u
	}
	h.publishEvent(ev)
}

func (h *harness) publishEvent(ev *iamflowv1.IdentityEvent) {
	h.t.Helper()
	h.lastSeq = max(h.lastSeq, pipelinetest.PublishEvent(h.t, h.bus, ev))
}

// settled waits until the consumer has nothing pending and has acked
// every event published (the server counts a new message as pending a
// moment after it stores it, so "nothing pending" alone can be seen before
// the last event is delivered).
func (h *harness) settled() *iamflowv1.ServiceStatus {
	h.t.Helper()
	var st *iamflowv1.ServiceStatus
	testutil.CheckFor(h.t, 10*time.Second, 5*time.Millisecond, func() error {
		st = h.svc.Status(context.Background())
		if len(st.Consumers) != 1 {
			return errors.New("no consumer")
		}
		c := st.Consumers[0]
		if c.Pending != 0 || c.AckPending != 0 || c.Delivered == 0 {
			return fmt.Errorf("consumer: %d pending, %d ack pending", c.Pending, c.AckPending)
		}
		cons, err := h.bus.JetStream().Consumer(context.Background(), bus.StreamEvents, c.Name)
		if err != nil {
			return err
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < h.lastSeq {
			return fmt.Errorf("consumer: acked up to %d of %d", info.AckFloor.Stream, h.lastSeq)
		}
		return nil
	})
	return st
}

func (h *harness) waitAccount(name string, check func(u DBUser, roles []string, ok bool) error) {
	h.t.Helper()
	testutil.CheckFor(h.t, 10*time.Second, 5*time.Millisecond, func() error {
		u, roles, ok := h.db.account(name)
		return check(u, roles, ok)
	})
}

// aliceJoinsReaders puts alice in HR Readers, publishes her membership and
// waits for her account (waitReader).
func (h *harness) aliceJoinsReaders() {
	h.t.Helper()
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}})
	h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED, aliceID, "")
	h.waitReader()
}

// waitReader waits until alice's account is open with HR Readers' role
// alone.
func (h *harness) waitReader() {
	h.t.Helper()
	h.waitAccount(aliceAcct, func(u DBUser, roles []string, ok bool) error {
		if !ok || u.locked() || !slices.Equal(roles, []string{"HR_READ"}) {
			return fmt.Errorf("account %v %v %v", ok, u, roles)
		}
		return nil
	})
}

const aliceAcct = "ALICE@EXAMPLE.COM"

func TestEventsDriveTheAccount(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	added, removed := iamflowv1.Action_ACTION_MEMBER_ADDED, iamflowv1.Action_ACTION_MEMBER_REMOVED
	member := iamflowv1.Kind_KIND_MEMBERSHIP

	// Join a mapped group: account and role.
	h.aliceJoinsReaders()
	h.settled()

	// A second group adds its role; leaving it revokes it.
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers", "HR Writers"}})
	h.publish(member, added, aliceID, "")
	h.waitAccount(aliceAcct, func(u DBUser, roles []string, ok bool) error {
		if !slices.Equal(roles, []string{"HR_READ", "HR_WRITE"}) {
			return fmt.Errorf("roles %v", roles)
		}
		return nil
	})
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}})
	h.publish(member, removed, aliceID, "")
	h.waitAccount(aliceAcct, func(u DBUser, roles []string, ok bool) error {
		if !slices.Equal(roles, []string{"HR_READ"}) {
			return fmt.Errorf("roles %v", roles)
		}
		return nil
	})

	// Leaving the last mapped group locks the account.
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"Other"}})
	h.publish(member, removed, aliceID, "")
	h.waitAccount(aliceAcct, func(u DBUser, roles []string, ok bool) error {
		if !u.locked() || len(roles) != 0 {
			return fmt.Errorf("account %v roles %v", u, roles)
		}
		return nil
	})
	h.settled()
	n := len(h.db.statements())

	// Replayed and reordered events change nothing more: the state is read.
	h.publish(member, added, aliceID, "")
	h.publish(iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_UPDATED, aliceID, "")
	h.publish(member, removed, aliceID, "")
	st := h.settled()
	if got := h.db.statements(); len(got) != n {
		t.Errorf("replays ran %q", got[n:])
	}
	recs := h.audit.Records()
	if len(recs) != n {
		t.Errorf("%d audit records for %d statements", len(recs), n)
	}
	for _, r := range recs {
		if r.Target != "hr" || r.Domain != "prod" || r.Outcome != "done" || r.After["statement"] == "" || r.EventId == "" {
			t.Errorf("audit record %v", r)
		}
	}
	if st.Counters[counterStatements] != int64(n) || st.Consumers[0].Name != "dbprovisioner-hr" || st.Consumers[0].DeadLettered != 0 {
		t.Errorf("status %v", st)
	}

	// Deleted in the domain: the account stays locked; nothing else runs.
	h.dir.remove(aliceID)
	h.publish(iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_DELETED, aliceID, "alice@example.com")
	h.settled()
	if got := h.db.statements(); len(got) != n {
		t.Errorf("delete ran %q", got[n:])
	}
	// Back: a new user of the same name joins again and is unlocked.
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Writers"}})
	h.publish(member, added, aliceID, "")
	h.waitAccount(aliceAcct, func(u DBUser, roles []string, ok bool) error {
		if u.locked() || !slices.Equal(roles, []string{"HR_READ", "HR_WRITE"}) {
			return fmt.Errorf("account %v roles %v", u, roles)
		}
		return nil
	})
}

// A user in a mapped group whose userName cannot be an account is refused
// once: one status entry, one audit record, no statement, no dead letter
// (however many events name the user). Outside the mapping such a name is
// simply out of scope.
func TestUnsafeNameIsRefusedOnceAndNothingRuns(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	evil := `x" cascade; drop user admin--`
	h.dir.set(User{ID: evilID, UserName: evil, Active: true, Groups: []string{"HR Readers"}})
	for range 3 {
		h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED, evilID, "")
	}
	const outsider = "b0000000000000000000000000000002"
	for _, name := range []string{"o'neil@example.com", "a+b@example.com", "jürgen@example.com"} {
		h.dir.set(User{ID: outsider + name[:1], UserName: name, Active: true, Groups: []string{"Other"}})
		h.publish(iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_UPDATED, outsider+name[:1], "")
	}
	st := h.settled()
	if got := h.db.statements(); len(got) != 0 {
		t.Fatalf("statements ran: %q", got)
	}
	if n := st.Consumers[0].DeadLettered; n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	ds := h.svc.databaseStatus(context.Background(), h.svc.byName["hr"])
	if len(ds.Refused) != 1 || ds.Refused[0].UserName != evil || !strings.Contains(ds.Refused[0].Reason, "cannot have an account") {
		t.Fatalf("refused in status: %v", ds.Refused)
	}
	var refusals int
	for _, r := range h.audit.Records() {
		if r.Action == actionRefuse {
			refusals++
			if r.Outcome != "failed" || !strings.Contains(r.Reason, "rename the user or change the mapping") {
				t.Errorf("refusal record %v", r)
			}
		}
	}
	if refusals != 1 {
		t.Errorf("%d refusal audit records, want 1", refusals)
	}
	if c := h.svc.Status(context.Background()).Counters; c[counterRefused] == 0 {
		t.Errorf("counters %v, want the refusals counted", c)
	}
	// The user leaves the mapped group: the refusal is gone from the status.
	h.dir.set(User{ID: evilID, UserName: evil, Active: true, Groups: []string{"Other"}})
	h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_REMOVED, evilID, "")
	h.settled()
	if ds := h.svc.databaseStatus(context.Background(), h.svc.byName["hr"]); len(ds.Refused) != 0 {
		t.Errorf("refused after leaving: %v", ds.Refused)
	}
}

// A stale or forged delete names an id that does not exist and the name of
// a live user (the user was deleted and re-created under the same name, and
// the old delete came late; or someone posted it): the live user's account
// is not touched, since the domain says a user of that name exists now.
func TestStaleOrForgedDeleteDoesNotTouchALiveAccount(t *testing.T) {
	for _, onLeave := range []string{onLeaveLock, onLeaveDrop} {
		t.Run(onLeave, func(t *testing.T) {
			h := newHarness(t, testConfig(func(d *DatabaseConfig) { d.OnLeave = onLeave }), true)
			h.aliceJoinsReaders()
			h.settled()
			n := len(h.db.statements())
			const goneID = "d0000000000000000000000000000000"
			h.publish(iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_DELETED, goneID, "alice@example.com")
			h.publish(iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_DELETED, goneID, "ALICE@example.com")
			h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_REMOVED, goneID, "alice@example.com")
			h.settled()
			if got := h.db.statements(); len(got) != n {
				t.Fatalf("a forged delete ran %q", got[n:])
			}
			u, roles, _ := h.db.account(aliceAcct)
			if u.locked() || !slices.Equal(roles, []string{"HR_READ"}) {
				t.Fatalf("live account changed: %v %v", u, roles)
			}
			// A real delete still takes the account away.
			h.dir.remove(aliceID)
			h.publish(iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_DELETED, aliceID, "alice@example.com")
			h.waitAccount(aliceAcct, func(u DBUser, roles []string, ok bool) error {
				if onLeave == onLeaveDrop && ok || onLeave == onLeaveLock && (!u.locked() || len(roles) != 0) {
					return fmt.Errorf("after the real delete: exists %v, %v, roles %v", ok, u, roles)
				}
				return nil
			})
		})
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.db.mu.Lock()
	h.db.failNext, h.db.failErr = 2, retryErr{}
	h.db.mu.Unlock()
	h.aliceJoinsReaders()
	st := h.settled()
	if st.Consumers[0].DeadLettered != 0 || st.Consumers[0].Delivered != 3 {
		t.Errorf("consumer %v", st.Consumers[0])
	}
	failed := 0
	for _, r := range h.audit.Records() {
		if r.Outcome == "failed" {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d failed audit records, want 2", failed)
	}
	// A permanent failure is dead-lettered at once.
	h.db.mu.Lock()
	h.db.failNext, h.db.failErr = 1, fmt.Errorf("ORA-01031: insufficient privileges: %w", ErrPermanent)
	h.db.mu.Unlock()
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Writers"}})
	h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED, aliceID, "")
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := h.svc.Status(context.Background()).Consumers[0].DeadLettered; n != 1 {
			return fmt.Errorf("%d dead letters", n)
		}
		return nil
	})
}

func TestReconcileLocksUsersWhoLeftUnseen(t *testing.T) {
	h := newHarness(t, testConfig(), false)
	ctx := context.Background()
	// alice is in a group but has no account; bob has an account from
	// iamflow but left every group while nobody listened; carol's account
	// is not iamflow's.
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}})
	h.dir.set(User{ID: "b1", UserName: "bob", Active: true, Groups: []string{"HR Writers"}})
	h.dir.set(User{ID: "b1", UserName: "bob", Active: true})
	h.db.users["BOB"] = &DBUser{Name: "BOB", Status: "OPEN", ExternalName: "IAM_PRINCIPAL_NAME=bob"}
	h.db.grants["BOB"] = map[string]bool{"HR_WRITE": true, "UNMANAGED": true}
	h.db.users["CAROL"] = &DBUser{Name: "CAROL", Status: "OPEN", ExternalName: ""}
	h.dir.set(User{ID: "c1", UserName: "carol", Active: true, Groups: []string{"HR Readers"}})

	dry, err := h.svc.Reconcile(ctx, "hr", true)
	if err != nil {
		t.Fatal(err)
	}
	var sqls []string
	for _, st := range dry.Statements {
		sqls = append(sqls, st.SQL)
	}
	want := []string{
		`CREATE USER "ALICE@EXAMPLE.COM" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=alice@example.com'`,
		`GRANT CREATE SESSION TO "ALICE@EXAMPLE.COM"`,
		`GRANT "HR_READ" TO "ALICE@EXAMPLE.COM"`,
		`ALTER USER "BOB" ACCOUNT LOCK`,
		`REVOKE "HR_WRITE" FROM "BOB"`,
	}
	if !slices.Equal(sqls, want) || dry.Checked != 3 || dry.Changed != 2 || dry.Skipped != 1 || dry.Failed != 0 {
		t.Errorf("dry run: %+v\nstatements %q", dry, sqls)
	}
	if n := len(h.db.statements()); n != 0 {
		t.Fatalf("dry run ran %d statements", n)
	}
	rep, err := h.svc.Reconcile(ctx, "hr", false)
	if err != nil || rep.Changed != 2 {
		t.Fatalf("reconcile: %+v %v", rep, err)
	}
	if got := h.db.statements(); !slices.Equal(got, want) {
		t.Errorf("ran %q", got)
	}
	if u, roles, _ := h.db.account("BOB"); !u.locked() || !slices.Equal(roles, []string{"UNMANAGED"}) {
		t.Errorf("bob: %v %v", u, roles)
	}
	again, err := h.svc.Reconcile(ctx, "hr", false)
	if err != nil || again.Changed != 0 || len(again.Statements) != 0 {
		t.Errorf("second reconcile: %+v %v", again, err)
	}
	if recs := h.audit.Records(); len(recs) != len(want)+2 { // + carol skipped twice
		t.Errorf("%d audit records", len(recs))
	}
}

func TestConcurrencyBound(t *testing.T) {
	cfg := testConfig(func(d *DatabaseConfig) { d.MaxConcurrency = 1 })
	cfg.Consumer.Concurrency = 8
	h := newHarness(t, cfg, true)
	for i := range 20 {
		id := fmt.Sprintf("u%031d", i)
		h.dir.set(User{ID: id, UserName: fmt.Sprintf("user%d", i), Active: true, Groups: []string{"HR Readers"}})
		h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED, id, "")
	}
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := len(h.db.statements()); n != 60 {
			return fmt.Errorf("%d statements", n)
		}
		return nil
	})
	h.db.mu.Lock()
	defer h.db.mu.Unlock()
	if h.db.maxInFlight != 1 {
		t.Errorf("max in flight %d, want 1", h.db.maxInFlight)
	}
}

// A renamed user's account moves with the name: the new name's account is
// made, and the old one is locked, on the event path (the account book
// remembers which account was the user's).
func TestRenamedUserLeavesNoOpenAccount(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.aliceJoinsReaders()
	h.dir.set(User{ID: aliceID, UserName: "alicia@example.com", Active: true, Groups: []string{"HR Readers"}})
	h.publish(iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_UPDATED, aliceID, "alicia@example.com")
	h.waitAccount("ALICIA@EXAMPLE.COM", func(u DBUser, roles []string, ok bool) error {
		if !ok || u.locked() || !slices.Equal(roles, []string{"HR_READ"}) {
			return fmt.Errorf("new account %v %v %v", ok, u, roles)
		}
		return nil
	})
	h.waitAccount(aliceAcct, func(u DBUser, roles []string, ok bool) error {
		if !u.locked() || len(roles) != 0 {
			return fmt.Errorf("the old name's account %v roles %v: still open", u, roles)
		}
		return nil
	})
}

// A user deleted right after a membership change: the membership event
// names the member by id only, and the account book says whose account it
// was, so it is locked on the event path.
func TestDeletedMemberIsLockedByID(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	member := iamflowv1.Kind_KIND_MEMBERSHIP
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}})
	h.publish(member, iamflowv1.Action_ACTION_MEMBER_ADDED, aliceID, "")
	h.waitAccount(aliceAcct, func(u DBUser, roles []string, ok bool) error {
		if !ok {
			return errors.New("no account yet")
		}
		return nil
	})
	h.dir.remove(aliceID)
	h.publish(member, iamflowv1.Action_ACTION_MEMBER_REMOVED, aliceID, "Alice Display Name")
	h.waitAccount(aliceAcct, func(u DBUser, roles []string, ok bool) error {
		if !u.locked() || len(roles) != 0 {
			return fmt.Errorf("account %v roles %v", u, roles)
		}
		return nil
	})
	if st := h.settled(); st.Consumers[0].DeadLettered != 0 {
		t.Errorf("%d dead letters", st.Consumers[0].DeadLettered)
	}
}

// heldDir holds the first group listing until released, so a reconcile
// stays running.
type heldDir struct {
	*fakeDir
	once     sync.Once
	started  chan struct{}
	released chan struct{}
}

func (d *heldDir) GroupMembers(ctx context.Context, group string) iter.Seq2[UserRef, error] {
	first := false
	d.once.Do(func() { first = true; close(d.started) })
	if first {
		<-d.released
	}
	return d.fakeDir.GroupMembers(ctx, group)
}

// One reconcile of a database runs at a time: another is refused while it
// runs, the status says it runs, and once it ends the next may run.
func TestOneReconcileAtATime(t *testing.T) {
	ctx := context.Background()
	dir := &heldDir{fakeDir: newFakeDir(), started: make(chan struct{}), released: make(chan struct{})}
	svc, err := New(ctx, testConfig(), bustest.RunServer(t).Open(t), map[string]Directory{"prod": dir},
		map[string]Database{"hr": newFakeDB()}, servicekit.WithLogger(pipelinetest.Logger(t)), servicekit.WithAuditWriter(&testutil.Auditor{}))
	if err != nil {
		t.Fatal(err)
	}
	running := func() bool {
		st, err := svc.GetDatabaseStatus(ctx, &iamflowv1.GetDatabaseStatusRequest{Database: "hr"})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetDatabases()[0].GetReconcileRunning()
	}
	done := make(chan error, 1)
	go func() { _, err := svc.Reconcile(ctx, "hr", false); done <- err }()
	<-dir.started
	if _, err := svc.Reconcile(ctx, "hr", true); !errors.Is(err, errReconcileRunning) {
		t.Errorf("a second reconcile while one runs: %v, want errReconcileRunning", err)
	}
	if !running() {
		t.Error("status: no reconcile running while one runs")
	}
	close(dir.released)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if running() {
		t.Error("status: a reconcile running after it ended")
	}
	if _, err := svc.Reconcile(ctx, "hr", true); err != nil {
		t.Errorf("a reconcile after the last ended: %v", err)
	}
}
