package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/oidc"
)

func loginCommand() command {
	return command{
		name: "login", usage: "[--domain-url URL --client-id ID] [--config FILE] [--port N]",
		summary: "log in with your Identity Domain; later commands call the admin API as you",
		help: `Logs you in with your Identity Domain account (OpenID Connect, authorization
code with PKCE) and keeps the token for the other commands: when no admin
token is given (admin.token, $IAMFLOW_ADMIN_TOKEN), 'iamflow status',
'grant', 'reconcile' and the rest call the admin API as you. People may make
read-only calls; what else a person may do, each service decides.

The domain and the application come from --domain-url and --client-id, or
from the login section of --config (login.domain's url and
login.client_id). 'iamflow login' listens on a loopback port (random unless
--port), prints the URL to open in a browser, and waits until the domain
sends the browser back. The token is kept, readable by you alone (0600), in
$IAMFLOW_LOGIN_CACHE, else iamflow/login.json in your configuration
directory; 'iamflow logout' removes it. The ID token is what the admin API
receives; it expires with the domain's token lifetime (an hour by default),
after which 'iamflow login' again.

'iamflow dev' prints the command to log in to its emulated domain.`,
		run: runLogin,
	}
}

func logoutCommand() command {
	return command{
		name: "logout", usage: "",
		summary: "forget the token 'iamflow login' kept",
		help: `Removes the token 'iamflow login' kept; later commands use the admin token
again, or none (dev mode). The token itself stays valid at the domain until
it expires.`,
		run: func(_ context.Context, e *env, args []string) error {
			fs := newFlags(e, "logout")
			if err := parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return fmt.Errorf("%w: logout takes no arguments", errUsage)
			}
			path, err := loginCachePath(e)
			if err != nil {
				return err
			}
			switch err := os.Remove(path); {
			case errors.Is(err, os.ErrNotExist):
				fmt.Fprintln(e.stdout, "Not logged in.")
			case err != nil:
				return fmt.Errorf("remove %s: %w", path, err)
			default:
				fmt.Fprintf(e.stdout, "Logged out (removed %s).\n", path)
			}
			return nil
		},
	}
}

// cachedLogin is what 'iamflow login' keeps.
type cachedLogin struct {
	DomainURL   string    `json:"domain_url"`
	ClientID    string    `json:"client_id"`
	User        string    `json:"user"`
	DisplayName string    `json:"display_name,omitempty"`
	IDToken     string    `json:"id_token"`
	AccessToken string    `json:"access_token"`
	Expiry      time.Time `json:"expiry"`
}

// expired reports whether the kept token's life is over.
func (c *cachedLogin) expired(now time.Time) bool { return !c.Expiry.IsZero() && !now.Before(c.Expiry) }

// loginCachePath is $IAMFLOW_LOGIN_CACHE, else iamflow/login.json in the
// user's configuration directory.
func loginCachePath(e *env) (string, error) {
	if p, ok := e.getenv("IAMFLOW_LOGIN_CACHE"); ok && p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("where to keep the login: %w (set IAMFLOW_LOGIN_CACHE)", err)
	}
	return filepath.Join(dir, "iamflow", "login.json"), nil
}

// readLogin returns the kept login, nil when there is none.
func readLogin(e *env) (*cachedLogin, error) {
	path, err := loginCachePath(e)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the login kept in %s: %w", path, err)
	}
	var c cachedLogin
	if err := json.Unmarshal(b, &c); err != nil || c.IDToken == "" {
		return nil, fmt.Errorf("the login kept in %s is unreadable: run 'iamflow logout' and 'iamflow login'", path)
	}
	return &c, nil
}

