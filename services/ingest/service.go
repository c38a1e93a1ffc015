// Package ingest is the HTTPS target for OCI Notifications, Events and
// Connector Hub. It authenticates each request, parses whatever shape OCI sent,
// maps the identity domain to its configured short name and publishes every
// identity event to JetStream, answering 2xx only after JetStream has stored
// them all. Nothing it acknowledges is lost: when JetStream is unreachable or
// slow it answers 503 with Retry-After, and OCI delivers again.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/tlsfiles"
)

// Name is the service's name in status, logs and the CLI.
const Name = "ingest"

// Service is the ingest service. Create it with New.
type Service struct {
	kit      *servicekit.Kit
	cfg      Config
	bus      *bus.Bus
	domains  domainIndex
	password secret.Value
	previous secret.Value // accepted besides password during a rotation
	creds    credHashes   // of the user name and passwords, for authorized
	bodies   bodyPool
	confirm  *http.Client
	tls      *tlsfiles.Reloader // nil: plain HTTP
	metrics  *metrics

	counters  counters
	seenTypes *logOnce // unknown event types already logged
	seenDoms  *logOnce // unknown domains already logged
	degraded  atomic.Bool
	store     storeState // JetStream out of room, for Ready

	mu   sync.Mutex
	addr net.Addr
	ln   net.Listener // Webhook.Listener, used by the first Listen

	mounts []Mount // Webhook.Mounts, paths without a trailing slash
}

// Webhook is what the process gives the webhook besides its configuration.
type Webhook struct {
	// Domains are the identity domains whose events are published; events
	// from any other domain are acknowledged, counted and dropped.
	Domains []Domain
	// Password is the resolved Basic auth password (dev mode generates
	// one); zero: New resolves cfg.Password.
	Password secret.Value
	// Listener, when set, is where the webhook serves instead of binding
	// cfg.Listen, so a caller can know its address before the service runs.
	Listener net.Listener
	// ConfirmClient replaces the HTTP client that fetches subscription
	// confirmation URLs (tests). Redirects stay restricted to the same host.
	ConfirmClient *http.Client
	// Mounts are handlers served on the webhook's listener beside the
	// webhook: the SCIM endpoint of pushed sources (internal/scimserver)
	// is mounted this way.
	Mounts []Mount
}

// Mount is a handler served under a path (the path and everything below it).
type Mount struct {
	Path    string
	Handler http.Handler
}

// New validates cfg and returns a Service publishing to b. The servicekit
// options give it its logger, telemetry (tracing and the HTTP
// instrumentation), metrics registerer and version.
func New(ctx context.Context, cfg Config, b *bus.Bus, w Webhook, opts ...servicekit.Option) (*Service, error) {
	if b == nil {
		return nil, errors.New("ingest: no bus")
	}
	kit, err := servicekit.New(Name, b, opts...)
	if err != nil {
		return nil, err
	}
	s := &Service{kit: kit, cfg: cfg, bus: b, domains: newDomainIndex(w.Domains), password: w.Password,
		confirm: w.ConfirmClient, ln: w.Listener, metrics: newMetrics(kit.Registerer()),
		seenTypes: newLogOnce(1000), seenDoms: newLogOnce(1000)}
	for _, m := range w.Mounts {
		s.mounts = append(s.mounts, Mount{Path: strings.TrimRight(m.Path, "/"), Handler: m.Handler})
	}
	if err := cfg.validate(!s.password.IsZero()); err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	if s.confirm == nil {
		s.confirm = newConfirmClient(cfg.Confirm.Timeout)
	}
	s.confirm = sameHostRedirects(s.confirm)
	s.confirm.Transport = telemetry.HTTPTransport(s.confirm.Transport, kit.Telemetry())
	if err := s.resolvePasswords(ctx); err != nil {
		return nil, err
	}
	s.creds = newCredHashes(cfg.Username, s.password, s.previous)
	if cfg.TLS.CertFile != "" {
		r, err := tlsfiles.NewReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, "", kit.Log())
		if err != nil {
			return nil, fmt.Errorf("ingest.tls: %w", err)
		}
		s.tls = r
	}
	return s, nil
}

// resolvePasswords resolves the webhook's password (unless given) and the
// previous one of a rotation, and checks their strength (unless insecure).
func (s *Service) resolvePasswords(ctx context.Context) error {
	cfg := s.cfg
	if cfg.Insecure {
		return nil
	}
	if s.password.IsZero() {
		pw, err := secret.Resolve(ctx, cfg.Password)
		if err != nil {
			return fmt.Errorf("ingest password: %w", err)
		}
		s.password = pw
	}
	if !cfg.PreviousPassword.IsZero() {
		pw, err := secret.Resolve(ctx, cfg.PreviousPassword)
		if err != nil {
			return fmt.Errorf("ingest previous_password: %w", err)
		}
		s.previous = pw
	}
	if err := secret.CheckStrength("ingest.password", s.password); err != nil {
		return err
	}
	if !s.previous.IsZero() {
		if err := secret.CheckStrength("ingest.previous_password", s.previous); err != nil {
			return err
		}
	}
	return nil
}

// Name returns "ingest".
func (s *Service) Name() string { return Name }

// Handler is the webhook as an http.Handler, instrumented for tracing.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(s.cfg.Path, http.HandlerFunc(s.serveEvents))
	for _, m := range s.mounts {
		mux.Handle(m.Path, m.Handler)
		mux.Handle(m.Path+"/", m.Handler)
	}
	return telemetry.HTTPHandler(mux, "ingest", s.kit.Telemetry())
}

// Listen binds the webhook's address. Run calls it; tests and dev mode call it
// first to learn the bound address.
func (s *Service) Listen() (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ln := s.ln
	s.ln = nil
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return nil, fmt.Errorf("ingest listen on %s: %w", s.cfg.Listen, err)
		}
	}
	s.addr = ln.Addr()
	return ln, nil
}

// Addr is the bound address once Listen has run, else nil.
func (s *Service) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run serves the webhook until ctx is cancelled, then lets in-flight requests
// finish (up to the publish timeout plus a margin).
func (s *Service) Run(ctx context.Context) error {
	ln, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves the webhook on ln until ctx is cancelled.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.cfg.PublishTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.kit.Log().Handler(), slog.LevelWarn),
	}
	tlsOn := s.tls != nil
	if tlsOn {
		// The certificate files are read again when they change.
		ln = tls.NewListener(ln, s.tls.ServerConfig(&tls.Config{NextProtos: []string{"h2", "http/1.1"}}))
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.kit.Log().Info("ingest listening", "addr", ln.Addr().String(), "path", s.cfg.Path, "tls", tlsOn)
	select {
	case err := <-errc:
		return fmt.Errorf("ingest serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("ingest shutdown: %w", err)
	}
	return nil
}

// Status reports the service's counters and last activity. The webhook
// answers from New on, so its state is RUNNING, or DEGRADED while JetStream
// refuses events.
func (s *Service) Status(ctx context.Context) *iamflowv1.ServiceStatus {
	st := s.kit.Status(s.counters.snapshot())
	st.State = iamflowv1.State_STATE_RUNNING
	if s.degraded.Load() {
		st.State = iamflowv1.State_STATE_DEGRADED
	}
	return s.kit.Report(ctx, st)
}
