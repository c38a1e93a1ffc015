// Package clockjump proves the expiry service against jumps of its wall
// clock (issue 21): the clock of the process deciding deadlines steps
// forward or back by hours (a wrong NTP step, a VM resumed, an operator's
// date command) while grants are open, or the service is down when a
// deadline passes. Whatever the clock does, no grant may end before its
// deadline, none may be forgotten past it, and one whose deadline passed
// while the service was down ends as soon as the service is back.
//
// The service runs in the test process with a wall clock the test steps
// (servicekit.WithClock), on a real JetStream (embedded, random port) whose
// clock, like OCI's, does not jump: deadlines are measured on real time,
// from the emulated domain's own write log. The service judges deadlines
// on the server's time advanced by the monotonic clock (services/expiry's
// deadlineClock), so the steps must change nothing.
package clockjump

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"
	"google.golang.org/protobuf/types/known/durationpb"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/expiry"
)

const (
	tempGroup = "OCI-Temp-Admins"
	domain    = "prod"
	// lateness is how late after its deadline a membership may go.
	lateness = 3 * time.Second
)

// jumpClock is a wall clock the test can step: real time plus an offset.
type jumpClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *jumpClock) jump(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// rig is one emulated domain, one JetStream and the expiry service.
type rig struct {
	t       *testing.T
	srv     *bustest.Server
	bus     *bus.Bus
	domain  *emu.Domain
	client  *identitydomain.Client
	clock   *jumpClock
	groupID string
	cfg     expiry.Config
	svc     *expiry.Service
	stop    func()
}

func newRig(t *testing.T) *rig {
	if testing.Short() {
		t.Skip("clock jump tests take tens of seconds")
	}
	r := &rig{t: t, clock: &jumpClock{}}
	r.srv = bustest.RunServer(t)
	r.bus = r.srv.Open(t)
	r.domain = pipelinetest.Emulator(t, domain, emu.TierUnlimited, "")
	r.client = pipelinetest.Client(t, domain,
		pipelinetest.ClientConfig(t, r.domain.URL(), pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, false))
	name := tempGroup
	g, _, err := r.client.CreateGroup(t.Context(), identitydomains.Group{DisplayName: &name})
	if err != nil {
		t.Fatal(err)
	}
	r.groupID = *g.Id
	r.cfg = expiry.DefaultConfig()
	r.cfg.Groups = []expiry.TemporaryGroup{{Domain: domain, Group: tempGroup, MaxDuration: 8 * time.Hour, DefaultDuration: time.Hour}}
	r.cfg.ScanInterval = time.Second
	return r
}

// start runs a new expiry Service on the rig's bus and clock.
func (r *rig) start() {
	svc, err := expiry.New(r.t.Context(), r.cfg, r.bus, map[string]expiry.Domain{domain: r.client},
		servicekit.WithClock(r.clock.Now), servicekit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		r.t.Fatal(err)
	}
	r.svc = svc
	r.stop = pipelinetest.Run(r.t, svc)
}

// grant makes a user and grants it the temporary group for d; it returns
// the user's id and the real-time deadline.
func (r *rig) grant(name string, d time.Duration) (string, time.Time) {
	r.t.Helper()
	u, _, err := r.client.CreateUser(r.t.Context(), identitydomains.User{UserName: &name,
		Name:   &identitydomains.UserName{GivenName: &name, FamilyName: &name},
		Emails: []identitydomains.UserEmails{{Value: &name, Type: identitydomains.UserEmailsTypeWork, Primary: new(bool)}}})
	if err != nil {
		r.t.Fatal(err)
	}
	start := time.Now()
	resp, err := r.svc.GrantMembership(r.t.Context(), &iamflowv1.GrantMembershipRequest{Domain: domain, Group: tempGroup, User: *u.Id,
		Duration: durationpb.New(d), Requester: "clockjump"})
	if err != nil {
		r.t.Fatal(err)
	}
	g := resp.GetGrant()
	// The deadline the grant was given, on real time: its duration from
	// when it was asked for (the clock had not jumped yet).
	if got := g.GetExpiresAt().AsTime(); got.Sub(start.Add(d)) > time.Second || start.Add(d).Sub(got) > time.Second {
		r.t.Fatalf("grant expires %v, want about %v", got, start.Add(d))
	}
	return *u.Id, g.GetExpiresAt().AsTime()
}

// removedAt is when the domain's write log shows the user leave the
// temporary group (zero if not yet).
func (r *rig) removedAt(userID string) time.Time {
	for _, w := range r.domain.Writes(0).Writes {
		if w.Op == "removeuserfromgroup" && w.ResourceID == r.groupID && w.RefID == userID {
			return w.Time
		}
	}
	return time.Time{}
}

// expectEnd waits until the membership is removed and checks it went at
// its deadline: not before, and at most lateness after.
func (r *rig) expectEnd(what, userID string, deadline time.Time) {
	r.t.Helper()
	var at time.Time
	err := testutil.Poll(time.Until(deadline)+lateness+2*time.Second, 20*time.Millisecond, func() error {
		if at = r.removedAt(userID); at.IsZero() {
			return errors.New("still a member")
		}
		return nil
	})
	switch {
	case err != nil:
		r.t.Errorf("%s: the membership was not removed within %v of its deadline %s: forgotten", what, lateness, deadline.Format("15:04:05.000"))
	case at.Before(deadline):
		r.t.Errorf("%s: the membership was removed %v BEFORE its deadline %s", what, deadline.Sub(at).Round(time.Millisecond), deadline.Format("15:04:05.000"))
	case at.Sub(deadline) > lateness:
		r.t.Errorf("%s: the membership was removed %v after its deadline (at most %v)", what, at.Sub(deadline).Round(time.Millisecond), lateness)
	default:
		r.t.Logf("%s: removed %v after its deadline", what, at.Sub(deadline).Round(time.Millisecond))
	}
}

// The service's clock steps forward by three hours while grants are open:
// every open grant looks hours overdue to it, but none has reached its
// deadline.
func TestForwardJumpEndsNothingEarly(t *testing.T) {
	jumpWhileOpen(t, "early", "clock +3h", 8*time.Second, 12*time.Second, 3*time.Hour)
}

// The service's clock steps back by three hours while grants are open: to
// it every deadline is hours away when its timer fires.
func TestBackwardJumpForgetsNothing(t *testing.T) {
	jumpWhileOpen(t, "late", "clock -3h", 6*time.Second, 10*time.Second, -3*time.Hour)
}

// A wrong step forward is corrected a few seconds later: neither step may
// end a grant early or lose its timer.
func TestJumpForwardThenBack(t *testing.T) {
	jumpWhileOpen(t, "both", "clock +4h for 7s, then back", 10*time.Second, 16*time.Second, 4*time.Hour, -4*time.Hour)
}

// jumpWhileOpen opens two grants, of first and second, for the users
// prefix1 and prefix2, steps the service's clock by each of steps in turn,
// 7 seconds apart (the wrong time lasts, as it would until the next NTP
// poll), and expects each grant to end on time; what names the steps.
func jumpWhileOpen(t *testing.T, prefix, what string, first, second time.Duration, steps ...time.Duration) {
	r := newRig(t)
	r.start()
	u1, d1 := r.grant(prefix+"1@example.com", first)
	u2, d2 := r.grant(prefix+"2@example.com", second)
	for i, step := range steps {
		if i > 0 {
			time.Sleep(7 * time.Second)
		}
		r.clock.jump(step)
	}
	r.expectEnd(fmt.Sprintf("grant of %v, %s", first, what), u1, d1)
	r.expectEnd(fmt.Sprintf("grant of %v, %s", second, what), u2, d2)
}

// The service is down when a grant's deadline passes; the timer fires into
// the stream meanwhile, and the grant ends as soon as the service is back.
func TestDeadlinePassedWhileDown(t *testing.T) {
	r, u := downPastDeadline(t, "down@example.com")
	r.startAndExpectEnd(u)
}

// As above, but the service stays down longer than the fired timer is kept
// (its due message has a TTL of an hour): nothing is left in the stream to
// say the deadline passed, and the grant must still end as soon as the
// service is back.
func TestDeadlinePassedWhileDownLongerThanTheTimerIsKept(t *testing.T) {
	r, u := downPastDeadline(t, "longdown@example.com")
	// What an hour does to the fired timer: its due message expires.
	st, err := r.bus.JetStream().Stream(t.Context(), expiry.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(t.Context(), jetstream.WithPurgeSubject("iam.expiry.due.>")); err != nil {
		t.Fatal(err)
	}
	r.startAndExpectEnd(u)
}

// downPastDeadline opens a grant of 3 s for userName, stops the service
// until 3 s after the grant's deadline, and checks the membership is still
// there; it returns the rig and the user's id.
func downPastDeadline(t *testing.T, userName string) (*rig, string) {
	t.Helper()
	r := newRig(t)
	r.start()
	u, d := r.grant(userName, 3*time.Second)
	r.stop()
	time.Sleep(time.Until(d.Add(3 * time.Second)))
	if !r.removedAt(u).IsZero() {
		t.Fatal("the membership went while the service was down")
	}
	return r, u
}

// startAndExpectEnd starts the service and checks a grant past its
// deadline ended within a second of the start.
func (r *rig) startAndExpectEnd(userID string) {
	r.t.Helper()
	started := time.Now()
	r.start()
	var at time.Time
	if err := testutil.Poll(time.Minute, 20*time.Millisecond, func() error {
		if at = r.removedAt(userID); at.IsZero() {
			return errors.New("still a member")
		}
		return nil
	}); err != nil {
		r.t.Fatalf("the membership of a grant past its deadline was not removed within a minute of the start")
	}
	if took := at.Sub(started); took > time.Second {
		r.t.Errorf("the grant past its deadline ended %v after the service started, not at once", took.Round(time.Millisecond))
	} else {
		r.t.Logf("ended %v after the start", took.Round(time.Millisecond))
	}
}
