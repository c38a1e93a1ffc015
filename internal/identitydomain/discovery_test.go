package identitydomain_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

// declared is whether a server's discovery declares attribute path of
// resource type res.
type declared struct {
	res, path string
	want      bool
}

// checkDeclares asks caps about each case of want.
func checkDeclares(t *testing.T, caps identitydomain.Capabilities, want []declared) {
	t.Helper()
	for _, tc := range want {
		if got := caps.Declares(tc.res, tc.path); got != tc.want {
			t.Errorf("Declares(%s, %s) = %v, want %v", tc.res, tc.path, got, tc.want)
		}
	}
}

// TestDiscoveryAgainstEmulator: the emulator's discovery is read once and
// cached; its features and attributes come through.
func TestDiscoveryAgainstEmulator(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	caps := mustCapabilities(t, f.c)
	if !caps.Discovered || !caps.ETag || !caps.Filter || !caps.Sort || !caps.Patch || caps.FilterMaxResults != 1000 ||
		caps.Bulk != (identitydomain.BulkSupport{Supported: true, MaxOperations: 50, MaxPayloadSize: 1 << 20}) {
		t.Errorf("capabilities = %+v", caps)
	}
	checkDeclares(t, caps, []declared{
		{"User", "displayName", true},
		{"user", "NAME.givenName", true},
		{"User", "name.nosuch", false},
		{"User", "emails", true},
		{"User", `emails[type eq "work"].value`, true},
		{"User", "groups", true},
		{"User", "id", true},
		{"User", "externalId", true},
		{"User", "nosuch", false},
		{"User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", true},
		{"User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", true},
		{"User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch", false},
		{"User", "urn:ietf:params:scim:schemas:core:2.0:User:userName", true},
		{"User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", true},
		{"User", "urn:example:params:scim:schemas:extension:other:User:x", false},
		{"Group", "members", true},
		{"Group", "members.value", true},
		{"Group", "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group:description", true},
		{"Group", "userName", false},
		{"Device", "displayName", false},
	})
	calls := f.d.CallCount(emu.OpGetServiceProviderConfig)
	if _, err := f.c.Capabilities(ctx); err != nil || f.d.CallCount(emu.OpGetServiceProviderConfig) != calls {
		t.Errorf("second Capabilities read discovery again (%v)", err)
	}
	if calls != 1 || f.d.CallCount(emu.OpListResourceTypes) != 1 {
		t.Errorf("discovery calls: spc %d, resource types %d", calls, f.d.CallCount(emu.OpListResourceTypes))
	}
}

// TestDiscoveryRefresh: discovery is read again once older than the interval.
func TestDiscoveryRefresh(t *testing.T) {
	t.Parallel()
	clock := emu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := newFixture(t, fixtureOpt{cfg: func(c *identitydomain.Config) { c.DiscoveryInterval = time.Minute },
		opts: []identitydomain.Option{identitydomain.WithClock(clock)}})
	ctx := context.Background()
	if _, err := f.c.Capabilities(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Second)
	_, _ = f.c.Capabilities(ctx)
	if n := f.d.CallCount(emu.OpGetServiceProviderConfig); n != 1 {
		t.Errorf("%d reads within the interval, want 1", n)
	}
	clock.Advance(2 * time.Second)
	caps, _ := f.c.Capabilities(ctx)
	if n := f.d.CallCount(emu.OpGetServiceProviderConfig); n != 2 || !caps.ReadAt.Equal(clock.Now()) {
		t.Errorf("%d reads after the interval (read at %v), want 2", n, caps.ReadAt)
	}
	// A failed refresh keeps the last answer.
	clock.Advance(2 * time.Minute)
	if err := f.d.SetFaults(emu.Faults{Outage: true}); err != nil {
		t.Fatal(err)
	}
	if caps, err := f.c.Capabilities(ctx); err != nil || !caps.Discovered {
		t.Errorf("refresh during an outage: %+v, %v", caps, err)
	}
}

// TestDiscoveryMissing: a server without discovery is assumed to support
// everything; one that cannot be reached is an error.
func TestDiscoveryMissing(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	f := newFixture(t, fixtureOpt{opts: []identitydomain.Option{identitydomain.WithTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.Path, "/ServiceProviderConfig") || strings.Contains(r.URL.Path, "/ResourceTypes") {
			if down.Load() {
				return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			}
			return &http.Response{StatusCode: 404, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	}))}, cfg: func(c *identitydomain.Config) { c.Retry.MaxAttempts = 1 }})
	down.Store(true)
	if _, err := f.c.Capabilities(context.Background()); !identitydomain.IsKind(err, identitydomain.KindUnavailable) {
		t.Errorf("unreachable discovery: %v, want Unavailable", err)
	}
	down.Store(false)
	caps, err := f.c.Capabilities(context.Background())
	if err != nil || caps.Discovered || !caps.ETag || !caps.Filter || !caps.Declares("User", "anything") || caps.Bulk.Supported {
		t.Errorf("no discovery: %+v, %v; want everything but Bulk assumed", caps, err)
	}
}
