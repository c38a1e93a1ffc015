package capabilities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

// lockedDown is a policy: no credentials but the console password, except
// for members of "Cloud Admins", who may have API keys.
func lockedDown() Config {
	cfg := DefaultConfig()
	no, yes := ptr(false), ptr(true)
	cfg.Default = Flags{CanUseAPIKeys: no, CanUseAuthTokens: no, CanUseConsolePassword: yes, CanUseCustomerSecretKeys: no,
		CanUseOAuth2ClientCredentials: no, CanUseSMTPCredentials: no, CanUseDBCredentials: no}
	cfg.Rules = []Rule{{Name: "admins", Match: Match{Groups: []string{"Cloud Admins"}}, Set: Flags{CanUseAPIKeys: yes}}}
	return cfg
}

func compliantFlags() Flags {
	return lockedDown().Default
}

func TestCompliantUserCostsOneRead(t *testing.T) {
	dir := newFakeDir(User{ID: "u1", UserName: "jane", Flags: compliantFlags(), Groups: []string{"Everyone"}})
	s, a := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})

	res := s.handle(context.Background(), msg(t, userEvent("e1", "prod", "u1", iamflowv1.Action_ACTION_UPDATED), 1))
	if !res.IsDone() {
		t.Fatalf("result = %v, want done", res)
	}
	reads, lists, puts := dir.calls()
	if reads != 1 || lists != 0 || len(puts) != 0 {
		t.Errorf("calls: %d reads, %d lists, %d puts; want 1 read and nothing else", reads, lists, len(puts))
	}
	if recs := a.Records(); len(recs) != 0 {
		t.Errorf("audit records for a compliant user: %v", recs)
	}
	if c := s.counterSnapshot(); c[counterCompliant] != 1 || c[counterChecked] != 1 || c[counterChanged] != 0 {
		t.Errorf("counters = %v", c)
	}
}

func TestNonCompliantUserGetsOnePutWithTheDesiredFlags(t *testing.T) {
	dir := newFakeDir(User{ID: "u1", OCID: "ocid1.user.oc1..u1", UserName: "jane", Flags: allTrue(), Groups: []string{"Cloud Admins"}})
	s, a := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})

	res := s.handle(context.Background(), msg(t, userEvent("e1", "prod", "u1", iamflowv1.Action_ACTION_CREATED), 1))
	if !res.IsDone() {
		t.Fatalf("result = %v, want done", res)
	}
	reads, _, puts := dir.calls()
	if reads != 1 || len(puts) != 1 {
		t.Fatalf("calls: %d reads, %d puts; want 1 and 1", reads, len(puts))
	}
	want := compliantFlags()
	want.CanUseAPIKeys = ptr(true) // the admins rule
	if puts[0].id != "u1" || !puts[0].flags.Equal(want) {
		t.Errorf("PUT %s %v, want u1 %v", puts[0].id, puts[0].flags, want)
	}
	recs := a.Records()
	if len(recs) != 1 {
		t.Fatalf("%d audit records, want 1", len(recs))
	}
	r := recs[0]
	if r.Action != actionSetCapabilities || r.Outcome != audit.OutcomeDone || r.Domain != "prod" || r.EventId != "e1" ||
		r.GetResource().GetId() != "u1" || r.GetResource().GetName() != "jane" || r.GetResource().GetOcid() != "ocid1.user.oc1..u1" {
		t.Errorf("record = %v", r)
	}
	if r.Reason != `rule "admins" (user.created)` {
		t.Errorf("reason = %q", r.Reason)
	}
	if r.Before["canUseAuthTokens"] != "true" || r.After["canUseAuthTokens"] != "false" || r.After["canUseApiKeys"] != "true" || len(r.After) != 7 {
		t.Errorf("before %v after %v", r.Before, r.After)
	}
	// The echo: the PUT causes updateusercapabilities; the user now complies.
	res = s.handle(context.Background(), msg(t, userEvent("e2", "prod", "u1", iamflowv1.Action_ACTION_CAPABILITIES_CHANGED), 1))
	if _, _, puts := dir.calls(); !res.IsDone() || len(puts) != 1 || len(a.Records()) != 1 {
		t.Errorf("echo: result %v, %d puts, %d records; want done, 1, 1", res, len(puts), len(a.Records()))
	}
}

