package identitydomain_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/oidc/oidctest"
)

// The OIDC side of the emulator is checked with clients somebody else
// wrote: golang.org/x/oauth2 runs the authorization code flow with PKCE,
// and github.com/coreos/go-oidc reads the discovery document and verifies
// the tokens against the JWKS.

const (
	cliID       = "iamflow-cli"
	cliRedirect = "http://127.0.0.1/callback"
	cliAudience = "https://iamflow.example.com/"
	alice       = "alice@example.com"
	alicePass   = "Correct-Horse-7"
)

func oidcDomain(t *testing.T, opts ...identitydomain.Option) *identitydomain.Domain {
	t.Helper()
	cfg := baseConfig()
	cfg.Clients = append(cfg.Clients, identitydomain.Client{ID: cliID, Public: true, Name: "iamflow CLI",
		RedirectURIs: []string{cliRedirect}, Audience: cliAudience})
	d := start(t, cfg, opts...)
	err := d.LoadSeed(identitydomain.SeedData{Users: []map[string]any{
		{"userName": alice, "displayName": "Alice Liddell", "password": alicePass},
		{"userName": "gone@example.com", "password": "Whatever-1234", "active": false},
		{"userName": "nopass@example.com"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func oauthConfig(d *identitydomain.Domain, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:    cliID,
		Endpoint:    oauth2.Endpoint{AuthURL: d.URL() + "/oauth2/v1/authorize", TokenURL: d.URL() + "/oauth2/v1/token", AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: redirect,
		Scopes:      []string{"openid", "profile"},
	}
}

// loginCode runs the browser half of the flow and returns the redirect.
func loginCode(t *testing.T, authURL, user, pass string) *url.URL {
	t.Helper()
	u, err := oidctest.Login(t.Context(), nil, authURL, user, pass)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return u
}

func provider(t *testing.T, d *identitydomain.Domain) *gooidc.Provider {
	t.Helper()
	// OCI's issuer is not the domain URL the discovery document is read
	// from (docs/oci-sources.md §7); go-oidc needs telling which issuer to expect.
	p, err := gooidc.NewProvider(gooidc.InsecureIssuerURLContext(t.Context(), identitydomain.DefaultIssuer), d.URL())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return p
}

func TestOIDCCodeFlowWithIndependentClients(t *testing.T) {
	d := oidcDomain(t)
	ctx := t.Context()
	p := provider(t, d)
	if p.Endpoint().AuthURL != d.URL()+"/oauth2/v1/authorize" || p.Endpoint().TokenURL != d.URL()+"/oauth2/v1/token" {
		t.Fatalf("discovered endpoints %+v", p.Endpoint())
	}
	var claims struct {
		JWKS string   `json:"jwks_uri"`
		PKCE []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&claims); err != nil || claims.JWKS != d.URL()+"/admin/v1/SigningCert/jwk" || len(claims.PKCE) != 1 || claims.PKCE[0] != "S256" {
		t.Fatalf("discovery: %+v %v", claims, err)
	}

	oc := oauthConfig(d, "http://127.0.0.1:43123/callback") // any loopback port
	verifier := oauth2.GenerateVerifier()
	authURL := oc.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), gooidc.Nonce("nonce-1"))
	back := loginCode(t, authURL, "ALICE@example.com", alicePass) // userName is case-insensitive
	if back.Host != "127.0.0.1:43123" || back.Query().Get("state") != "state-1" || back.Query().Get("code") == "" {
		t.Fatalf("redirect %s", back.Redacted())
	}
	tok, err := oc.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&gooidc.Config{ClientID: cliID}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var ic map[string]any
	if err := idt.Claims(&ic); err != nil {
		t.Fatal(err)
	}
	u, _ := d.UserByName(alice)
	want := map[string]any{"sub": alice, "user_id": u.ID, "user_displayname": "Alice Liddell", "tok_type": "IT",
		"sub_type": "user", "tenant": d.Config().DomainID, "tenant_iss": d.URL(), "nonce": "nonce-1", "client_id": cliID}
	for k, v := range want {
		if ic[k] != v {
			t.Errorf("ID token %s = %v, want %v", k, ic[k], v)
		}
	}
	at, err := p.Verifier(&gooidc.Config{ClientID: cliAudience}).Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("verify access token against the primary audience: %v", err)
	}
	var ac map[string]any
	_ = at.Claims(&ac)
	if ac["tok_type"] != "AT" || ac["scope"] != "openid profile" || ac["user_id"] != u.ID {
		t.Errorf("access token claims %v", ac)
	}
	// The access token of a person is no key to the admin API.
	if r := call(t, "GET", d.URL()+"/admin/v1/Users", tok.AccessToken, nil); r.status != http.StatusUnauthorized {
		t.Errorf("SCIM with a person's token: %d, want 401", r.status)
	}
}

// exchangeErr returns the OAuth error code of a failed exchange.
func exchangeErr(t *testing.T, err error) string {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("exchange error %v, want an OAuth error", err)
	}
	return re.ErrorCode
}

func TestOIDCRefusesWhatPKCEForbids(t *testing.T) {
	d := oidcDomain(t)
	ctx := t.Context()
	oc := oauthConfig(d, cliRedirect)

	// Authorization requests refused back at the redirect URI.
	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"no challenge": nil,
		"plain":        {oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")},
	} {
		back := loginCode(t, oc.AuthCodeURL("s", opts...), alice, alicePass)
		if back.Query().Get("error") != "invalid_request" || back.Query().Get("state") != "s" || back.Query().Get("code") != "" {
			t.Errorf("%s: redirect %s, want error=invalid_request", name, back.Redacted())
		}
	}
	noOpenID := *oc
	noOpenID.Scopes = []string{"profile"}
	if back := loginCode(t, noOpenID.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), alice, alicePass); back.Query().Get("error") != "invalid_scope" {
		t.Errorf("no openid scope: %s", back.Redacted())
	}

	code := func() (string, string) {
		v := oauth2.GenerateVerifier()
		back := loginCode(t, oc.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), alice, alicePass)
		return back.Query().Get("code"), v
	}
	c, _ := code()
	if _, err := oc.Exchange(ctx, c); exchangeErr(t, err) != "invalid_request" {
		t.Errorf("no verifier: %v", err)
	}
	c, _ = code()
	if _, err := oc.Exchange(ctx, c, oauth2.VerifierOption(oauth2.GenerateVerifier())); exchangeErr(t, err) != "invalid_grant" {
		t.Errorf("wrong verifier: %v", err)
	}
	c, v := code()
	if _, err := oc.Exchange(ctx, c, oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if _, err := oc.Exchange(ctx, c, oauth2.VerifierOption(v)); exchangeErr(t, err) != "invalid_grant" {
		t.Errorf("second use of a code: %v", err)
	}
	c, v = code()
	other := *oc
	other.RedirectURL = "http://127.0.0.1:9/callback"
	if _, err := other.Exchange(ctx, c, oauth2.VerifierOption(v)); exchangeErr(t, err) != "invalid_grant" {
		t.Errorf("another redirect_uri at the exchange: %v", err)
	}
	// A public client has no secret to use client credentials with.
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"urn:opc:idm:__myscopes__"}, "client_id": {cliID}}
	resp, err := http.PostForm(d.URL()+"/oauth2/v1/token", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("client credentials for a public client: %d, want 401", resp.StatusCode)
	}
}

