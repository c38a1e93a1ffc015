// Package admin is the admin server every iamflow process runs: one gRPC
// listener and one HTTP listener, carrying the status API of every service in
// the process (in monolithic mode, all of them) and the services' own admin
// APIs.
//
// gRPC (Config.GRPCAddr) serves grpc.health.v1, server reflection (so
// grpcurl works), iamflow.v1.StatusService and whatever services register on
// GRPC(). HTTP (Config.HTTPAddr) serves the same APIs as REST through
// grpc-gateway under /v1/, Prometheus metrics on /metrics, liveness on
// /healthz, readiness on /readyz and the web console on / (internal/console,
// unless admin.console.disabled).
//
// Every admin call, gRPC or REST, needs "authorization: Bearer <token>",
// unless the server runs in dev mode (Config.Insecure): the admin token
// (an operator), or, WithPeople, a token from the login domain (a person).
// The caller is in the service's context (CallerFrom), and a Policy
// decides first what it may call: by default operators anything, people
// the read-only calls and those opened with AllowPeople. Health, reflection,
// /healthz, /readyz and /metrics are open. With Config.TLS both listeners
// serve TLS from certificate files read again when they change, and with a
// client CA every admin call also needs a client certificate it signed
// (mutual TLS). A listener off loopback without TLS is refused unless
// Config.AllowPlaintext.
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/console"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/tlsfiles"
	"github.com/iamflow/iamflow/internal/validate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ReadinessTimeout is how long /readyz waits for its checks; a check that
// has not answered by then fails.
const ReadinessTimeout = 2 * time.Second

// ShutdownTimeout is how long Run gives Shutdown once its context ends.
const ShutdownTimeout = 10 * time.Second

// StatusProvider reports one service's status for iamflow.v1.StatusService.
// Status should be quick: GetStatus calls the providers one after another.
type StatusProvider interface {
	Status(ctx context.Context) *iamflowv1.ServiceStatus
}

// StatusFunc adapts a function to StatusProvider.
type StatusFunc func(ctx context.Context) *iamflowv1.ServiceStatus

// Status implements StatusProvider.
func (f StatusFunc) Status(ctx context.Context) *iamflowv1.ServiceStatus { return f(ctx) }

// Option changes how New builds the Server.
type Option func(*options)

type options struct {
	log      *slog.Logger
	tel      *telemetry.Telemetry
	registry *prometheus.Registry
	token    *secret.Value
	version  string
	people   PersonAuthenticator
	policy   Policy
}

// WithLogger logs to l (default: the telemetry's logger if WithTelemetry is
// given, otherwise nothing).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithTelemetry traces gRPC calls and REST requests with t's providers.
func WithTelemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.tel = t } }

// WithRegistry serves r on /metrics. The default is a new registry with the
// Go and process collectors. Services register their metrics on Registry().
func WithRegistry(r *prometheus.Registry) Option { return func(o *options) { o.registry = r } }

// WithToken gives the resolved bearer token, e.g. one generated in dev mode.
// Without it New resolves Config.Token.
func WithToken(v secret.Value) Option { return func(o *options) { o.token = &v } }

// WithPeople lets people call the admin API with a token from the login
// domain, verified by p (an *oidc.Authenticator), beside the admin token.
// Without it only the admin token is accepted.
func WithPeople(p PersonAuthenticator) Option { return func(o *options) { o.people = p } }

// WithPolicy decides which callers may make which calls (default:
// DefaultPolicy). It runs for every authenticated call, gRPC and REST.
func WithPolicy(p Policy) Option { return func(o *options) { o.policy = p } }