func TestJITRaceRetriesThenSucceeds(t *testing.T) {
	dir := newFakeDir(User{ID: "u1", UserName: "jit", Federated: true, Flags: allTrue()})
	dir.hideReads["u1"] = 1 // the event comes before the user is readable
	cfg := lockedDown()
	cfg.JITRetryAfter = 1500 * time.Millisecond
	s, _ := newTestService(t, cfg, map[string]Directory{"prod": dir})
	ev := userEvent("e1", "prod", "u1", iamflowv1.Action_ACTION_CREATED)

	res := s.handle(context.Background(), msg(t, ev, 1))
	if res.IsDone() || res.IsTerminal() || res.Delay() != 1500*time.Millisecond || !errors.Is(res.Err(), ErrNotFound) {
		t.Fatalf("first delivery: %v, want retry after 1.5s (not found)", res)
	}
	res = s.handle(context.Background(), msg(t, ev, 2))
	if !res.IsDone() {
		t.Fatalf("second delivery: %v, want done", res)
	}
	if _, _, puts := dir.calls(); len(puts) != 1 {
		t.Errorf("%d puts, want 1", len(puts))
	}
	if c := s.counterSnapshot(); c[counterJITRetries] != 1 || c[counterChanged] != 1 {
		t.Errorf("counters = %v", c)
	}
}

func TestJITRaceGivesUpAfterMaxAttempts(t *testing.T) {
	dir := newFakeDir()
	cfg := lockedDown()
	cfg.JITMaxAttempts = 3
	s, _ := newTestService(t, cfg, map[string]Directory{"prod": dir})
	ev := userEvent("e1", "prod", "ghost", iamflowv1.Action_ACTION_CREATED)
	for n := uint64(1); n < 3; n++ {
		if res := s.handle(context.Background(), msg(t, ev, n)); res.IsDone() || res.IsTerminal() || res.Delay() != defaultJITRetryAfter {
			t.Fatalf("delivery %d: %v, want retry after %v", n, res, defaultJITRetryAfter)
		}
	}
	// Still not readable: the user is gone (deleted right after it was
	// created). Done, not dead-lettered: nothing for a person to do.
	res := s.handle(context.Background(), msg(t, ev, 3))
	if !res.IsDone() {
		t.Fatalf("last delivery: %v, want done", res)
	}
	if st := s.Status(context.Background()); st.LastError != "" || st.Counters[counterJITGone] != 1 {
		t.Errorf("last error %q, counters %v; want none and jit_gone 1", st.LastError, st.Counters)
	}
}

func TestMissingUserOnOtherEventsIsDone(t *testing.T) {
	dir := newFakeDir()
	s, _ := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})
	for _, ev := range []*iamflowv1.IdentityEvent{
		userEvent("e1", "prod", "gone", iamflowv1.Action_ACTION_UPDATED),
		userEvent("e2", "prod", "gone", iamflowv1.Action_ACTION_CAPABILITIES_CHANGED),
		userEvent("e3", "prod", "gone", iamflowv1.Action_ACTION_ACTIVATED),
		memberEvent("e4", "prod", "g1", "gone", iamflowv1.Action_ACTION_MEMBER_ADDED),
	} {
		if res := s.handle(context.Background(), msg(t, ev, 1)); !res.IsDone() {
			t.Errorf("%s: %v, want done", ev.Type, res)
		}
	}
	if reads, _, puts := dir.calls(); reads != 4 || len(puts) != 0 {
		t.Errorf("%d reads %d puts, want 4 and 0", reads, len(puts))
	}
}

