package console

import (
	"context"
	"crypto/subtle"
	"net/http"
	"regexp"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
)

// Login is a way for a person to sign in besides the admin token: the
// Identity Domain login (OIDC authorization code with PKCE) plugs in here.
// The console binds each attempt to the browser with a random state in a
// short-lived cookie and checks it on the callback; the Login does the
// protocol and returns the credential the console then sends to the admin
// API as "Authorization: Bearer <credential>", where the API's own
// authentication verifies it as it verifies the CLI's (`iamflow login`).
type Login interface {
	// Name is the login's path segment: /ui/login/<name> starts it and
	// /ui/login/<name>/callback finishes it (the redirect URI to register).
	Name() string
	// Label is the sign-in page's button, e.g. "Sign in with your Identity Domain".
	Label() string
	// Start sends the browser to sign in (e.g. a redirect to the authorize
	// endpoint), carrying state to come back to the callback.
	Start(w http.ResponseWriter, r *http.Request, state string)
	// Finish completes the login at the callback, whose state the console
	// has checked, and returns who signed in, their credential for the
	// admin API and when it expires (the session ends then at the latest).
	Finish(ctx context.Context, r *http.Request, state string) (Principal, secret.Value, time.Time, error)
}

// loginStateCookie carries a login attempt's state. SameSite=Lax: the
// callback is a top-level navigation from the identity provider.
const loginStateCookie = "iamflow_login_state"

var loginNameRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`).MatchString

// signInPage is the sign-in template's data.
type signInPage struct {
	Error  string
	Dev    bool
	Logins []Login
}

func (c *Console) serveSignInPage(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := c.current(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.renderSignIn(w, http.StatusOK, "")
}

func (c *Console) renderSignIn(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = c.signin.Execute(w, signInPage{Error: msg, Dev: c.dev, Logins: c.logins})
}

// serveSignIn signs in with the admin token from the form: the token is
// checked by calling the admin API with it, so the console accepts exactly
// what the API accepts.
func (c *Console) serveSignIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		c.renderSignIn(w, http.StatusForbidden, "This sign-in did not come from this console's page.")
		return
	}
	if !c.signins.Allow() {
		c.renderSignIn(w, http.StatusTooManyRequests, "Too many sign-in attempts: wait a minute and try again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.renderSignIn(w, http.StatusBadRequest, "The sign-in form could not be read.")
		return
	}
	p := Principal{Kind: "dev", Name: "dev mode (no authentication)"}
	var cred secret.Value
	if !c.dev {
		cred = secret.NewValue(r.PostForm.Get("token"))
		if cred.IsZero() {
			c.renderSignIn(w, http.StatusBadRequest, "Paste the admin token (admin.token) to sign in.")
			return
		}
		switch code := c.verify(r, cred); code {
		case http.StatusOK:
		case http.StatusUnauthorized:
			c.log.Info("console: sign-in refused", "reason", "token not accepted", "peer", r.RemoteAddr)
			c.renderSignIn(w, http.StatusUnauthorized, "That token is not accepted by this iamflow.")
			return
		default:
			c.renderSignIn(w, http.StatusBadGateway, "The admin API did not answer as expected; try again.")
			return
		}
		p = Principal{Kind: "operator", Name: "operator (admin token)"}
	}
	if err := c.startSession(w, p, cred, time.Time{}); err != nil {
		c.renderSignIn(w, http.StatusServiceUnavailable, "Too many open sessions; try again later.")
		return
	}
	c.log.Info("console: signed in", "principal", p.Name, "kind", p.Kind, "peer", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// verify asks the admin API whether cred is accepted, the way any call is
// authenticated: a read of /v1/status with it.
func (c *Console) verify(r *http.Request, cred secret.Value) int {
	req := r.Clone(r.Context())
	req.Method, req.Body, req.ContentLength = http.MethodGet, http.NoBody, 0
	req.URL.Path, req.URL.RawPath, req.URL.RawQuery, req.RequestURI = "/v1/status", "", "", ""
	req.Header = http.Header{"Authorization": {"Bearer " + cred.Reveal()}}
	rec := &statusRecorder{header: http.Header{}}
	c.api.ServeHTTP(rec, req)
	return rec.code
}

// startSession creates a session and sets its cookie.
func (c *Console) startSession(w http.ResponseWriter, p Principal, cred secret.Value, until time.Time) error {
	id, sess, err := c.sessions.create(p, cred, until)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: id, Path: "/", HttpOnly: true, Secure: c.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sess.expires.Sub(sess.created).Seconds())})
	return nil
}

func (c *Console) serveSignOut(w http.ResponseWriter, r *http.Request) {
	sess, id, ok := c.current(r)
	if ok {
		if !sameOrigin(r) || !sess.checkCSRF(r.Header.Get(csrfHeader)) {
			writeError(w, http.StatusForbidden, "console: missing or wrong CSRF token: reload the page")
			return
		}
		c.sessions.delete(id)
		c.log.Info("console: signed out", "principal", sess.principal.Name)
	}
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: "", Path: "/", HttpOnly: true, Secure: c.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (c *Console) login(name string) Login {
	for _, l := range c.logins {
		if l.Name() == name {
			return l
		}
	}
	return nil
}

func (c *Console) serveLoginStart(w http.ResponseWriter, r *http.Request) {
	l := c.login(r.PathValue("name"))
	if l == nil {
		http.NotFound(w, r)
		return
	}
	state := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginStateCookie, Value: state, Path: "/ui/login/", HttpOnly: true, Secure: c.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: 600})
	l.Start(w, r, state)
}

func (c *Console) serveLoginCallback(w http.ResponseWriter, r *http.Request) {
	l := c.login(r.PathValue("name"))
	if l == nil {
		http.NotFound(w, r)
		return
	}
	ck, err := r.Cookie(loginStateCookie)
	state := r.URL.Query().Get("state")
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(state)) != 1 {
		c.renderSignIn(w, http.StatusBadRequest, "This sign-in was not started here, or took too long: start again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginStateCookie, Value: "", Path: "/ui/login/", MaxAge: -1, HttpOnly: true, Secure: c.secure})
	p, cred, until, err := l.Finish(r.Context(), r, state)
	if err != nil {
		c.log.Info("console: login failed", "login", l.Name(), "error", err)
		c.renderSignIn(w, http.StatusUnauthorized, "The sign-in did not succeed: "+err.Error())
		return
	}
	if err := c.startSession(w, p, cred, until); err != nil {
		c.renderSignIn(w, http.StatusServiceUnavailable, "Too many open sessions; try again later.")
		return
	}
	c.log.Info("console: signed in", "principal", p.Name, "kind", p.Kind, "login", l.Name())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// statusRecorder keeps only the status code of a response.
type statusRecorder struct {
	header http.Header
	code   int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return len(b), nil
}