// WithVersion is the iamflow version, reported in the status of providers
// that do not set their own.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// Server is the admin server. Make it with New, register services on GRPC()
// and RegisterGateway, then Start it (or Run it).
type Server struct {
	cfg      Config
	log      *slog.Logger
	tel      *telemetry.Telemetry
	registry *prometheus.Registry
	version  string
	created  time.Time
	auth     *authenticator
	policy   Policy
	tls      *tlsfiles.Reloader // nil: plaintext

	grpc    *grpc.Server
	health  *health.Server
	gw      *runtime.ServeMux
	console http.Handler // the web console at /; nil when disabled

	// ctx lives as long as the server; RegisterGateway passes it on.
	ctx    context.Context
	cancel context.CancelFunc

	readyTimeout time.Duration
	draining     atomic.Bool
	notServing   atomic.Bool

	mu        sync.Mutex
	providers map[string]StatusProvider
	checks    map[string]func(context.Context) error
	// openToPeople are the methods and routes AllowPeople opened.
	openToPeople map[string]bool
	started      bool
	grpcLis      net.Listener
	httpLis      net.Listener
	httpSrv      *http.Server

	serveErr     chan error
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// New checks cfg, resolves the token (unless WithToken gives it or cfg is
// Insecure) and builds the server. Nothing listens until Start.
func New(cfg Config, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.validate(o.token != nil); err != nil {
		return nil, validate.Prefix("admin.", err)
	}
	log := o.logger()
	token, err := cfg.adminToken(o)
	if err != nil {
		return nil, err
	}
	reg := o.registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	var reloader *tlsfiles.Reloader
	if cfg.TLS.Enabled() {
		if reloader, err = tlsfiles.NewReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ClientCAFile, log); err != nil {
			return nil, fmt.Errorf("admin.tls: %w", err)
		}
	}
	auth := newAuthenticator(token, cfg.Insecure, log)
	auth.requireClientCert = cfg.TLS.ClientCAFile != ""
	auth.people = o.people
	policy := o.policy
	if policy == nil {
		policy = DefaultPolicy
	}
	s := &Server{
		cfg:          cfg,
		log:          log,
		tel:          o.tel,
		registry:     reg,
		version:      o.version,
		created:      time.Now(),
		auth:         auth,
		policy:       policy,
		tls:          reloader,
		health:       health.NewServer(),
		readyTimeout: ReadinessTimeout,
		providers:    map[string]StatusProvider{},
		checks:       map[string]func(context.Context) error{},
		openToPeople: map[string]bool{},
		serveErr:     make(chan error, 2),
	}
	s.gw = runtime.NewServeMux(runtime.WithMiddlewares(s.gatewayPolicy))
	s.ctx, s.cancel = context.WithCancel(context.Background())

	if err := s.newGRPC(o); err != nil {
		return nil, err
	}

	if !cfg.Console.Disabled {
		c, err := console.New(cfg.Console, s.apiHandler(), console.WithLogger(log), console.WithDevMode(cfg.Insecure),
			console.WithSecureCookies(cfg.TLS.Enabled()))
		if err != nil {
			return nil, fmt.Errorf("admin.console: %w", err)
		}
		s.console = c
	}

	for _, w := range cfg.Warnings() {
		log.Warn("admin: " + w)
	}
	return s, nil
}

// logger is the admin server's logger: WithLogger's, else the
// telemetry's, else none.
func (o options) logger() *slog.Logger {
	log := o.log
	if log == nil && o.tel != nil {
		log = o.tel.Logger
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return log.With("component", "admin")
}

// adminToken is the operators' bearer token (none when insecure):
// WithToken's, else admin.token resolved, and strong enough either way.
func (cfg Config) adminToken(o options) (secret.Value, error) {
	var token secret.Value
	if cfg.Insecure {
		return token, nil
	}
	if o.token != nil {
		token = *o.token
		if token.IsZero() {
			return token, errors.New("admin: WithToken: the token is empty")
		}
	} else {
		// Resolving env: and file: references needs no context.
		v, err := secret.Resolve(context.Background(), cfg.Token)
		if err != nil {
			return token, fmt.Errorf("admin.token: %w", err)
		}
		token = v
	}
	if err := secret.CheckStrength("admin.token", token); err != nil {
		return token, err
	}
	return token, nil
}

// newGRPC makes the gRPC server (authenticated, traced with telemetry,
// over TLS when configured) with health, reflection and the status
// service, and the status service's REST routes.
func (s *Server) newGRPC(o options) error {
	gopts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
	}
	if o.tel != nil {
		gopts = append(gopts, telemetry.GRPCServerOption(o.tel))
	}
	if s.tls != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(s.tls.ServerConfig(&tls.Config{}))))
	}
	s.grpc = grpc.NewServer(gopts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	statusSvc := statusService{s: s}
	iamflowv1.RegisterStatusServiceServer(s.grpc, statusSvc)
	if err := iamflowv1.RegisterStatusServiceHandlerServer(s.ctx, s.gw, statusSvc); err != nil {
		return fmt.Errorf("admin: registering the status REST handlers: %w", err)
	}
	return nil
}

// Authenticate returns who the authorization header value ("Bearer
// <token>") speaks for, as the admin API decides it for every call: an
// operator (the admin token, or no token in dev mode) or a person (a token
// from the login domain). A web console on the admin listener uses it for
// its own requests; errors are safe to show.
func (s *Server) Authenticate(ctx context.Context, authorization string) (*Caller, error) {
	return s.auth.authenticate(ctx, authorization)
}

// GRPC returns the gRPC server so that services register their admin
// services on it. Register before Start.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health returns the grpc.health.v1 server. The overall status ("") is
// SERVING from New until Shutdown; services set their own names' status.
func (s *Server) Health() *health.Server { return s.health }

