package dbprovisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	emords "github.com/iamflow/iamflow/emulator/ords"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/lease"
	"github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

// replicaSet is n replicas of the service (each its own bus connection,
// ORDS client and lease holder) sharing one durable consumer on a real
// embedded JetStream, one directory and one emulated database.
type replicaSet struct {
	t     *testing.T
	srv   *bustest.Server
	dir   *fakeDir
	ords  *emords.Emulator
	audit *testutil.Auditor
	svcs  []*Service
	pub   *harness // publishes events
}

// emulatedHR starts the ORDS emulator with seed as database "hr" (its alias
// and credentials set here) and returns it with the ORDS client's
// configuration for it: quick retries, the secret in a file.
func emulatedHR(t *testing.T, seed emords.Database) (*emords.Emulator, ords.Config) {
	t.Helper()
	seed.Alias, seed.ClientID, seed.ClientSecret = "hr", ordsClient, ordsSecret
	orde, err := emords.New(emords.Config{Databases: []emords.Database{seed}})
	if err != nil {
		t.Fatal(err)
	}
	if err := orde.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = orde.Close() })
	c := ords.DefaultConfig()
	c.URL, c.ClientID, c.ClientSecret = orde.BaseURL("hr"), ordsClient, testutil.SecretFile(t, ordsSecret)
	c.Retry = ords.RetryConfig{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}
	return orde, c
}

// newReplicaSet starts n replicas; wrap, when set, wraps each replica's
// database (to inject what another party does meanwhile).
func newReplicaSet(t *testing.T, n int, seed emords.Database, wrap func(Database) Database) *replicaSet {
	t.Helper()
	ctx := context.Background()
	seed.Roles = append(seed.Roles, emords.Role{Name: "HR_READ"}, emords.Role{Name: "HR_WRITE"})
	orde, ordsCfg := emulatedHR(t, seed)
	rs := &replicaSet{t: t, srv: bustest.RunServer(t), dir: newFakeDir(), ords: orde, audit: &testutil.Auditor{}}
	cfg := testConfig()
	cfg.Consumer.MaxDeliver = 10
	d := &cfg.Databases[0]
	d.ORDS = ordsCfg
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		oc, err := ords.New(ctx, "hr", d.WithDefaults().ORDS)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(oc.Close)
		var db Database = NewDatabase(oc)
		if wrap != nil {
			db = wrap(db)
		}
		b := rs.srv.Open(t)
		svc, err := New(ctx, cfg, b, map[string]Directory{"prod": rs.dir}, map[string]Database{"hr": db},
			servicekit.WithLogger(pipelinetest.Logger(t).With("replica", i)), servicekit.WithAuditWriter(rs.audit))
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(runCtx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replica %d: Run: %v", i, err)
			}
		})
		rs.svcs = append(rs.svcs, svc)
		if i == 0 {
			rs.pub = &harness{t: t, bus: b, svc: svc}
		}
	}
	for i, svc := range rs.svcs {
		testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			if st := svc.Status(ctx); st.State != iamflowv1.State_STATE_RUNNING || len(st.Consumers) != 1 {
				return fmt.Errorf("replica %d: state %v", i, st.State)
			}
			return nil
		})
	}
	return rs
}

// deadLetters is how many messages the replicas dead-lettered.
func (rs *replicaSet) deadLetters() uint64 {
	var n uint64
	for _, svc := range rs.svcs {
		n += svc.Status(context.Background()).Consumers[0].DeadLettered
	}
	return n
}

// counter sums a status counter over the replicas.
func (rs *replicaSet) counter(name string) int64 {
	var n int64
	for _, svc := range rs.svcs {
		n += svc.Status(context.Background()).Counters[name]
	}
	return n
}

// ddlOf is the log of statements (succeeded or failed) that named account,
// in the order the database received them.
func (rs *replicaSet) ddlOf(account string) []string {
	var out []string
	for _, s := range rs.ords.Statements("hr") {
		if strings.Contains(s, `"`+account+`"`) && !strings.HasPrefix(strings.ToUpper(s), "SELECT") {
			out = append(out, s)
		}
	}
	return out
}

