package expiry

import (
	"context"
	"testing"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

func grantFor(t testing.TB, svc *Service, user string, d time.Duration) *iamflowv1.Grant {
	t.Helper()
	g, err := svc.grant(context.Background(), grantRequest{Domain: domainShort, Group: tempGroup, User: user, Duration: d,
		Reason: "incident 42", Requester: "bob"})
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	return g
}

type granted struct {
	uid string
	g   *iamflowv1.Grant
}

// maxLateness is how late after its deadline a membership may go. The timer
// path takes tens of milliseconds; the bound leaves room for a 2-core
// machine shared with other test runs, and stays well below timerGrace, so
// a grant that only the safety scan ended fails here as well as on the
// timers_missed counter the pipeline checks.
const maxLateness = 1500 * time.Millisecond

// reconnectAfterRestart is how long after the test's NATS server is back the
// service's connection may take to return (the bus retries every 2s).
const reconnectAfterRestart = 2500 * time.Millisecond

// expectExpiry waits for each grant's membership to go and checks it went
// neither before the deadline nor more than maxLateness after it; a
// deadline that fell before the restarted NATS server was back and the
// service reconnected (p.natsBack) counts from then.
func (p *pipeline) expectExpiry(t *testing.T, gs []granted) lateness {
	t.Helper()
	var late lateness
	for _, x := range gs {
		gone := p.waitGone(x.uid, 10*time.Second)
		l := gone.Sub(x.g.ExpiresAt.AsTime())
		if l < 0 {
			t.Errorf("grant %s revoked %v before its deadline", x.g.Id, -l)
		}
		allowed := maxLateness
		if !p.natsBack.IsZero() {
			allowed += max(0, p.natsBack.Add(reconnectAfterRestart).Sub(x.g.ExpiresAt.AsTime()))
		}
		if l > allowed {
			t.Errorf("grant %s revoked %v after its deadline (at most %v)", x.g.Id, l, allowed)
		}
		late = append(late, l)
	}
	late.report(t)
	return late
}

func (p *pipeline) grantUsers(t *testing.T, svc *Service, prefix string, n int, base, step time.Duration) []granted {
	t.Helper()
	var gs []granted
	for i := range n {
		name := prefix + string(rune('a'+i))
		uid := p.createUser(name)
		g := grantFor(t, svc, name, base+time.Duration(i)*step)
		if g.State != iamflowv1.GrantState_GRANT_STATE_ACTIVE || !p.isMember(uid) {
			t.Fatalf("after Grant: state %v, member %v", g.State, p.isMember(uid))
		}
		gs = append(gs, granted{uid, g})
	}
	return gs
}

func TestGrantExpiresOnTime(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	gs := p.grantUsers(t, svc, "dev", 3, time.Second, 300*time.Millisecond)
	p.expectExpiry(t, gs)
	g, err := svc.get(context.Background(), gs[0].g.Id)
	if err != nil {
		t.Fatal(err)
	}
	if g.State != iamflowv1.GrantState_GRANT_STATE_EXPIRED || g.EndedAt == nil || len(g.History) != 3 {
		t.Errorf("expired grant: state %v ended %v history %v", g.State, g.EndedAt, g.History)
	}
}

// TestMovedNeverCountsBelowZero: a grant another replica opened after the
// last scan, and this process ended, leaves the active count at zero until
// the next scan, not at -1.
func TestMovedNeverCountsBelowZero(t *testing.T) {
	var c stateCounts
	c.add(iamflowv1.GrantState_GRANT_STATE_ACTIVE, -1)
	c.add(iamflowv1.GrantState_GRANT_STATE_EXPIRED, 1)
	c.add(iamflowv1.GrantState_GRANT_STATE_UNSPECIFIED, 1)
	if want := (stateCounts{expired: 1}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
}
