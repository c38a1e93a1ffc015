package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a JWKS response (a domain publishes at most ten
// keys, a few KB).
const maxJWKSBytes = 1 << 20

// keySet is the cached JWKS of the login domain.
type keySet struct {
	url        string
	client     *http.Client
	now        func() time.Time
	maxAge     time.Duration
	minRefresh time.Duration
	log        *slog.Logger

	fetchMu sync.Mutex // one fetch at a time

	mu        sync.Mutex
	keys      map[string]jose.JSONWebKey
	fetched   time.Time // last successful fetch
	attempted time.Time // last fetch attempt
	// unknownFetch is the last fetch an unknown kid caused: such fetches
	// happen at most once per minRefresh.
	unknownFetch time.Time
	fetches      int
}

// key returns the key kid names, fetching the JWKS when there is none yet,
// when it is older than maxAge, or when kid is unknown (a rotation), at
// most once per minRefresh for unknown kids.
func (s *keySet) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	s.mu.Lock()
	k, ok := s.keys[kid]
	stale := s.keys == nil || s.now().Sub(s.fetched) >= s.maxAge
	s.mu.Unlock()
	if ok && !stale {
		return k, nil
	}
	err := s.refresh(ctx, !ok)
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		if err != nil {
			s.log.WarnContext(ctx, "oidc: fetching the login domain's keys failed; using the cached ones", "jwks_url", s.url, "error", err)
		}
		return k, nil
	}
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	known := make([]string, 0, len(s.keys))
	for id := range s.keys {
		known = append(known, id)
	}
	slices.Sort(known)
	return jose.JSONWebKey{}, refuse(CodeUnknownKey, "no key %q among the login domain's signing keys %v (the token was signed by another domain or with a key the domain no longer publishes)", kid, known)
}

// refresh fetches the JWKS unless another caller just did, or (for an
// unknown kid) the last attempt is more recent than minRefresh.
func (s *keySet) refresh(ctx context.Context, unknownKid bool) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	s.mu.Lock()
	now := s.now()
	have := s.keys != nil
	fresh := have && now.Sub(s.fetched) < s.maxAge
	limited := !s.unknownFetch.IsZero() && now.Sub(s.unknownFetch) < s.minRefresh
	s.mu.Unlock()
	if have && unknownKid && limited {
		return nil // rate-limited: the cache answers
	}
	if fresh && !unknownKid {
		return nil // another caller refreshed while this one waited
	}
	s.mu.Lock()
	s.attempted = now
	if unknownKid && have {
		s.unknownFetch = now
	}
	s.fetches++
	s.mu.Unlock()
	keys, err := s.fetch(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys, s.fetched = keys, now
	s.mu.Unlock()
	return nil
}

func (s *keySet) fetch(ctx context.Context) (map[string]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, &Error{Code: CodeKeysUnavailable, Message: "cannot ask " + s.url + " for the login domain's keys", Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, &Error{Code: CodeKeysUnavailable, Message: "the login domain's keys could not be fetched from " + s.url, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, &Error{Code: CodeKeysUnavailable, Message: "reading the login domain's keys from " + s.url, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (allow clients to access the signing certificate without logging in, in the domain's settings)"
		}
		return nil, refuse(CodeKeysUnavailable, "GET %s answered %d%s", s.url, resp.StatusCode, hint)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, &Error{Code: CodeKeysUnavailable, Message: "the login domain's keys at " + s.url + " are unusable", Err: err}
	}
	return keys, nil
}

// parseJWKS reads a JWKS and keeps the public signing keys with a kid: RSA
// and ECDSA keys whose use is sig or unset. A symmetric key is never kept,
// so no HMAC secret can stand in for a public key.
func parseJWKS(body []byte) (map[string]jose.JSONWebKey, error) {
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("more than %d bytes", maxJWKSBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS: %w", err)
	}
	keys := map[string]jose.JSONWebKey{}
	var skipped []error
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, fmt.Errorf("keys[%d]: %w", i, err))
			continue
		}
		if k.KeyID == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
			keys[k.KeyID] = k
		}
	}
	if len(keys) == 0 {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("no usable signing key: %v", skipped[0])
		}
		return nil, fmt.Errorf("no public signing key with a kid among %d keys", len(doc.Keys))
	}
	return keys, nil
}
