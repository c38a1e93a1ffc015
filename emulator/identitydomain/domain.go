package identitydomain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
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
	tokens  *tokenStore
	keys    *keyRing
	codes   *codeStore
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

	srvMu  sync.Mutex
	srv    *http.Server
	ln     net.Listener
	closed bool
	conns  map[net.Conn]http.ConnState
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
		tokens:  newTokenStore(),
		codes:   newCodeStore(),
		limiter: newRateLimiter(cfg.Limits.effective(cfg.Tier)),
		faults:  newFaultState(cfg.Faults),
		stats:   newCallStats(),
		ctx:     ctx,
		cancel:  cancel,
	}
	d.keys = newKeyRing(cfg.DomainID, o.clock.Now)
	d.events = newEventBus(d, o.httpClient)
	d.handler = http.HandlerFunc(d.serveHTTP)
	d.userH, d.groupH = d.userHandlers(), d.groupHandlers()
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
	d.srvMu.Lock()
	defer d.srvMu.Unlock()
	if d.closed {
		return errors.New("identitydomain: start: domain is closed")
	}
	if d.srv != nil {
		return errors.New("identitydomain: start: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("identitydomain: start: %w", err)
	}
	d.ln = ln
	d.conns = map[net.Conn]http.ConnState{}
	d.srv = &http.Server{Handler: d.handler, ReadHeaderTimeout: 10 * time.Second, ConnState: d.trackConn}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("serve", "err", err)
		}
	}()
	d.log.Info("identity domain emulator listening", "url", "http://"+ln.Addr().String(), "domainId", d.cfg.DomainID)
	return nil
}

// URL returns the base URL the domain serves on after Start, e.g.
// "http://127.0.0.1:40123"; use it as the SDK client's Host.
func (d *Domain) URL() string {
	d.srvMu.Lock()
	defer d.srvMu.Unlock()
	if d.ln == nil {
		return ""
	}
	return "http://" + d.ln.Addr().String()
}

// Close stops serving and stops delivering events; undelivered events stay
// counted as pending. It is safe to call more than once.
func (d *Domain) Close() error {
	d.srvMu.Lock()
	if d.closed {
		d.srvMu.Unlock()
		return nil
	}
	d.closed = true
	srv := d.srv
	d.srvMu.Unlock()
	d.cancel()
	var err error
	if srv != nil {
		d.closeUnusedConns()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e := srv.Shutdown(ctx); e != nil {
			err = fmt.Errorf("identitydomain: close: %w", e)
			_ = srv.Close()
		}
	}
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
	if err := d.Start(addr); err != nil {
		_ = d.Close()
		return err
	}
	<-ctx.Done()
	return d.Close()
}

// trackConn remembers connections that have not sent a request yet:
// http.Server.Shutdown waits up to 5s for those (a client's transport often
// dials spare connections), so Close closes them itself.
func (d *Domain) trackConn(c net.Conn, st http.ConnState) {
	d.srvMu.Lock()
	defer d.srvMu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(d.conns, c)
	default:
		d.conns[c] = st
	}
}

func (d *Domain) closeUnusedConns() {
	d.srvMu.Lock()
	defer d.srvMu.Unlock()
	for c, st := range d.conns {
		if st == http.StateNew {
			_ = c.Close()
		}
	}
}
