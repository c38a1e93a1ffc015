package token

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/secret"
)

// counter is a FetchFunc that hands out tok-1, tok-2, … with ttl, or err.
type counter struct {
	n   atomic.Int32
	ttl time.Duration
	err atomic.Pointer[error]
}

func (c *counter) fetch(context.Context) (Fetched, error) {
	n := c.n.Add(1)
	if e := c.err.Load(); e != nil {
		return Fetched{}, *e
	}
	return Fetched{Value: secret.NewValue("tok-" + string(rune('0'+n))), TTL: c.ttl}, nil
}

func mustToken(t *testing.T, s *Source) string {
	t.Helper()
	tok, err := s.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tok.Reveal()
}

// TestConcurrentCallersShareOneFetch: a burst of callers finding no token
// leads to one token request, whose token they all get.
func TestConcurrentCallersShareOneFetch(t *testing.T) {
	release := make(chan struct{})
	var fetches atomic.Int32
	s := New(func(context.Context) (Fetched, error) {
		fetches.Add(1)
		<-release
		return Fetched{Value: secret.NewValue("shared")}, nil
	}, nil, nil, "test")
	var wg sync.WaitGroup
	got := make([]string, 20)
	for i := range got {
		wg.Go(func() { got[i] = mustToken(t, s) })
	}
	// Release the fetch once it has started; callers that come after it
	// find the token cached.
	deadline := time.Now().Add(5 * time.Second)
	for fetches.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	for i, g := range got {
		if g != "shared" {
			t.Fatalf("caller %d got %q", i, g)
		}
	}
}

// TestRenewalMargin: the token is renewed at 80% of its lifetime, or 30s
// before expiry when that comes first, but never before half of it.
func TestRenewalMargin(t *testing.T) {
	for _, tc := range []struct {
		ttl, renewAfter time.Duration
	}{
		{time.Hour, 48 * time.Minute},
		{100 * time.Second, 70 * time.Second},
		{40 * time.Second, 20 * time.Second},
		{0, DefaultTTL - 60*time.Second}, // no expires_in: DefaultTTL (300s), renewed 60s early
	} {
		clk := emu.NewManualClock(time.Unix(1_700_000_000, 0))
		c := &counter{ttl: tc.ttl}
		s := New(c.fetch, clk.Now, nil, "test")
		if got := mustToken(t, s); got != "tok-1" {
			t.Fatalf("ttl %v: first token %q", tc.ttl, got)
		}
		clk.Advance(tc.renewAfter - time.Second)
		if got := mustToken(t, s); got != "tok-1" {
			t.Fatalf("ttl %v: renewed %v early (%q)", tc.ttl, time.Second, got)
		}
		clk.Advance(time.Second)
		if got := mustToken(t, s); got != "tok-2" {
			t.Fatalf("ttl %v: not renewed after %v (%q)", tc.ttl, tc.renewAfter, got)
		}
	}
}