// decidedTwice lists, per account, the same statement run twice in a row
// and the same action audited twice in a row: what two replicas acting on
// one catalog read do.
func (rs *replicaSet) decidedTwice(accounts []string) []string {
	var bad []string
	for _, a := range accounts {
		ddl := rs.ddlOf(a)
		for i := 1; i < len(ddl); i++ {
			if ddl[i] == ddl[i-1] {
				bad = append(bad, fmt.Sprintf("%s: %q twice in a row", a, ddl[i]))
			}
		}
		var prev string
		for _, r := range rs.audit.Records() {
			if r.GetResource().GetName() != a {
				continue
			}
			cur := r.Action + " " + r.After["statement"] + " " + r.Outcome
			if cur == prev {
				bad = append(bad, fmt.Sprintf("%s: audited %q twice in a row", a, cur))
			}
			prev = cur
		}
	}
	return bad
}

// Two replicas on one durable consumer receive bursts of events about the
// same accounts at once: each account change is made once, nothing is
// dead-lettered, and every account ends as the domain says.
func TestReplicasChangeEachAccountOnce(t *testing.T) {
	rs := newReplicaSet(t, 2, emords.Database{}, nil)
	// A little latency per request widens the window between a replica's
	// read of an account and its statements, as a remote database does.
	if err := rs.ords.SetFaults("hr", emords.Faults{Latency: 3 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	const users, burst = 6, 8
	var accounts []string
	for i := range users {
		accounts = append(accounts, fmt.Sprintf("USER%d@EXAMPLE.COM", i))
	}
	type want struct {
		roles  []string
		locked bool
	}
	phases := []struct {
		groups []string
		want   want
	}{
		{[]string{"HR Readers"}, want{[]string{"HR_READ"}, false}},
		{[]string{"HR Readers", "HR Writers"}, want{[]string{"HR_READ", "HR_WRITE"}, false}},
		{[]string{"HR Readers"}, want{[]string{"HR_READ"}, false}},
		{[]string{"Other"}, want{nil, true}},
		{[]string{"HR Writers"}, want{[]string{"HR_READ", "HR_WRITE"}, false}},
	}
	kinds := []struct {
		kind   iamflowv1.Kind
		action iamflowv1.Action
	}{
		{iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED},
		{iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_UPDATED},
		{iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_REMOVED},
	}
	for pi, ph := range phases {
		for i := range users {
			rs.dir.set(User{ID: fmt.Sprintf("u%031d", i), UserName: fmt.Sprintf("user%d@example.com", i), Active: true, Groups: ph.groups})
		}
		for j := range burst {
			for i := range users {
				k := kinds[(i+j)%len(kinds)]
				name := ""
				if k.kind == iamflowv1.Kind_KIND_USER {
					name = fmt.Sprintf("user%d@example.com", i)
				}
				rs.pub.publish(k.kind, k.action, fmt.Sprintf("u%031d", i), name)
			}
		}
		testutil.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
			for _, a := range accounts {
				u, ok := rs.ords.User("hr", a)
				if !ok || !slices.Equal(u.Roles, ph.want.roles) || (u.AccountStatus == "LOCKED") != ph.want.locked {
					return fmt.Errorf("phase %d: account %s: %v %+v", pi, a, ok, u)
				}
			}
			return nil
		})
		rs.pub.settled()
	}
	if n := rs.deadLetters(); n != 0 {
		t.Errorf("%d events dead-lettered, want none", n)
	}
	for _, bad := range rs.decidedTwice(accounts) {
		t.Error(bad)
	}
	for _, r := range rs.audit.Records() {
		if r.Outcome != "done" {
			t.Errorf("audit record %s %s: %s (%s)", r.GetResource().GetName(), r.Action, r.Outcome, r.Reason)
		}
	}
	t.Logf("statements for %s: %q; lease waits that ran out: %d", accounts[0], rs.ddlOf(accounts[0]), rs.counter(counterBusy))
}

