package identitydomain

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/iamflow/iamflow/internal/apiclient"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/token"
)

// tracerName names the tracer of the client's spans.
const tracerName = "github.com/iamflow/iamflow/internal/identitydomain"

// Client talks to one identity domain. It is safe for concurrent use; make
// one per domain per process (the rate limits and breaker are per Client).
type Client struct {
	domain  string
	cfg     Config
	baseURL string
	// scimPath is the path of the SCIM API under baseURL: /admin/v1, or
	// Config.SCIMPath.
	scimPath string
	clock    Clock

	sdk     identitydomains.IdentityDomainsClient
	http    *http.Client
	tokens  *token.Source
	limiter *limiter
	breaker *breaker
	metrics *metrics
	tracer  trace.Tracer
	log     *slog.Logger
	sleep   SleepFunc
	rnd     func() float64

	// listModes remembers, per endpoint ("Users", "Groups"), the paging
	// strategy that read a list whole after the default one broke an
	// invariant (paging.go).
	listModes sync.Map
	// membersWhole is set once the domain has shown it does not page
	// members (members.go).
	membersWhole atomic.Bool
	// membersPaged is set once a member page came back with members: the
	// domain does not drop the paged members attribute.
	membersPaged atomic.Bool
	// logged holds the keys of the warnings logged once (logOnce).
	logged sync.Map
	// caps is the last discovery (discovery.go); capsMu serialises reads.
	caps   atomic.Pointer[Capabilities]
	capsMu sync.Mutex
}

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	apiclient.Options
	clock    Clock
	rpSigner common.HTTPRequestSigner
}

// WithLogger sets the logger; requests are logged at debug level, breaker
// changes at warn and info. The default is the telemetry's logger, or none.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.SetLogger(l) } }

// WithTelemetry makes the client trace each call (a span per call, a client
// span per HTTP request with W3C trace headers) with t's tracer provider, and
// log with t's logger unless WithLogger says otherwise.
func WithTelemetry(t *telemetry.Telemetry) Option {
	return func(o *options) { o.Telemetry = t }
}

// WithRegisterer sets where the Prometheus metrics are registered. Clients of
// several domains may share one registerer. The default is a private
// registry (metrics kept, not exported).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.SetRegisterer(r) } }

// WithTransport sets the HTTP transport under the client's own logic (for
// custom TLS or proxies). The default is a clone of http.DefaultTransport
// keeping up to 64 idle connections to the domain.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.SetTransport(rt) } }