// writeLogin keeps c in a 0600 file (in a 0700 directory), replaced
// atomically.
func writeLogin(e *env, c *cachedLogin) (string, error) {
	path, err := loginCachePath(e)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("keep the login: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".login-*.json")
	if err != nil {
		return "", fmt.Errorf("keep the login: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("keep the login: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", fmt.Errorf("keep the login: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("keep the login: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("keep the login: %w", err)
	}
	return path, nil
}

func runLogin(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "login")
	cfgPath := configFlag(e, fs)
	domainURL := fs.String("domain-url", "", "URL of the Identity Domain to log in with (default: login.domain's url in --config)")
	clientID := fs.String("client-id", "", "client id of iamflow's application in that domain (default: login.client_id in --config)")
	port := fs.Int("port", 0, "loopback port to receive the browser's redirect on (0: a random free port)")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for you to log in")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: login takes no arguments", errUsage)
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("%w: --port %d is not a port", errUsage, *port)
	}
	scopes, err := loginTarget(e, *cfgPath, domainURL, clientID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	p, err := oidc.Discover(ctx, nil, *domainURL)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen for the browser's redirect on 127.0.0.1:%d: %w (choose another --port)", *port, err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	flow := oidc.NewFlow(p, *clientID, "", redirect, scopes)
	pending := flow.Start()

	done := make(chan loginResult, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", loginCallback(flow, pending, done))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		// Let the answering handler finish its page; a Close here cut the
		// browser's connection before the page was sent.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	fmt.Fprintf(e.stdout, "Open this URL in a browser and log in:\n\n  %s\n\nWaiting for the browser to come back to %s (up to %s) ...\n", pending.AuthURL, redirect, *timeout)
	var res loginResult
	select {
	case res = <-done:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no login within %s (--timeout)", *timeout)
		}
		return ctx.Err()
	}
	if res.err != nil {
		return res.err
	}
	user, display := tokenUser(res.toks.IDToken)
	kept := &cachedLogin{DomainURL: strings.TrimSuffix(*domainURL, "/"), ClientID: *clientID, User: user, DisplayName: display,
		IDToken: res.toks.IDToken, AccessToken: res.toks.AccessToken, Expiry: tokenExpiry(res.toks)}
	path, err := writeLogin(e, kept)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Logged in as %s to %s until %s; kept in %s.\n", user, kept.DomainURL, kept.Expiry.Local().Format(time.RFC1123), path)
	return nil
}

// loginTarget fills in the domain's URL and iamflow's client id from the
// configuration's login section where the flags leave them out, and
// returns the scopes to ask for.
func loginTarget(e *env, cfgPath string, domainURL, clientID *string) ([]string, error) {
	scopes := []string{"openid", "profile"}
	if *domainURL == "" || *clientID == "" {
		cfg, err := config.Load(cfgPath, e.getenv)
		if err != nil {
			return nil, err
		}
		lcfg, url := cfg.LoginConfig()
		if *domainURL == "" {
			*domainURL = url
		}
		if *clientID == "" {
			*clientID = lcfg.ClientID
		}
		scopes = lcfg.Scopes
	}
	if *domainURL == "" || *clientID == "" {
		return nil, fmt.Errorf("%w: give --domain-url and --client-id, or --config with a login section (login.domain and login.client_id)", errUsage)
	}
	return scopes, nil
}

// loginResult is what the browser's redirect brought back.
type loginResult struct {
	toks oidc.Tokens
	err  error
}

// loginCallback answers the browser's redirect: it finishes the flow,
// shows the person a page saying how it went, and sends the first result
// on done. An answer to another login is refused and waited past.
func loginCallback(flow *oidc.Flow, pending oidc.Pending, done chan<- loginResult) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("state") != pending.State {
			// Not this login's answer (another tab, or something probing
			// the port): refuse it and keep waiting.
			loginPage(w, http.StatusBadRequest, "This is not the answer to the login iamflow is waiting for. Start again with 'iamflow login'.")
			return
		}
		toks, err := flow.Finish(r.Context(), pending, q)
		if err != nil {
			loginPage(w, http.StatusBadRequest, "Login failed: "+err.Error())
		} else {
			loginPage(w, http.StatusOK, "You are logged in to iamflow. You can close this tab.")
		}
		// The page reaches the browser before login returns and the
		// listener closes.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case done <- loginResult{toks, err}:
		default:
		}
	}
}

// tokenUser reads sub and user_displayname from an ID token the domain just
// issued (the admin API verifies it on every call; here it only names the
// user).
func tokenUser(idToken string) (user, display string) {
	var c struct {
		Sub         string `json:"sub"`
		DisplayName string `json:"user_displayname"`
	}
	_ = decodeClaims(idToken, &c)
	return c.Sub, c.DisplayName
}

// tokenExpiry is the ID token's exp, else the access token's expiry.
func tokenExpiry(t oidc.Tokens) time.Time {
	var c struct {
		Exp int64 `json:"exp"`
	}
	if decodeClaims(t.IDToken, &c) == nil && c.Exp > 0 {
		return time.Unix(c.Exp, 0)
	}
	return t.Expiry
}

var loginPageTemplate = template.Must(template.New("p").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>iamflow login</title></head>
<body><main><h1>iamflow</h1><p role="status">{{.}}</p></main></body></html>
`))

func loginPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginPageTemplate.Execute(w, msg)
}

// decodeClaims decodes a JWT's payload without verifying it.
func decodeClaims(raw string, v any) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