// interloper is a database in which someone else (a process that takes no
// lease) creates the account just before the service's CREATE
// USER reaches it.
type interloper struct {
	Database
	mu   sync.Mutex
	once map[string]bool
}

func (d *interloper) Exec(ctx context.Context, st ords.Statement) error {
	if strings.HasPrefix(st.Text, "CREATE USER ") {
		d.mu.Lock()
		first := !d.once[st.Text]
		d.once[st.Text] = true
		d.mu.Unlock()
		if first {
			// What another process that takes no lease does: the account
			// with its session privilege.
			name := reCreateUser.FindStringSubmatch(st.Text)[1]
			for _, t := range []string{st.Text, `GRANT CREATE SESSION TO "` + name + `"`} {
				if err := d.Database.Exec(ctx, ords.Statement{Text: t}); err != nil {
					return fmt.Errorf("interloper: %w", err)
				}
			}
		}
	}
	return d.Database.Exec(ctx, st)
}

// ORA-01920 on CREATE USER means the account was made meanwhile: the
// service reads it again, plans again and finishes the account, without a
// dead letter.
func TestCreateConflictReadsAgain(t *testing.T) {
	rs := newReplicaSet(t, 1, emords.Database{}, func(db Database) Database {
		return &interloper{Database: db, once: map[string]bool{}}
	})
	rs.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Writers"}})
	rs.pub.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED, aliceID, "")
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		u, ok := rs.ords.User("hr", aliceAcct)
		if !ok || !slices.Equal(u.Roles, []string{"HR_READ", "HR_WRITE"}) || !slices.Contains(u.Privileges, "CREATE SESSION") {
			return fmt.Errorf("account %v %+v", ok, u)
		}
		return nil
	})
	rs.pub.settled()
	if n := rs.deadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	if n := rs.counter(counterReplanned); n != 1 {
		t.Errorf("planned again %d times, want 1", n)
	}
	create := `CREATE USER "ALICE@EXAMPLE.COM" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=alice@example.com'`
	want := []string{
		create, `GRANT CREATE SESSION TO "ALICE@EXAMPLE.COM"`, // the interloper's
		create, // the service's, refused with ORA-01920; then, planned again:
		`GRANT "HR_READ" TO "ALICE@EXAMPLE.COM"`, `GRANT "HR_WRITE" TO "ALICE@EXAMPLE.COM"`,
	}
	if ddl := rs.ddlOf(aliceAcct); !slices.Equal(ddl, want) {
		t.Errorf("statements %q, want %q", ddl, want)
	}
}

// When the name is a role's, ORA-01920 cannot be read away: it is
// dead-lettered at once with a reason a person can act on, not retried.
func TestCreateConflictWithARoleIsDeadLettered(t *testing.T) {
	rs := newReplicaSet(t, 1, emords.Database{Roles: []emords.Role{{Name: aliceAcct}}}, nil)
	rs.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}})
	rs.pub.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED, aliceID, "")
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := rs.deadLetters(); n != 1 {
			return fmt.Errorf("%d dead letters", n)
		}
		return nil
	})
	st := rs.svcs[0].Status(context.Background())
	if c := st.Consumers[0]; c.Redelivered != 0 {
		t.Errorf("redelivered %d times before the dead letter, want none", c.Redelivered)
	}
	if !strings.Contains(st.GetLastError(), "a role has that name") {
		t.Errorf("last error %q does not say a role has the name", st.GetLastError())
	}
}