// WithClock sets the clock used for token renewal and the breaker's cooldown.
func WithClock(c Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithSleep replaces how the client waits between retries. Tests pass one
// that returns at once.
func WithSleep(f SleepFunc) Option { return func(o *options) { o.SetSleep(f) } }

// WithRequestSigner sets the signer of token-exchange requests for auth
// resource_principal, instead of the resource principal of the environment.
func WithRequestSigner(s common.HTTPRequestSigner) Option {
	return func(o *options) { o.rpSigner = s }
}

// New validates cfg, resolves its secrets (once) and builds the client for
// the domain named domain (the short name used in metrics, logs and errors).
// It makes no request: the first call fetches the token.
func New(ctx context.Context, domain string, cfg Config, opts ...Option) (*Client, error) {
	if domain == "" {
		return nil, errors.New("identitydomain: new client: empty domain name")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("identitydomain: domain %s: invalid config:\n%w", domain, err)
	}
	o := options{clock: systemClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	o.Defaults()
	baseURL, _ := domainURL.Normalize(cfg.URL)
	c := &Client{
		domain:   domain,
		cfg:      cfg,
		baseURL:  baseURL,
		scimPath: cfg.scimPath(),
		clock:    o.clock,
		limiter:  newLimiter(cfg.Limits.Effective(cfg.Tier)),
		log:      o.Logger,
		sleep:    o.Sleep,
		rnd:      mathrand.Float64,
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("identitydomain: domain %s: register metrics: %w", domain, err)
	}
	c.metrics = m
	m.breakerOpen.WithLabelValues(domain).Set(0)
	c.breaker = newBreaker(cfg.Breaker, o.clock, func(s BreakerState) {
		if s == BreakerClosed {
			m.breakerOpen.WithLabelValues(domain).Set(0)
			c.log.Info("identity domain circuit breaker closed", "domain", domain)
			return
		}
		m.breakerOpen.WithLabelValues(domain).Set(1)
		if s == BreakerOpen {
			c.log.Warn("identity domain circuit breaker open", "domain", domain, "cooldown", cfg.Breaker.Cooldown)
		}
	})

	c.tracer = o.Tracer(tracerName)
	c.http = o.HTTPClient(func() http.RoundTripper {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		return t
	})

	if c.tokens, err = c.newTokens(ctx, cfg, o); err != nil {
		return nil, err
	}
	sdk, err := newSDKClient(baseURL)
	if err != nil {
		return nil, fmt.Errorf("identitydomain: domain %s: %w", domain, err)
	}
	sdk.HTTPClient = sdkDispatcher{c}
	sdk.Signer = bearerSigner{c.tokens}
	c.sdk = sdk
	return c, nil
}

// newSDKClient builds the SDK's client for the domain with its retries and
// circuit breaker off. The SDK insists on a valid-looking OCI configuration
// even though its signer is replaced: it gets a throwaway key made here,
// never used to sign anything.
func newSDKClient(baseURL string) (identitydomains.IdentityDomainsClient, error) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		return identitydomains.IdentityDomainsClient{}, fmt.Errorf("generate the SDK's placeholder key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cp := common.NewRawConfigurationProvider("ocid1.tenancy.oc1..iamflow", "ocid1.user.oc1..iamflow", "us-ashburn-1",
		"00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00", string(keyPEM), nil)
	sdk, err := identitydomains.NewIdentityDomainsClientWithConfigurationProvider(cp, baseURL)
	if err != nil {
		return sdk, fmt.Errorf("build the oci-go-sdk identity domains client: %w", err)
	}
	sdk.Host = baseURL
	noRetry := common.NoRetryPolicy()
	sdk.Configuration.RetryPolicy = &noRetry
	sdk.Configuration.CircuitBreaker = nil
	return sdk, nil
}

// Domain returns the domain's short name.
func (c *Client) Domain() string { return c.domain }

// BreakerState returns the state of the domain's circuit breaker.
func (c *Client) BreakerState() BreakerState { return c.breaker.State() }

// Close releases idle connections. Calls in progress are not interrupted.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Outcome says what a mutating call did, for the audit trail.
type Outcome string

// The outcomes.
const (
	// OutcomeCreated: the resource was created.
	OutcomeCreated Outcome = "created"
	// OutcomeExisted: a create was retried after its first response was
	// lost, met 409, and the resource found by its unique name is returned.
	OutcomeExisted Outcome = "existed"
	// OutcomeUpdated: the resource was changed (or the change was accepted).
	OutcomeUpdated Outcome = "updated"
	// OutcomeUnchanged: nothing to do, e.g. removing users who are not members.
	OutcomeUnchanged Outcome = "unchanged"
	// OutcomeDeleted: the resource was deleted.
	OutcomeDeleted Outcome = "deleted"
	// OutcomeAlreadyGone: the resource to delete did not exist (404).
	OutcomeAlreadyGone Outcome = "already_gone"
)

// Receipt describes a mutating call: what it did and the ids to quote.
type Receipt struct {
	// Outcome is what the call did.
	Outcome Outcome
	// RequestID is the X-ORACLE-DMS-ECID of the response that decided the
	// outcome; when a call needed several requests (see RemoveMembers),
	// their ids joined with ",".
	RequestID string
	// ETag is the resource's new ETag, when the answer had one.
	ETag string
	// Status is the HTTP status of that response.
	Status int
	// Attempts is how many requests the call sent.
	Attempts int
}

func receipt(o Outcome, ci *callInfo, etag *string) Receipt {
	r := Receipt{Outcome: o, RequestID: ci.requestID, Status: ci.status, Attempts: ci.attempts}
	if etag != nil {
		r.ETag = *etag
	}
	return r
}

// call runs one SDK operation as the client's call op: a span, the breaker's
// fast failure, the rate-limit turn of the first request, and errors
// normalised to *Error (or the caller's context error).
//
// The first turn is taken here, before the SDK builds the request, so that
// many concurrent calls wait in the limiter rather than all building their
// requests at once and then queueing for the CPU between their turn and the
// send (which lets requests drift into the next second of the domain's
// count). Retries take their turns in the transport.
//
// fn gets a context that carries the call but is never cancelled: the SDK's
// retry helper returns on cancellation while its goroutine still writes the
// response (a data race), so cancellation is left to the transport, which
// watches the caller's context itself.
func (c *Client) call(ctx context.Context, op string, safe bool, fn func(ctx context.Context) error) (*callInfo, error) {
	return c.callIn(ctx, op, safe, groupOthers, fn)
}

// callFor is call for fn returning a value: the value of fn's last
// attempt.
func callFor[T any](ctx context.Context, c *Client, op string, safe bool, fn func(ctx context.Context) (T, error)) (T, *callInfo, error) {
	var v T
	ci, err := c.call(ctx, op, safe, func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	})
	return v, ci, err
}

