package identitydomain_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

// TestTokenRenewalUnderConcurrency: once the token has expired, 50
// concurrent calls cause exactly one token request, whether the client
// notices the expiry itself (shared clock) or learns it from 401s.
func TestTokenRenewalUnderConcurrency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		sharedClock bool
	}{
		{"client sees the expiry", true},
		{"domain answers 401", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := emu.NewManualClock(time.Now())
			fo := fixtureOpt{
				emu:    func(c *emu.Config) { c.TokenTTL = 10 * time.Minute },
				emuOpt: []emu.Option{emu.WithClock(clock)},
			}
			if tc.sharedClock {
				fo.opts = []identitydomain.Option{identitydomain.WithClock(clock)}
			}
			f := newFixture(t, fo)
			ctx := context.Background()
			u := mustCreateUser(t, f.c, "nina")
			if n := f.d.CallCount(emu.OpToken); n != 1 {
				t.Fatalf("%d token requests before expiry, want 1", n)
			}
			clock.Advance(10*time.Minute + time.Second)

			var wg sync.WaitGroup
			var failed atomic.Int32
			for range 50 {
				wg.Go(func() {
					if _, err := f.c.GetUser(ctx, *u.Id); err != nil {
						failed.Add(1)
						t.Errorf("GetUser: %v", err)
					}
				})
			}
			wg.Wait()
			if n := f.d.CallCount(emu.OpToken); n != 2 {
				t.Errorf("%d token requests, want 2 (one renewal for 50 calls)", n)
			}
			unauthorized := counter(t, f.reg, "iamflow_identitydomain_retries_total", map[string]string{"reason": "unauthorized"})
			if tc.sharedClock && unauthorized != 0 {
				t.Errorf("%v 401s with a shared clock, want none", unauthorized)
			}
			if !tc.sharedClock && unauthorized == 0 {
				t.Error("no 401 was seen, so the renewal was not tested")
			}
			t.Logf("%v calls retried after a 401", unauthorized)
		})
	}
}

// TestTokenRenewedAhead: the client renews before expires_in, at most at 80%
// of the lifetime.
func TestTokenRenewedAhead(t *testing.T) {
	t.Parallel()
	clock := emu.NewManualClock(time.Now())
	f := newFixture(t, fixtureOpt{
		emu:    func(c *emu.Config) { c.TokenTTL = 300 * time.Second },
		emuOpt: []emu.Option{emu.WithClock(clock)},
		opts:   []identitydomain.Option{identitydomain.WithClock(clock)},
	})
	u := mustCreateUser(t, f.c, "omar")
	clock.Advance(239 * time.Second)
	if _, err := f.c.GetUser(context.Background(), *u.Id); err != nil {
		t.Fatal(err)
	}
	if n := f.d.CallCount(emu.OpToken); n != 1 {
		t.Errorf("renewed at 79%% of the lifetime: %d token requests", n)
	}
	clock.Advance(2 * time.Second) // 80.3%
	if _, err := f.c.GetUser(context.Background(), *u.Id); err != nil {
		t.Fatal(err)
	}
	if n := f.d.CallCount(emu.OpToken); n != 2 {
		t.Errorf("not renewed at 80%% of the lifetime: %d token requests", n)
	}
}

// TestSecretsNeverLogged: neither the client secret nor any token appears in
// debug logs or in error strings.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	var tokMu sync.Mutex
	tokens := map[string]bool{}
	record := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			tokMu.Lock()
			tokens[tok] = true
			tokMu.Unlock()
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	clock := emu.NewManualClock(time.Now())
	f := newFixture(t, fixtureOpt{
		emuOpt: []emu.Option{emu.WithClock(clock)},
		cfg:    func(c *identitydomain.Config) { c.Retry.MaxAttempts = 2 },
		opts:   []identitydomain.Option{identitydomain.WithTransport(record)},
	})
	ctx := context.Background()
	var errs []error
	u := mustCreateUser(t, f.c, "pat")
	_, err := f.c.GetUser(ctx, "0000")
	errs = append(errs, err)
	_, _, err = f.c.CreateUser(ctx, newUser("pat"))
	errs = append(errs, err)
	clock.Advance(2 * time.Hour) // the token expires at the domain: 401, renewal
	if _, err := f.c.GetUser(ctx, *u.Id); err != nil {
		t.Fatal(err)
	}
	if err := f.d.SetFaults(emu.Faults{Rate5xx: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.GetUser(ctx, *u.Id)
	errs = append(errs, err)
	if err := f.d.SetFaults(emu.Faults{}); err != nil {
		t.Fatal(err)
	}

	// A client with a wrong secret, logging to the same buffer.
	cfg := clientConfig(t, f.d.URL())
	const wrongSecret = "Wr0ng-S3cret-5d1a"
	cfg.ClientSecret = secretFile(t, wrongSecret)
	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wrong, err := identitydomain.New(ctx, domainName, cfg, identitydomain.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.GetUser(ctx, *u.Id)
	errs = append(errs, err)

	if len(tokens) < 2 {
		t.Fatalf("saw %d tokens, want at least 2 (issued and renewed)", len(tokens))
	}
	logs := f.logs.String()
	if !strings.Contains(logs, `"level":"DEBUG"`) || !strings.Contains(logs, "identity domain request") {
		t.Fatalf("no debug logs captured:\n%s", logs)
	}
	var texts []string
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err))
		var e *identitydomain.Error
		if errors.As(err, &e) {
			texts = append(texts, fmt.Sprintf("%+v %#v", *e, *e))
		}
	}
	secrets := []string{testClientSecret, wrongSecret}
	for tok := range tokens {
		secrets = append(secrets, tok)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret appears in the logs")
		}
		for _, txt := range texts {
			if strings.Contains(txt, s) {
				t.Errorf("a secret appears in an error: %s", txt)
			}
		}
	}
}

