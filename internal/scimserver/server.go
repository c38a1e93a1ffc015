package scimserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/telemetry"
)

// contentType is what every answer carries (RFC 7644 §3.1).
const contentType = "application/scim+json"

// Push is a pushed source's configuration, the push key of its domains[]
// entry: where ingest serves its SCIM API and the token its IdP sends.
type Push struct {
	// Path is the SCIM base path under ingest's URL that the IdP is given,
	// e.g. /scim/v2/okta (the default: /scim/v2/<domain name>).
	Path string `yaml:"path"`
	// Token is a reference to the bearer token the IdP sends (env:NAME or
	// file:/path); iamflow's own services read the directory with it too.
	Token secret.Ref `yaml:"token"`
}

// DefaultPath is a pushed source's path when the configuration gives none.
func DefaultPath(source string) string { return "/scim/v2/" + source }

// PathOf returns p.Path, or the default path of source.
func (p Push) PathOf(source string) string {
	if s := strings.TrimRight(strings.TrimSpace(p.Path), "/"); s != "" {
		return s
	}
	return DefaultPath(source)
}

// Validate checks the section; errors name its keys (path, token).
func (p Push) Validate(source string) error {
	var errs []error
	path := p.PathOf(source)
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#% ") || strings.Contains(path, "..") || strings.Contains(path, "//") {
		errs = append(errs, fmt.Errorf("path: %q is not a URL path like %s", p.Path, DefaultPath(source)))
	}
	switch {
	case p.Token.IsZero():
		errs = append(errs, fmt.Errorf("token: required, a reference to the bearer token the identity provider sends (env:NAME or file:/path); %s", secret.GenerateHint))
	case p.Token.Validate() != nil:
		errs = append(errs, fmt.Errorf("token: %v", p.Token.Validate()))
	}
	return errors.Join(errs...)
}

// Source is one pushed source as the server runs it.
type Source struct {
	// Name is the domain's short name: the subject token of its events.
	Name string
	// Path is its SCIM base path, e.g. /scim/v2/okta.
	Path string
	// Token is the bearer token its IdP sends.
	Token secret.Value
}

// Server is the SCIM service provider of every pushed source.
type Server struct {
	bus            *bus.Bus
	log            *slog.Logger
	metrics        *metrics
	now            func() time.Time
	publishTimeout time.Duration
	retryAfter     time.Duration
	maxBody        int64
	maxInFlight    int
	maxResults     int
	sources        []*source

	// publishFault, when set (tests), fails publishes it returns an error for.
	publishFault func() error
}

// source is one pushed source's runtime.
type source struct {
	Source
	dir      *directory
	inflight chan struct{}
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithRegisterer registers the server's Prometheus metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(s *Server) { s.metrics = newMetrics(r) }
}

// WithClock sets the clock of meta.created, meta.lastModified and event times.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithPublishTimeout bounds how long a request waits for JetStream (default 5s).
func WithPublishTimeout(d time.Duration) Option { return func(s *Server) { s.publishTimeout = d } }

// WithRetryAfter sets the Retry-After of 429 and 503 answers (default 30s).
func WithRetryAfter(d time.Duration) Option { return func(s *Server) { s.retryAfter = d } }

// WithMaxBodyBytes bounds a request body; larger ones get 413 (default 1 MiB).
func WithMaxBodyBytes(n int64) Option { return func(s *Server) { s.maxBody = n } }

// WithMaxInFlight bounds the requests one source has in progress; more get
// 429 with Retry-After (default 256: an IdP's burst is tens in parallel).
func WithMaxInFlight(n int) Option { return func(s *Server) { s.maxInFlight = n } }

// DefaultMaxResults is the most resources one list answer holds.
const DefaultMaxResults = 1000

