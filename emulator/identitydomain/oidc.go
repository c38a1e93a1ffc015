package identitydomain

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// OpenID Connect, as an Identity Domain offers it to the people who log in
// to an application (docs/oci-sources.md §7):
//
//	GET  /.well-known/openid-configuration  discovery; endpoints at the OCI paths
//	GET  /admin/v1/SigningCert/jwk          the JWKS (no token needed)
//	GET  /oauth2/v1/authorize               authorization code request: shows the login page
//	POST /oauth2/v1/authorize               the login page's form: user name and password
//	POST /oauth2/v1/token                   grant_type=authorization_code with PKCE
//
// What the emulator requires of a client is what a careful public client
// does anyway: response_type=code, the openid scope, a registered
// redirect_uri (a loopback one with any port, RFC 8252 §7.3), and PKCE with
// S256 (RFC 7636). It refuses the plain method and a missing verifier:
// iamflow never sends them, and a test that does must see a refusal.
// Errors before the redirect URI is known to be the client's are shown on
// the page (RFC 6749 §4.1.2.1); later ones go back to it as error= and
// state=.
//
// People log in with a user's userName and the SCIM password attribute
// (set in a seed file or by POST /admin/v1/Users); an inactive user or a
// user without a password cannot log in.
//
// Tokens are RS256 JWTs signed with the domain's key (oidckeys.go). The
// claims follow Oracle's token reference: tok_type (AT or IT), iss, sub
// (the userName, sub_mappingattr userName), sub_type user, user_id (the
// SCIM id), user_displayname, user_tenantname and tenant (the domain id),
// tenant_iss (the domain URL), client_id, client_name, scope, aud, iat,
// exp, jti; the ID token adds auth_time, nonce, at_hash, sid and amr. The
// access token's aud is the client's primary audience, the ID token's the
// client id. Groups are not put in tokens: a relying party reads them from
// the domain.
//
// Not emulated: refresh tokens, userinfo, introspection, revocation,
// logout, consent, MFA, the implicit and hybrid flows, and sessions (every
// authorize request shows the login page).

// DefaultIssuer is the iss of every token a domain issues (docs/oci-sources.md §7: the
// same for every domain).
const DefaultIssuer = "https://identity.oraclecloud.com/"

// The OIDC operations, counted like the SCIM ones.
const (
	OpDiscovery      Operation = "GetOpenIDConfiguration"
	OpSigningCertJWK Operation = "GetSigningCertJWK"
	OpAuthorize      Operation = "Authorize"
)

// codeTTL is how long an authorization code may wait for its exchange.
const codeTTL = 5 * time.Minute

// authCode is an issued authorization code, waiting for its exchange.
type authCode struct {
	client      *Client
	userID      string
	redirectURI string
	challenge   string
	scope       []string
	nonce       string
	authTime    time.Time
}

// oidcRoute routes the OIDC endpoints; ok is false for any other path.
func (d *Domain) oidcRoute(r *http.Request) (route, bool, error) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		if r.Method != http.MethodGet {
			return route{}, true, methodNotAllowed(http.MethodGet)
		}
		return route{op: OpDiscovery}, true, nil
	case "/admin/v1/SigningCert/jwk":
		if r.Method != http.MethodGet {
			return route{}, true, methodNotAllowed(http.MethodGet)
		}
		return route{op: OpSigningCertJWK}, true, nil
	case "/oauth2/v1/authorize":
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			return route{}, true, methodNotAllowed(http.MethodGet, http.MethodPost)
		}
		return route{op: OpAuthorize}, true, nil
	}
	return route{}, false, nil
}

// serveOIDC answers the public OIDC endpoints (no bearer token).
func (d *Domain) serveOIDC(w http.ResponseWriter, r *request) {
	switch r.op {
	case OpDiscovery:
		d.serveDiscovery(w, r)
	case OpSigningCertJWK:
		d.serveJWKS(w)
	case OpAuthorize:
		d.serveAuthorize(w, r)
	}
}

