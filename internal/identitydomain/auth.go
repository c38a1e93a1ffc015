package identitydomain

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/common/auth"

	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/token"
)

// Authentication (docs/oci-sources.md §4 and §1a). Every /admin/v1 request carries
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
// The token is cached and renewed ahead of expires_in by a token.Source
// (package token has the policy). A 401 from the API drops the token the
// request carried, and the call is sent once more with a fresh token.
//
// Tokens are held as secret.Value and the client secret is resolved once, in
// New; neither is ever logged or put in an error.

const (
	tokenPath           = "/oauth2/v1/token"
	grantClientCreds    = "client_credentials"
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	contentTypeForm     = "application/x-www-form-urlencoded;charset=UTF-8"
	headerAuthorization = "Authorization"
)

func setBearer(r *http.Request, tok secret.Value) {
	r.Header.Set(headerAuthorization, "Bearer "+tok.Reveal())
}

// bearerSigner is the SDK client's Signer: the SDK's own signer would
// overwrite Authorization with an OCI request signature, which identity
// domains do not accept. It sets the domain's bearer token instead.
type bearerSigner struct{ tokens *token.Source }

// Sign implements common.HTTPRequestSigner.
func (b bearerSigner) Sign(r *http.Request) error {
	ctx := r.Context()
	if ci := callFrom(ctx); ci != nil {
		ctx = ci.ctx
	}
	tok, err := b.tokens.Token(ctx)
	if err != nil {
		return err
	}
	setBearer(r, tok)
	return nil
}

// fetchToken asks the token endpoint for a token with the form, prepared
// for each attempt by prepare (which sets the client authentication).
func (c *Client) fetchToken(ctx context.Context, form url.Values, prepare func(*http.Request) error) (token.Fetched, error) {
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
		return token.Fetched{}, err
	}
	ft, err := token.Parse(resp.body)
	if err != nil {
		return token.Fetched{}, &Error{Kind: KindUnavailable, Op: opToken, Domain: c.domain, Status: resp.status,
			RequestID: resp.requestID, Detail: err.Error()}
	}
	return ft, nil
}

// clientCredentialsFetcher gets tokens with the client credentials grant.
func (c *Client) clientCredentialsFetcher(clientID string, clientSecret secret.Value) token.FetchFunc {
	form := url.Values{"grant_type": {grantClientCreds}, "scope": {c.cfg.Scope}}
	return func(ctx context.Context) (token.Fetched, error) {
		return c.fetchToken(ctx, form, func(r *http.Request) error {
			r.SetBasicAuth(clientID, clientSecret.Reveal())
			return nil
		})
	}
}

// resourcePrincipalFetcher gets tokens with the token-exchange grant, the
// request signed by signer (the resource principal's).
func (c *Client) resourcePrincipalFetcher(signer common.HTTPRequestSigner) token.FetchFunc {
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"requested_token_type": {tokenTypeAccess},
		"scope":                {c.cfg.Scope},
	}
	return func(ctx context.Context) (token.Fetched, error) {
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