// New opens (creating) each source's KV bucket, loads its directory and
// returns the server. Close it to stop the bucket watches.
func New(ctx context.Context, b *bus.Bus, sources []Source, opts ...Option) (*Server, error) {
	if b == nil {
		return nil, errors.New("scimserver: no bus")
	}
	s := &Server{bus: b, log: slog.New(slog.DiscardHandler), now: time.Now, publishTimeout: 5 * time.Second,
		retryAfter: 30 * time.Second, maxBody: 1 << 20, maxInFlight: 256, maxResults: DefaultMaxResults}
	for _, o := range opts {
		o(s)
	}
	if s.metrics == nil {
		s.metrics = newMetrics(nil)
	}
	storage, replicas := b.Placement()
	seen := map[string]bool{}
	for _, src := range sources {
		switch {
		case !event.ValidDomainName(src.Name):
			s.Close()
			return nil, fmt.Errorf("scimserver: source %q is not a valid domain name", src.Name)
		case !strings.HasPrefix(src.Path, "/") || seen[src.Path]:
			s.Close()
			return nil, fmt.Errorf("scimserver: source %s: path %q is not a path, or is used twice", src.Name, src.Path)
		case src.Token.IsZero():
			s.Close()
			return nil, fmt.Errorf("scimserver: source %s has no token", src.Name)
		}
		seen[src.Path] = true
		dir, err := openDirectory(ctx, b.JetStream(), src.Name, storage, replicas, s.log)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.sources = append(s.sources, &source{Source: src, dir: dir, inflight: make(chan struct{}, s.maxInFlight)})
		u, g := dir.counts()
		s.log.Info("pushed source ready", "source", src.Name, "path", src.Path, "users", u, "groups", g)
	}
	return s, nil
}

// Close stops the bucket watches.
func (s *Server) Close() {
	for _, src := range s.sources {
		src.dir.close()
	}
	s.sources = nil
}

// Paths lists the base paths served, one per source.
func (s *Server) Paths() []string {
	out := make([]string, len(s.sources))
	for i, src := range s.sources {
		out[i] = src.Path
	}
	return out
}

// Handler serves every source under its path. Mount it at each of Paths
// (and the path followed by "/").
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, src := range s.sources {
		h := s.sourceHandler(src)
		mux.Handle(src.Path+"/", h)
		mux.Handle(src.Path, h)
	}
	return mux
}

func (s *Server) sourceHandler(src *source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &telemetry.StatusWriter{ResponseWriter: w}
		s.serve(sw, r, src)
		s.metrics.requests.WithLabelValues(src.Name, r.Method, strconv.Itoa(sw.Status())).Inc()
		s.metrics.latency.WithLabelValues(src.Name).Observe(time.Since(start).Seconds())
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, src *source) {
	if !authorized(r, src.Token) {
		writeError(w, &Error{Status: http.StatusUnauthorized, Detail: "the bearer token is missing or wrong"})
		return
	}
	select {
	case src.inflight <- struct{}{}:
		defer func() { <-src.inflight }()
	default:
		writeError(w, &Error{Status: http.StatusTooManyRequests, RetryAfter: s.retrySeconds(),
			Detail: fmt.Sprintf("%d requests are already in progress for %s; retry later", cap(src.inflight), src.Name)})
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, src.Path)
	seg := strings.Split(strings.Trim(rest, "/"), "/")
	h := &request{s: s, src: src, w: w, r: r}
	if err := h.route(seg); err != nil {
		h.fail(err)
	}
}

// request is one request being answered.
type request struct {
	s   *Server
	src *source
	w   http.ResponseWriter
	r   *http.Request
}

// route sends a request to the resource endpoints (Users, Groups) or the
// discovery endpoints, by its path segments below the source's base.
func (h *request) route(seg []string) error {
	if len(seg) >= 1 && (seg[0] == "Users" || seg[0] == "Groups") && len(seg) <= 2 {
		return h.routeResource(kindOf(seg[0]), seg[1:])
	}
	switch {
	case len(seg) == 1 && seg[0] == "ServiceProviderConfig":
		return h.onlyGet(func() error {
			return h.json(http.StatusOK, serviceProviderConfig(h.base(), h.s.maxResults, h.s.maxBody))
		})
	case len(seg) >= 1 && seg[0] == "ResourceTypes" && len(seg) <= 2:
		return h.onlyGet(func() error { return h.resourceTypes(seg[1:]) })
	case len(seg) >= 1 && seg[0] == "Schemas" && len(seg) <= 2:
		return h.onlyGet(func() error { return h.schemas(seg[1:]) })
	case len(seg) == 1 && (seg[0] == "Bulk" || seg[0] == "Me"):
		return errorf(http.StatusNotImplemented, "", "/%s is not supported by this service provider (see /ServiceProviderConfig)", seg[0])
	}
	return notFound("%s is not a SCIM endpoint of %s: use %s/Users, %s/Groups or the discovery endpoints", h.r.URL.Path, h.src.Name, h.src.Path, h.src.Path)
}

