package secret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// DefaultRefreshInterval is how long a Vault secret is cached before it is
// read again.
const DefaultRefreshInterval = 5 * time.Minute

// retryFailedRefreshAfter bounds how often a failing refresh is tried again
// while the stale value is served.
const retryFailedRefreshAfter = 30 * time.Second

// Resolver resolves env:, file: and (when configured with WithVault) vault:
// references. Vault secrets are cached for the refresh interval; when a
// refresh fails the previous value is kept and the error logged (never the
// secret). It is safe for concurrent use and holds no global state.
type Resolver struct {
	vault    *vaultReader // nil: vault: refs are unsupported
	vaultCfg *VaultConfig
	log      *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]*cacheEntry
}

// cacheEntry is one Vault secret; its mu serialises reads of that secret so
// concurrent resolvers share one request.
type cacheEntry struct {
	mu          sync.Mutex
	value       Value
	fetchedAt   time.Time
	lastAttempt time.Time
}

// ResolverOption configures NewResolver.
type ResolverOption func(*Resolver)

// WithVault enables vault: references, read from OCI Vault with cfg.
func WithVault(cfg VaultConfig) ResolverOption {
	return func(r *Resolver) { c := cfg; r.vaultCfg = &c }
}

// WithResolverLogger sets the logger for refresh failures.
func WithResolverLogger(l *slog.Logger) ResolverOption {
	return func(r *Resolver) {
		if l != nil {
			r.log = l
		}
	}
}

// WithResolverClock sets the clock deciding when cached secrets are refreshed.
func WithResolverClock(now func() time.Time) ResolverOption {
	return func(r *Resolver) {
		if now != nil {
			r.now = now
		}
	}
}

// NewResolver builds a Resolver. With WithVault it validates the vault
// configuration and builds the OCI Secrets client now, so a missing resource
// principal or config file is reported at start-up.
func NewResolver(opts ...ResolverOption) (*Resolver, error) {
	r := &Resolver{log: slog.New(slog.DiscardHandler), now: time.Now, cache: map[string]*cacheEntry{}}
	for _, o := range opts {
		o(r)
	}
	if r.vaultCfg != nil {
		v, err := newVaultReader(*r.vaultCfg)
		if err != nil {
			return nil, err
		}
		r.vault = v
	}
	return r, nil
}

// Resolve reads the secret ref points to. env: and file: are read at each
// call, like the package's Resolve; vault: is served from the cache when it
// is younger than the refresh interval.
func (r *Resolver) Resolve(ctx context.Context, ref Ref) (Value, error) {
	if err := ref.Validate(); err != nil {
		return Value{}, err
	}
	if ref.Scheme() != "vault" {
		return Resolve(ctx, ref)
	}
	if r.vault == nil {
		return Value{}, fmt.Errorf("secret %s: %w: OCI Vault is not configured (configure vault: auth, region)", ref, ErrUnsupported)
	}
	ocid := strings.TrimPrefix(string(ref), "vault:")
	r.mu.Lock()
	e, ok := r.cache[ocid]
	if !ok {
		e = &cacheEntry{}
		r.cache[ocid] = e
	}
	r.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := r.now()
	fresh := !e.value.IsZero() && now.Sub(e.fetchedAt) < r.vault.refresh
	backingOff := !e.value.IsZero() && now.Sub(e.lastAttempt) < min(retryFailedRefreshAfter, r.vault.refresh)
	if fresh || backingOff {
		return e.value, nil
	}
	e.lastAttempt = now
	v, err := r.vault.read(ctx, ocid)
	if err != nil {
		err = fmt.Errorf("secret %s: %w", ref, err)
		if e.value.IsZero() {
			return Value{}, err
		}
		r.log.Warn("refreshing an OCI Vault secret failed; keeping the previous value", "secret", ocid, "err", err)
		return e.value, nil
	}
	e.value, e.fetchedAt = v, now
	return v, nil
}

// errVaultContent is the cause of errors about a secret bundle's content.
var errVaultContent = errors.New("unusable secret bundle content")
