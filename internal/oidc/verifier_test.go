package oidc_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	idclient "github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/oidc"
	"github.com/iamflow/iamflow/internal/oidc/oidctest"
	"github.com/iamflow/iamflow/internal/pipelinetest"
)

const (
	cliID     = "iamflow-cli"
	apiAud    = "https://iamflow.example.com/"
	alice     = "alice@example.com"
	alicePass = "Correct-Horse-7"
	sysID     = "iamflow-sys"
	sysSecret = "sys-secret-0123456789abcdef"
)

// domain starts an emulated login domain named name with alice (password
// alicePass) in the group Approvers.
func domain(t *testing.T, name string, clk *identitydomain.ManualClock) *identitydomain.Domain {
	t.Helper()
	opts := []identitydomain.Option{}
	if clk != nil {
		opts = append(opts, identitydomain.WithClock(clk))
	}
	d, err := identitydomain.New(identitydomain.Config{
		Name: name, Tier: identitydomain.TierUnlimited,
		Clients: []identitydomain.Client{
			{ID: sysID, Secret: sysSecret},
			{ID: cliID, Public: true, RedirectURIs: []string{"http://127.0.0.1/callback"}, Audience: apiAud},
		},
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.LoadSeed(identitydomain.SeedData{
		Users:  []map[string]any{{"userName": alice, "displayName": "Alice Liddell", "password": alicePass}},
		Groups: []map[string]any{{"displayName": "Approvers", "members": []any{alice}}, {"displayName": "Other"}},
	}); err != nil {
		t.Fatal(err)
	}
	return d
}

func loginConfig(d *identitydomain.Domain) oidc.Config {
	return oidc.Config{Domain: "login", ClientID: cliID, Tenant: d.Config().DomainID}
}

func verifier(t *testing.T, cfg oidc.Config, d *identitydomain.Domain, clk *identitydomain.ManualClock) *oidc.Verifier {
	t.Helper()
	opts := []oidc.Option{}
	if clk != nil {
		opts = append(opts, oidc.WithClock(clk.Now))
	}
	v, err := oidc.NewVerifier(cfg, d.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// login logs alice in through the login page and returns the tokens.
func login(t *testing.T, d *identitydomain.Domain) oidc.Tokens {
	t.Helper()
	ctx := t.Context()
	p, err := oidc.Discover(ctx, nil, d.URL())
	if err != nil {
		t.Fatal(err)
	}
	f := oidc.NewFlow(p, cliID, "", "http://127.0.0.1:41999/callback", []string{"openid", "profile"})
	pend := f.Start()
	back, err := oidctest.Login(ctx, nil, pend.AuthURL, alice, alicePass)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := f.Finish(ctx, pend, back.Query())
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// claimsOf decodes a token's payload.
func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// resign signs a copy of a real token's claims, changed by edit, with the
// domain's key: a token the domain could have issued.
func resign(t *testing.T, d *identitydomain.Domain, raw string, edit func(map[string]any)) string {
	t.Helper()
	c := claimsOf(t, raw)
	edit(c)
	tok, err := d.SignToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkRefusal asserts err is an *oidc.Error with code and that its text
// carries neither the token nor its signature.
func checkRefusal(t *testing.T, name string, err error, code oidc.Code, raw string) {
	t.Helper()
	if !oidc.IsCode(err, code) {
		t.Errorf("%s: %v, want code %s", name, err, code)
		return
	}
	parts := strings.Split(raw, ".")
	if raw != "" && strings.Contains(err.Error(), raw) || (len(parts) == 3 && len(parts[2]) > 8 && strings.Contains(err.Error(), parts[2])) {
		t.Errorf("%s: the error shows the token: %v", name, err)
	}
}

func TestVerifyAcceptsTheDomainsTokens(t *testing.T) {
	d := domain(t, "login", nil)
	toks := login(t, d)
	v := verifier(t, loginConfig(d), d, nil)
	tok, err := v.Verify(t.Context(), toks.IDToken)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	u, _ := d.UserByName(alice)
	if tok.Type != "IT" || tok.Subject != alice || tok.UserID != u.ID || tok.DisplayName != "Alice Liddell" || tok.KeyID != "SIGNING_KEY" {
		t.Errorf("token %+v", tok)
	}
	// The access token's audience is the application's primary audience:
	// refused until it is accepted.
	_, err = v.Verify(t.Context(), toks.AccessToken)
	checkRefusal(t, "access token, audience not configured", err, oidc.CodeAudience, toks.AccessToken)
	cfg := loginConfig(d)
	cfg.Audience = []string{cliID, apiAud}
	if tok, err := verifier(t, cfg, d, nil).Verify(t.Context(), toks.AccessToken); err != nil || tok.Type != "AT" || len(tok.Scopes) != 2 {
		t.Errorf("access token with its audience accepted: %+v %v", tok, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	clk := identitydomain.NewManualClock(time.Now())
	d := domain(t, "login", clk)
	other := domain(t, "elsewhere", clk)
	good := login(t, d).IDToken
	stranger := login(t, other).IDToken
	cfg := loginConfig(d)
	cfg.Tenant = "" // the signature alone must tell the domains apart
	v := verifier(t, cfg, d, clk)
	ctx := t.Context()
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	hdr := func(alg, kid string) string { return b64(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"}) }
	now := clk.Now().Unix()

	// HS256 signed with the public key's modulus as the secret: the
	// classic confusion of a public key for an HMAC secret.
	keys, _ := d.SigningKeys()
	n := new(big.Int).SetInt64(int64(len(keys[0].KeyID)))
	mac := hmac.New(sha256.New, n.Bytes())
	hsInput := hdr("HS256", "SIGNING_KEY") + "." + parts[1]
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	tampered := resign(t, d, good, func(c map[string]any) { c["jti"] = "another" })
	tp := strings.Split(tampered, ".")
	tp[1] = b64(func() map[string]any { c := claimsOf(t, good); c["sub"] = "mallory@example.com"; return c }())

	cases := []struct {
		name string
		raw  string
		code oidc.Code
	}{
		{"empty", "", oidc.CodeMalformed},
		{"not a JWT", "opaque-token-value", oidc.CodeMalformed},
		{"JWE", "a.b.c.d.e", oidc.CodeMalformed},
		{"header not base64", "%%%." + parts[1] + "." + parts[2], oidc.CodeMalformed},
		{"alg none, no signature", hdr("none", "SIGNING_KEY") + "." + parts[1] + ".", oidc.CodeAlgorithm},
		{"alg none, a signature", hdr("none", "SIGNING_KEY") + "." + parts[1] + "." + parts[2], oidc.CodeAlgorithm},
		{"alg None", hdr("None", "SIGNING_KEY") + "." + parts[1] + "." + parts[2], oidc.CodeAlgorithm},
		{"HS256 with the public key", hs256, oidc.CodeAlgorithm},
		{"RS512", hdr("RS512", "SIGNING_KEY") + "." + parts[1] + "." + parts[2], oidc.CodeAlgorithm},
		{"no kid", hdr("RS256", "") + "." + parts[1] + "." + parts[2], oidc.CodeMalformed},
		{"unknown kid", hdr("RS256", "NOT_A_KEY") + "." + parts[1] + "." + parts[2], oidc.CodeUnknownKey},
		{"tampered claims", strings.Join(tp, "."), oidc.CodeSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + tp[2], oidc.CodeSignature},
		{"another domain (same issuer, same kid)", stranger, oidc.CodeSignature},
		{"wrong audience", resign(t, d, good, func(c map[string]any) { c["aud"] = []string{"another-app"} }), oidc.CodeAudience},
		{"audience as a string", resign(t, d, good, func(c map[string]any) { c["aud"] = "another-app" }), oidc.CodeAudience},
		{"no audience", resign(t, d, good, func(c map[string]any) { delete(c, "aud") }), oidc.CodeAudience},
		{"wrong issuer", resign(t, d, good, func(c map[string]any) { c["iss"] = "https://idp.example.com/" }), oidc.CodeIssuer},
		{"expired", resign(t, d, good, func(c map[string]any) { c["exp"] = now - 61 }), oidc.CodeExpired},
		{"no expiry", resign(t, d, good, func(c map[string]any) { delete(c, "exp") }), oidc.CodeMalformed},
		{"exp not a number", resign(t, d, good, func(c map[string]any) { c["exp"] = "tomorrow" }), oidc.CodeMalformed},
		{"not yet valid (nbf)", resign(t, d, good, func(c map[string]any) { c["nbf"] = now + 120 }), oidc.CodeNotYetValid},
		{"issued in the future (iat)", resign(t, d, good, func(c map[string]any) { c["iat"] = now + 120 }), oidc.CodeNotYetValid},
		{"a client's token", resign(t, d, good, func(c map[string]any) { c["sub_type"] = "client"; c["sub"] = sysID }), oidc.CodeNotAPerson},
		{"no subject", resign(t, d, good, func(c map[string]any) { delete(c, "sub"); delete(c, "user_id") }), oidc.CodeNotAPerson},
	}
	for _, tc := range cases {
		_, err := v.Verify(ctx, tc.raw)
		checkRefusal(t, tc.name, err, tc.code, tc.raw)
	}
	// Within the clock skew, expiry and nbf are tolerated.
	for name, raw := range map[string]string{
		"expired 30s ago":   resign(t, d, good, func(c map[string]any) { c["exp"] = now - 30 }),
		"valid in 30s":      resign(t, d, good, func(c map[string]any) { c["nbf"] = now + 30 }),
		"aud as a string":   resign(t, d, good, func(c map[string]any) { c["aud"] = cliID }),
		"no trailing slash": resign(t, d, good, func(c map[string]any) { c["iss"] = "https://identity.oraclecloud.com" }),
	} {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The tenant check, when configured, names the other domain.
	vt := verifier(t, loginConfig(d), d, clk)
	forged := resign(t, d, good, func(c map[string]any) { c["tenant"] = other.Config().DomainID })
	_, err := vt.Verify(ctx, forged)
	checkRefusal(t, "tenant", err, oidc.CodeTenant, forged)
	// A real expiry: the clock moves past the token's life.
	clk.Advance(time.Hour + 2*time.Minute)
	_, err = v.Verify(ctx, good)
	checkRefusal(t, "expired by time", err, oidc.CodeExpired, good)
	if !strings.Contains(err.Error(), "log in again") {
		t.Errorf("expiry message %q does not tell what to do", err)
	}
}

func TestVerifyFollowsKeyRotation(t *testing.T) {
	clk := identitydomain.NewManualClock(time.Now())
	d := domain(t, "login", clk)
	cfg := loginConfig(d)
	cfg.JWKSMinRefresh = 10 * time.Second
	cfg.JWKSMaxAge = 10 * time.Minute
	v := verifier(t, cfg, d, clk)
	ctx := t.Context()
	before := login(t, d).IDToken
	if _, err := v.Verify(ctx, before); err != nil {
		t.Fatal(err)
	}
	if v.JWKSFetches() != 1 {
		t.Fatalf("fetches %d", v.JWKSFetches())
	}
	// A new key: the first token it signs makes the verifier fetch again.
	if _, err := d.RotateSigningKey(false); err != nil {
		t.Fatal(err)
	}
	after := login(t, d).IDToken
	if tok, err := v.Verify(ctx, after); err != nil || tok.KeyID != "SIGNING_KEY_2" {
		t.Fatalf("token signed with the new key: %+v %v", tok, err)
	}
	if _, err := v.Verify(ctx, before); err != nil {
		t.Errorf("token signed with the old, still published key: %v", err)
	}
	if v.JWKSFetches() != 2 {
		t.Errorf("fetches %d, want 2", v.JWKSFetches())
	}
	// Unknown kids in a burst cause at most one fetch per JWKSMinRefresh.
	parts := strings.Split(after, ".")
	for i := range 50 {
		forged := b64(map[string]string{"alg": "RS256", "kid": "K" + string(rune('a'+i%26))}) + "." + parts[1] + "." + parts[2]
		_, err := v.Verify(ctx, forged)
		checkRefusal(t, "unknown kid", err, oidc.CodeUnknownKey, forged)
	}
	if v.JWKSFetches() != 2 {
		t.Errorf("fetches after a burst of unknown kids within the refresh interval: %d, want 2", v.JWKSFetches())
	}
	clk.Advance(11 * time.Second)
	_, _ = v.Verify(ctx, b64(map[string]string{"alg": "RS256", "kid": "Kz"})+"."+parts[1]+"."+parts[2])
	if v.JWKSFetches() != 3 {
		t.Errorf("fetches after the refresh interval: %d, want 3", v.JWKSFetches())
	}
	// The domain drops every key but a third one; once the cache ages
	// out, a token signed with a dropped key is refused.
	if _, err := d.RotateSigningKey(true); err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Minute)
	_, err := v.Verify(ctx, after)
	checkRefusal(t, "key no longer published", err, oidc.CodeUnknownKey, after)
}

func TestVerifyKeysUnavailable(t *testing.T) {
	d := domain(t, "login", nil)
	good := login(t, d).IDToken
	v, err := oidc.NewVerifier(loginConfig(d), "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(t.Context(), good)
	checkRefusal(t, "JWKS unreachable", err, oidc.CodeKeysUnavailable, good)
	var oe *oidc.Error
	if !asError(err, &oe) || !oe.Temporary() {
		t.Errorf("unreachable keys are not temporary: %v", err)
	}
}

func asError(err error, target **oidc.Error) bool {
	e, ok := err.(*oidc.Error)
	if ok {
		*target = e
	}
	return ok
}

// directory is the identitydomain client of d, with iamflow's own
// confidential client.
func directory(t *testing.T, d *identitydomain.Domain) *idclient.Client {
	t.Helper()
	return pipelinetest.Client(t, "login", pipelinetest.ClientConfig(t, d.URL(), sysID, sysSecret, false))
}

func TestAuthenticateReadsGroupsFromTheDomain(t *testing.T) {
	clk := identitydomain.NewManualClock(time.Now())
	d := domain(t, "login", clk)
	cfg := loginConfig(d)
	cfg.GroupsCacheTTL = 30 * time.Second
	dir := directory(t, d)
	a, err := oidc.NewAuthenticator(verifier(t, cfg, d, clk), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	raw := login(t, d).IDToken
	id, err := a.Authenticate(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if id.UserName != alice || id.DisplayName != "Alice Liddell" || !id.InGroup("Approvers") || id.InGroup("Other") {
		t.Fatalf("identity %+v", id)
	}
	// A membership change shows once the cache expires, not before.
	u, _ := d.UserByName(alice)
	g, _ := d.GroupByName("Other")
	if _, err := dir.AddMembers(ctx, g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if id, _ := a.Authenticate(ctx, raw); id.InGroup("Other") {
		t.Error("groups read again within the cache TTL")
	}
	clk.Advance(31 * time.Second)
	if id, err := a.Authenticate(ctx, raw); err != nil || !id.InGroup("Other") {
		t.Errorf("groups after the TTL: %+v %v", id, err)
	}
	// A user deactivated since login is refused at the next read.
	var active any = false
	if _, _, err := dir.PatchUser(ctx, u.ID, "", identitydomains.Operations{Op: identitydomains.OperationsOpReplace, Path: ptr("active"), Value: &active}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Second)
	_, err = a.Authenticate(ctx, raw)
	checkRefusal(t, "deactivated", err, oidc.CodeUserInactive, raw)
	if _, err := dir.DeleteUser(ctx, u.ID, ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Second)
	_, err = a.Authenticate(ctx, raw)
	checkRefusal(t, "deleted", err, oidc.CodeUserUnknown, raw)
}

func ptr(s string) *string { return &s }
