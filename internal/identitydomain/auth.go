package identitydomain

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/common/auth"

	"github.com/iamflow/iamflow/internal/secret"
)

// Authentication (oci.md §4 and §1a). Every /admin/v1 request carries
// "Authorization: Bearer <token>"; the token comes from:
//
//   - client_credentials: POST <domain>/oauth2/v1/token with HTTP Basic
//     client_id:client_secret and grant_type=client_credentials&scope=...;
//   - resource_principal: POST <domain>/oauth2/v1/token with
//     grant_type=urn:ietf:params:oauth:grant-type:token-exchange,
//     requested_token_type=urn:ietf:params:oauth:token-type:access_token and
//     the scope, the request signed by the SDK's resource principal signer;
//   - static: a fixed token, never renewed.
//
// The token is cached and renewed ahead of expires_in (at 80% of its
// lifetime, or 30s before expiry when that comes first, but never before half
// of it). Concurrent callers that find it due share one token request. A 401
// from the API drops the token the request carried (only if it is still the
// cached one, so a burst of 401s leads to one renewal), and the call is sent
// once more with a fresh token.
//
// Tokens are held as secret.Value and the client secret is resolved once, in
// New; neither is ever logged or put in an error.

const (
	tokenPath           = "/oauth2/v1/token"
	grantClientCreds    = "client_credentials"
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	defaultTokenTTL     = 300 * time.Second // when a token response has no expires_in
	minRenewalMargin    = 30 * time.Second
	renewalShareOfTTL   = 0.2
	contentTypeForm     = "application/x-www-form-urlencoded;charset=UTF-8"
	headerAuthorization = "Authorization"
)

// fetchedToken is a token and its lifetime, as the token endpoint gave them.
type fetchedToken struct {
	value secret.Value
	ttl   time.Duration
}

// tokenSource caches the bearer token and renews it, one renewal at a time.
type tokenSource struct {
	clock Clock
	log   *slog.Logger
	// fetch gets a new token; nil for a static token.
	fetch func(ctx context.Context) (fetchedToken, error)

	mu      sync.Mutex
	tok     secret.Value
	renewAt time.Time
	expires time.Time // zero: never (static)
	flight  *tokenFlight
}

// tokenFlight is one token request that concurrent callers wait for.
type tokenFlight struct {
	done chan struct{}
	tok  secret.Value
	err  error
}

func newStaticTokenSource(tok secret.Value) *tokenSource {
	return &tokenSource{tok: tok, clock: systemClock{}}
}

// refreshable reports whether a 401 is worth a new token.
func (s *tokenSource) refreshable() bool { return s.fetch != nil }

// token returns a valid token, fetching one if none is cached or the cached
// one is due for renewal. Callers arriving during a fetch wait for it (or for
// their ctx); the fetch itself is not cancelled by any one caller.
func (s *tokenSource) token(ctx context.Context) (secret.Value, error) {
	s.mu.Lock()
	if s.fetch == nil {
		tok := s.tok
		s.mu.Unlock()
		return tok, nil
	}
	now := s.clock.Now()
	if !s.tok.IsZero() && now.Before(s.renewAt) {
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
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flight = nil
	switch {
	case err == nil:
		ttl := ft.ttl
		if ttl <= 0 {
			ttl = defaultTokenTTL
		}
		margin := max(time.Duration(float64(ttl)*renewalShareOfTTL), minRenewalMargin)
		margin = min(margin, ttl/2)
		s.tok, s.expires, s.renewAt = ft.value, now.Add(ttl), now.Add(ttl-margin)
		f.tok = ft.value
		s.log.Debug("identity domain token renewed", "expires_in", ttl)
	case !s.tok.IsZero() && now.Before(s.expires):
		// Renewal failed but the cached token still works: use it, and try
		// again on the next call.
		f.tok = s.tok
		s.log.Warn("identity domain token renewal failed; using the current token until it expires", "err", err, "expires_at", s.expires)
	default:
		f.err = err
	}
	close(f.done)
}

// invalidate drops tok if it is still the cached token, so that the next
// call fetches a new one.
func (s *tokenSource) invalidate(tok secret.Value) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetch != nil && s.tok.Reveal() == tok.Reveal() {
		s.tok = secret.Value{}
		s.renewAt = time.Time{}
	}
}