// routeResource answers /Users and /Groups (rest empty), their .search
// (rest ".search") and one resource (rest its id), by method.
func (h *request) routeResource(k kind, rest []string) error {
	m := h.r.Method
	switch {
	case len(rest) == 0:
		switch m {
		case http.MethodGet:
			return h.list(k, h.queryParams())
		case http.MethodPost:
			return h.create(k)
		}
		return h.methodNotAllowed("GET, POST")
	case rest[0] == ".search":
		if m != http.MethodPost {
			return h.methodNotAllowed("POST")
		}
		return h.search(k)
	}
	id := rest[0]
	switch m {
	case http.MethodGet:
		return h.get(k, id)
	case http.MethodPut:
		return h.replace(k, id)
	case http.MethodPatch:
		return h.patch(k, id)
	case http.MethodDelete:
		return h.delete(k, id)
	}
	return h.methodNotAllowed("GET, PUT, PATCH, DELETE")
}

func (h *request) onlyGet(f func() error) error {
	if h.r.Method != http.MethodGet {
		return h.methodNotAllowed("GET")
	}
	return f()
}

func (h *request) methodNotAllowed(allow string) error {
	h.w.Header().Set("Allow", allow)
	return errorf(http.StatusMethodNotAllowed, "", "%s is not supported on %s", h.r.Method, h.r.URL.Path)
}

func kindOf(s string) kind {
	if s == "Groups" {
		return kindGroup
	}
	return kindUser
}

// fail answers err: a *Error as is, anything else as 503 (the store or
// JetStream could not be reached; nothing the IdP sent was wrong).
func (h *request) fail(err error) {
	var e *Error
	if errors.As(err, &e) {
		writeError(h.w, e)
		return
	}
	h.s.log.WarnContext(h.r.Context(), "pushed source: request not completed; the identity provider will retry",
		"source", h.src.Name, "method", h.r.Method, "path", h.r.URL.Path, "error", err)
	writeError(h.w, &Error{Status: http.StatusServiceUnavailable, RetryAfter: h.s.retrySeconds(),
		Detail: "the change could not be stored or published to JetStream; retry later"})
}

func (s *Server) retrySeconds() int {
	if n := int(s.retryAfter / time.Second); n > 0 {
		return n
	}
	return 1
}

// base is the absolute SCIM base URL of the source, for meta.location.
func (h *request) base() string {
	scheme := "http"
	if h.r.TLS != nil || strings.EqualFold(h.r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + h.r.Host + h.src.Path
}

func (h *request) json(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h.w.Header().Set("Content-Type", contentType)
	h.w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	h.w.WriteHeader(status)
	_, _ = h.w.Write(b)
	return nil
}

// body reads and decodes the request body into v.
func (h *request) body(v any) error {
	if ct := h.r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/plain") {
			return errorf(http.StatusUnsupportedMediaType, "", "content type %q is not JSON; send application/scim+json", ct)
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(h.w, h.r.Body, h.s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, "", "the body exceeds the %d-byte limit of this service provider", h.s.maxBody)
		}
		return invalidSyntax("could not read the body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return invalidSyntax("the body is empty; send a JSON object")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalidSyntax("the body is not the expected JSON: %s must not be %s", strings.TrimPrefix(te.Field, "."), te.Value)
		}
		return invalidSyntax("the body is not JSON: %v", err)
	}
	return nil
}

// authorized checks the bearer token in constant time.
func authorized(r *http.Request, token secret.Value) bool {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got, want := sha256.Sum256([]byte(strings.TrimSpace(tok))), sha256.Sum256([]byte(token.Reveal()))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
