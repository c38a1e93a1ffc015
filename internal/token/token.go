// Package token caches an OAuth 2.0 bearer token and renews it ahead of its
// expiry, one renewal at a time. The identity domain and ORDS clients share
// it; each brings the request that fetches a token from its own endpoint,
// and both read the endpoint's answer with Parse.
//
// A token is renewed at 80% of its lifetime, or 30s before it expires when
// that comes first, but never before half of it. Callers that find it due
// share one token request, which no single caller's cancellation stops. A
// renewal that fails while the cached token is still valid is logged and the
// cached token used. Invalidate drops a token the server refused (only if it
// is still the cached one, so a burst of 401s leads to one renewal).
package token

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
)

const (
	// DefaultTTL is a token's lifetime when the token endpoint gave none.
	DefaultTTL = 300 * time.Second
	// minRenewalMargin is the least time before expiry a token is renewed
	// (unless that is more than half its lifetime).
	minRenewalMargin = 30 * time.Second
	// renewalShare is the share of its lifetime before expiry at which a
	// token is renewed.
	renewalShare = 0.2
	// maxTTL bounds a lifetime read from a response, so that a nonsense
	// expires_in cannot overflow a time.Duration.
	maxTTL = 1e7 * time.Second
)

// Fetched is a token and its lifetime, as the token endpoint gave them; a
// zero TTL means DefaultTTL.
type Fetched struct {
	Value secret.Value
	TTL   time.Duration
}

// FetchFunc asks the token endpoint for a new token.
type FetchFunc func(ctx context.Context) (Fetched, error)

// Source hands out a cached bearer token. Create it with New or Static; it
// is safe for concurrent use.
type Source struct {
	now   func() time.Time
	log   *slog.Logger
	what  string
	fetch FetchFunc // nil for a static token

	mu      sync.Mutex
	tok     secret.Value
	renewAt time.Time
	expires time.Time
	flight  *flight
}

// flight is one token request that concurrent callers wait for.
type flight struct {
	done chan struct{}
	tok  secret.Value
	err  error
}

// New returns a Source that gets its tokens from fetch. now tells the time
// (nil: time.Now); what names the token's issuer in log lines, e.g.
// "identity domain"; log may be nil.
func New(fetch FetchFunc, now func() time.Time, log *slog.Logger, what string) *Source {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{fetch: fetch, now: now, log: log, what: what}
}

// Static returns a Source of one fixed token that is never renewed.
func Static(tok secret.Value) *Source {
	return &Source{tok: tok, now: time.Now, log: slog.New(slog.DiscardHandler)}
}

// Renewable reports whether the Source can get a new token, that is whether
// a refused request is worth sending again after Invalidate.
func (s *Source) Renewable() bool { return s.fetch != nil }

// Token returns a valid token, fetching one when none is cached or the
// cached one is due for renewal. Callers arriving during a fetch wait for it
// or for their ctx.
func (s *Source) Token(ctx context.Context) (secret.Value, error) {
	s.mu.Lock()
	if s.fetch == nil || (!s.tok.IsZero() && s.now().Before(s.renewAt)) {
		tok := s.tok
		s.mu.Unlock()
		return tok, nil
	}
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
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

func (s *Source) run(ctx context.Context, f *flight) {
	ft, err := s.fetch(ctx)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flight = nil
	switch {
	case err == nil:
		ttl := ft.TTL
		if ttl <= 0 {
			ttl = DefaultTTL
		}
		margin := min(max(time.Duration(float64(ttl)*renewalShare), minRenewalMargin), ttl/2)
		s.tok, s.expires, s.renewAt = ft.Value, now.Add(ttl), now.Add(ttl-margin)
		f.tok = ft.Value
		s.log.Debug(s.what+" token renewed", "expires_in", ttl)
	case !s.tok.IsZero() && now.Before(s.expires):
		f.tok = s.tok
		s.log.Warn(s.what+" token renewal failed; using the current token until it expires", "err", err, "expires_at", s.expires)
	default:
		f.err = err
	}
	close(f.done)
}

// Invalidate drops tok if it is still the cached token, so that the next
// Token fetches a new one. A static token is never dropped.
func (s *Source) Invalidate(tok secret.Value) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetch != nil && s.tok.Reveal() == tok.Reveal() {
		s.tok = secret.Value{}
		s.renewAt = time.Time{}
	}
}

// response is a token endpoint's JSON answer (RFC 6749 §5.1). expires_in is
// a number, but a string is accepted too.
type response struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

// TTL is the token's lifetime from expires_in, or 0 when it is missing or
// not a sensible number of seconds.
func (r response) TTL() time.Duration {
	n, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(string(r.ExpiresIn)), `"`), 64)
	if err != nil || n <= 0 || n*float64(time.Second) > float64(maxTTL) {
		return 0
	}
	return time.Duration(n * float64(time.Second))
}

// Bearer reports whether the response is of a bearer token: token_type is
// "Bearer" in any case, or absent.
func (r response) Bearer() bool {
	return r.TokenType == "" || strings.EqualFold(r.TokenType, "bearer")
}
