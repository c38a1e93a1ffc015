// Package console is iamflow's web console: plain HTML, CSS and JavaScript
// modules embedded in the binary and served by the admin HTTP listener at
// /, over the same REST API the CLI uses and behind the same
// authentication.
//
// A browser signs in once (the admin token on the sign-in page; later a
// person's Identity Domain login through a Login) and gets a session
// cookie: an opaque random id, HttpOnly, SameSite=Strict, Secure when the
// listener serves TLS, ending after Config.SessionTTL or
// Config.IdleTimeout unused. The session keeps the credential server-side.
// The pages call the API through /ui/api/v1/..., which the console hands to
// the admin API in-process with "Authorization: Bearer <credential>", so
// every call passes the API's own authentication exactly as the CLI's do,
// and the credential never reaches the browser. Every request that is not
// a read (not GET or HEAD) must carry the session's CSRF token in the
// X-CSRF-Token header and come from the console's own origin.
//
// Routes:
//
//	GET  /                 the console (the sign-in page when not signed in)
//	GET  /ui/signin        the sign-in page
//	POST /ui/signin        sign in with the admin token (a form), or without one in dev mode
//	POST /ui/signout       end the session (CSRF token required)
//	GET  /ui/session       who is signed in, until when, the CSRF token, the trace URL
//	     /ui/api/v1/...    the admin REST API, as the session's principal
//	GET  /ui/assets/...    the embedded scripts and styles
//	GET  /ui/login/{name}, /ui/login/{name}/callback   the Logins' own steps
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

//go:embed web
var webFS embed.FS

// Cookie names: with TLS the __Host- prefix makes browsers refuse the
// cookie unless it is Secure, for path / and without a Domain.
const (
	cookieName       = "iamflow_session"
	secureCookieName = "__Host-iamflow_session"
	// csrfHeader carries the session's CSRF token on every non-read request.
	csrfHeader = "X-CSRF-Token"
	// apiPrefix is where pages call the admin API.
	apiPrefix = "/ui/api"
	// maxFormBytes bounds a sign-in form.
	maxFormBytes = 8 << 10
)

// contentSecurityPolicy allows the console's own scripts, styles and API
// calls only: no inline script, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Option changes how New builds the Console.
type Option func(*Console)

// WithLogger logs sign-ins, sign-outs and refusals to l.
func WithLogger(l *slog.Logger) Option { return func(c *Console) { c.log = l } }

// WithClock replaces time.Now (tests of session expiry).
func WithClock(now func() time.Time) Option { return func(c *Console) { c.now = now } }

// WithDevMode says the admin API needs no credential (iamflow dev): the
// sign-in page offers to continue without one.
func WithDevMode(dev bool) Option { return func(c *Console) { c.dev = dev } }

// WithSecureCookies marks the session cookie Secure (with the __Host-
// prefix); set it when the listener serves TLS.
func WithSecureCookies(secure bool) Option { return func(c *Console) { c.secure = secure } }

// WithLogin adds a way to sign in besides the admin token, e.g. a person's
// Identity Domain login (OIDC); it is offered on the sign-in page.
func WithLogin(l Login) Option { return func(c *Console) { c.logins = append(c.logins, l) } }

// Console serves the web console. Make it with New; it is an http.Handler.
type Console struct {
	cfg    Config
	api    http.Handler
	log    *slog.Logger
	now    func() time.Time
	dev    bool
	secure bool
	logins []Login

	sessions *store
	signins  *rate.Limiter
	mux      *http.ServeMux
	signin   *template.Template
	assets   fs.FS
	etags    map[string]string
}

// New builds the console over api, the admin REST API handler exactly as
// the /v1/ route serves it (authentication included).
func New(cfg Config, api http.Handler, opts ...Option) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if api == nil {
		return nil, errors.New("console: no API handler")
	}
	c := &Console{cfg: cfg.WithDefaults(), api: api, now: time.Now, log: slog.New(slog.DiscardHandler),
		signins: rate.NewLimiter(rate.Limit(5), 20), etags: map[string]string{}}
	for _, o := range opts {
		o(c)
	}
	for _, l := range c.logins {
		if !loginNameRE(l.Name()) {
			return nil, fmt.Errorf("console: login name %q: use lower-case letters, digits and '-'", l.Name())
		}
	}
	c.sessions = newStore(c.cfg.SessionTTL, c.cfg.IdleTimeout, c.now)
	var err error
	if c.assets, err = fs.Sub(webFS, "web"); err != nil {
		return nil, err
	}
	if err := fs.WalkDir(c.assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(c.assets, p)
		sum := sha256.Sum256(data)
		c.etags[p] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return err
	}); err != nil {
		return nil, err
	}
	if c.signin, err = template.ParseFS(c.assets, "signin.html"); err != nil {
		return nil, fmt.Errorf("console: sign-in page: %w", err)
	}

	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", c.serveApp)
	m.HandleFunc("GET /ui/signin", c.serveSignInPage)
	m.HandleFunc("POST /ui/signin", c.serveSignIn)
	m.HandleFunc("POST /ui/signout", c.serveSignOut)
	m.HandleFunc("GET /ui/session", c.serveSession)
	m.HandleFunc(apiPrefix+"/v1/", c.serveAPI)
	m.HandleFunc("GET /ui/assets/{path...}", c.serveAsset)
	m.HandleFunc("GET /ui/login/{name}", c.serveLoginStart)
	m.HandleFunc("GET /ui/login/{name}/callback", c.serveLoginCallback)
	c.mux = m
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // no-referrer would make Chromium send "Origin: null" on form posts
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

