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

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/servicestatus"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/tlsfiles"
)

// Name is the service's name in status, logs and the CLI.
const Name = "ingest"

// Service is the ingest service. Create it with New.
type Service struct {
	cfg      Config
	bus      *bus.Bus
	log      *slog.Logger
	tel      *telemetry.Telemetry
	domains  domainIndex
	password secret.Value
	previous secret.Value // accepted besides password during a rotation
	confirm  *http.Client
	tls      *tlsfiles.Reloader // nil: plain HTTP
	version  string
	metrics  *metrics
	started  time.Time

	counters  counters
	seenTypes *logOnce // unknown event types already logged
	seenDoms  *logOnce // unknown domains already logged
	last      servicestatus.Last
	degraded  atomic.Bool
	store     storeState // JetStream out of room, for Ready

	mu   sync.Mutex
	addr net.Addr
	ln   net.Listener // given with WithListener, used by the first Listen

	mounts []mount // handlers served beside the webhook (WithHandler)
}

// mount is a handler served under a path.
type mount struct {
	path string
	h    http.Handler
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithTelemetry sets tracing and the HTTP instrumentation.
func WithTelemetry(t *telemetry.Telemetry) Option { return func(s *Service) { s.tel = t } }

// WithDomains sets the identity domains whose events are published; events
// from any other domain are acknowledged, counted and dropped.
func WithDomains(d ...Domain) Option { return func(s *Service) { s.domains = newDomainIndex(d) } }

// WithPassword gives the resolved Basic auth password; without it New resolves
// cfg.Password.
func WithPassword(v secret.Value) Option { return func(s *Service) { s.password = v } }

// WithConfirmClient replaces the HTTP client that fetches subscription
// confirmation URLs (tests). Redirects stay restricted to the same host.
func WithConfirmClient(c *http.Client) Option { return func(s *Service) { s.confirm = c } }

// WithRegisterer registers the service's Prometheus metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(s *Service) { s.metrics = newMetrics(r) }
}

// WithListener makes the service serve on ln instead of binding cfg.Listen,
// so a caller can know the webhook's address before the service runs.
func WithListener(ln net.Listener) Option { return func(s *Service) { s.ln = ln } }

// WithHandler serves h under path (path and everything below it) on the
// webhook's listener, beside the webhook: the SCIM endpoint of pushed
// sources (internal/scimserver) is mounted this way.
func WithHandler(path string, h http.Handler) Option {
	return func(s *Service) { s.mounts = append(s.mounts, mount{path: strings.TrimRight(path, "/"), h: h}) }
}

// WithVersion sets the version reported in status.
func WithVersion(v string) Option { return func(s *Service) { s.version = v } }

// New validates cfg and returns a Service publishing to b.
func New(ctx context.Context, cfg Config, b *bus.Bus, opts ...Option) (*Service, error) {
	if b == nil {
		return nil, errors.New("ingest: no bus")
	}
	s := &Service{cfg: cfg, bus: b, log: slog.New(slog.DiscardHandler), domains: newDomainIndex(nil), started: time.Now(),
		seenTypes: newLogOnce(1000), seenDoms: newLogOnce(1000)}
	for _, o := range opts {
		o(s)
	}
	if err := cfg.validate(!s.password.IsZero()); err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	if s.metrics == nil {
		s.metrics = newMetrics(nil)
	}
	if s.tel == nil {
		s.tel = telemetry.Noop()
	}
	if s.confirm == nil {
		s.confirm = newConfirmClient(cfg.Confirm.Timeout)
	}
	s.confirm = sameHostRedirects(s.confirm)
	s.confirm.Transport = telemetry.HTTPTransport(s.confirm.Transport, s.tel)
	if !cfg.Insecure && s.password.IsZero() {
		pw, err := secret.Resolve(ctx, cfg.Password)
		if err != nil {
			return nil, fmt.Errorf("ingest password: %w", err)
		}
		s.password = pw
	}
	if !cfg.Insecure && !cfg.PreviousPassword.IsZero() {
		pw, err := secret.Resolve(ctx, cfg.PreviousPassword)
		if err != nil {
			return nil, fmt.Errorf("ingest previous_password: %w", err)
		}
		s.previous = pw
	}
	if !cfg.Insecure {
		if err := secret.CheckStrength("ingest.password", s.password); err != nil {
			return nil, err
		}
		if !s.previous.IsZero() {
			if err := secret.CheckStrength("ingest.previous_password", s.previous); err != nil {
				return nil, err
			}
		}
	}
	if cfg.TLS.CertFile != "" {
		r, err := tlsfiles.NewReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, "", s.log)
		if err != nil {
			return nil, fmt.Errorf("ingest.tls: %w", err)
		}
		s.tls = r
	}
	return s, nil
}

// Name returns "ingest".
func (s *Service) Name() string { return Name }

// Handler is the webhook as an http.Handler, instrumented for tracing.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(s.cfg.Path, http.HandlerFunc(s.serveEvents))
	for _, m := range s.mounts {
		mux.Handle(m.path, m.h)
		mux.Handle(m.path+"/", m.h)
	}
	return telemetry.HTTPHandler(mux, "ingest", s.tel)
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
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	tlsOn := s.tls != nil
	if tlsOn {
		// The certificate files are read again when they change.
		ln = tls.NewListener(ln, s.tls.ServerConfig(&tls.Config{NextProtos: []string{"h2", "http/1.1"}}))
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("ingest listening", "addr", ln.Addr().String(), "path", s.cfg.Path, "tls", tlsOn)
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

// Status reports the service's counters and last activity.
func (s *Service) Status(context.Context) *iamflowv1.ServiceStatus {
	st := &iamflowv1.ServiceStatus{
		Name:     Name,
		Version:  s.version,
		Uptime:   durationpb.New(time.Since(s.started).Round(time.Second)),
		State:    iamflowv1.State_STATE_RUNNING,
		Counters: s.counters.snapshot(),
	}
	if s.degraded.Load() {
		st.State = iamflowv1.State_STATE_DEGRADED
	}
	s.last.Fill(st)
	return st
}

func (s *Service) recordError(err error) { s.last.Error(err, time.Now()) }