// SetServing reports whether the process as a whole serves: it sets the
// overall gRPC health status ("") to SERVING or NOT_SERVING, and /readyz
// fails while not serving. A new server serves.
func (s *Server) SetServing(serving bool) {
	if s.draining.Load() {
		return // Shutdown has set NOT_SERVING for good
	}
	s.notServing.Store(!serving)
	st := healthpb.HealthCheckResponse_SERVING
	if !serving {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.health.SetServingStatus("", st)
}

// Registry returns the Prometheus registry served on /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// RegisterGateway calls register at once with the grpc-gateway mux served
// under /v1/, so that a service adds its REST handlers, typically with the
// generated in-process form:
//
//	srv.RegisterGateway(func(ctx context.Context, mux *runtime.ServeMux) error {
//		return examplev1.RegisterExampleServiceHandlerServer(ctx, mux, impl)
//	})
//
// The in-process form skips gRPC interceptors; the admin server
// authenticates REST requests itself. ctx lasts until Shutdown. It must be
// called before Start.
func (s *Server) RegisterGateway(register func(ctx context.Context, mux *runtime.ServeMux) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("admin: RegisterGateway after Start: register REST handlers before starting the server")
	}
	if err := register(s.ctx, s.gw); err != nil {
		return fmt.Errorf("admin: registering REST handlers: %w", err)
	}
	return nil
}

// AddStatus makes p answer for the service name in GetStatus. A second
// provider for the same name replaces the first. Safe at any time.
func (s *Server) AddStatus(name string, p StatusProvider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.providers[name]; dup {
		s.log.Warn("admin: status provider replaced", "service", name)
	}
	s.providers[name] = p
}

// AddReadinessCheck adds a check to /readyz: the process is ready only while
// every check returns nil within ReadinessTimeout. check gets a context that
// ends at that deadline. A second check with the same name replaces the
// first. Safe at any time.
func (s *Server) AddReadinessCheck(name string, check func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// GRPCAddr returns the address gRPC listens on once started (with the real
// port when the configured one is 0), the configured address before. It is
// never nil.
func (s *Server) GRPCAddr() net.Addr { return s.addr(&s.grpcLis, s.cfg.GRPCAddr) }

// HTTPAddr returns the address HTTP listens on once started (with the real
// port when the configured one is 0), the configured address before. It is
// never nil.
func (s *Server) HTTPAddr() net.Addr { return s.addr(&s.httpLis, s.cfg.HTTPAddr) }

// addr is the address of *lis, read under s.mu, or configured before it
// is bound.
func (s *Server) addr(lis *net.Listener, configured string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *lis != nil {
		return (*lis).Addr()
	}
	return configAddr(configured)
}

// configAddr is a configured, not yet bound, TCP address.
type configAddr string

// Network implements net.Addr.
func (configAddr) Network() string { return "tcp" }

// String implements net.Addr.
func (a configAddr) String() string { return string(a) }

// Start binds both listeners and serves them in the background; it returns
// once both are bound, so GRPCAddr and HTTPAddr are then the real addresses.
// ctx bounds the binding only: stop the server with Shutdown. A Server
// starts once.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("admin: already started")
	}
	if s.ctx.Err() != nil {
		return errors.New("admin: Start after Shutdown")
	}
	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("admin: gRPC listener (admin.grpc_addr): %w", err)
	}
	httpLis, err := lc.Listen(ctx, "tcp", s.cfg.HTTPAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("admin: HTTP listener (admin.http_addr): %w", err)
	}
	s.started = true
	s.grpcLis, s.httpLis = grpcLis, httpLis
	if s.tls != nil {
		httpLis = tls.NewListener(httpLis, s.tls.ServerConfig(&tls.Config{NextProtos: []string{"h2", "http/1.1"}}))
	}
	s.httpSrv = &http.Server{
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}

	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("admin: gRPC server failed", "error", err)
			s.serveErr <- fmt.Errorf("admin: gRPC server: %w", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin: HTTP server failed", "error", err)
			s.serveErr <- fmt.Errorf("admin: HTTP server: %w", err)
		}
	}()

	auth := "bearer token"
	if s.cfg.Insecure {
		auth = "none"
		s.log.Warn("admin: the admin API is unauthenticated (dev mode): anyone who can reach it can call it")
	}
	if s.auth.people != nil {
		auth += " or login token"
	}
	if s.auth.requireClientCert {
		auth += " and client certificate"
	}
	s.log.Info("admin: serving", "grpc_addr", grpcLis.Addr().String(), "http_addr", httpLis.Addr().String(), "auth", auth, "tls", s.tls != nil)
	return nil
}