// holdLease takes the lease of an account as another replica would.
func holdLease(t *testing.T, b *bus.Bus, account string) *lease.Lease {
	t.Helper()
	set, err := lease.Open(context.Background(), b.JetStream(), lease.Config{Bucket: leaseBucket})
	if err != nil {
		t.Fatal(err)
	}
	l, err := set.Acquire(context.Background(), leaseKey("hr", ords.MustIdent(account)), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// An account another replica holds is not touched: the event is retried
// shortly (not dead-lettered, however long it is held within reason) and
// the reconcile reports the account as not done; once the lease is
// released, both go through.
func TestHeldAccountIsRetried(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.svc.leaseWait = 50 * time.Millisecond
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}})
	l := holdLease(t, h.bus, aliceAcct)

	rep, err := h.svc.Reconcile(context.Background(), "hr", false)
	if err != nil || rep.Failed != 1 || !strings.Contains(strings.Join(rep.Failures, ";"), lease.ErrBusy.Error()) {
		t.Errorf("reconcile of a held account: %+v %v", rep, err)
	}
	h.publish(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED, aliceID, "")
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := h.svc.Status(context.Background()).Counters[counterBusy]; n < 3 {
			return fmt.Errorf("%d busy", n)
		}
		return nil
	})
	if len(h.db.statements()) != 0 {
		t.Fatalf("a held account was changed: %q", h.db.statements())
	}
	l.Release(context.Background(), time.Time{})
	h.waitReader()
	if st := h.settled(); st.Consumers[0].DeadLettered != 0 {
		t.Errorf("%d dead letters", st.Consumers[0].DeadLettered)
	}
}

// The lease of a replica that died (it stopped renewing) is taken over
// once it expires, within the wait of one delivery.
func TestDeadReplicasLeaseIsTakenOver(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	kv, err := h.bus.JetStream().KeyValue(context.Background(), leaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(500 * time.Millisecond)
	rec, _ := json.Marshal(map[string]any{"holder": "a-replica-that-died", "until": until.UnixNano()})
	if _, err := kv.Put(context.Background(), leaseKey("hr", ords.MustIdent(aliceAcct)), rec); err != nil {
		t.Fatal(err)
	}
	h.aliceJoinsReaders()
	if first := h.db.firstExec(); first.Before(until) {
		t.Errorf("the account changed at %v, before the dead replica's lease ran out at %v", first, until)
	}
	if st := h.settled(); st.Consumers[0].DeadLettered != 0 || st.Counters[counterBusy] != 0 {
		t.Errorf("%d dead letters, %d busy", st.Consumers[0].DeadLettered, st.Counters[counterBusy])
	}
}

// staleDir answers the first read with an old view of the user, as a read
// made just before another replica's newer one would be.
type staleDir struct {
	*fakeDir
	mu  sync.Mutex
	old *User
}

func (d *staleDir) ReadUser(ctx context.Context, ref UserRef) (User, error) {
	d.mu.Lock()
	old := d.old
	d.old = nil
	d.mu.Unlock()
	if old != nil {
		return *old, nil
	}
	return d.fakeDir.ReadUser(ctx, ref)
}

// A read of the domain older than one another replica has acted on (the
// lease's watermark) is not applied: the user is read again under the
// lease, and the account follows the newer read.
func TestOlderReadIsReadAgainUnderTheLease(t *testing.T) {
	ctx := context.Background()
	b := bustest.RunServer(t).Open(t)
	dir := &staleDir{fakeDir: newFakeDir(), old: &User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Writers"}}}
	dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}})
	db := newFakeDB()
	svc, err := New(ctx, testConfig(), b, map[string]Directory{"prod": dir}, map[string]Database{"hr": db},
		servicekit.WithLogger(pipelinetest.Logger(t)), servicekit.WithAuditWriter(&testutil.Auditor{}))
	if err != nil {
		t.Fatal(err)
	}
	// Another replica acted on a read of the domain newer than any this
	// replica is about to make.
	l := holdLease(t, b, aliceAcct)
	l.Release(ctx, time.Now().Add(time.Hour))

	if _, err := svc.syncUser(ctx, svc.byName["hr"], UserRef{ID: aliceID}, cause{source: "event"}); err != nil {
		t.Fatal(err)
	}
	if _, roles, ok := db.account(aliceAcct); !ok || !slices.Equal(roles, []string{"HR_READ"}) {
		t.Errorf("account %v with roles %v: want the newer read's HR_READ only", ok, roles)
	}
	if dir.reads != 1 { // the stale answer is not counted by fakeDir
		t.Errorf("the user was read again %d times under the lease, want 1", dir.reads)
	}
}

