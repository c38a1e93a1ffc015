package ords

import (
	"context"
	"net/http"
	"sync"

	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/token"
)

// Authentication (docs/oci-sources.md §6):
//
//   - oauth: POST <base>/oauth/token with HTTP Basic client_id:client_secret
//     and grant_type=client_credentials returns {"access_token", "token_type":
//     "bearer", "expires_in"}; requests carry "Authorization: Bearer <token>".
//     The token is cached and renewed ahead of expiry by a token.Source
//     (package token has the policy). A 401 drops the token the request
//     carried and the request is sent once more with a fresh token. The client secret is resolved again
//     for each token request, so a rotated secret is picked up.
//   - basic: HTTP Basic user:password on every request; after a 401 the
//     password is resolved again (rotation) and the request sent once more.

const tokenPath = "/oauth/token"

// SecretResolver resolves secret references; *secret.Resolver implements it.
type SecretResolver interface {
	Resolve(ctx context.Context, ref secret.Ref) (secret.Value, error)
}

// packageResolver resolves with secret.Resolve (env: and file: only).
type packageResolver struct{}

func (packageResolver) Resolve(ctx context.Context, ref secret.Ref) (secret.Value, error) {
	return secret.Resolve(ctx, ref)
}

// fetchToken asks <base>/oauth/token for a token, with the call's retries.
func (c *Client) fetchToken(ctx context.Context) (token.Fetched, error) {
	var ft token.Fetched
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
		ft, err = token.Parse(res.body)
		if err != nil {
			return &Error{Database: c.name, Op: opToken, Status: res.status, Detail: err.Error()}
		}
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

type oauthAuthorizer struct{ tokens *token.Source }

func (a oauthAuthorizer) prepare(ctx context.Context) (func(*http.Request), secret.Value, error) {
	tok, err := a.tokens.Token(ctx)
	if err != nil {
		return nil, secret.Value{}, err
	}
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok.Reveal()) }, tok, nil
}

func (a oauthAuthorizer) refresh(_ context.Context, used secret.Value) error {
	a.tokens.Invalidate(used)
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
