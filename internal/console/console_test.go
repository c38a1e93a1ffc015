package console

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"

	"github.com/iamflow/iamflow/internal/secret"
)

const goodToken = "s3cret-admin-token-0123456789"

// fakeAPI stands in for the admin REST API: it accepts goodToken (and
// tokens in extra), and records what reached it.
type fakeAPI struct {
	mu    sync.Mutex
	calls []*http.Request
	extra map[string]bool
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r)
	f.mu.Unlock()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok != goodToken && !f.extra[tok] {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"code":16,"message":"admin: invalid bearer token"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true,"path":"`+r.URL.Path+`"}`)
}

func (f *fakeAPI) last() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return nil
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type rig struct {
	t     *testing.T
	c     *Console
	api   *fakeAPI
	clock *emu.ManualClock
	srv   *httptest.Server
}

func newRig(t *testing.T, cfg Config, opts ...Option) *rig {
	t.Helper()
	r := &rig{t: t, api: &fakeAPI{extra: map[string]bool{}}, clock: emu.NewManualClock(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))}
	c, err := New(cfg, r.api, append([]Option{WithClock(r.clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	r.srv = httptest.NewServer(c)
	t.Cleanup(r.srv.Close)
	return r
}

// do sends a request as a browser on the console's page would (same
// origin), with the session cookie if given; hdr adds or overrides headers.
func (r *rig) do(method, path, body string, cookie *http.Cookie, hdr map[string]string) *http.Response {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", r.srv.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (r *rig) signIn(token string) (*http.Response, *http.Cookie) {
	r.t.Helper()
	resp := r.do(http.MethodPost, "/ui/signin", url.Values{"token": {token}}.Encode(), nil,
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName || ck.Name == secureCookieName {
			return resp, ck
		}
	}
	return resp, nil
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (r *rig) csrf(ck *http.Cookie) string {
	r.t.Helper()
	resp := r.do(http.MethodGet, "/ui/session", "", ck, nil)
	b := body(r.t, resp)
	if resp.StatusCode != 200 {
		r.t.Fatalf("/ui/session: %d %s", resp.StatusCode, b)
	}
	m := regexp.MustCompile(`"csrfToken":"([^"]+)"`).FindStringSubmatch(b)
	if m == nil {
		r.t.Fatalf("no CSRF token in %s", b)
	}
	return m[1]
}

