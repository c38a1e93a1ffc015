package ords

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
)

// Authentication (oci.md §6):
//
//   - oauth: POST <base>/oauth/token with HTTP Basic client_id:client_secret
//     and grant_type=client_credentials returns {"access_token", "token_type":
//     "bearer", "expires_in"}; requests carry "Authorization: Bearer <token>".
//     The token is cached and renewed ahead of expiry (at 80% of its lifetime,
//     or 30s before expiry if that comes first, never before half of it);
//     concurrent callers share one token request. A 401 drops the token the
//     request carried (only if it is still the cached one) and the request is
//     sent once more with a fresh token. The client secret is resolved again
//     for each token request, so a rotated secret is picked up.
//   - basic: HTTP Basic user:password on every request; after a 401 the
//     password is resolved again (rotation) and the request sent once more.

const (
	tokenPath        = "/oauth/token"
	defaultTokenTTL  = 300 * time.Second
	minRenewalMargin = 30 * time.Second
)

// SecretResolver resolves secret references; *secret.Resolver implements it.
type SecretResolver interface {
	Resolve(ctx context.Context, ref secret.Ref) (secret.Value, error)
}

// packageResolver resolves with secret.Resolve (env: and file: only).
type packageResolver struct{}

func (packageResolver) Resolve(ctx context.Context, ref secret.Ref) (secret.Value, error) {
	return secret.Resolve(ctx, ref)
}

type fetchedToken struct {
	value secret.Value
	ttl   time.Duration
}

// tokenSource caches the bearer token, one renewal at a time.
type tokenSource struct {
	now   func() time.Time
	log   *slog.Logger
	fetch func(ctx context.Context) (fetchedToken, error)

	mu      sync.Mutex
	tok     secret.Value
	renewAt time.Time
	expires time.Time
	flight  *tokenFlight
}

type tokenFlight struct {
	done chan struct{}
	tok  secret.Value
	err  error
}

// token returns a valid token, fetching one when none is cached or the
// cached one is due. The fetch is not cancelled by any one caller.
func (s *tokenSource) token(ctx context.Context) (secret.Value, error) {
	s.mu.Lock()
	if !s.tok.IsZero() && s.now().Before(s.renewAt) {
		tok := s.tok
		s.mu.Unlock()
		return tok, nil
	}
	f := s.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		s.flight = f
		go s.run(context.WithoutCancel(ctx), f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return secret.Value{}, ctx.Err()
	}
}

func (s *tokenSource) run(ctx context.Context, f *tokenFlight) {
	ft, err := s.fetch(ctx)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flight = nil
	switch {
	case err == nil:
		ttl := ft.ttl
		if ttl <= 0 {
			ttl = defaultTokenTTL
		}
		margin := min(max(ttl/5, minRenewalMargin), ttl/2)
		s.tok, s.expires, s.renewAt = ft.value, now.Add(ttl), now.Add(ttl-margin)
		f.tok = ft.value
		s.log.Debug("ORDS token renewed", "expires_in", ttl)
	case !s.tok.IsZero() && now.Before(s.expires):
		f.tok = s.tok
		s.log.Warn("ORDS token renewal failed; using the current token until it expires", "err", err, "expires_at", s.expires)
	default:
		f.err = err
	}
	close(f.done)
}

// invalidate drops tok if it is still the cached token.
func (s *tokenSource) invalidate(tok secret.Value) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Reveal() == tok.Reveal() {
		s.tok = secret.Value{}
		s.renewAt = time.Time{}
	}
}

// tokenResponse is the token endpoint's answer; expires_in may be a number
// or a string.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

func (tr tokenResponse) ttl() time.Duration {
	n, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(string(tr.ExpiresIn)), `"`), 64)
	if err != nil || n <= 0 || n > 1e7 {
		return 0
	}
	return time.Duration(n * float64(time.Second))
}

// fetchToken asks <base>/oauth/token for a token, with the call's retries.
func (c *Client) fetchToken(ctx context.Context) (fetchedToken, error) {
	var ft fetchedToken
	err := c.withRetries(ctx, opToken, "", func(ctx context.Context) error {
		sec, err := c.resolver.Resolve(ctx, c.cfg.ClientSecret)
		if err != nil {
			return &Error{Database: c.name, Op: opToken, Detail: "resolve client_secret", Err: err}
		}
		res, err := c.send(ctx, opToken, http.MethodPost, c.baseURL+tokenPath,
			"application/x-www-form-urlencoded", []byte("grant_type=client_credentials"),
			func(r *http.Request) { r.SetBasicAuth(c.cfg.ClientID, sec.Reveal()) })
		if err != nil {
			return err
		}
		if res.status != http.StatusOK {
			return c.httpError(opToken, "", res)
		}
		var tr tokenResponse
		if json.Unmarshal(res.body, &tr) != nil || tr.AccessToken == "" {
			return &Error{Database: c.name, Op: opToken, Status: res.status, Detail: "the token endpoint's answer has no access_token"}
		}
		if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
			return &Error{Database: c.name, Op: opToken, Status: res.status, Detail: "the token endpoint answered token_type " + strconv.Quote(cut(tr.TokenType, 40)) + ", want bearer"}
		}
		ft = fetchedToken{value: secret.NewValue(tr.AccessToken), ttl: tr.ttl()}
		return nil
	})
	return ft, err
}

// authorizer sets the credentials on one request and, after a 401, makes
// them fresh for one more try.
type authorizer interface {
	// prepare returns the function that sets the credentials, and a handle
	// passed back to refresh.
	prepare(ctx context.Context) (func(*http.Request), secret.Value, error)
	// refresh is called after a 401 with the handle of the refused request.
	refresh(ctx context.Context, used secret.Value) error
}

type oauthAuthorizer struct{ tokens *tokenSource }

func (a oauthAuthorizer) prepare(ctx context.Context) (func(*http.Request), secret.Value, error) {
	tok, err := a.tokens.token(ctx)
	if err != nil {
		return nil, secret.Value{}, err
	}
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok.Reveal()) }, tok, nil
}

func (a oauthAuthorizer) refresh(_ context.Context, used secret.Value) error {
	a.tokens.invalidate(used)
	return nil
}

type basicAuthorizer struct {
	user     string
	ref      secret.Ref
	resolver SecretResolver

	mu       sync.Mutex
	password secret.Value
}

func (a *basicAuthorizer) prepare(context.Context) (func(*http.Request), secret.Value, error) {
	a.mu.Lock()
	pw := a.password
	a.mu.Unlock()
	return func(r *http.Request) { r.SetBasicAuth(a.user, pw.Reveal()) }, pw, nil
}

func (a *basicAuthorizer) refresh(ctx context.Context, _ secret.Value) error {
	pw, err := a.resolver.Resolve(ctx, a.ref)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.password = pw
	a.mu.Unlock()
	return nil
}
