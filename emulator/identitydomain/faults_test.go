package identitydomain_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/emulator/identitydomain"
)

func TestOutage(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	r := call(t, http.MethodPost, d.URL()+"/_emulator/faults", "", `{"outage": true}`)
	if r.status != 200 || r.json["outage"] != true {
		t.Fatalf("set outage: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/admin/v1/Users", "/admin/v1/Groups/x", "/oauth2/v1/token"} {
		r := call(t, http.MethodPost, d.URL()+path, tok, "{}")
		if r.status != 503 || parseSCIMError(t, r.body).Status != "503" {
			t.Errorf("POST %s during outage: %d %s", path, r.status, r.body)
		}
	}
	if r := call(t, http.MethodGet, d.URL()+"/_emulator/stats", "", nil); r.status != 200 {
		t.Errorf("control endpoint during outage: %d", r.status)
	}
	call(t, http.MethodPost, d.URL()+"/_emulator/faults", "", `{"outage": false}`)
	if r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users", tok, nil); r.status != 200 {
		t.Errorf("after outage: %d", r.status)
	}
	if st := d.Stats(); st.Faults != 3 {
		t.Errorf("Faults = %d, want 3", st.Faults)
	}
}

func TestInjectedErrorsAreSeeded(t *testing.T) {
	pattern := func(f identitydomain.Faults) string {
		d := start(t, baseConfig())
		tok := getToken(t, d)
		if err := d.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for range 60 {
			r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users", tok, nil)
			switch r.status {
			case 200:
				b.WriteByte('.')
			case 429:
				b.WriteByte('R')
				if r.header.Get("Retry-After") != "2" {
					t.Errorf("Retry-After %q, want 2", r.header.Get("Retry-After"))
				}
			case 502:
				b.WriteByte('E')
			default:
				t.Fatalf("status %d", r.status)
			}
		}
		return b.String()
	}
	f := identitydomain.Faults{Rate429: 0.2, Rate5xx: 0.2, Status5xx: 502, RetryAfter: 1500 * time.Millisecond, Seed: 99}
	a, b := pattern(f), pattern(f)
	if a != b {
		t.Errorf("same seed, different faults:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "R") || !strings.Contains(a, "E") || !strings.Contains(a, ".") {
		t.Errorf("pattern %s lacks one of 200, 429, 502", a)
	}
	f.Seed = 100
	if c := pattern(f); c == a {
		t.Errorf("different seeds gave the same pattern %s", c)
	}
}

func TestLostResponseAppliesTheWrite(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	var events int
	d.OnEvent(func([]byte) { events++ })
	if err := d.SetFaults(identitydomain.Faults{RateLostResponse: 1}); err != nil {
		t.Fatal(err)
	}
	r := call(t, http.MethodPost, d.URL()+"/admin/v1/Users", tok, userBody("lost@example.com"))
	if r.status != 500 {
		t.Fatalf("status %d, want 500", r.status)
	}
	if _, ok := d.UserByName("lost@example.com"); !ok || events != 1 {
		t.Errorf("write not applied (events %d)", events)
	}
	// The retry a client makes conflicts, as it would against the real service.
	if err := d.SetFaults(identitydomain.Faults{}); err != nil {
		t.Fatal(err)
	}
	if r := call(t, http.MethodPost, d.URL()+"/admin/v1/Users", tok, userBody("lost@example.com")); r.status != 409 {
		t.Errorf("retry: %d, want 409", r.status)
	}
	// Failed writes and reads are not affected.
	if err := d.SetFaults(identitydomain.Faults{RateLostResponse: 1}); err != nil {
		t.Fatal(err)
	}
	if r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users", tok, nil); r.status != 200 {
		t.Errorf("GET: %d", r.status)
	}
	if r := call(t, http.MethodPost, d.URL()+"/admin/v1/Users", tok, userBody("lost@example.com")); r.status != 409 {
		t.Errorf("failing write: %d, want its own 409", r.status)
	}
}

func TestLatencyHonoursCancellation(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	if err := d.SetFaults(identitydomain.Faults{Latency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.URL()+"/admin/v1/Users", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	done := make(chan error, 1)
	go func() {
		_, err := http.DefaultClient.Do(req)
		done <- err
	}()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("request finished despite an hour of latency")
	}
	// Close must not wait for the hour either: the handler saw the cancellation.
}

func TestControlEndpoints(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	r := call(t, http.MethodPost, d.URL()+"/_emulator/faults", "", `{"latency": "1ms", "rate429": 0.5, "retryAfter": 3000000000}`)
	if r.status != 200 || r.json["latency"] != "1ms" || r.json["retryAfter"] != "3s" || r.json["rate429"] != 0.5 {
		t.Fatalf("faults: %d %s", r.status, r.body)
	}
	r = call(t, http.MethodPost, d.URL()+"/_emulator/faults", "", `{"rate429": 0}`)
	if r.json["latency"] != "1ms" || r.json["rate429"] != nil {
		t.Errorf("partial update: %s", r.body)
	}
	if r := call(t, http.MethodPost, d.URL()+"/_emulator/faults", "", `{"rate5xx": 3}`); r.status != 400 {
		t.Errorf("invalid faults: %d", r.status)
	}
	if r := call(t, http.MethodPost, d.URL()+"/_emulator/faults", "", `{"latency": "soon"}`); r.status != 400 {
		t.Errorf("invalid latency: %d", r.status)
	}
	if r := call(t, http.MethodGet, d.URL()+"/_emulator/faults", "", nil); r.json["latency"] != "1ms" {
		t.Errorf("GET faults %s", r.body)
	}
	call(t, http.MethodPost, d.URL()+"/_emulator/faults", "", `{"latency": "0s"}`)

	r = call(t, http.MethodPost, d.URL()+"/_emulator/generate", "", `{"users": 30, "groups": 3, "memberships": 40, "seed": 1}`)
	if r.status != 200 || r.json["users"] != 30.0 || r.json["memberships"] != 40.0 {
		t.Fatalf("generate: %d %s", r.status, r.body)
	}
	r = call(t, http.MethodPost, d.URL()+"/_emulator/seed", "", "users:\n  - userName: seeded\n")
	if r.status != 200 || r.json["users"] != 31.0 {
		t.Fatalf("seed: %d %s", r.status, r.body)
	}
	if r := call(t, http.MethodPost, d.URL()+"/_emulator/seed", "", "users:\n  - userName: seeded\n"); r.status != 400 {
		t.Errorf("duplicate seed: %d %s", r.status, r.body)
	}
	call(t, http.MethodGet, d.URL()+"/admin/v1/Users", tok, nil)
	st := call(t, http.MethodGet, d.URL()+"/_emulator/stats", "", nil)
	var stats identitydomain.Stats
	if err := json.Unmarshal(st.body, &stats); err != nil || stats.Calls[identitydomain.OpListUsers] != 1 || stats.Calls[identitydomain.OpToken] != 1 {
		t.Errorf("stats %s (%v)", st.body, err)
	}
	r = call(t, http.MethodPost, d.URL()+"/_emulator/reset", "", nil)
	if r.status != 200 || r.json["users"] != 0.0 || d.CallCount(identitydomain.OpListUsers) != 0 {
		t.Errorf("reset: %s", r.body)
	}
	if r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users", tok, nil); r.status != 200 || r.json["totalResults"] != 0.0 {
		t.Errorf("token after reset: %d %s", r.status, r.body)
	}
	if r := call(t, http.MethodGet, d.URL()+"/_emulator/nothing", "", nil); r.status != 404 {
		t.Errorf("unknown control endpoint: %d", r.status)
	}
}
