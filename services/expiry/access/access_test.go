package access

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iamflow/iamflow/emulator/notifications"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

// fakeGrants is the expiry service as the workflow sees it.
type fakeGrants struct {
	mu     sync.Mutex
	now    func() time.Time
	grants map[string]*iamflowv1.Grant
	made   atomic.Int32
	fail   error
}

func newFakeGrants(now func() time.Time) *fakeGrants {
	return &fakeGrants{now: now, grants: map[string]*iamflowv1.Grant{}}
}

func (f *fakeGrants) Grant(_ context.Context, domain, group, user string, d time.Duration, requester, reason string) (*iamflowv1.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	for _, g := range f.grants {
		if g.Domain == domain && strings.EqualFold(g.GroupName, group) && strings.EqualFold(g.UserName, user) && g.State == iamflowv1.GrantState_GRANT_STATE_ACTIVE {
			return nil, fmt.Errorf("user %q already holds grant %s", user, g.Id)
		}
	}
	n := f.made.Add(1)
	g := &iamflowv1.Grant{Id: fmt.Sprintf("g%d", n), Domain: domain, GroupName: group, UserName: user, UserId: "id-" + user,
		State: iamflowv1.GrantState_GRANT_STATE_ACTIVE, CreatedAt: timestamppb.New(f.now()),
		ExpiresAt: timestamppb.New(f.now().Add(d)), Requester: requester, Reason: reason}
	f.grants[g.Id] = g
	return g, nil
}

func (f *fakeGrants) Extend(_ context.Context, id string, d time.Duration, _, _ string) (*iamflowv1.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.grants[id]
	if g == nil {
		return nil, errors.New("no grant")
	}
	g.ExpiresAt = timestamppb.New(f.now().Add(d))
	return g, nil
}

func (f *fakeGrants) GetGrant(_ context.Context, id string) (*iamflowv1.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.grants[id]; g != nil {
		return g, nil
	}
	return nil, errors.New("no grant")
}

func (f *fakeGrants) OpenGrant(_ context.Context, domain, group, user string) (*iamflowv1.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.grants {
		if g.Domain == domain && strings.EqualFold(g.GroupName, group) && strings.EqualFold(g.UserName, user) && g.State == iamflowv1.GrantState_GRANT_STATE_ACTIVE {
			return g, nil
		}
	}
	return nil, nil
}

func (f *fakeGrants) end(id string, s iamflowv1.GrantState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants[id].State, f.grants[id].EndedAt = s, timestamppb.New(f.now())
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var (
	rita  = Person{UserName: "rita.requester@example.com", UserID: "u-rita", Groups: []string{"Developers"}}
	adam  = Person{UserName: "adam.approver@example.com", UserID: "u-adam", Groups: []string{"Access-Approvers"}}
	bea   = Person{UserName: "bea.approver@example.com", UserID: "u-bea", Groups: []string{"Access-Approvers"}}
	olga  = Person{UserName: "olga.oncall@example.com", UserID: "u-olga", Groups: []string{"Developers", "On-Call"}}
	selfy = Person{UserName: "sam.both@example.com", UserID: "u-sam", Groups: []string{"Developers", "Access-Approvers"}}
	eve   = Person{UserName: "eve@example.com", UserID: "u-eve", Groups: []string{"Sales"}}
	op    = Person{Operator: true}
)

func testConfig(notify NotifyConfig) Config {
	return Config{Policies: []Policy{{
		Domain: "src", Group: "OCI-Temp-Admins",
		Requesters: Principals{Groups: []string{"Developers"}}, Approvers: Principals{Groups: []string{"Access-Approvers"}},
		AutoApprove: Principals{Groups: []string{"On-Call"}}, MaxDuration: 2 * time.Hour, DefaultDuration: time.Hour,
		Justification: true, Ticket: TicketRule{Required: true, Pattern: "INC-[0-9]+"}, DecideWithin: 30 * time.Minute,
	}, {
		Domain: "src", Group: "DB-Admins", Requesters: Principals{Users: []string{"rita.requester@example.com"}},
		Approvers: Principals{Groups: []string{"Access-Approvers"}}, Approvals: 2, Extend: true,
	}}, Notify: notify}
}

func temporary(domain, group string) (time.Duration, bool) {
	return 8 * time.Hour, domain == "src" && (group == "OCI-Temp-Admins" || group == "DB-Admins")
}

type harness struct {
	t      *testing.T
	b      *bus.Bus
	m      *Manager
	grants *fakeGrants
	clock  *clock
	cancel func()
}

func newHarness(t *testing.T, notify NotifyConfig, opts ...servicekit.Option) *harness {
	t.Helper()
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	cfg := testConfig(notify)
	if err := cfg.Validate(temporary); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	g := newFakeGrants(c.now)
	m, err := New(context.Background(), cfg, b, g, append([]servicekit.Option{servicekit.WithClock(c.now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, b: b, m: m, grants: g, clock: c}
	return h
}

// run starts the manager (notification delivery and scans).
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			h.t.Error("Run did not return within 10s of its context's end")
		}
	})
}