func (d *Domain) serveDiscovery(w http.ResponseWriter, r *request) {
	b := r.base
	writePlainJSON(w, map[string]any{
		"issuer":                                d.cfg.Issuer,
		"authorization_endpoint":                b + "/oauth2/v1/authorize",
		"token_endpoint":                        b + "/oauth2/v1/token",
		"userinfo_endpoint":                     b + "/oauth2/v1/userinfo",
		"introspect_endpoint":                   b + "/oauth2/v1/introspect",
		"revocation_endpoint":                   b + "/oauth2/v1/revoke",
		"end_session_endpoint":                  b + "/oauth2/v1/userlogout",
		"jwks_uri":                              b + "/admin/v1/SigningCert/jwk",
		"scopes_supported":                      []string{"openid", "profile", "email", "groups", "get_groups", "approles", "offline_access"},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"grant_types_supported":                 []string{"client_credentials", "authorization_code"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported": []string{"aud", "exp", "iat", "iss", "sub", "sub_type", "user_id", "user_displayname",
			"user_tenantname", "tenant", "tenant_iss", "client_id", "scope", "tok_type", "auth_time", "nonce", "at_hash", "sid", "amr"},
	})
}

func (d *Domain) serveJWKS(w http.ResponseWriter) {
	keys, err := d.keys.published()
	if err != nil {
		writeError(w, errorf(http.StatusInternalServerError, "", "error.common.common.internalServerError", "%v", err))
		return
	}
	set := make([]jwk, len(keys))
	for i, k := range keys {
		set[i] = k.jwk()
	}
	writePlainJSON(w, map[string]any{"keys": set})
}

// writePlainJSON answers 200 with application/json (not SCIM's media type).
func writePlainJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

// authzRequest is an authorization request's parameters.
type authzRequest struct {
	ClientID, RedirectURI, ResponseType, Scope, State, Nonce, Challenge, Method string
}

func authzFrom(v url.Values) authzRequest {
	return authzRequest{
		ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"), ResponseType: v.Get("response_type"),
		Scope: v.Get("scope"), State: v.Get("state"), Nonce: v.Get("nonce"),
		Challenge: v.Get("code_challenge"), Method: v.Get("code_challenge_method"),
	}
}

// pkceChallengeRE is a base64url SHA-256: 43 characters (RFC 7636 §4.2).
var pkceChallengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// pkceVerifierRE is RFC 7636 §4.1: 43 to 128 unreserved characters.
var pkceVerifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// check validates the request. A non-nil page error means the redirect URI
// cannot be trusted and the error is shown on the page; otherwise a
// non-empty code is an OAuth error to send back to the redirect URI.
func (d *Domain) checkAuthz(a authzRequest) (client *Client, pageErr string, code, desc string) {
	client = d.client(a.ClientID)
	switch {
	case a.ClientID == "":
		return nil, "The request has no client_id.", "", ""
	case client == nil || len(client.RedirectURIs) == 0:
		return nil, "No application with client_id " + a.ClientID + " may log people in here.", "", ""
	case !client.redirectAllowed(a.RedirectURI):
		return nil, "The redirect_uri is not registered for " + a.ClientID + ".", "", ""
	case a.ResponseType != "code":
		return client, "", "unsupported_response_type", "Only response_type=code is supported."
	case !slices.Contains(strings.Fields(a.Scope), "openid"):
		return client, "", "invalid_scope", "The scope must include openid."
	case a.Challenge == "":
		return client, "", "invalid_request", "PKCE is required: send code_challenge and code_challenge_method=S256."
	case a.Method != "S256":
		return client, "", "invalid_request", "code_challenge_method must be S256 (plain is refused)."
	case !pkceChallengeRE.MatchString(a.Challenge):
		return client, "", "invalid_request", "code_challenge is not a base64url SHA-256 (43 characters)."
	}
	return client, "", "", ""
}

