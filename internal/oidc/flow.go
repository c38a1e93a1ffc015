package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Provider is what the login domain's discovery document says about
// logging in.
type Provider struct {
	Issuer      string   `json:"issuer"`
	AuthURL     string   `json:"authorization_endpoint"`
	TokenURL    string   `json:"token_endpoint"`
	JWKSURL     string   `json:"jwks_uri"`
	PKCEMethods []string `json:"code_challenge_methods_supported"`
}

// Discover reads the discovery document of the domain at domainURL
// (domainURL + /.well-known/openid-configuration, docs/oci-sources.md §7).
func Discover(ctx context.Context, client *http.Client, domainURL string) (Provider, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	u := strings.TrimSuffix(domainURL, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Provider{}, fmt.Errorf("login: discovery: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Provider{}, fmt.Errorf("login: the login domain at %s does not answer: %w", domainURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Provider{}, fmt.Errorf("login: discovery %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Provider{}, fmt.Errorf("login: discovery %s answered %d: is %s an Identity Domain URL?", u, resp.StatusCode, domainURL)
	}
	var p Provider
	if err := json.Unmarshal(body, &p); err != nil {
		return Provider{}, fmt.Errorf("login: discovery %s: not a discovery document: %w", u, err)
	}
	if p.AuthURL == "" || p.TokenURL == "" {
		return Provider{}, fmt.Errorf("login: discovery %s names no authorization_endpoint or token_endpoint", u)
	}
	return p, nil
}

// Flow is the authorization code flow with PKCE (S256), for a CLI with a
// loopback redirect or a web console with its own callback URL.
//
// A console starts a login with Start, keeps the returned Pending (state,
// PKCE verifier, nonce; in a short-lived, HttpOnly, signed or encrypted
// cookie, or server-side) and redirects the browser to its AuthURL. The
// domain sends the browser back to the redirect URL with code and state;
// the console hands the query to Finish with the Pending, and gets the
// tokens. The ID token is the bearer token the admin API accepts.
type Flow struct {
	cfg oauth2.Config
}

// NewFlow prepares logins for the application clientID (clientSecret empty
// for a public client) through p, coming back to redirectURL.
func NewFlow(p Provider, clientID, clientSecret, redirectURL string, scopes []string) *Flow {
	style := oauth2.AuthStyleInParams
	if clientSecret != "" {
		style = oauth2.AuthStyleInHeader
	}
	return &Flow{cfg: oauth2.Config{
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: style},
	}}
}

// Pending is a login in progress: what Finish needs to check the answer.
// It holds the PKCE verifier: keep it away from the browser's scripts and
// from logs.
type Pending struct {
	State    string `json:"state"`
	Verifier string `json:"verifier"`
	Nonce    string `json:"nonce"`
	AuthURL  string `json:"-"`
}

// Start begins a login: fresh state, verifier and nonce, and the URL to
// send the browser to.
func (f *Flow) Start() Pending {
	p := Pending{State: randomString(), Verifier: oauth2.GenerateVerifier(), Nonce: randomString()}
	p.AuthURL = f.cfg.AuthCodeURL(p.State, oauth2.S256ChallengeOption(p.Verifier), oauth2.SetAuthURLParam("nonce", p.Nonce))
	return p
}

// Tokens are what a finished login yields.
type Tokens struct {
	AccessToken string    `json:"access_token"`
	IDToken     string    `json:"id_token"`
	Expiry      time.Time `json:"expiry"`
}

// Finish checks the redirect's query against p (state first, then an
// error from the domain) and exchanges the code, with p's verifier, for
// tokens.
func (f *Flow) Finish(ctx context.Context, p Pending, query url.Values) (Tokens, error) {
	if subtle.ConstantTimeCompare([]byte(query.Get("state")), []byte(p.State)) != 1 || p.State == "" {
		return Tokens{}, errors.New("login: the answer does not belong to this login (state differs): start again")
	}
	if e := query.Get("error"); e != "" {
		msg := "login: the domain refused: " + e
		if d := query.Get("error_description"); d != "" {
			msg += ": " + d
		}
		return Tokens{}, errors.New(msg)
	}
	code := query.Get("code")
	if code == "" {
		return Tokens{}, errors.New("login: the answer carries no code")
	}
	tok, err := f.cfg.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			msg := re.ErrorCode
			if re.ErrorDescription != "" {
				msg += ": " + re.ErrorDescription
			}
			return Tokens{}, fmt.Errorf("login: the domain refused the code: %s", msg)
		}
		return Tokens{}, fmt.Errorf("login: exchanging the code: %w", err)
	}
	idt, _ := tok.Extra("id_token").(string)
	if idt == "" {
		return Tokens{}, errors.New("login: the domain returned no ID token (is openid among the scopes?)")
	}
	return Tokens{AccessToken: tok.AccessToken, IDToken: idt, Expiry: tok.Expiry}, nil
}

func randomString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