// pausedDir answers the first read of a user with an old view of it (made
// before a rename), and holds that answer until proceed is closed: a
// replica whose read is in flight while another replica syncs the rename.
type pausedDir struct {
	*fakeDir
	old              *User
	reading, proceed chan struct{}
	once             sync.Once
}

func (d *pausedDir) ReadUser(ctx context.Context, ref UserRef) (User, error) {
	first := false
	d.once.Do(func() { first = true })
	if !first {
		return d.fakeDir.ReadUser(ctx, ref)
	}
	close(d.reading)
	<-d.proceed
	return *d.old, nil
}

// Two replicas syncing one user, one with a read from before the user's
// rename, take turns on the user (its lease in the book): the old name's
// account ends locked, the new one's open, and the book names the new one.
// Without the user's lease, the replica with the old read made the old
// name's account after the other had synced the rename, and recorded the
// old name last: that account stayed open (seen once in the cluster proof).
func TestReplicaWithAReadFromBeforeARenameTakesItsTurn(t *testing.T) {
	ctx := context.Background()
	b := bustest.RunServer(t).Open(t)
	const oldName, newName, newAcct = "alice@example.com", "alice2@example.com", "ALICE2@EXAMPLE.COM"
	dir := &pausedDir{fakeDir: newFakeDir(), reading: make(chan struct{}), proceed: make(chan struct{}),
		old: &User{ID: aliceID, UserName: oldName, Active: true, Groups: []string{"HR Readers"}}}
	dir.set(User{ID: aliceID, UserName: newName, Active: true, Groups: []string{"HR Readers"}})
	db := newFakeDB()
	svc, err := New(ctx, testConfig(), b, map[string]Directory{"prod": dir}, map[string]Database{"hr": db},
		servicekit.WithLogger(pipelinetest.Logger(t)), servicekit.WithAuditWriter(&testutil.Auditor{}))
	if err != nil {
		t.Fatal(err)
	}
	svc.leaseWait = 100 * time.Millisecond
	r := svc.byName["hr"]
	stale := make(chan error, 1)
	go func() {
		_, err := svc.syncUser(ctx, r, UserRef{ID: aliceID}, cause{source: "event"})
		stale <- err
	}()
	<-dir.reading
	// The other replica syncs the rename while the first one's read is in
	// flight: it must wait its turn (busy, retried later by the bus).
	_, other := svc.syncUser(ctx, r, UserRef{ID: aliceID}, cause{source: "event"})
	close(dir.proceed)
	if err := <-stale; err != nil {
		t.Fatalf("the replica with the old read: %v", err)
	}
	if other != nil {
		if !errors.Is(other, lease.ErrBusy) {
			t.Fatalf("the other replica: %v, want it to wait its turn (busy) or succeed", other)
		}
		if _, err := svc.syncUser(ctx, r, UserRef{ID: aliceID}, cause{source: "event, retried"}); err != nil {
			t.Fatalf("the other replica, retried: %v", err)
		}
	}
	if acct, _, ok := db.account(aliceAcct); ok && !acct.locked() {
		t.Errorf("the old name's account %s is %s, want locked", aliceAcct, acct.Status)
	}
	if acct, roles, ok := db.account(newAcct); !ok || acct.locked() || !slices.Equal(roles, []string{"HR_READ"}) {
		t.Errorf("the new name's account: found %v, %s, roles %v; want open with HR_READ", ok, acct.Status, roles)
	}
	if had, err := svc.book.get(ctx, "hr", aliceID); err != nil || !strings.EqualFold(had, newName) {
		t.Errorf("the book names %q (%v), want %q", had, err, newName)
	}
}
