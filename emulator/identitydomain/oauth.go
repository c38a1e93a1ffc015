package identitydomain

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Token endpoint behaviour (docs/oci-sources.md §4):
//
//	POST /oauth2/v1/token
//	Authorization: Basic base64(client_id:client_secret)   (or client_id/client_secret form fields)
//	grant_type=client_credentials&scope=urn:opc:idm:__myscopes__
//
// answers {"access_token","token_type":"Bearer","expires_in"}. A scope token
// "urn:opc:resource:expiry=N" asks for a shorter lifetime (capped at
// Config.TokenTTL). Errors use the OAuth 2.0 body of RFC 6749 §5.2
// ({"error","error_description"}): 401 invalid_client for bad credentials,
// 400 unsupported_grant_type, invalid_request or invalid_scope otherwise.
//
// Not emulated: JWT client assertions and the resource-principal
// token-exchange grant (docs/oci-sources.md §1a); both need OCI request signing and are
// answered 400 unsupported_grant_type (or 401 for a client assertion).
//
// Tokens look like IDCS's (a JWT: header.payload.signature) but are opaque to
// the emulator, which keeps them in memory; the signature is random.

const (
	scopeMyScopes = "urn:opc:idm:__myscopes__"
	scopeExpiry   = "urn:opc:resource:expiry="
)

// tokenSweepAt is how many issued tokens the domain holds before each new
// one makes it forget the expired ones.
const tokenSweepAt = 4096

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (d *Domain) serveToken(w http.ResponseWriter, r *request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form: "+err.Error())
		return
	}
	if r.PostForm.Get("grant_type") == "authorization_code" {
		d.serveAuthorizationCode(w, r)
		return
	}
	id, secret, basic := clientCredentials(r.Request)
	if id == "" && r.PostForm.Get("client_assertion_type") != "" {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client assertions are not supported by the emulator; use client_secret.")
		return
	}
	client := d.client(id)
	if client == nil || client.Public || subtle.ConstantTimeCompare([]byte(secret), []byte(client.Secret)) != 1 {
		d.clientAuthFailed(w, basic)
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request is missing grant_type.")
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "The emulator supports grant_type=client_credentials and authorization_code, not "+strconv.Quote(gt)+".")
		return
	}
	ttl := d.cfg.TokenTTL
	hasScope := false
	for _, s := range strings.Fields(r.PostForm.Get("scope")) {
		switch {
		case s == scopeMyScopes:
			hasScope = true
		case strings.HasPrefix(s, scopeExpiry):
			n, err := strconv.Atoi(strings.TrimPrefix(s, scopeExpiry))
			if err != nil || n <= 0 {
				oauthError(w, http.StatusBadRequest, "invalid_scope", "Invalid "+s+".")
				return
			}
			if e := time.Duration(n) * time.Second; e < ttl {
				ttl = e
			}
		}
	}
	if !hasScope {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "The requested scope is invalid; request "+scopeMyScopes+".")
		return
	}
	now := d.clock.Now()
	tok := d.newToken(client, r.base, now, ttl)
	d.tokens.Add(tok, client, now.Add(ttl), now)
	writeTokens(w, tok, ttl, nil)
}

// writeTokens answers a token request that succeeded (RFC 6749 §5.1):
// access_token, token_type Bearer, expires_in in seconds and the fields of
// more (a login's id_token and scope), never cached.
func writeTokens(w http.ResponseWriter, access string, ttl time.Duration, more map[string]any) {
	body := map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int(ttl / time.Second),
	}
	maps.Copy(body, more)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(body)
}

func (d *Domain) client(id string) *Client {
	for i := range d.cfg.Clients {
		if d.cfg.Clients[i].ID == id {
			return &d.cfg.Clients[i]
		}
	}
	return nil
}

func (d *Domain) newToken(c *Client, base string, now time.Time, ttl time.Duration) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "SIGNING_KEY"})
	payload, _ := json.Marshal(map[string]any{
		"sub":         c.ID,
		"client_id":   c.ID,
		"client_name": c.Name,
		"sub_type":    "client",
		"iss":         "https://identity.oraclecloud.com/",
		"aud":         []string{base, "urn:opc:lbaas:logicalguid=" + d.cfg.DomainID},
		"scope":       scopeMyScopes,
		"tenant":      d.cfg.DomainID,
		"domain":      d.cfg.DisplayName,
		"iat":         now.Unix(),
		"exp":         now.Add(ttl).Unix(),
		"jti":         d.ids.hex32(),
	})
	var sig [32]byte
	d.ids.fill(sig[:])
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(sig[:])
}

// authenticate checks the bearer token of an /admin/v1 request.
func (d *Domain) authenticate(r *http.Request) (*Client, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, errUnauthorized("This request requires a bearer access token (Authorization: Bearer <token>).")
	}
	tok = strings.TrimSpace(tok)
	client, found, live := d.tokens.Lookup(tok, d.clock.Now())
	if !found {
		return nil, errUnauthorized("The access token is invalid.")
	}
	if !live {
		return nil, errUnauthorized("The access token has expired.")
	}
	return client, nil
}

// clientCredentials reads a token request's client id and secret: from
// HTTP Basic auth, else from the form's client_id and client_secret (RFC
// 6749 §2.3.1). basic tells which.
func clientCredentials(r *http.Request) (id, secret string, basic bool) {
	id, secret, basic = r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id, secret, basic
}

// clientAuthFailed answers 401 invalid_client, with a Basic challenge when
// challenge is set (the client sent Basic credentials).
func (d *Domain) clientAuthFailed(w http.ResponseWriter, challenge bool) {
	if challenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+d.cfg.DomainID+`"`)
	}
	oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
}