// cookieName is the session cookie's name for this listener.
func (c *Console) cookieName() string {
	if c.secure {
		return secureCookieName
	}
	return cookieName
}

// current returns the request's live session, if any.
func (c *Console) current(r *http.Request) (*session, string, bool) {
	ck, err := r.Cookie(c.cookieName())
	if err != nil {
		return nil, "", false
	}
	sess, ok := c.sessions.get(ck.Value)
	return sess, ck.Value, ok
}

func (c *Console) serveApp(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := c.current(r); !ok {
		http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
		return
	}
	c.writeAsset(w, r, "index.html")
}

func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	if p == "" || p == "index.html" || p == "signin.html" || strings.Contains(p, "..") {
		http.NotFound(w, r)
		return
	}
	c.writeAsset(w, r, p)
}

// writeAsset serves one embedded file, revalidated by its ETag.
func (c *Console) writeAsset(w http.ResponseWriter, r *http.Request, p string) {
	data, err := fs.ReadFile(c.assets, p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(p))
	if path.Ext(p) == ".js" {
		ct = "text/javascript; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", c.etags[p])
	if r.Header.Get("If-None-Match") == c.etags[p] {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(data)
}

// sessionInfo is what /ui/session tells the page.
type sessionInfo struct {
	Principal   Principal `json:"principal"`
	ExpiresAt   time.Time `json:"expiresAt"`
	IdleTimeout string    `json:"idleTimeout"`
	CSRFToken   string    `json:"csrfToken"`
	TraceURL    string    `json:"traceUrl"`
	Dev         bool      `json:"dev"`
}

func (c *Console) serveSession(w http.ResponseWriter, r *http.Request) {
	sess, _, ok := c.current(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "console: not signed in, or the session expired: sign in again")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sessionInfo{Principal: sess.principal, ExpiresAt: sess.expires.UTC(),
		IdleTimeout: c.cfg.IdleTimeout.String(), CSRFToken: sess.csrf, TraceURL: c.cfg.TraceURL, Dev: c.dev})
}

// serveAPI hands a page's API call to the admin API as the session's
// principal.
func (c *Console) serveAPI(w http.ResponseWriter, r *http.Request) {
	sess, _, ok := c.current(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "console: not signed in, or the session expired: sign in again")
		return
	}
	if !isRead(r.Method) {
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "console: cross-origin request refused")
			return
		}
		if !sess.checkCSRF(r.Header.Get(csrfHeader)) {
			writeError(w, http.StatusForbidden, "console: missing or wrong CSRF token: reload the page")
			return
		}
	}
	out := r.Clone(r.Context())
	out.URL.Path = strings.TrimPrefix(r.URL.Path, apiPrefix)
	out.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, apiPrefix)
	out.RequestURI = ""
	out.Header.Del("Cookie")
	out.Header.Del(csrfHeader)
	out.Header.Del("Authorization")
	if !sess.credential.IsZero() {
		out.Header.Set("Authorization", "Bearer "+sess.credential.Reveal())
	}
	w.Header().Set("Cache-Control", "no-store")
	c.api.ServeHTTP(w, out)
}

// isRead reports whether a method only reads.
func isRead(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// sameOrigin reports whether a state-changing request comes from the
// console's own pages: Sec-Fetch-Site, when the browser sends it, must be
// same-origin; without it, Origin, when sent, must name the request's host.
// A request with neither (not a browser) is accepted: the CSRF token and
// the SameSite=Strict cookie still stand.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	if o := r.Header.Get("Origin"); o != "" {
		host, ok := strings.CutPrefix(o, "https://")
		if !ok {
			host, ok = strings.CutPrefix(o, "http://")
		}
		return ok && strings.EqualFold(host, r.Host)
	}
	return true
}

// writeJSON writes v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// writeError writes an error shaped like the API's ({"code":..,"message":..}).
func writeError(w http.ResponseWriter, httpCode int, msg string) {
	code := 16 // UNAUTHENTICATED
	if httpCode == http.StatusForbidden {
		code = 7 // PERMISSION_DENIED
	} else if httpCode >= 500 {
		code = 14 // UNAVAILABLE
	} else if httpCode == http.StatusBadRequest {
		code = 3 // INVALID_ARGUMENT
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, httpCode, map[string]any{"code": code, "message": msg, "details": []any{}})
}