func setBearer(r *http.Request, tok secret.Value) {
	r.Header.Set(headerAuthorization, "Bearer "+tok.Reveal())
}

// bearerSigner is the SDK client's Signer: the SDK's own signer would
// overwrite Authorization with an OCI request signature, which identity
// domains do not accept. It sets the domain's bearer token instead.
type bearerSigner struct{ tokens *tokenSource }

// Sign implements common.HTTPRequestSigner.
func (b bearerSigner) Sign(r *http.Request) error {
	ctx := r.Context()
	if ci := callFrom(ctx); ci != nil {
		ctx = ci.ctx
	}
	tok, err := b.tokens.token(ctx)
	if err != nil {
		return err
	}
	setBearer(r, tok)
	return nil
}

// tokenResponse is the token endpoint's answer. expires_in is a number, but
// a string is accepted too.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

func (tr tokenResponse) ttl() time.Duration {
	s := strings.Trim(strings.TrimSpace(string(tr.ExpiresIn)), `"`)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n * float64(time.Second))
}

// fetchToken asks the token endpoint for a token with the form, prepared
// for each attempt by prepare (which sets the client authentication).
func (c *Client) fetchToken(ctx context.Context, form url.Values, prepare func(*http.Request) error) (fetchedToken, error) {
	body := form.Encode()
	ci := &callInfo{ctx: ctx, op: opToken, safe: true}
	build := func(actx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(actx, http.MethodPost, c.baseURL+tokenPath, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", contentTypeForm)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
		req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		if err := prepare(req); err != nil {
			return nil, fmt.Errorf("authenticate the token request: %w", err)
		}
		return req, nil
	}
	resp, err := c.exchange(ci, exchangeSpec{group: groupToken, build: build})
	if err != nil {
		return fetchedToken{}, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(resp.body, &tr); err != nil || tr.AccessToken == "" {
		return fetchedToken{}, &Error{Kind: KindUnavailable, Op: opToken, Domain: c.domain, Status: resp.status,
			RequestID: resp.requestID, Detail: "the token endpoint's answer has no access_token"}
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return fetchedToken{}, &Error{Kind: KindUnavailable, Op: opToken, Domain: c.domain, Status: resp.status,
			RequestID: resp.requestID, Detail: fmt.Sprintf("the token endpoint answered token_type %q, want Bearer", tr.TokenType)}
	}
	return fetchedToken{value: secret.NewValue(tr.AccessToken), ttl: tr.ttl()}, nil
}

// clientCredentialsFetcher gets tokens with the client credentials grant.
func (c *Client) clientCredentialsFetcher(clientID string, clientSecret secret.Value) func(context.Context) (fetchedToken, error) {
	form := url.Values{"grant_type": {grantClientCreds}, "scope": {c.cfg.Scope}}
	return func(ctx context.Context) (fetchedToken, error) {
		return c.fetchToken(ctx, form, func(r *http.Request) error {
			r.SetBasicAuth(clientID, clientSecret.Reveal())
			return nil
		})
	}
}

// resourcePrincipalFetcher gets tokens with the token-exchange grant, the
// request signed by signer (the resource principal's).
func (c *Client) resourcePrincipalFetcher(signer common.HTTPRequestSigner) func(context.Context) (fetchedToken, error) {
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"requested_token_type": {tokenTypeAccess},
		"scope":                {c.cfg.Scope},
	}
	return func(ctx context.Context) (fetchedToken, error) {
		return c.fetchToken(ctx, form, signer.Sign)
	}
}

// resourcePrincipalSigner builds the SDK's signer for the resource principal
// of the environment (OCI_RESOURCE_PRINCIPAL_* variables).
func resourcePrincipalSigner() (common.HTTPRequestSigner, error) {
	p, err := auth.ResourcePrincipalConfigurationProvider()
	if err != nil {
		return nil, fmt.Errorf("auth: resource_principal: no resource principal in this environment (OCI_RESOURCE_PRINCIPAL_* variables): %w", err)
	}
	return common.DefaultRequestSigner(p), nil
}