func TestEventsThatNeedNoReconcile(t *testing.T) {
	dir := newFakeDir(User{ID: "u1", UserName: "jane", Flags: allTrue()})
	cfg := lockedDown()
	cfg.Rules = nil // no group rule: membership events are ignored
	s, _ := newTestService(t, cfg, map[string]Directory{"prod": dir})
	for _, ev := range []*iamflowv1.IdentityEvent{
		userEvent("e1", "prod", "u1", iamflowv1.Action_ACTION_DELETED),
		userEvent("e2", "prod", "u1", iamflowv1.Action_ACTION_DEACTIVATED),
		{Id: "e3", Domain: "prod", Kind: iamflowv1.Kind_KIND_GROUP, Action: iamflowv1.Action_ACTION_CREATED, Resource: &iamflowv1.Resource{Id: "g1"}},
		memberEvent("e4", "prod", "g1", "u1", iamflowv1.Action_ACTION_MEMBER_ADDED),
		userEvent("e5", "elsewhere", "u1", iamflowv1.Action_ACTION_CREATED),
	} {
		if res := s.handle(context.Background(), msg(t, ev, 1)); !res.IsDone() {
			t.Errorf("%s: %v, want done", ev.Type, res)
		}
	}
	if reads, _, _ := dir.calls(); reads != 0 {
		t.Errorf("%d reads, want none", reads)
	}
	bad := &bus.Msg{Subject: "iam.event.prod.user.created", Data: []byte("\xff not protobuf"), NumDelivered: 1}
	if res := s.handle(context.Background(), bad); !res.IsTerminal() {
		t.Errorf("malformed message: %v, want terminal", res)
	}
}

func TestMembershipChangeReconcilesTheMember(t *testing.T) {
	dir := newFakeDir(User{ID: "u1", UserName: "jane", Flags: compliantFlags(), Groups: []string{"Cloud Admins"}})
	s, a := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})
	res := s.handle(context.Background(), msg(t, memberEvent("e1", "prod", "g-admins", "u1", iamflowv1.Action_ACTION_MEMBER_ADDED), 1))
	if !res.IsDone() {
		t.Fatal(res)
	}
	if u := dir.user(t, "u1"); u.Flags.CanUseAPIKeys == nil || !*u.Flags.CanUseAPIKeys {
		t.Errorf("after joining Cloud Admins: %v, want canUseApiKeys true", u.Flags)
	}
	if recs := a.Records(); len(recs) != 1 || recs[0].Reason != `rule "admins" (membership.member_added)` {
		t.Errorf("records = %v", recs)
	}
}

func TestDriftIsRevertedAndAudited(t *testing.T) {
	f := compliantFlags()
	f.CanUseAuthTokens = ptr(true) // someone turned it back on
	dir := newFakeDir(User{ID: "u1", UserName: "jane", Flags: f})
	s, a := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})
	ev := userEvent("e9", "prod", "u1", iamflowv1.Action_ACTION_CAPABILITIES_CHANGED)
	ev.Actor = &iamflowv1.Actor{Name: "alice@example.com", Type: "User"}
	if res := s.handle(context.Background(), msg(t, ev, 1)); !res.IsDone() {
		t.Fatal(res)
	}
	recs := a.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	want := `drift: canUseAuthTokens: true -> false after user.capabilities_changed by alice@example.com; default flags`
	if recs[0].Reason != want || recs[0].EventId != "e9" {
		t.Errorf("reason = %q, want %q", recs[0].Reason, want)
	}
	if c := s.counterSnapshot(); c[counterDrift] != 1 {
		t.Errorf("drift_found = %d", c[counterDrift])
	}
}

type retryAfterErr struct{ d time.Duration }

func (e retryAfterErr) Error() string                    { return fmt.Sprintf("rate limited, retry after %v", e.d) }
func (e retryAfterErr) RetryHint() (bool, time.Duration) { return true, e.d }