// redirectAllowed: registered exactly, or a registered loopback IP URI on
// any port (RFC 8252 §7.3).
func (c *Client) redirectAllowed(raw string) bool {
	if raw == "" {
		return false
	}
	if slices.Contains(c.RedirectURIs, raw) {
		return true
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || !isLoopbackHost(u.Hostname()) {
		return false
	}
	for _, reg := range c.RedirectURIs {
		ru, err := url.Parse(reg)
		if err != nil || ru.Scheme != "http" || !isLoopbackHost(ru.Hostname()) {
			continue
		}
		if ru.Hostname() == u.Hostname() && ru.Path == u.Path && u.RawQuery == ru.RawQuery {
			return true
		}
	}
	return false
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (d *Domain) serveAuthorize(w http.ResponseWriter, r *request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		d.loginPage(w, http.StatusBadRequest, authzRequest{}, "", "The request is not a valid form: "+err.Error(), "")
		return
	}
	params := r.Form
	if r.Method == http.MethodPost {
		params = r.PostForm
	}
	a := authzFrom(params)
	client, pageErr, code, desc := d.checkAuthz(a)
	if pageErr != "" {
		d.loginPage(w, http.StatusBadRequest, a, "", pageErr, "")
		return
	}
	if code != "" {
		redirectBack(w, r.Request, a, url.Values{"error": {code}, "error_description": {desc}})
		return
	}
	if r.Method == http.MethodGet {
		d.loginPage(w, http.StatusOK, a, client.Name, "", params.Get("login_hint"))
		return
	}
	userName, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	userID, ok := d.checkPassword(userName, password)
	if !ok {
		d.loginPage(w, http.StatusUnauthorized, a, client.Name, "The user name or password is incorrect, or the account is not active.", userName)
		return
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	c := hex.EncodeToString(b[:])
	now := d.clock.Now()
	d.codes.Add(c, authCode{client: client, userID: userID, redirectURI: a.RedirectURI, challenge: a.Challenge,
		scope: strings.Fields(a.Scope), nonce: a.Nonce, authTime: now}, now.Add(codeTTL), now)
	redirectBack(w, r.Request, a, url.Values{"code": {c}})
}

// checkPassword returns the id of the active user userName whose password
// is password.
func (d *Domain) checkPassword(userName, password string) (string, bool) {
	d.store.mu.RLock()
	defer d.store.mu.RUnlock()
	u := d.store.users.byName[strings.ToLower(userName)]
	if u == nil || !u.active() {
		return "", false
	}
	want, _ := u.attrs["password"].(string)
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 {
		return "", false
	}
	return u.id, true
}

func redirectBack(w http.ResponseWriter, r *http.Request, a authzRequest, v url.Values) {
	u, _ := url.Parse(a.RedirectURI) // checked by redirectAllowed
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	if a.State != "" {
		q.Set("state", a.State)
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// loginTemplate is the login page: one form, labelled fields, the error in
// an alert the screen reader announces, no script.
var loginTemplate = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in{{if .App}} to {{.App}}{{end}} – {{.Domain}} (emulated Identity Domain)</title>
<style>
body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}
label{display:block;margin-top:1rem;font-weight:600}
input{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;border:1px solid #555;border-radius:4px}
input:focus,button:focus{outline:3px solid #1f5fbf;outline-offset:2px}
button{margin-top:1.5rem;font-size:1rem;padding:.6rem 1.2rem;background:#1f5fbf;color:#fff;border:0;border-radius:4px}
.error{border-left:4px solid #b00020;padding:.5rem 1rem;background:#fdecee}
</style>
</head>
<body>
<main>
<h1>Sign in</h1>
<p>{{if .App}}<strong>{{.App}}</strong> asks you to sign in to {{else}}Sign in to {{end}}the identity domain <strong>{{.Domain}}</strong>.</p>
{{if .Error}}<p id="error" class="error" role="alert">{{.Error}}</p>{{end}}
{{if .Form}}<form method="post" action="/oauth2/v1/authorize">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label for="username">User name</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="{{.UserName}}"{{if .Error}} aria-describedby="error" aria-invalid="true"{{end}} autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{{if .Error}} aria-describedby="error" aria-invalid="true"{{end}}>
<button type="submit">Sign in</button>
</form>{{end}}
</main>
</body>
</html>
`))

func (d *Domain) loginPage(w http.ResponseWriter, status int, a authzRequest, app, errText, userName string) {
	hidden := map[string]string{
		"client_id": a.ClientID, "redirect_uri": a.RedirectURI, "response_type": a.ResponseType, "scope": a.Scope,
		"state": a.State, "nonce": a.Nonce, "code_challenge": a.Challenge, "code_challenge_method": a.Method,
	}
	for k, v := range hidden {
		if v == "" {
			delete(hidden, k)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = loginTemplate.Execute(w, map[string]any{
		"App": app, "Domain": d.cfg.DisplayName, "Error": errText, "UserName": userName,
		"Form": status != http.StatusBadRequest, "Hidden": hidden,
	})
}

// serveAuthorizationCode is the token endpoint's grant_type=authorization_code.
func (d *Domain) serveAuthorizationCode(w http.ResponseWriter, r *request) {
	id, secret, basic := clientCredentials(r.Request)
	client := d.client(id)
	switch {
	case client == nil:
		d.clientAuthFailed(w, false)
		return
	case !client.Public && subtle.ConstantTimeCompare([]byte(secret), []byte(client.Secret)) != 1:
		d.clientAuthFailed(w, basic)
		return
	}
	code, expires, ok := d.codes.Take(r.PostForm.Get("code"))
	now := d.clock.Now()
	verifier := r.PostForm.Get("code_verifier")
	switch {
	case !ok || code.client.ID != client.ID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The authorization code is invalid, was already used, or was issued to another client.")
		return
	case !now.Before(expires):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The authorization code has expired.")
		return
	case r.PostForm.Get("redirect_uri") != code.redirectURI:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request.")
		return
	case verifier == "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "code_verifier is required (PKCE).")
		return
	case !pkceVerifierRE.MatchString(verifier):
		oauthError(w, http.StatusBadRequest, "invalid_request", "code_verifier must be 43 to 128 unreserved characters (RFC 7636).")
		return
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(code.challenge)) != 1 {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge.")
		return
	}
	d.store.mu.RLock()
	u := d.store.users.byID[code.userID]
	var userName, display string
	active := u != nil && u.active()
	if u != nil {
		userName, display = u.userName(), u.display()
	}
	d.store.mu.RUnlock()
	if !active {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The user is no longer active.")
		return
	}
	access, idToken, err := d.userTokens(client, code, r.base, userName, display, now)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	writeTokens(w, access, d.cfg.TokenTTL, map[string]any{
		"id_token": idToken,
		"scope":    strings.Join(code.scope, " "),
	})
}

// userTokens signs the access and ID tokens of a person's login.
func (d *Domain) userTokens(c *Client, code authCode, base, userName, display string, now time.Time) (access, idToken string, err error) {
	key, err := d.keys.current()
	if err != nil {
		return "", "", err
	}
	common := func(tokType string) map[string]any {
		return map[string]any{
			"tok_type":          tokType,
			"iss":               d.cfg.Issuer,
			"sub":               userName,
			"sub_mappingattr":   "userName",
			"sub_type":          "user",
			"user_id":           code.userID,
			"user_displayname":  display,
			"user_tenantname":   d.cfg.DomainID,
			"tenant":            d.cfg.DomainID,
			"tenant_iss":        base,
			"client_id":         c.ID,
			"client_name":       c.Name,
			"client_tenantname": d.cfg.DomainID,
			"domain":            d.cfg.DisplayName,
			"iat":               now.Unix(),
			"exp":               now.Add(d.cfg.TokenTTL).Unix(),
			"jti":               d.ids.hex32(),
		}
	}
	at := common("AT")
	at["aud"] = []string{c.Audience}
	at["scope"] = strings.Join(code.scope, " ")
	at["gtp"] = "azc"
	if access, err = key.sign(at); err != nil {
		return "", "", err
	}
	it := common("IT")
	it["aud"] = []string{c.ID}
	it["auth_time"] = code.authTime.Unix()
	it["amr"] = []string{"USERNAME_PASSWORD"}
	it["sid"] = d.ids.hex32()
	sum := sha256.Sum256([]byte(access))
	it["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:16])
	if code.nonce != "" {
		it["nonce"] = code.nonce
	}
	if idToken, err = key.sign(it); err != nil {
		return "", "", err
	}
	return access, idToken, nil
}
