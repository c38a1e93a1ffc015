// Package app assembles an iamflow process: telemetry, the bus (NATS or the
// embedded JetStream), the admin server and the services named on the command
// line, and runs them until the context ends. Monolithic mode is every service
// in one App; microservices mode is one App per service.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/deadletters"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/oidc"
	"github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/scimserver"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/services/capabilities"
	"github.com/iamflow/iamflow/services/dbprovisioner"
	"github.com/iamflow/iamflow/services/expiry"
	"github.com/iamflow/iamflow/services/ingest"
	"github.com/iamflow/iamflow/services/replicator"
)

// Service is what each iamflow service gives the process that runs it.
type Service interface {
	// Name is the service's name: "ingest", "replicator", ...
	Name() string
	// Run works until ctx is cancelled, then stops gracefully.
	Run(ctx context.Context) error
	// Status reports the service's state and progress.
	Status(ctx context.Context) *iamflowv1.ServiceStatus
}

// errNotConfigured is what a constructor returns when the configuration gives
// its service nothing to do; `serve all` then skips the service.
var errNotConfigured = errors.New("not configured")

// constructor builds one service from the shared parts.
type constructor func(ctx context.Context, a *App) (Service, error)

var constructors = map[string]constructor{
	ingest.Name:        newIngest,
	capabilities.Name:  newCapabilities,
	expiry.Name:        newExpiry,
	replicator.Name:    newReplicator,
	dbprovisioner.Name: newDbprovisioner,
}

// ServiceNames lists the services this build can run, sorted.
func ServiceNames() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// App is one running iamflow process.
type App struct {
	cfg      config.Config
	version  string
	tel      *telemetry.Telemetry
	registry *prometheus.Registry
	bus      *bus.Bus
	admin    *admin.Server
	services []Service
	log      *slog.Logger

	// Credentials created for dev mode, if any.
	devWebhookPassword secret.Value
	// A webhook listener bound before the app was built, if any.
	ingestListener net.Listener
	// One Identity Domains client per domain, shared by the services, since
	// rate limits and the circuit breaker are per domain.
	clients map[string]*identitydomain.Client
	// One ORDS client per database, closed with the app.
	ordsClients []*ords.Client
	// The process's secret resolver for vault: references, built on first use.
	secrets *secret.Resolver
	// The SCIM endpoint of pushed sources, if any (served by ingest).
	scim *scimserver.Server
}

// Option configures an App.
type Option func(*App)

// WithVersion sets the version reported in status.
func WithVersion(v string) Option { return func(a *App) { a.version = v } }

// WithTelemetry uses t instead of setting telemetry up from the config.
func WithTelemetry(t *telemetry.Telemetry) Option { return func(a *App) { a.tel = t } }

// WithWebhookPassword gives ingest its password directly (dev mode).
func WithWebhookPassword(v secret.Value) Option { return func(a *App) { a.devWebhookPassword = v } }

// WithIngestListener makes ingest serve on ln (bound by the caller) instead of
// binding ingest.listen itself.
func WithIngestListener(ln net.Listener) Option { return func(a *App) { a.ingestListener = ln } }