// callIn is call for the rate-limit group g.
func (c *Client) callIn(ctx context.Context, op string, safe bool, g apiGroup, fn func(ctx context.Context) error) (*callInfo, error) {
	ctx, span := c.tracer.Start(ctx, "identitydomain."+op, trace.WithAttributes(
		attribute.String("iamflow.domain", c.domain),
		attribute.String("iamflow.identitydomain.op", op),
	))
	defer span.End()
	ci := &callInfo{ctx: ctx, op: op, safe: safe}
	var err error
	if rem, refused := c.breaker.check(); refused {
		err = c.breakerError(ci, rem, nil)
	} else if err = c.waitTurn(ctx, g); err == nil {
		ci.prepaid = true
		err = c.normalize(ci, fn(context.WithValue(context.WithoutCancel(ctx), callKey{}, ci)))
	}
	span.SetAttributes(attribute.Int("iamflow.identitydomain.attempts", ci.attempts))
	if ci.status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", ci.status))
	}
	if ci.requestID != "" {
		span.SetAttributes(attribute.String("iamflow.identitydomain.request_id", ci.requestID))
	}
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == KindNotFound {
			span.SetAttributes(attribute.String("iamflow.identitydomain.error_kind", string(e.Kind)))
		} else {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	return ci, err
}

// normalize turns whatever the SDK returned into an *Error, or the caller's
// context error.
func (c *Client) normalize(ci *callInfo, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Op == "" {
			e.Op = ci.op
		}
		if e.Domain == "" {
			e.Domain = c.domain
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if ci.attempts == 0 {
		return &Error{Kind: KindInvalidRequest, Op: ci.op, Domain: c.domain, Detail: "the request could not be built", Err: err}
	}
	return &Error{Kind: KindUnavailable, Op: ci.op, Domain: c.domain, Status: ci.status, RequestID: ci.requestID,
		Attempts: ci.attempts, Detail: "the answer could not be read", Err: err}
}

// notFound is the error of a lookup that matched nothing.
func (c *Client) notFound(op string, ci *callInfo, detail string) *Error {
	return &Error{Kind: KindNotFound, Op: op, Domain: c.domain, Detail: detail, RequestID: ci.requestID}
}

// newTokens is the bearer-token source of the configured auth: the OAuth
// client credentials, the resource principal's token exchange, or a static
// token. Secrets are resolved now, so a wrong reference fails New.
func (c *Client) newTokens(ctx context.Context, cfg Config, o options) (*token.Source, error) {
	domain := c.domain
	switch cfg.Auth {
	case AuthClientCredentials:
		sec, err := secret.Resolve(ctx, cfg.ClientSecret)
		if err != nil {
			return nil, fmt.Errorf("identitydomain: domain %s: client_secret: %w", domain, err)
		}
		return token.New(c.clientCredentialsFetcher(cfg.ClientID, sec), o.clock.Now, c.log.With("domain", domain), "identity domain"), nil
	case AuthResourcePrincipal:
		signer := o.rpSigner
		if signer == nil {
			var err error
			if signer, err = resourcePrincipalSigner(); err != nil {
				return nil, fmt.Errorf("identitydomain: domain %s: %w", domain, err)
			}
		}
		return token.New(c.resourcePrincipalFetcher(signer), o.clock.Now, c.log.With("domain", domain), "identity domain"), nil
	case AuthStatic:
		tok, err := secret.Resolve(ctx, cfg.StaticToken)
		if err != nil {
			return nil, fmt.Errorf("identitydomain: domain %s: static_token: %w", domain, err)
		}
		return token.Static(tok), nil
	}
	return nil, nil
}