// TestResourcePrincipalTokenExchange: auth resource_principal posts the
// token-exchange form, signed by the resource principal's signer (here the
// SDK's own signer over a generated key), and uses the token it gets.
func TestResourcePrincipalTokenExchange(t *testing.T) {
	t.Parallel()
	var signed atomic.Int32
	var tokenRequests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-ORACLE-DMS-ECID", "ecid")
		switch r.URL.Path {
		case "/oauth2/v1/token":
			tokenRequests.Add(1)
			body, _ := io.ReadAll(r.Body)
			problems := checkExchange(r, string(body))
			if len(problems) > 0 {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":"invalid_request","error_description":%q}`, strings.Join(problems, "; "))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"rp-token-1","token_type":"Bearer","expires_in":"3600"}`)
		case "/admin/v1/Users/u1":
			if r.Header.Get("Authorization") != "Bearer rp-token-1" {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"bad token","status":"401"}`)
				return
			}
			w.Header().Set("Content-Type", "application/scim+json")
			fmt.Fprint(w, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"rp-user"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	provider := common.NewRawConfigurationProvider("ocid1.tenancy.oc1..t", "ocid1.user.oc1..u", "us-ashburn-1", "aa:bb", keyPEM, nil)
	sdkSigner := common.DefaultRequestSigner(provider)
	signer := signerFunc(func(r *http.Request) error {
		signed.Add(1)
		return sdkSigner.Sign(r)
	})

	cfg := identitydomain.DefaultConfig()
	cfg.URL = srv.URL
	cfg.Auth = identitydomain.AuthResourcePrincipal
	cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	c, err := identitydomain.New(context.Background(), domainName, cfg, identitydomain.WithRequestSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		u, err := c.GetUser(context.Background(), "u1")
		if err != nil {
			t.Fatalf("GetUser with a resource principal token: %v", err)
		}
		if deref(u.UserName) != "rp-user" {
			t.Errorf("user = %s", deref(u.UserName))
		}
	}
	if signed.Load() != 1 || tokenRequests.Load() != 1 {
		t.Errorf("signer ran %d times for %d token requests, want 1 and 1", signed.Load(), tokenRequests.Load())
	}

	// Without a resource principal in the environment, New says so.
	_, err = identitydomain.New(context.Background(), domainName, cfg)
	if err == nil || !strings.Contains(err.Error(), "resource_principal") {
		t.Errorf("New without a resource principal = %v", err)
	}
}

// checkExchange lists what is wrong with a token-exchange request.
func checkExchange(r *http.Request, body string) []string {
	var problems []string
	want := map[string]string{
		"grant_type":           "urn:ietf:params:oauth:grant-type:token-exchange",
		"requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"scope":                "urn:opc:idm:__myscopes__",
	}
	form, err := url.ParseQuery(body)
	if err != nil {
		return []string{"body is not a form: " + err.Error()}
	}
	for k, v := range want {
		if form.Get(k) != v {
			problems = append(problems, fmt.Sprintf("%s = %q, want %q", k, form.Get(k), v))
		}
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		problems = append(problems, "content type "+r.Header.Get("Content-Type"))
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, `Signature version="1",headers="date (request-target) host content-length content-type x-content-sha256"`) {
		problems = append(problems, "not signed with the body headers: "+auth)
	}
	if r.Header.Get("X-Content-Sha256") == "" || r.Header.Get("Date") == "" {
		problems = append(problems, "x-content-sha256 or date missing")
	}
	return problems
}

type signerFunc func(*http.Request) error

func (f signerFunc) Sign(r *http.Request) error { return f(r) }