// Sign-in checks the token with the API, sets a session cookie that is
// HttpOnly, SameSite=Strict and expires, and never carries the token.
func TestSignIn(t *testing.T) {
	r := newRig(t, Config{})
	if resp := r.do(http.MethodGet, "/", "", nil, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin" {
		t.Fatalf("GET / without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp := r.do(http.MethodGet, "/ui/signin", "", nil, nil)
	if page := body(t, resp); resp.StatusCode != 200 || !strings.Contains(page, `name="token"`) || strings.Contains(page, "dev mode") {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
	}

	resp, ck := r.signIn("wrong-token-wrong-token")
	if resp.StatusCode != http.StatusUnauthorized || ck != nil || !strings.Contains(body(t, resp), "not accepted") {
		t.Fatalf("wrong token: %d, cookie %v", resp.StatusCode, ck)
	}
	if resp, ck := r.signIn(""); resp.StatusCode != http.StatusBadRequest || ck != nil {
		t.Fatalf("no token: %d, cookie %v", resp.StatusCode, ck)
	}
	// A form posted from another site is refused before the token is tried.
	before := r.api.count()
	resp = r.do(http.MethodPost, "/ui/signin", "token="+goodToken, nil,
		map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 || r.api.count() != before {
		t.Fatalf("cross-site sign-in: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	resp, ck = r.signIn(goodToken)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || ck == nil {
		t.Fatalf("sign-in: %d %s, cookie %v", resp.StatusCode, resp.Header.Get("Location"), ck)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge != int(DefaultSessionTTL.Seconds()) || ck.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, Max-Age %v, not Secure without TLS", ck, DefaultSessionTTL)
	}
	if strings.Contains(ck.Value, goodToken) || len(ck.Value) < 40 {
		t.Errorf("cookie value %q: want an opaque random id", ck.Value)
	}
	if got := r.api.last(); got.URL.Path != "/v1/status" || got.Method != http.MethodGet {
		t.Errorf("the token was checked with %s %s, want GET /v1/status", got.Method, got.URL.Path)
	}
	resp = r.do(http.MethodGet, "/", "", ck, nil)
	if page := body(t, resp); resp.StatusCode != 200 || !strings.Contains(page, "/ui/assets/app.js") {
		t.Fatalf("GET / signed in: %d", resp.StatusCode)
	}
	resp = r.do(http.MethodGet, "/ui/session", "", ck, nil)
	if s := body(t, resp); strings.Contains(s, goodToken) || !strings.Contains(s, `"kind":"operator"`) {
		t.Errorf("session info %s", s)
	}
}

// Calls through /ui/api reach the API with the session's credential and
// without the cookie; anything but a read needs the CSRF token and the
// console's own origin.
func TestAPICallsAndCSRF(t *testing.T) {
	r := newRig(t, Config{})
	_, ck := r.signIn(goodToken)
	csrf := r.csrf(ck)

	resp := r.do(http.MethodGet, "/ui/api/v1/status?service=ingest", "", ck, nil)
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, `"path":"/v1/status"`) {
		t.Fatalf("GET through the console: %d %s", resp.StatusCode, b)
	}
	got := r.api.last()
	if got.Header.Get("Authorization") != "Bearer "+goodToken || got.Header.Get("Cookie") != "" || got.URL.RawQuery != "service=ingest" {
		t.Errorf("the API got Authorization %q, Cookie %q, query %q", got.Header.Get("Authorization"), got.Header.Get("Cookie"), got.URL.RawQuery)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on an API answer", cc)
	}

	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"no CSRF token", nil},
		{"wrong CSRF token", map[string]string{csrfHeader: csrf + "x"}},
		{"another site's page", map[string]string{csrfHeader: csrf, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
		{"another origin", map[string]string{csrfHeader: csrf, "Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": ""}},
	} {
		before := r.api.count()
		resp := r.do(http.MethodPost, "/ui/api/v1/grants/g1:revoke", `{}`, ck, tc.hdr)
		if resp.StatusCode != http.StatusForbidden || r.api.count() != before {
			t.Errorf("%s: %d, API called %d times", tc.name, resp.StatusCode, r.api.count()-before)
		}
	}
	resp = r.do(http.MethodPost, "/ui/api/v1/grants/g1:revoke", `{}`, ck, map[string]string{csrfHeader: csrf})
	if resp.StatusCode != 200 || r.api.last().URL.Path != "/v1/grants/g1:revoke" || r.api.last().Header.Get(csrfHeader) != "" {
		t.Fatalf("POST with the CSRF token: %d, path %s", resp.StatusCode, r.api.last().URL.Path)
	}
	// Without a session nothing reaches the API.
	before := r.api.count()
	if resp := r.do(http.MethodGet, "/ui/api/v1/status", "", nil, nil); resp.StatusCode != http.StatusUnauthorized || r.api.count() != before {
		t.Errorf("no session: %d", resp.StatusCode)
	}
	if resp := r.do(http.MethodGet, "/ui/api/v1/status", "", &http.Cookie{Name: cookieName, Value: "forged"}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged session: %d", resp.StatusCode)
	}

	// Sign-out needs the token too, and ends the session.
	if resp := r.do(http.MethodPost, "/ui/signout", "", ck, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without CSRF token: %d", resp.StatusCode)
	}
	if resp := r.do(http.MethodPost, "/ui/signout", "", ck, map[string]string{csrfHeader: csrf}); resp.StatusCode != http.StatusNoContent {
		t.Errorf("sign-out: %d", resp.StatusCode)
	}
	if resp := r.do(http.MethodGet, "/ui/api/v1/status", "", ck, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after sign-out: %d", resp.StatusCode)
	}
}

// A session ends when unused for the idle timeout, and after its lifetime
// however busy.
func TestSessionExpires(t *testing.T) {
	r := newRig(t, Config{SessionTTL: time.Hour, IdleTimeout: 10 * time.Minute})
	_, ck := r.signIn(goodToken)
	if code := r.getAfter(9*time.Minute, "/ui/api/v1/status", ck); code != 200 {
		t.Fatalf("used within the idle timeout: %d", code)
	}
	if code := r.getAfter(10*time.Minute, "/ui/api/v1/status", ck); code != http.StatusUnauthorized {
		t.Fatalf("idle for 10 minutes: %d, want 401", code)
	}
	if r.c.sessions.len() != 0 {
		t.Errorf("%d sessions kept after expiry", r.c.sessions.len())
	}

	_, ck = r.signIn(goodToken)
	for range 6 { // busy: a call every 9 minutes, for 54 minutes
		if code := r.getAfter(9*time.Minute, "/ui/api/v1/status", ck); code != 200 {
			t.Fatalf("busy session ended early: %d", code)
		}
	}
	if code := r.getAfter(6*time.Minute, "/ui/session", ck); code != http.StatusUnauthorized {
		t.Fatalf("after the session's hour: %d, want 401", code)
	}
	if resp := r.do(http.MethodGet, "/", "", ck, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after expiry: %d, want the sign-in page", resp.StatusCode)
	}
}

// getAfter advances the rig's clock by d, then GETs path with the session
// cookie ck and returns the status.
func (r *rig) getAfter(d time.Duration, path string, ck *http.Cookie) int {
	r.t.Helper()
	r.clock.Advance(d)
	return r.do(http.MethodGet, path, "", ck, nil).StatusCode
}

func TestSecureCookieUnderTLS(t *testing.T) {
	r := newRig(t, Config{}, WithSecureCookies(true))
	_, ck := r.signIn(goodToken)
	if ck == nil || ck.Name != secureCookieName || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v: want __Host-, Secure, HttpOnly, SameSite=Strict", ck)
	}
}

func TestDevModeSignsInWithoutToken(t *testing.T) {
	r := newRig(t, Config{}, WithDevMode(true))
	resp := r.do(http.MethodGet, "/ui/signin", "", nil, nil)
	if page := body(t, resp); !strings.Contains(page, "dev mode") || strings.Contains(page, `name="token"`) {
		t.Fatalf("dev sign-in page %s", page)
	}
	_, ck := r.signIn("")
	if ck == nil {
		t.Fatal("no session in dev mode")
	}
	r.api.extra[""] = true // the dev API is open
	if resp := r.do(http.MethodGet, "/ui/api/v1/status", "", ck, nil); resp.StatusCode != 200 || r.api.last().Header.Get("Authorization") != "" {
		t.Fatalf("dev call: %d, Authorization %q", resp.StatusCode, r.api.last().Header.Get("Authorization"))
	}
	if resp := r.do(http.MethodPost, "/ui/api/v1/grants", "{}", ck, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("dev mode POST without CSRF token: %d, want 403", resp.StatusCode)
	}
}

// personLogin is a Login as the Identity Domain login will be: it sends the
// browser away and, on the callback, returns a person and their token.
type personLogin struct{ finished int }

func (p *personLogin) Name() string  { return "identity-domain" }
func (p *personLogin) Label() string { return "Sign in with your Identity Domain" }
func (p *personLogin) Start(w http.ResponseWriter, r *http.Request, state string) {
	http.Redirect(w, r, "https://idp.example/authorize?state="+state, http.StatusFound)
}
func (p *personLogin) Finish(_ context.Context, r *http.Request, _ string) (Principal, secret.Value, time.Time, error) {
	if r.URL.Query().Get("code") != "good-code" {
		return Principal{}, secret.Value{}, time.Time{}, errors.New("the code was refused")
	}
	p.finished++
	return Principal{Kind: "person", Name: "jane.doe@example.com"}, secret.NewValue("jane-access-token"), time.Time{}, nil
}

// A person's login plugs in as a Login: the state binds the callback to the
// browser, and the person's own token is what the API then receives.
func TestLoginPlugsIn(t *testing.T) {
	l := &personLogin{}
	r := newRig(t, Config{}, WithLogin(l))
	r.api.extra["jane-access-token"] = true
	if page := body(t, r.do(http.MethodGet, "/ui/signin", "", nil, nil)); !strings.Contains(page, "/ui/login/identity-domain") {
		t.Fatal("the sign-in page does not offer the login")
	}
	resp := r.do(http.MethodGet, "/ui/login/identity-domain", "", nil, nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	state := loc.Query().Get("state")
	var stateCk *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == loginStateCookie {
			stateCk = c
		}
	}
	if resp.StatusCode != http.StatusFound || state == "" || stateCk == nil || stateCk.Value != state || !stateCk.HttpOnly {
		t.Fatalf("start: %d %s, state cookie %+v", resp.StatusCode, loc, stateCk)
	}
	// A callback without this browser's state (login CSRF) is refused.
	if resp := r.do(http.MethodGet, "/ui/login/identity-domain/callback?code=good-code&state=other", "", stateCk, nil); resp.StatusCode != http.StatusBadRequest || l.finished != 0 {
		t.Fatalf("callback with another state: %d", resp.StatusCode)
	}
	resp = r.do(http.MethodGet, "/ui/login/identity-domain/callback?code=good-code&state="+state, "", stateCk, nil)
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			ck = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || ck == nil {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	r.do(http.MethodGet, "/ui/api/v1/grants", "", ck, nil)
	if got := r.api.last().Header.Get("Authorization"); got != "Bearer jane-access-token" {
		t.Errorf("the API got %q, want the person's token", got)
	}
	if s := body(t, r.do(http.MethodGet, "/ui/session", "", ck, nil)); !strings.Contains(s, "jane.doe@example.com") || strings.Contains(s, "jane-access-token") {
		t.Errorf("session %s", s)
	}
}

// Every page and asset is served with a strict CSP and needs nothing from
// another origin (the console works air-gapped).
func TestAssetsAreSelfContained(t *testing.T) {
	r := newRig(t, Config{})
	_, ck := r.signIn(goodToken)
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|import\s+[^;]*["']https?://`)
	err := fs.WalkDir(r.c.assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := fs.ReadFile(r.c.assets, p)
		if loc := external.FindIndex(data); loc != nil {
			t.Errorf("%s refers to another origin: %q", p, data[loc[0]:min(loc[1]+30, len(data))])
		}
		if p == "index.html" || p == "signin.html" {
			return nil
		}
		resp := r.do(http.MethodGet, "/ui/assets/"+p, "", ck, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != contentSecurityPolicy || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d, CSP %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
		if strings.HasSuffix(p, ".js") && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Errorf("%s served as %q", p, resp.Header.Get("Content-Type"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/ui/assets/index.html", "/ui/assets/../console.go", "/nowhere", "/ui/assets/"} {
		if resp := r.do(http.MethodGet, p, "", ck, nil); resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200, want it not served", p)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{SessionTTL: 30 * time.Second}, "session_ttl"},
		{Config{SessionTTL: time.Hour, IdleTimeout: 2 * time.Hour}, "idle_timeout"},
		{Config{TraceURL: "http://127.0.0.1:16686/trace/{trace_id}"}, ""},
		{Config{TraceURL: "javascript:alert(1)//{trace_id}"}, "trace_url"},
		{Config{TraceURL: "http://jaeger:16686/search"}, "{trace_id}"},
		{Config{TraceURL: "https://u:p@jaeger/trace/{trace_id}"}, "user info"},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
