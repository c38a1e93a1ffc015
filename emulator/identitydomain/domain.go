package identitydomain

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"github.com/iamflow/iamflow/emulator/internal/expiring"
	"github.com/iamflow/iamflow/emulator/listen"
)

// Domain is one emulated OCI IAM Identity Domain: a SCIM server, an OAuth
// token endpoint, an event emitter and a fault injector over an in-memory
// directory. It is safe for concurrent use.
type Domain struct {
	cfg     Config
	log     *slog.Logger
	clock   Clock
	ids     *ids
	store   *store
	tokens  *expiring.Map[*Client] // access token -> client
	keys    *keyRing
	codes   *expiring.Map[authCode]
	limiter *rateLimiter
	faults  *faultState
	events  *eventBus
	stats   *callStats
	writes  writeLog
	handler http.Handler
	userH   *resourceHandlers
	groupH  *resourceHandlers

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	lis *listen.Server
}

// New validates cfg and builds a Domain. It starts the event delivery worker
// when cfg.EventsWebhook.URL is set; Close stops it. Call Start (or serve
// Handler yourself) to answer HTTP.
func New(cfg Config, opts ...Option) (*Domain, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	o := options{logger: slog.New(slog.DiscardHandler), clock: systemClock{}, httpClient: &http.Client{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil || o.clock == nil || o.httpClient == nil {
		return nil, errors.New("identitydomain: nil logger, clock or HTTP client option")
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Domain{
		cfg:     cfg,
		log:     o.logger.With("domain", cfg.Name),
		clock:   o.clock,
		ids:     newIDs(o.seed),
		store:   newStore(),
		tokens:  expiring.New[*Client](tokenSweepAt),
		codes:   expiring.New[authCode](0), // codes live minutes: sweep on every one
		limiter: newRateLimiter(cfg.Limits.effective(cfg.Tier)),
		faults:  newFaultState(cfg.Faults),
		stats:   newCallStats(),
		ctx:     ctx,
		cancel:  cancel,
		lis:     listen.New("identitydomain", "domain"),
	}
	d.keys = newKeyRing(cfg.DomainID, o.clock.Now)
	d.events = newEventBus(d, o.httpClient)
	d.handler = http.HandlerFunc(d.serveHTTP)
	d.userH = resourceHandlersOf(d, d.userKind, d.createUser, d.putUser, d.patchUser)
	d.groupH = resourceHandlersOf(d, d.groupKind, d.createGroup, d.putGroup, d.patchGroup)
	if cfg.EventsWebhook.URL != "" {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.events.deliverLoop(ctx)
		}()
	}
	return d, nil
}

// Config returns the domain's configuration with defaults filled in.
func (d *Domain) Config() Config { return d.cfg }

// Handler returns the domain's HTTP handler: /oauth2/v1/token, /admin/v1/...
// and the /_emulator/ control endpoints.
func (d *Domain) Handler() http.Handler { return d.handler }

// Start listens on addr (e.g. "127.0.0.1:0") and serves Handler in the
// background until Close.
func (d *Domain) Start(addr string) error {
	url, err := d.lis.Start(addr, d.handler, d.log)
	if err != nil {
		return err
	}
	d.log.Info("identity domain emulator listening", "url", url, "domainId", d.cfg.DomainID)
	return nil
}

// URL returns the base URL the domain serves on after Start, e.g.
// "http://127.0.0.1:40123"; use it as the SDK client's Host.
func (d *Domain) URL() string { return d.lis.URL() }

// Close stops serving and stops delivering events; undelivered events stay
// counted as pending. It is safe to call more than once.
func (d *Domain) Close() error {
	d.cancel()
	err := d.lis.Close()
	d.wg.Wait()
	return err
}

// Run serves a domain built from cfg on addr until ctx is cancelled; it is
// what `iamflow emulate identity-domain` runs.
func Run(ctx context.Context, cfg Config, addr string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d, err := New(cfg, WithLogger(logger))
	if err != nil {
		return err
	}
	return listen.Run(ctx, d, addr, nil)
}