func code(err error) string {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Code
	}
	return fmt.Sprint(err)
}

func ask(group string, d time.Duration) RequestInput {
	return RequestInput{Domain: "src", Group: group, Duration: d, Reason: "incident INC-42", Ticket: "INC-42"}
}

// The whole life: asked, approved by an approver, granted, ended with the
// grant; each step once, whoever looks.
func TestRequestApprovedBecomesAGrant(t *testing.T) {
	h := newHarness(t, NotifyConfig{})
	h.run() // without notification sinks: Run must still end with its context
	ctx := context.Background()
	r, err := h.m.Request(ctx, rita, ask("OCI-Temp-Admins", 30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.State != iamflowv1.RequestState_REQUEST_STATE_PENDING || r.Requester != rita.UserName || r.Duration.AsDuration() != 30*time.Minute {
		t.Fatalf("new request %v", r)
	}
	waiting, err := h.m.List(ctx, adam, iamflowv1.RequestView_REQUEST_VIEW_WAITING_FOR_ME, nil, 0)
	if err != nil || len(waiting) != 1 {
		t.Fatalf("waiting for adam: %v, %v", waiting, err)
	}
	if mine, _ := h.m.List(ctx, rita, iamflowv1.RequestView_REQUEST_VIEW_WAITING_FOR_ME, nil, 0); len(mine) != 0 {
		t.Errorf("rita waits for her own decision: %v", mine)
	}
	r, err = h.m.Approve(ctx, adam, r.Id, "ok for the incident")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != iamflowv1.RequestState_REQUEST_STATE_ACTIVE || r.GrantId == "" || r.ExpiresAt.AsTime() != h.clock.now().Add(30*time.Minute) {
		t.Fatalf("approved request %v", r)
	}
	g, _ := h.grants.GetGrant(ctx, r.GrantId)
	if g.UserName != rita.UserName || !strings.Contains(g.Reason, "approved by "+adam.UserName) {
		t.Errorf("grant %v", g)
	}
	// Each step is in the audit trail, the decision with who and why.
	stream, err := h.b.JetStream().Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	for step, want := range map[string]string{"requested": "incident INC-42", "approved": "ok for the incident", "active": "incident INC-42"} {
		msg, err := stream.GetLastMsgForSubject(ctx, bus.AuditSubject(AuditService, "request_"+step))
		if err != nil {
			t.Fatalf("no audit record of %s: %v", step, err)
		}
		rec, err := audit.Decode(msg.Data)
		if err != nil || rec.Reason != want || rec.After["request"] != r.Id || rec.Related.GetName() != rita.UserName {
			t.Errorf("audit of %s: %v %v", step, rec, err)
		}
		if step == "approved" && rec.After["decided_by"] != adam.UserName {
			t.Errorf("approval recorded as by %q", rec.After["decided_by"])
		}
	}
	// The grant ends: the request follows.
	h.grants.end(r.GrantId, iamflowv1.GrantState_GRANT_STATE_EXPIRED)
	h.m.Scan(ctx)
	r, _ = h.m.Get(ctx, rita, r.Id)
	if r.State != iamflowv1.RequestState_REQUEST_STATE_ENDED {
		t.Fatalf("after the grant ended: %v", r.State)
	}
	// A new request for the same group is possible again.
	if _, err := h.m.Request(ctx, rita, ask("OCI-Temp-Admins", 0)); err != nil {
		t.Errorf("a new request after the end: %v", err)
	}
}

// Every refusal the issue names, each with no side effect.
func TestRefusals(t *testing.T) {
	h := newHarness(t, NotifyConfig{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		who  Person
		in   RequestInput
		want string
	}{
		{"a group without a policy", rita, ask("Finance-Admins", time.Hour), CodeNoPolicy},
		{"not a requester", eve, ask("OCI-Temp-Admins", time.Hour), CodeNotEligible},
		{"longer than the maximum", rita, ask("OCI-Temp-Admins", 3*time.Hour), CodeTooLong},
		{"no ticket", rita, RequestInput{Domain: "src", Group: "OCI-Temp-Admins", Reason: "why"}, CodeTicket},
		{"a ticket of the wrong form", rita, RequestInput{Domain: "src", Group: "OCI-Temp-Admins", Reason: "why", Ticket: "JIRA-1"}, CodeTicket},
		{"no reason", rita, RequestInput{Domain: "src", Group: "OCI-Temp-Admins", Ticket: "INC-1"}, CodeJustification},
		{"for somebody else", RequestInput{}.asPerson(rita), RequestInput{Domain: "src", Group: "OCI-Temp-Admins", Reason: "r", Ticket: "INC-1", User: "adam.approver@example.com"}, CodeNotYours},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.m.Request(ctx, tc.who, tc.in); code(err) != tc.want {
				t.Errorf("%v, want %s", err, tc.want)
			}
		})
	}
	if all, _ := h.m.List(ctx, op, iamflowv1.RequestView_REQUEST_VIEW_ALL, nil, 0); len(all) != 0 {
		t.Fatalf("refused requests were stored: %v", all)
	}

	r, err := h.m.Request(ctx, selfy, ask("OCI-Temp-Admins", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Approve(ctx, selfy, r.Id, "me"); code(err) != CodeSelfApproval {
		t.Errorf("self-approval: %v", err)
	}
	if _, err := h.m.Approve(ctx, rita, r.Id, ""); code(err) != CodeNotApprover {
		t.Errorf("approval by a non-approver: %v", err)
	}
	if _, err := h.m.Deny(ctx, adam, r.Id, ""); code(err) != CodeInvalid {
		t.Errorf("a denial without a reason: %v", err)
	}
	if _, err := h.m.Request(ctx, selfy, ask("OCI-Temp-Admins", time.Hour)); code(err) != CodeDuplicate {
		t.Errorf("a second open request: %v", err)
	}
	if _, err := h.m.Cancel(ctx, rita, r.Id, ""); code(err) != CodeNotYours {
		t.Errorf("cancel of another's request: %v", err)
	}
	if _, err := h.m.Get(ctx, eve, r.Id); code(err) != CodeNotFound {
		t.Errorf("a stranger reads the request: %v", err)
	}
	if _, err := h.m.List(ctx, rita, iamflowv1.RequestView_REQUEST_VIEW_ALL, nil, 0); code(err) != CodeNotYours {
		t.Errorf("a person lists all: %v", err)
	}
	r, err = h.m.Deny(ctx, adam, r.Id, "not now")
	if err != nil || r.State != iamflowv1.RequestState_REQUEST_STATE_DENIED {
		t.Fatalf("deny: %v %v", r, err)
	}
	if _, err := h.m.Approve(ctx, bea, r.Id, ""); code(err) != CodeAlreadyDecided {
		t.Errorf("approval of a denied request: %v", err)
	}
	if h.grants.made.Load() != 0 {
		t.Errorf("%d grants made by refused requests", h.grants.made.Load())
	}
}

func (RequestInput) asPerson(p Person) Person { return p }

// On-call requesters are approved at once; a second approval is needed where
// the policy says so, and one approver counts once; extensions follow the
// same policy.
func TestAutoApprovalTwoApprovalsAndExtension(t *testing.T) {
	h := newHarness(t, NotifyConfig{})
	ctx := context.Background()
	r, err := h.m.Request(ctx, olga, ask("OCI-Temp-Admins", time.Hour))
	if err != nil || r.State != iamflowv1.RequestState_REQUEST_STATE_ACTIVE || r.Decisions[0].By != "policy:auto_approve" {
		t.Fatalf("on-call request: %v %v", r, err)
	}
	r, err = h.m.Request(ctx, rita, RequestInput{Domain: "src", Group: "DB-Admins", Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ = h.m.Approve(ctx, adam, r.Id, ""); r.State != iamflowv1.RequestState_REQUEST_STATE_PENDING {
		t.Fatalf("one of two approvals: %v", r.State)
	}
	if _, err := h.m.Approve(ctx, adam, r.Id, ""); code(err) != CodeAlreadyApproved {
		t.Errorf("the same approver twice: %v", err)
	}
	if r, _ = h.m.Approve(ctx, bea, r.Id, ""); r.State != iamflowv1.RequestState_REQUEST_STATE_ACTIVE {
		t.Fatalf("two approvals: %v", r.State)
	}
	grant := r.GrantId
	// An extension of the active grant, decided like a request.
	h.clock.add(30 * time.Minute)
	x, err := h.m.Request(ctx, rita, RequestInput{Domain: "src", Group: "DB-Admins", Duration: 2 * time.Hour})
	if err != nil || !x.Extension || x.GrantId != grant {
		t.Fatalf("extension request: %v %v", x, err)
	}
	h.m.Approve(ctx, adam, x.Id, "")
	if x, _ = h.m.Approve(ctx, bea, x.Id, ""); x.State != iamflowv1.RequestState_REQUEST_STATE_ACTIVE ||
		x.ExpiresAt.AsTime() != h.clock.now().Add(2*time.Hour) || h.grants.made.Load() != 2 {
		t.Fatalf("extended: %v; %d grants", x, h.grants.made.Load())
	}
}

// A request nobody decides expires; racing approvers and replicas decide it
// once.
func TestExpiryAndDecidedOnce(t *testing.T) {
	h := newHarness(t, NotifyConfig{})
	ctx := context.Background()
	r, _ := h.m.Request(ctx, rita, ask("OCI-Temp-Admins", time.Hour))
	h.clock.add(31 * time.Minute)
	h.m.Scan(ctx)
	if r, _ = h.m.Get(ctx, rita, r.Id); r.State != iamflowv1.RequestState_REQUEST_STATE_EXPIRED {
		t.Fatalf("undecided past decide_by: %v", r.State)
	}
	if _, err := h.m.Approve(ctx, adam, r.Id, ""); code(err) != CodeAlreadyDecided {
		t.Errorf("approval of an expired request: %v", err)
	}

	// A second replica on the same bucket; approvers race on both.
	m2, err := New(ctx, h.m.cfg, h.b, h.grants, servicekit.WithClock(h.clock.now))
	if err != nil {
		t.Fatal(err)
	}
	r, err = h.m.Request(ctx, rita, ask("OCI-Temp-Admins", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, m := range []*Manager{h.m, m2, h.m, m2} {
		who := []Person{adam, bea, adam, bea}[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = m.Approve(ctx, who, r.Id, "")
		}()
	}
	wg.Wait()
	m2.Scan(ctx)
	h.m.Scan(ctx)
	if n := h.grants.made.Load(); n != 1 {
		t.Fatalf("%d grants for one request", n)
	}
	if r, _ = h.m.Get(ctx, rita, r.Id); r.State != iamflowv1.RequestState_REQUEST_STATE_ACTIVE {
		t.Fatalf("state %v", r.State)
	}
}

// Notifications: each step reaches OCI Notifications (the emulator, through
// the SDK) and the webhooks (signed JSON, Slack), retried when a sink fails.
func TestNotificationsAreDelivered(t *testing.T) {
	topic := "ocid1.onstopic.oc1.iad.aaaaaaaaaccess"
	ons, err := notifications.New(notifications.Config{Topics: []notifications.Topic{{ID: topic, Name: "access"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ons.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ons.Close() })
	var mu sync.Mutex
	var signed, slack []map[string]any
	var failFirst atomic.Int32
	failFirst.Store(2)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/flaky" && failFirst.Add(-1) >= 0 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/signed", "/flaky":
			if want := "sha256=" + Sign("hook-secret-0123456789", r.Header.Get("X-Iamflow-Timestamp"), body); r.Header.Get("X-Iamflow-Signature") != want {
				t.Errorf("bad signature %q", r.Header.Get("X-Iamflow-Signature"))
			}
			signed = append(signed, m)
		case "/slack":
			slack = append(slack, m)
		}
	}))
	t.Cleanup(hook.Close)
	cfg := NotifyConfig{
		OCI: OCINotify{TopicID: topic, Endpoint: ons.URL(), Auth: "api_key", APIKey: APIKey{Tenancy: "ocid1.tenancy.oc1..t",
			User: "ocid1.user.oc1..u", Fingerprint: "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00", PrivateKey: testutil.SecretFile(t, testKeyPEM(t))}},
		Webhooks: []Webhook{{Name: "signed", URL: testutil.SecretFile(t, hook.URL+"/signed"), Secret: testutil.SecretFile(t, "hook-secret-0123456789")},
			{Name: "slack", URL: testutil.SecretFile(t, hook.URL+"/slack"), Format: "slack"},
			{Name: "flaky", URL: testutil.SecretFile(t, hook.URL+"/flaky"), Secret: testutil.SecretFile(t, "hook-secret-0123456789")}},
		Consumer: bus.ConsumerConfig{Backoff: []time.Duration{20 * time.Millisecond}, MaxDeliver: 5},
	}
	h := newHarness(t, cfg)
	h.run()
	ctx := context.Background()
	r, err := h.m.Request(ctx, rita, ask("OCI-Temp-Admins", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Approve(ctx, adam, r.Id, "go"); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if n := len(ons.Messages(topic)); n != 3 {
			return fmt.Errorf("%d OCI messages, want requested, approved, active", n)
		}
		if len(signed) != 6 || len(slack) != 3 {
			return fmt.Errorf("%d signed webhook deliveries (2 hooks), %d slack; want 6 and 3", len(signed), len(slack))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	// Steps are delivered concurrently: look for each, not at a position.
	if !slices.ContainsFunc(slack, func(m map[string]any) bool {
		return strings.Contains(fmt.Sprint(m["text"]), "rita.requester@example.com asks for OCI-Temp-Admins")
	}) {
		t.Errorf("no slack message says who asks for what: %v", slack)
	}
	if !slices.ContainsFunc(ons.Messages(topic), func(m notifications.Message) bool { return m.Title == "iamflow: access requested" }) {
		t.Errorf("no OCI message titled %q: %v", "iamflow: access requested", ons.Messages(topic))
	}
	if failFirst.Load() >= 0 {
		t.Error("the flaky webhook never failed: the retry was not exercised")
	}
}

// testKeyPEM is an API signing key for the OCI sink (the emulator checks
// the signature's form, not the key).
func testKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}
