package identitydomain_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/testutil"
)

// TestLostResponseCreateRecovers: the create takes effect but its answer is
// lost (503); the retry meets 409 and the client returns the existing object.
func TestLostResponseCreateRecovers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	mustCreateUser(t, f.c, "warmup") // the token, before the faults
	if err := f.d.SetFaults(emu.Faults{RateLostResponse: 1, Status5xx: http.StatusServiceUnavailable}); err != nil {
		t.Fatal(err)
	}

	u, r, err := f.c.CreateUser(ctx, newUser("dave"))
	if err != nil {
		t.Fatalf("CreateUser with a lost response: %v", err)
	}
	if r.Outcome != identitydomain.OutcomeExisted || deref(u.UserName) != "dave" || u.Id == nil {
		t.Fatalf("CreateUser = %s %s, receipt %+v; want the existing user, outcome existed", deref(u.Id), deref(u.UserName), r)
	}
	if n := f.d.CallCount(emu.OpCreateUser); n != 3 {
		t.Errorf("%d creates sent, want 3 (warm-up, lost, retried)", n)
	}
	if strings.Count(r.RequestID, ",") != 1 {
		t.Errorf("receipt request ids %q, want the lost create's and the 409's", r.RequestID)
	}
	if got, ok := f.d.UserByName("dave"); !ok || got.ID != *u.Id {
		t.Errorf("emulator user dave = %+v, %v", got, ok)
	}

	g, r, err := f.c.CreateGroup(ctx, newGroup("divers", ""))
	if err != nil || r.Outcome != identitydomain.OutcomeExisted || deref(g.DisplayName) != "divers" {
		t.Fatalf("CreateGroup with a lost response = %s, %+v, %v", deref(g.Id), r, err)
	}

	// A delete whose answer is lost: the retry meets 404; it was ours.
	dr, err := f.c.DeleteUser(ctx, *u.Id, "")
	if err != nil || dr.Outcome != identitydomain.OutcomeDeleted {
		t.Errorf("DeleteUser with a lost response = %+v, %v; want deleted", dr, err)
	}
	// A PATCH remove whose answer is lost: the retry meets noTarget.
	if err := f.d.SetFaults(emu.Faults{}); err != nil {
		t.Fatal(err)
	}
	eve := mustCreateUser(t, f.c, "eve")
	if _, err := f.c.AddMembers(ctx, *g.Id, *eve.Id); err != nil {
		t.Fatal(err)
	}
	if err := f.d.SetFaults(emu.Faults{RateLostResponse: 1, Status5xx: http.StatusServiceUnavailable}); err != nil {
		t.Fatal(err)
	}
	rr, err := f.c.RemoveMembers(ctx, *g.Id, *eve.Id)
	if err != nil || rr.Outcome != identitydomain.OutcomeUpdated {
		t.Errorf("RemoveMembers with a lost response = %+v, %v; want updated", rr, err)
	}
	if ms, _ := f.d.Members(*g.Id); len(ms) != 0 {
		t.Errorf("members left: %+v", ms)
	}
}