func TestDirectoryErrors(t *testing.T) {
	dir := newFakeDir(User{ID: "u1", UserName: "jane", Flags: allTrue()})
	s, a := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})
	ev := userEvent("e1", "prod", "u1", iamflowv1.Action_ACTION_UPDATED)

	dir.readErr = fmt.Errorf("wrapped: %w", retryAfterErr{7 * time.Second})
	if res := s.handle(context.Background(), msg(t, ev, 1)); res.IsDone() || res.IsTerminal() || res.Delay() != 7*time.Second {
		t.Errorf("rate limited read: %v, want retry after 7s", res)
	}
	dir.readErr = errors.New("connection reset")
	if res := s.handle(context.Background(), msg(t, ev, 1)); res.IsDone() || res.IsTerminal() || res.Delay() != 0 {
		t.Errorf("transient read: %v, want retry with the consumer's backoff", res)
	}
	dir.readErr = nil
	dir.putErr = fmt.Errorf("forbidden: %w", ErrPermanent)
	res := s.handle(context.Background(), msg(t, ev, 1))
	if !res.IsTerminal() || !strings.Contains(res.Err().Error(), "set capabilities of jane in prod: forbidden") {
		t.Errorf("forbidden write: %v, want terminal", res)
	}
	recs := a.Records()
	if len(recs) != 1 || recs[0].Outcome != audit.OutcomeFailed || !strings.Contains(recs[0].Reason, "failed: set capabilities of jane in prod") {
		t.Errorf("records = %v", recs)
	}
	if c := s.counterSnapshot(); c[counterFailed] != 3 {
		t.Errorf("failures = %d, want 3", c[counterFailed])
	}
}

func TestCoalesceKeyIsTheUser(t *testing.T) {
	key := servicekit.CoalesceEvents(coalesceKey)
	a := key(msg(t, userEvent("e1", "prod", "u1", iamflowv1.Action_ACTION_UPDATED), 1))
	b := key(msg(t, memberEvent("e2", "prod", "g1", "u1", iamflowv1.Action_ACTION_MEMBER_ADDED), 1))
	c := key(msg(t, memberEvent("e3", "prod", "g2", "u1", iamflowv1.Action_ACTION_MEMBER_REMOVED), 1))
	if a != "prod/user/u1" || b != a || c != a {
		t.Errorf("keys %q %q %q, want prod/user/u1", a, b, c)
	}
	if k := key(&bus.Msg{Data: []byte("\xff")}); k != "" {
		t.Errorf("undecodable message key %q", k)
	}
}

func TestConsumerConfigFilters(t *testing.T) {
	dirs := map[string]Directory{"prod": newFakeDir(), "dev": newFakeDir()}
	s, _ := newTestService(t, lockedDown(), dirs)
	cc := s.ConsumerConfig()
	want := []string{"iam.event.dev.user.*", "iam.event.dev.membership.*", "iam.event.prod.user.*", "iam.event.prod.membership.*"}
	if strings.Join(cc.FilterSubjects, " ") != strings.Join(want, " ") || cc.Durable != "capabilities" || cc.Coalesce == nil {
		t.Errorf("consumer config: %q durable %q", cc.FilterSubjects, cc.Durable)
	}
	cfg := lockedDown()
	cfg.Rules = nil
	cfg.Domains = []string{"prod"}
	s, _ = newTestService(t, cfg, dirs)
	if got := s.ConsumerConfig().FilterSubjects; strings.Join(got, " ") != "iam.event.prod.user.*" {
		t.Errorf("without group rules: %q", got)
	}
}

func TestNewChecksDirectories(t *testing.T) {
	cfg := lockedDown()
	cfg.Domains = []string{"prod", "dev"}
	if _, err := build(cfg, nil, map[string]Directory{"prod": newFakeDir()}, servicekit.WithAuditWriter(&testutil.Auditor{})); err == nil ||
		!strings.Contains(err.Error(), "no directory (identity domain client) for enforced domain(s) [dev]") {
		t.Errorf("err = %v", err)
	}
	if _, err := build(lockedDown(), nil, nil, servicekit.WithAuditWriter(&testutil.Auditor{})); err == nil {
		t.Error("no domains accepted")
	}
	if _, err := New(context.Background(), lockedDown(), nil, map[string]Directory{"prod": newFakeDir()}); err == nil {
		t.Error("New without a bus accepted")
	}
	cfg = lockedDown()
	cfg.Rules[0].Match.UserName = "("
	if _, err := build(cfg, nil, map[string]Directory{"prod": newFakeDir()}, servicekit.WithAuditWriter(&testutil.Auditor{})); err == nil ||
		!strings.Contains(err.Error(), `rules[0] "admins": match.user_name`) {
		t.Errorf("err = %v", err)
	}
}