// New validates cfg, connects the bus and builds the named services ("all"
// means every service). Close it if Run is never called.
func New(ctx context.Context, cfg config.Config, names []string, opts ...Option) (_ *App, err error) {
	all := slices.Contains(names, "all")
	names, err = expand(names)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	a := &App{cfg: cfg, version: "dev"}
	for _, o := range opts {
		o(a)
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.tel == nil {
		tcfg := cfg.Telemetry
		if tcfg.ServiceName == "" {
			tcfg.ServiceName = "iamflow-" + strings.Join(names, "-")
		}
		if a.tel, err = telemetry.Setup(ctx, tcfg); err != nil {
			return nil, fmt.Errorf("telemetry: %w", err)
		}
	}
	a.log = a.tel.Logger
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if a.bus, err = bus.Open(ctx, cfg.NATS, bus.WithLogger(a.log), bus.WithTracerProvider(a.tel.TracerProvider),
		bus.WithPropagator(a.tel.Propagator), bus.WithRegisterer(a.registry)); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	adminCfg := cfg.Admin
	adminCfg.Insecure = adminCfg.Insecure || cfg.Dev
	adminOpts := []admin.Option{admin.WithLogger(a.log), admin.WithTelemetry(a.tel),
		admin.WithRegistry(a.registry), admin.WithVersion(a.version)}
	if cfg.Login.Enabled() {
		people, err := a.loginAuthenticator(ctx)
		if err != nil {
			return nil, fmt.Errorf("login: %w", err)
		}
		adminOpts = append(adminOpts, admin.WithPeople(people))
	}
	if a.admin, err = admin.New(adminCfg, adminOpts...); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	a.admin.AddReadinessCheck("nats", a.bus.Ready)
	if err := deadletters.New(a.bus).Endpoint().ServeOn(a.admin); err != nil { // IAM_DLQ: every process shows and replays it
		return nil, fmt.Errorf("dead letters API: %w", err)
	}
	for _, n := range names {
		svc, err := constructors[n](ctx, a)
		if errors.Is(err, errNotConfigured) && all {
			a.log.Info("service not started: it is not configured", "service", n, "reason", err.Error())
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		a.services = append(a.services, svc)
		a.admin.AddStatus(n, svc)
		if r, ok := svc.(interface{ Ready(context.Context) error }); ok {
			a.admin.AddReadinessCheck(n, r.Ready) // e.g. ingest: JetStream has no room for events
		}
	}
	return a, nil
}

func expand(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("name the services to run (%s) or all", strings.Join(ServiceNames(), ", "))
	}
	var out []string
	for _, n := range names {
		if n == "all" {
			return ServiceNames(), nil
		}
		if _, ok := constructors[n]; !ok {
			return nil, fmt.Errorf("unknown service %q: this build has %s", n, strings.Join(ServiceNames(), ", "))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Bus is the process's bus.
func (a *App) Bus() *bus.Bus { return a.bus }

// Logger is the process's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// Admin is the process's admin server.
func (a *App) Admin() *admin.Server { return a.admin }

// Services lists the names of the services this process runs.
func (a *App) Services() []string {
	names := make([]string, 0, len(a.services))
	for _, s := range a.services {
		names = append(names, s.Name())
	}
	return names
}

// Service returns the running service with that name, or nil.
func (a *App) Service(name string) Service {
	for _, s := range a.services {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// Run starts the admin server and every service, and blocks until ctx is
// cancelled or a service fails; then it stops them all, services first and
// the bus last, so in-flight work drains before the connection closes.
func (a *App) Run(ctx context.Context) error {
	defer func() {
		a.Close()
		a.log.Info("stopped", "services", a.Services())
	}()
	if err := a.admin.Start(ctx); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(a.services))
	for i, s := range a.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs[i] = fmt.Errorf("%s: %w", s.Name(), err)
				a.log.Error("service stopped", "service", s.Name(), "error", err)
			}
			cancel() // one service down takes the process down: let the supervisor restart it
		}()
	}
	a.admin.SetServing(true)
	wg.Wait()
	a.admin.SetServing(false)
	return errors.Join(errs...)
}

// Close releases everything New acquired. Run calls it.
func (a *App) Close() {
	if a.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.admin.Shutdown(ctx)
		cancel()
		a.admin = nil
	}
	for _, c := range a.clients {
		c.Close()
	}
	for _, c := range a.ordsClients {
		c.Close()
	}
	if a.scim != nil {
		a.scim.Close()
		a.scim = nil
	}
	if a.bus != nil {
		_ = a.bus.Close()
		a.bus = nil
	}
	if a.tel != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.tel.Shutdown(ctx)
		cancel()
	}
}