func TestOIDCLoginPageRefusals(t *testing.T) {
	d := oidcDomain(t)
	oc := oauthConfig(d, cliRedirect)
	auth := oc.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	for _, tc := range []struct{ user, pass string }{
		{alice, "wrong"}, {"gone@example.com", "Whatever-1234"}, {"nopass@example.com", ""}, {"nobody@example.com", "x"},
	} {
		_, err := oidctest.Login(t.Context(), nil, auth, tc.user, tc.pass)
		var pe *oidctest.PageError
		if !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized || !strings.Contains(pe.Message, "incorrect") {
			t.Errorf("%s: %v, want the page again with 401 and an alert", tc.user, err)
		}
	}
	// An unregistered redirect URI or client is never redirected to.
	for name, u := range map[string]string{
		"other host":                            oauthConfig(d, "http://evil.example/callback").AuthCodeURL("s"),
		"other path":                            oauthConfig(d, "http://127.0.0.1:5555/other").AuthCodeURL("s"),
		"unknown client":                        strings.Replace(auth, "client_id="+cliID, "client_id=nobody", 1),
		"confidential client without redirects": strings.Replace(auth, "client_id="+cliID, "client_id="+clientID, 1),
	} {
		_, err := oidctest.Login(t.Context(), nil, u, alice, alicePass)
		var pe *oidctest.PageError
		if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
			t.Errorf("%s: %v, want a 400 page", name, err)
		}
	}
	// The page a person sees: labelled fields, no script.
	resp, err := http.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	for _, want := range []string{`<html lang="en">`, `<label for="username">`, `<label for="password">`, `autocomplete="current-password"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if strings.Contains(b.String(), "<script") {
		t.Error("login page has a script")
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	d := oidcDomain(t)
	ctx := t.Context()
	p := provider(t, d)
	oc := oauthConfig(d, cliRedirect)
	login := func() string {
		v := oauth2.GenerateVerifier()
		back := loginCode(t, oc.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), alice, alicePass)
		tok, err := oc.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		return tok.Extra("id_token").(string)
	}
	verify := func(raw string) error {
		_, err := p.Verifier(&gooidc.Config{ClientID: cliID}).Verify(ctx, raw)
		return err
	}
	before := login()
	keys, _ := d.SigningKeys()
	if len(keys) != 1 || keys[0].KeyID != "SIGNING_KEY" {
		t.Fatalf("keys %+v", keys)
	}
	// Rotate over the control endpoint; the old key stays published.
	resp, err := http.Post(d.URL()+"/_emulator/keys/rotate", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&keys)
	resp.Body.Close()
	if len(keys) != 2 || keys[0].KeyID != "SIGNING_KEY_2" {
		t.Fatalf("after rotation %+v", keys)
	}
	after := login()
	if kid := headerKid(t, after); kid != "SIGNING_KEY_2" {
		t.Errorf("new tokens signed with %s", kid)
	}
	for name, raw := range map[string]string{"before": before, "after": after} {
		if err := verify(raw); err != nil {
			t.Errorf("token from %s the rotation: %v", name, err)
		}
	}
	if _, err := d.RotateSigningKey(true); err != nil {
		t.Fatal(err)
	}
	// go-oidc keeps the keys it has fetched until it meets an unknown kid;
	// a verifier that fetches afresh no longer finds the dropped key.
	p = provider(t, d)
	if err := verify(before); err == nil {
		t.Error("a token signed with an unpublished key verified")
	}
	if err := verify(login()); err != nil {
		t.Errorf("token after the second rotation: %v", err)
	}
}

func headerKid(t *testing.T, raw string) string {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		Kid, X5t string
	}
	_ = json.Unmarshal(b, &hdr)
	return hdr.Kid
}

func TestOIDCCodeExpires(t *testing.T) {
	clock := identitydomain.NewManualClock(time.Now())
	d := oidcDomain(t, identitydomain.WithClock(clock))
	oc := oauthConfig(d, cliRedirect)
	v := oauth2.GenerateVerifier()
	back := loginCode(t, oc.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), alice, alicePass)
	clock.Advance(6 * time.Minute)
	_, err := oc.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(v))
	if exchangeErr(t, err) != "invalid_grant" {
		t.Errorf("expired code: %v", err)
	}
}