// TestCreateRetryRules: a create is not retried on a 500 (it may have taken
// effect), but is on 503, 429 and a connection refused before sending.
func TestCreateRetryRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	mustCreateUser(t, f.c, "warmup")

	if err := f.d.SetFaults(emu.Faults{RateLostResponse: 1, Status5xx: http.StatusInternalServerError}); err != nil {
		t.Fatal(err)
	}
	before := f.d.CallCount(emu.OpCreateUser)
	_, _, err := f.c.CreateUser(ctx, newUser("frank"))
	if e := kindOf(t, err); e.Kind != identitydomain.KindUnavailable || e.Status != 500 || e.Attempts != 1 {
		t.Errorf("create answered 500 = %+v, want Unavailable after 1 attempt", e)
	}
	if n := f.d.CallCount(emu.OpCreateUser) - before; n != 1 {
		t.Errorf("%d creates sent after a 500, want 1", n)
	}
	if _, ok := f.d.UserByName("frank"); !ok {
		t.Error("the lost create did not take effect in the emulator")
	}
	// The next attempt by the caller meets a plain conflict: no recovery,
	// because this call saw no lost answer.
	if err := f.d.SetFaults(emu.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.c.CreateUser(ctx, newUser("frank")); !errors.Is(err, identitydomain.ErrConflict) {
		t.Errorf("create after the lost one = %v, want Conflict", err)
	}

	// 429 on a create is retried.
	if err := f.d.SetFaults(emu.Faults{Rate429: 0.5, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, _, err := f.c.CreateUser(ctx, newUser(fmt.Sprintf("g%d", i))); err != nil {
			t.Fatalf("create under 429s: %v", err)
		}
	}
	if n := counter(t, f.reg, "iamflow_identitydomain_retries_total", map[string]string{"op": "CreateUser", "reason": "429"}); n == 0 {
		t.Error("no create was retried after a 429")
	}
}

// TestConnectionRefusedIsRetried: nothing listens; every attempt fails
// before the request is written, so even a create is retried.
func TestConnectionRefusedIsRetried(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	_ = ln.Close()
	s := &testutil.Sleeps{}
	cfg := clientConfig(t, url)
	cfg.Auth, cfg.ClientID, cfg.ClientSecret = identitydomain.AuthStatic, "", ""
	cfg.StaticToken = secretFile(t, "static-token")
	c, err := identitydomain.New(context.Background(), domainName, cfg, identitydomain.WithSleep(s.Sleep))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.CreateUser(context.Background(), newUser("x"))
	e := kindOf(t, err)
	if e.Kind != identitydomain.KindUnavailable || e.Attempts != 6 || e.Err == nil || !identitydomain.Retryable(err) {
		t.Errorf("create to a closed port = %+v, want Unavailable after 6 attempts", e)
	}
	if len(s.All()) != 5 {
		t.Errorf("%d waits, want 5", len(s.All()))
	}
}

// TestTypedErrors maps each status to its kind, with the SCIM error parsed.
func TestTypedErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{cfg: func(c *identitydomain.Config) { c.Retry.MaxAttempts = 2 }})
	ctx := context.Background()
	u := mustCreateUser(t, f.c, "henry")

	// 400: a bad filter.
	for _, err := range f.c.Users(ctx, identitydomain.ListOptions{Filter: `userName eq`}) {
		e := kindOf(t, err)
		if e.Kind != identitydomain.KindInvalidRequest || e.Status != 400 || e.SCIMType != "invalidFilter" || e.Detail == "" || e.RequestID == "" {
			t.Errorf("400 = %+v", e)
		}
	}
	// 404.
	_, err := f.c.GetUser(ctx, "0000")
	if e := kindOf(t, err); e.Kind != identitydomain.KindNotFound || e.Status != 404 || e.MessageID == "" || !errors.Is(err, identitydomain.ErrNotFound) {
		t.Errorf("404 = %+v", e)
	}
	// 409 and 412 are covered in TestDuplicateCreateIsConflict and TestUserRoundTrip.

	// 429 that outlasts the retries: RateLimited, retryable, with Retry-After.
	if err := f.d.SetFaults(emu.Faults{Rate429: 1, RetryAfter: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.GetUser(ctx, *u.Id)
	e := kindOf(t, err)
	if e.Kind != identitydomain.KindRateLimited || e.Status != 429 || e.Attempts != 2 || !identitydomain.Retryable(err) ||
		identitydomain.RetryAfter(err) != 2*time.Second || !errors.Is(err, identitydomain.ErrRateLimited) {
		t.Errorf("429 = %+v", e)
	}
	// What the bus sees (bus.RetryHinter): retry, after the Retry-After.
	if retry, after := e.RetryHint(); !retry || after != 2*time.Second {
		t.Errorf("429 hints %v %v, want a retry after 2s", retry, after)
	}
	if w := f.sleeps.All(); len(w) != 1 || w[0] != 2*time.Second {
		t.Errorf("waits %v, want the Retry-After of 2s", w)
	}
	// A Retry-After beyond retry.max_delay ends the retries at once.
	if err := f.d.SetFaults(emu.Faults{Rate429: 1, RetryAfter: time.Minute}); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.GetUser(ctx, *u.Id)
	if e := kindOf(t, err); e.Attempts != 1 || e.RetryAfter != time.Minute {
		t.Errorf("429 with Retry-After 1m = %+v, want 1 attempt and the Retry-After passed on", e)
	}

	// 5xx: Unavailable, retryable.
	if err := f.d.SetFaults(emu.Faults{Rate5xx: 1, Status5xx: 502}); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.GetUser(ctx, *u.Id)
	if e := kindOf(t, err); e.Kind != identitydomain.KindUnavailable || e.Status != 502 || e.Attempts != 2 || !identitydomain.Retryable(err) {
		t.Errorf("5xx = %+v", e)
	}
	if err := f.d.SetFaults(emu.Faults{}); err != nil {
		t.Fatal(err)
	}

	// 401: a token the domain does not know (auth static, not renewable).
	cfg := clientConfig(t, f.d.URL())
	cfg.Auth, cfg.ClientID, cfg.ClientSecret = identitydomain.AuthStatic, "", ""
	cfg.StaticToken = secretFile(t, "not-a-token")
	static, err := identitydomain.New(ctx, domainName, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = static.GetUser(ctx, *u.Id)
	if e := kindOf(t, err); e.Kind != identitydomain.KindUnauthorized || e.Status != 401 || e.Attempts != 1 || identitydomain.Retryable(err) ||
		func() bool { r, _ := e.RetryHint(); return r }() {
		t.Errorf("401 = %+v", e)
	}
	// 401 from the token endpoint: wrong client secret.
	cfg = clientConfig(t, f.d.URL())
	cfg.ClientSecret = secretFile(t, "wrong-secret")
	wrong, err := identitydomain.New(ctx, domainName, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.GetUser(ctx, *u.Id)
	if e := kindOf(t, err); e.Kind != identitydomain.KindUnauthorized || e.Op != "Token" || !strings.Contains(e.Detail, "invalid_client") {
		t.Errorf("token 401 = %+v", e)
	}
}

// TestErrorBodies: 403 and a non-JSON 503, from a server that is not the
// emulator; the SCIM body's string status and messageId are read.
func TestErrorBodies(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-ORACLE-DMS-ECID", "ecid-"+r.URL.Path[len(r.URL.Path)-1:])
		switch r.URL.Path {
		case "/admin/v1/Users/3":
			w.Header().Set("Content-Type", "application/scim+json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error","urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error"],`+
				`"detail":"Not authorized.","status":"403","urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error":{"messageId":"error.common.common.notAuthorized"}}`)
		case "/admin/v1/Users/5":
			w.Header().Set("Retry-After", time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "<html>upstream unavailable</html>")
		case "/admin/v1/Users/1":
			w.WriteHeader(http.StatusNotImplemented)
		}
	}))
	t.Cleanup(srv.Close)
	s := &testutil.Sleeps{}
	cfg := clientConfig(t, srv.URL)
	cfg.Auth, cfg.ClientID, cfg.ClientSecret = identitydomain.AuthStatic, "", ""
	cfg.StaticToken = secretFile(t, "tok")
	cfg.Retry.MaxAttempts = 2
	c, err := identitydomain.New(context.Background(), domainName, cfg, identitydomain.WithSleep(s.Sleep))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetUser(context.Background(), "3")
	if e := kindOf(t, err); e.Kind != identitydomain.KindForbidden || e.Status != 403 || e.Detail != "Not authorized." ||
		e.MessageID != "error.common.common.notAuthorized" || e.RequestID != "ecid-3" || !errors.Is(err, identitydomain.ErrForbidden) {
		t.Errorf("403 = %+v", e)
	}
	_, err = c.GetUser(context.Background(), "5")
	e := kindOf(t, err)
	if e.Kind != identitydomain.KindUnavailable || e.Detail != "<html>upstream unavailable</html>" || e.RetryAfter <= time.Second || e.RetryAfter > 3*time.Second {
		t.Errorf("503 = %+v", e)
	}
	if w := s.All(); len(w) != 1 || w[0] <= time.Second {
		t.Errorf("waits %v, want one honouring the Retry-After date", w)
	}
	_, err = c.GetUser(context.Background(), "1")
	if e := kindOf(t, err); e.Status != 501 || e.Attempts != 1 || e.Kind != identitydomain.KindInvalidRequest {
		t.Errorf("501 = %+v, want no retry", e)
	}
}

// Test429StormAbsorbed: 30% of requests get 429; every call succeeds, and
// every injected 429 was retried once.
func Test429StormAbsorbed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{
		emu: func(c *emu.Config) { c.Faults = emu.Faults{Rate429: 0.3, Seed: 42} },
		cfg: func(c *identitydomain.Config) { c.Retry.MaxAttempts = 12 },
	})
	ctx := context.Background()
	g := mustCreateGroup(t, f.c, "storm", "")
	for i := range 40 {
		u, _, err := f.c.CreateUser(ctx, newUser(fmt.Sprintf("storm%02d", i)))
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if _, err := f.c.GetUser(ctx, *u.Id); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		if _, err := f.c.AddMembers(ctx, *g.Id, *u.Id); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	if n := len(memberIDs(t, f.c, *g.Id, 7)); n != 40 {
		t.Errorf("%d members, want 40", n)
	}
	retries := counter(t, f.reg, "iamflow_identitydomain_retries_total", map[string]string{"reason": "429"})
	injected := f.d.Stats().Faults
	if retries == 0 || retries != float64(injected) {
		t.Errorf("%v retries after 429, %d 429s injected; want equal and > 0", retries, injected)
	}
	t.Logf("%d injected 429s absorbed by %v retries", injected, retries)
}

// Test5xxRetried: 5xx answers are retried with backoff until success.
func Test5xxRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{cfg: func(c *identitydomain.Config) {
		c.Retry.MaxAttempts = 12
		c.Breaker.Failures = 100 // runs of failures are expected here
	}})
	ctx := context.Background()
	u := mustCreateUser(t, f.c, "ivy")
	if err := f.d.SetFaults(emu.Faults{Rate5xx: 0.5, Status5xx: 500, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := f.c.GetUser(ctx, *u.Id); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		if _, _, err := f.c.PatchUser(ctx, *u.Id, "", identitydomain.Replace("title", fmt.Sprint(i))); err != nil {
			t.Fatalf("patch %d: %v", i, err)
		}
	}
	retries := counter(t, f.reg, "iamflow_identitydomain_retries_total", map[string]string{"reason": "5xx"})
	if retries == 0 || retries != float64(f.d.Stats().Faults) {
		t.Errorf("%v retries, %d faults", retries, f.d.Stats().Faults)
	}
	// Full jitter: every wait is below min(max_delay, base·2^(n-1)).
	for _, w := range f.sleeps.All() {
		if w < 0 || w >= 5*time.Second {
			t.Errorf("wait %v out of bounds", w)
		}
	}
}

// TestRateLimitHonoured: the emulator allows 50 requests a second and the
// client is configured for 50; 300 concurrent calls all succeed, take at
// least 5 seconds, and few are refused with 429.
//
// "Few", not "none": the client paces what it sends (45 a second,
// one at a time), but the emulator counts what arrives, in fixed one-second
// windows. When the process is starved of CPU (other packages' tests, -race,
// a 2-core CI machine), the requests whose turn came during the stall leave
// together when it ends and can land in one window. A clean-clone CI run saw
// 12 refusals that way, and a run beside four other packages' tests 71.
// Without pacing, at least 250 of the 300 are refused in the first second
// alone (over 1,000 in all, with the retries), so the bound of a third of
// the calls still tells the two apart; every refusal must also have been
// retried, and no call may fail.
func TestRateLimitHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 7 seconds")
	}
	f := newFixture(t, fixtureOpt{
		emu: func(c *emu.Config) {
			c.Tier = emu.TierPremium
			c.Limits = emu.Limits{PerSecond: 50, PerMinute: 3000}
		},
		cfg: func(c *identitydomain.Config) {
			c.Tier = identitydomain.TierPremium
			c.Limits = identitydomain.Limits{PerSecond: 50, PerMinute: 3000}
		},
	})
	ctx := context.Background()
	u := mustCreateUser(t, f.c, "jack")
	const calls = 300
	runtime.GC() // collect what earlier tests left, not during the measurement
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			if _, err := f.c.GetUser(ctx, *u.Id); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Errorf("call failed: %v", err)
	}
	st := f.d.Stats()
	if st.RateLimited > calls/3 {
		t.Errorf("the emulator refused %d requests with 429 (%d calls, at most %d refusals allowed); a paced client sees few, only when a stall bunches its requests", st.RateLimited, calls, calls/3)
	}
	if r := counter(t, f.reg, "iamflow_identitydomain_retries_total", nil); r != float64(st.RateLimited) {
		t.Errorf("%v retries for %d refusals: each 429 is retried once its wait is over", r, st.RateLimited)
	}
	if elapsed < 5*time.Second {
		t.Errorf("%d calls took %v; at 50/s they need at least 5s", calls, elapsed)
	}
	waited := counter(t, f.reg, "iamflow_identitydomain_rate_limit_wait_seconds", map[string]string{"domain": domainName})
	t.Logf("%d calls in %v: %.1f calls/s against a limit of 50/s (%v waits recorded)", calls, elapsed.Round(time.Millisecond),
		float64(calls)/elapsed.Seconds(), waited)
}

// TestBreaker: an outage opens the breaker after breaker.failures
// consecutive failures; it then fails fast with the remaining cooldown,
// half-opens after it (one probe), and closes once the outage ends.
func TestBreaker(t *testing.T) {
	t.Parallel()
	clock := emu.NewManualClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	f := newFixture(t, fixtureOpt{
		cfg: func(c *identitydomain.Config) {
			c.Breaker = identitydomain.BreakerConfig{Failures: 3, Cooldown: 30 * time.Second}
			c.Retry.MaxAttempts = 2
		},
		opts: []identitydomain.Option{identitydomain.WithClock(clock)},
	})
	ctx := context.Background()
	u := mustCreateUser(t, f.c, "kim")
	open := func() float64 {
		return counter(t, f.reg, "iamflow_identitydomain_breaker_open", map[string]string{"domain": domainName})
	}
	if err := f.d.SetFaults(emu.Faults{Outage: true}); err != nil {
		t.Fatal(err)
	}
	// Call 1: two failed attempts. Call 2: the third failure opens the
	// breaker, and its retry is refused.
	_, err := f.c.GetUser(ctx, *u.Id)
	if e := kindOf(t, err); e.Status != 503 || e.Attempts != 2 || f.c.BreakerState() != identitydomain.BreakerClosed {
		t.Fatalf("call 1 = %+v, breaker %s", e, f.c.BreakerState())
	}
	_, err = f.c.GetUser(ctx, *u.Id)
	if !errors.Is(err, identitydomain.ErrCircuitOpen) || f.c.BreakerState() != identitydomain.BreakerOpen || open() != 1 {
		t.Fatalf("call 2 = %v, breaker %s, gauge %v", err, f.c.BreakerState(), open())
	}
	sent := f.d.CallCount(emu.OpGetUser)
	if sent != 3 {
		t.Errorf("%d requests reached the domain, want 3", sent)
	}

	// Open: fail fast, nothing sent, RetryAfter is the remaining cooldown.
	_, err = f.c.GetUser(ctx, *u.Id)
	e := kindOf(t, err)
	if e.Kind != identitydomain.KindUnavailable || !errors.Is(err, identitydomain.ErrCircuitOpen) || e.RetryAfter != 30*time.Second || !identitydomain.Retryable(err) {
		t.Errorf("open breaker = %+v", e)
	}
	clock.Advance(20 * time.Second)
	if _, _, err := f.c.PatchUser(ctx, *u.Id, "", identitydomain.Replace("title", "x")); identitydomain.RetryAfter(err) != 10*time.Second {
		t.Errorf("after 20s: %v, want RetryAfter 10s", err)
	}
	if f.d.CallCount(emu.OpGetUser) != sent || f.d.CallCount(emu.OpPatchUser) != 0 {
		t.Error("requests were sent while the breaker was open")
	}

	// After the cooldown: one probe; it fails, and the breaker reopens.
	clock.Advance(10 * time.Second)
	if f.c.BreakerState() != identitydomain.BreakerHalfOpen {
		t.Errorf("state after cooldown = %s", f.c.BreakerState())
	}
	_, err = f.c.GetUser(ctx, *u.Id)
	if !errors.Is(err, identitydomain.ErrCircuitOpen) || f.d.CallCount(emu.OpGetUser) != sent+1 {
		t.Errorf("probe during the outage: %v, %d sent (want 1 more)", err, f.d.CallCount(emu.OpGetUser)-sent)
	}
	if f.c.BreakerState() != identitydomain.BreakerOpen || identitydomain.RetryAfter(err) != 30*time.Second {
		t.Errorf("after a failed probe: %s, RetryAfter %v", f.c.BreakerState(), identitydomain.RetryAfter(err))
	}

	// The outage ends; after the cooldown the probe succeeds and closes it.
	if err := f.d.SetFaults(emu.Faults{}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Second)
	if _, err := f.c.GetUser(ctx, *u.Id); err != nil {
		t.Fatalf("probe after the outage: %v", err)
	}
	if f.c.BreakerState() != identitydomain.BreakerClosed || open() != 0 {
		t.Errorf("after a good probe: %s, gauge %v", f.c.BreakerState(), open())
	}
	for range 5 {
		if _, err := f.c.GetUser(ctx, *u.Id); err != nil {
			t.Fatal(err)
		}
	}
	// 4xx answers do not count against the domain.
	for range 5 {
		if _, err := f.c.GetUser(ctx, "0000"); !errors.Is(err, identitydomain.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if f.c.BreakerState() != identitydomain.BreakerClosed {
		t.Errorf("404s opened the breaker")
	}
	if n := counter(t, f.reg, "iamflow_identitydomain_requests_total", map[string]string{"code": "breaker_open"}); n != 4 {
		t.Errorf("%v requests refused by the breaker, want 4", n)
	}
}

// TestContextEnds: a cancelled context or a deadline ends the call with the
// context's error, which is not retryable, whether the call is waiting for
// its rate-limit turn or for an answer.
func TestContextEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{cfg: func(c *identitydomain.Config) {
		c.Limits = identitydomain.Limits{PerSecond: 1, PerMinute: 600, TokenPerSecond: -1, TokenPerMinute: -1}
	}})
	u := mustCreateUser(t, f.c, "lee")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.c.GetUser(ctx, *u.Id)
	if !errors.Is(err, context.Canceled) || identitydomain.Retryable(err) {
		t.Errorf("cancelled: %v", err)
	}
	// The next turn is ~1.1s away; a 100ms deadline cannot wait for it.
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = f.c.GetUser(ctx, *u.Id)
	if !errors.Is(err, context.DeadlineExceeded) || identitydomain.Retryable(err) {
		t.Errorf("deadline: %v", err)
	}

	// Cancelled while the request is at the domain.
	f = newFixture(t, fixtureOpt{})
	u = mustCreateUser(t, f.c, "lee")
	if err := f.d.SetFaults(emu.Faults{Latency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.c.GetUser(ctx, *u.Id)
		done <- err
	}()
	testutil.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if f.d.CallCount(emu.OpGetUser) == 0 {
			return errors.New("the request has not reached the domain")
		}
		return nil
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during a slow request: %v", err)
	}
	if n := counter(t, f.reg, "iamflow_identitydomain_requests_total", map[string]string{"code": "canceled"}); n != 1 {
		t.Errorf("%v cancelled requests counted, want 1", n)
	}
}

// TestRequestTimeout: a request unanswered within timeout is retried, and
// ends Unavailable.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{cfg: func(c *identitydomain.Config) {
		c.Timeout = 50 * time.Millisecond
		c.Retry.MaxAttempts = 2
	}})
	u := mustCreateUser(t, f.c, "max")
	if err := f.d.SetFaults(emu.Faults{Latency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	_, err := f.c.GetUser(context.Background(), *u.Id)
	e := kindOf(t, err)
	if e.Kind != identitydomain.KindUnavailable || e.Attempts != 2 || !strings.Contains(e.Detail, "no answer within 50ms") {
		t.Errorf("timeout = %+v", e)
	}
	if n := counter(t, f.reg, "iamflow_identitydomain_retries_total", map[string]string{"reason": "timeout"}); n != 1 {
		t.Errorf("%v timeout retries, want 1", n)
	}
}