// loginAuthenticator verifies people's tokens from the login domain and
// reads their groups with the domain's shared client.
func (a *App) loginAuthenticator(ctx context.Context) (*oidc.Authenticator, error) {
	lcfg, url := a.cfg.LoginConfig()
	v, err := oidc.NewVerifier(lcfg, url, oidc.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	dir, err := a.domainClient(ctx, lcfg.Domain)
	if err != nil {
		return nil, err
	}
	return oidc.NewAuthenticator(v, dir)
}

// domainClient returns the shared client of the named domain, creating it on first use.
func (a *App) domainClient(ctx context.Context, name string) (*identitydomain.Client, error) {
	if c, ok := a.clients[name]; ok {
		return c, nil
	}
	d, ok := a.cfg.Domain(name)
	switch {
	case !ok:
		return nil, fmt.Errorf("domain %q is not configured", name)
	case !d.HasAPI():
		return nil, fmt.Errorf("domain %q has no API access configured: set url, client_id and client_secret (or auth: resource_principal)", name)
	}
	c, err := identitydomain.New(ctx, name, d.Config, identitydomain.WithLogger(a.log.With("domain", name)),
		identitydomain.WithTelemetry(a.tel), identitydomain.WithRegisterer(a.registry))
	if err != nil {
		return nil, fmt.Errorf("client for domain %s: %w", name, err)
	}
	if a.clients == nil {
		a.clients = map[string]*identitydomain.Client{}
	}
	a.clients[name] = c
	return c, nil
}

// secretResolver returns the process's secret resolver, creating it on first
// use: env: and file: references always, vault: references when
// secrets.vault is configured. Vault secrets are cached in it, so every
// client that shares it shares one read of each secret.
func (a *App) secretResolver() (*secret.Resolver, error) {
	if a.secrets != nil {
		return a.secrets, nil
	}
	opts := []secret.ResolverOption{secret.WithResolverLogger(a.log)}
	if a.cfg.Secrets.VaultConfigured() {
		opts = append(opts, secret.WithVault(a.cfg.Secrets.Vault))
	}
	r, err := secret.NewResolver(opts...)
	if err != nil {
		return nil, fmt.Errorf("secrets.vault: %w", err)
	}
	a.secrets = r
	return r, nil
}

// kitOptions are the options every service gets from the process.
func (a *App) kitOptions(name string) []servicekit.Option {
	return []servicekit.Option{servicekit.WithLogger(a.log.With("service", name)), servicekit.WithTelemetry(a.tel),
		servicekit.WithRegisterer(a.registry), servicekit.WithVersion(a.version)}
}

func newCapabilities(ctx context.Context, a *App) (Service, error) {
	names := a.cfg.Capabilities.Domains
	if len(names) == 0 {
		for _, d := range a.cfg.Domains {
			if d.HasAPI() {
				names = append(names, d.Name)
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no domain has API access configured (url, client_id, client_secret)", errNotConfigured)
	}
	dirs := make(map[string]capabilities.Directory, len(names))
	for _, n := range names {
		c, err := a.domainClient(ctx, n)
		if err != nil {
			return nil, err
		}
		dirs[n] = capabilities.NewDirectory(c)
	}
	cfg := a.cfg.Capabilities
	cfg.Domains = names
	svc, err := capabilities.New(ctx, cfg, a.bus, dirs, a.kitOptions(capabilities.Name)...)
	if err != nil {
		return nil, err
	}
	return svc, svc.Endpoint().ServeOn(a.admin)
}

func newExpiry(ctx context.Context, a *App) (Service, error) {
	if len(a.cfg.Expiry.Groups) == 0 {
		return nil, fmt.Errorf("%w: no temporary group (expiry.groups)", errNotConfigured)
	}
	domains := map[string]expiry.Domain{}
	for _, g := range a.cfg.Expiry.Groups {
		if domains[g.Domain] != nil {
			continue
		}
		c, err := a.domainClient(ctx, g.Domain)
		if err != nil {
			return nil, err
		}
		domains[g.Domain] = c
	}
	svc, err := expiry.New(ctx, a.cfg.Expiry, a.bus, domains, a.kitOptions(expiry.Name)...)
	if err != nil {
		return nil, err
	}
	if err := svc.Endpoint().ServeOn(a.admin); err != nil {
		return nil, err
	}
	return a.withAccess(ctx, svc)
}

func newReplicator(ctx context.Context, a *App) (Service, error) {
	if len(a.cfg.Replicator.Links) == 0 {
		return nil, fmt.Errorf("%w: no replication link (replicator.links)", errNotConfigured)
	}
	domains := map[string]replicator.Domain{}
	for _, l := range a.cfg.Replicator.Links {
		for _, n := range append([]string{l.Source}, l.Targets...) {
			if domains[n] != nil {
				continue
			}
			c, err := a.domainClient(ctx, n)
			if err != nil {
				return nil, err
			}
			domains[n] = c
		}
	}
	svc, err := replicator.New(ctx, a.cfg.Replicator, a.bus, domains, a.kitOptions(replicator.Name)...)
	if err != nil {
		return nil, err
	}
	return svc, svc.Endpoint().ServeOn(a.admin)
}

func newDbprovisioner(ctx context.Context, a *App) (Service, error) {
	cfg := a.cfg.DbprovisionerConfig()
	if len(cfg.Databases) == 0 {
		return nil, fmt.Errorf("%w: no database (dbprovisioner.databases)", errNotConfigured)
	}
	resolver, err := a.secretResolver()
	if err != nil {
		return nil, err
	}
	dirs := map[string]dbprovisioner.Directory{}
	dbs := map[string]dbprovisioner.Database{}
	for _, d := range cfg.Databases {
		if dirs[d.Domain] == nil {
			c, err := a.domainClient(ctx, d.Domain)
			if err != nil {
				return nil, fmt.Errorf("database %s: %w", d.Name, err)
			}
			dirs[d.Domain] = dbprovisioner.NewDirectory(c)
		}
		c, err := ords.New(ctx, d.Name, d.WithDefaults().ORDS, ords.WithSecretResolver(resolver),
			ords.WithLogger(a.log.With("service", dbprovisioner.Name)), ords.WithTelemetry(a.tel), ords.WithRegisterer(a.registry))
		if err != nil {
			return nil, err
		}
		a.ordsClients = append(a.ordsClients, c)
		dbs[d.Name] = dbprovisioner.NewDatabase(c)
	}
	svc, err := dbprovisioner.New(ctx, cfg, a.bus, dirs, dbs, a.kitOptions(dbprovisioner.Name)...)
	if err != nil {
		return nil, err
	}
	return svc, svc.Endpoint().ServeOn(a.admin)
}

func newIngest(ctx context.Context, a *App) (Service, error) {
	mounts, err := a.pushedSources(ctx)
	if err != nil {
		return nil, err
	}
	w := ingest.Webhook{Domains: a.cfg.IngestDomains(), Password: a.devWebhookPassword, Listener: a.ingestListener,
		Mounts: mounts}
	return ingest.New(ctx, a.cfg.Ingest, a.bus, w, a.kitOptions(ingest.Name)...)
}