// Shutdown stops the server gracefully: /readyz and gRPC health turn to not
// serving, no new calls are accepted, and calls in progress may finish until
// ctx ends; then the remaining connections are closed. It returns ctx's
// error if it had to cut calls short. Calling it again returns the first
// result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.health.Shutdown()
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	defer s.cancel()
	if !started {
		s.grpc.Stop()
		return nil
	}

	var errs []error
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		_ = s.httpSrv.Close()
		errs = append(errs, fmt.Errorf("admin: HTTP shutdown: %w", err))
	}
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
		<-stopped
		errs = append(errs, fmt.Errorf("admin: gRPC graceful stop: %w", ctx.Err()))
	}
	s.wg.Wait()
	s.log.Info("admin: stopped")
	return errors.Join(errs...)
}

// Run starts the server, serves until ctx ends or a listener fails, then
// shuts down, giving calls in progress up to ShutdownTimeout. It returns the
// listener's failure or the shutdown's error, nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-s.serveErr:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	return errors.Join(serveErr, s.Shutdown(sctx))
}

// apiHandler is the REST API as /v1/ serves it: authentication, then the
// gateway; the console calls it in-process.
func (s *Server) apiHandler() http.Handler {
	var api http.Handler = s.auth.httpMiddleware(s.gw)
	if s.tel != nil {
		api = telemetry.HTTPHandler(api, "admin", s.tel)
	}
	return api
}

// httpHandler routes the HTTP listener.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", s.apiHandler())
	if s.console != nil {
		mux.Handle("/", s.console) // the web console (internal/console)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: promLogger{s.log},
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	return mux
}

// promLogger sends promhttp's errors to the admin logger.
type promLogger struct{ log *slog.Logger }

// Println implements promhttp.Logger.
func (l promLogger) Println(v ...any) {
	l.log.Warn("admin: serving /metrics", "error", strings.TrimSpace(fmt.Sprintln(v...)))
}

type checkResult struct {
	name string
	err  error
}

// serveReadyz runs every readiness check concurrently and answers 200 when
// all pass, 503 otherwise; the body lists each check as "[+]name ok" or
// "[-]name: error".
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	checks := maps.Clone(s.checks)
	timeout := s.readyTimeout
	s.mu.Unlock()

	results := map[string]error{}
	if s.draining.Load() {
		results["shutdown"] = errors.New("the server is shutting down")
	} else if s.notServing.Load() {
		results["serving"] = errors.New("the process is not serving (SetServing(false))")
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	done := make(chan checkResult, len(checks))
	for name, check := range checks {
		go func() { done <- checkResult{name, runCheck(ctx, check)} }()
	}
	for range checks {
		select {
		case res := <-done:
			results[res.name] = res.err
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	for name := range checks {
		if _, ok := results[name]; !ok {
			results[name] = fmt.Errorf("no answer within %v", timeout)
		}
	}

	ready := true
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(results)) {
		if err := results[name]; err != nil {
			ready = false
			fmt.Fprintf(&b, "[-]%s: %v\n", name, err)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprint(w, "not ready\n"+b.String())
		return
	}
	_, _ = fmt.Fprint(w, "ok\n"+b.String())
}

// runCheck runs one check, turning a panic into a failure.
func runCheck(ctx context.Context, check func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	return check(ctx)
}

// statusService implements iamflow.v1.StatusService over the providers.
type statusService struct {
	iamflowv1.UnimplementedStatusServiceServer
	s *Server
}

// GetStatus implements iamflowv1.StatusServiceServer.
func (st statusService) GetStatus(ctx context.Context, req *iamflowv1.GetStatusRequest) (*iamflowv1.GetStatusResponse, error) {
	s := st.s
	s.mu.Lock()
	providers := maps.Clone(s.providers)
	s.mu.Unlock()

	names := slices.Sorted(maps.Keys(providers))
	if want := req.GetService(); want != "" {
		if _, ok := providers[want]; !ok {
			known := "none are registered"
			if len(names) > 0 {
				known = "known: " + strings.Join(names, ", ")
			}
			return nil, status.Errorf(codes.NotFound, "admin: no service %q in this process (%s)", want, known)
		}
		names = []string{want}
	}
	resp := &iamflowv1.GetStatusResponse{Services: make([]*iamflowv1.ServiceStatus, 0, len(names))}
	for _, name := range names {
		resp.Services = append(resp.Services, s.statusOf(ctx, name, providers[name]))
	}
	return resp, nil
}

// statusOf asks p and fills what it left empty: name, version and uptime.
func (s *Server) statusOf(ctx context.Context, name string, p StatusProvider) *iamflowv1.ServiceStatus {
	var st *iamflowv1.ServiceStatus
	if got := p.Status(ctx); got != nil {
		st = proto.CloneOf(got) // the provider may keep and reuse its message
	} else {
		st = &iamflowv1.ServiceStatus{}
	}
	if st.Name == "" {
		st.Name = name
	}
	if st.Version == "" {
		st.Version = s.version
	}
	if st.Uptime == nil {
		st.Uptime = durationpb.New(time.Since(s.created).Round(time.Second))
	}
	return st
}
