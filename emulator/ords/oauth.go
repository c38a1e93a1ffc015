package ords

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// serveToken answers POST /ords/<alias>/oauth/token (docs/oci-sources.md §6):
//
//	Authorization: Basic base64(client_id:client_secret)
//	grant_type=client_credentials
//
// with {"access_token":"...","token_type":"bearer","expires_in":3600}. The
// client id and secret may also come as client_id and client_secret form
// fields. Wrong credentials get 401 with the ORDS body; a missing or other
// grant_type gets 400 {"error":"unsupported_grant_type"} (RFC 6749 §5.2;
// inferred). Tokens are 16 random bytes in base64url, like the documented
// "SNVDe2Tjough44I_X6tmXg", valid for one alias only. Getting a token takes
// no pool connection here (inferred simplification).
func (db *database) serveToken(w http.ResponseWriter, r *http.Request) {
	db.count(func(s *Stats) { s.Tokens++ })
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if db.cfg.ClientID == "" || !equal(id, db.cfg.ClientID) || !equal(secret, db.cfg.ClientSecret) {
		db.count(func(s *Stats) { s.Unauthorized++ })
		unauthorized(w)
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "Only grant_type=client_credentials is supported.")
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	now := db.now()
	ttl := db.tokenTTL
	db.tokens.Add(tok, struct{}{}, now.Add(ttl), now)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok,
		"token_type":   "bearer",
		"expires_in":   int(ttl / time.Second),
	})
}

// tokenSweepAt is how many tokens an alias holds before each new one makes
// it forget the expired ones.
const tokenSweepAt = 4096

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// authorized checks a /_/sql request: a live bearer token of this alias, or
// the configured Basic user and password. An expired token is forgotten.
func (db *database) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer") && cred != "":
		_, _, live := db.tokens.Lookup(cred, db.now())
		return live
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		return ok && db.cfg.BasicUser != "" && equal(user, db.cfg.BasicUser) && equal(pass, db.cfg.BasicPassword)
	}
	return false
}