// TestFailedRenewalUsesTheValidToken: a renewal that fails while the cached
// token is still valid hands out the cached token; once it has expired, the
// error.
func TestFailedRenewalUsesTheValidToken(t *testing.T) {
	clk := emu.NewManualClock(time.Unix(1_700_000_000, 0))
	c := &counter{ttl: 100 * time.Second}
	s := New(c.fetch, clk.Now, nil, "test")
	mustToken(t, s)
	boom := errors.New("token endpoint down")
	c.err.Store(&boom)
	clk.Advance(80 * time.Second) // due for renewal, not expired
	if got := mustToken(t, s); got != "tok-1" {
		t.Fatalf("got %q, want the still valid tok-1", got)
	}
	clk.Advance(20 * time.Second) // expired
	if _, err := s.Token(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

// TestInvalidateDropsOnlyTheCurrentToken: a 401 for a token already
// replaced does not throw away its replacement.
func TestInvalidateDropsOnlyTheCurrentToken(t *testing.T) {
	c := &counter{ttl: time.Hour}
	s := New(c.fetch, nil, nil, "test")
	first, _ := s.Token(t.Context())
	s.Invalidate(first)
	if got := mustToken(t, s); got != "tok-2" {
		t.Fatalf("after Invalidate got %q, want tok-2", got)
	}
	s.Invalidate(first) // stale
	if got := mustToken(t, s); got != "tok-2" {
		t.Fatalf("a stale Invalidate dropped the current token: got %q", got)
	}
	if c.n.Load() != 2 {
		t.Fatalf("%d fetches, want 2", c.n.Load())
	}
}

// TestCallerCancellationDoesNotStopTheFetch: a caller that gives up gets its
// context's error; the fetch goes on and the next caller has its token.
func TestCallerCancellationDoesNotStopTheFetch(t *testing.T) {
	release := make(chan struct{})
	s := New(func(ctx context.Context) (Fetched, error) {
		<-release
		if ctx.Err() != nil {
			return Fetched{}, ctx.Err()
		}
		return Fetched{Value: secret.NewValue("late")}, nil
	}, nil, nil, "test")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(release)
	if got := mustToken(t, s); got != "late" {
		t.Fatalf("got %q", got)
	}
}

func TestStatic(t *testing.T) {
	s := Static(secret.NewValue("fixed"))
	if s.Renewable() {
		t.Fatal("a static token is not renewable")
	}
	s.Invalidate(secret.NewValue("fixed"))
	if got := mustToken(t, s); got != "fixed" {
		t.Fatalf("got %q", got)
	}
}

// TestResponse: a token endpoint's answer read field by field (TTL, Bearer)
// and whole (Parse).
func TestResponse(t *testing.T) {
	mac := `the token endpoint answered token_type "mac", want Bearer`
	for _, tc := range []struct {
		body   string
		ttl    time.Duration
		bearer bool
		err    string // Parse's
	}{
		{`{"access_token":"a","token_type":"Bearer","expires_in":3600}`, time.Hour, true, ""},
		{`{"access_token":"a","token_type":"bearer","expires_in":"120"}`, 2 * time.Minute, true, ""},
		{`{"access_token":"a","expires_in":1.5}`, 1500 * time.Millisecond, true, ""},
		{`{"access_token":"a","token_type":"mac"}`, 0, false, mac},
		{`{"access_token":"a","expires_in":-5}`, 0, true, ""},
		{`{"access_token":"a","expires_in":"soon"}`, 0, true, ""},
		{`{"access_token":"a","expires_in":1e300}`, 0, true, ""},
		{`{"access_token":"a","token_type":"0123456789012345678901234567890123456789 and beyond"}`, 0, false,
			`the token endpoint answered token_type "0123456789012345678901234567890123456789", want Bearer`},
		{`{"token_type":"Bearer","expires_in":60}`, time.Minute, true, "the token endpoint's answer has no access_token"},
	} {
		var r response
		if err := json.Unmarshal([]byte(tc.body), &r); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if r.TTL() != tc.ttl || r.Bearer() != tc.bearer {
			t.Errorf("%s: TTL %v bearer %v, want %v %v", tc.body, r.TTL(), r.Bearer(), tc.ttl, tc.bearer)
		}
		f, err := Parse([]byte(tc.body))
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("%s: Parse error %v, want %q", tc.body, err, tc.err)
		case tc.err == "" && (err != nil || f.Value.Reveal() != "a" || f.TTL != tc.ttl):
			t.Errorf("%s: Parse = %q, TTL %v, %v; want a, TTL %v", tc.body, f.Value.Reveal(), f.TTL, err, tc.ttl)
		}
	}
	if _, err := Parse([]byte(`<html>`)); err == nil || err.Error() != "the token endpoint's answer has no access_token" {
		t.Errorf("Parse of HTML: %v", err)
	}
}
