package ords

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	itestutil "github.com/iamflow/iamflow/internal/testutil"
)

func TestConfigValidate(t *testing.T) {
	ok := testConfig("https://db.example.com/ords/admin")
	basic := DefaultConfig()
	basic.URL, basic.Auth, basic.User, basic.Password = "http://127.0.0.1:8080/ords/admin/", AuthBasic, "ADMIN", "env:PW"
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"ok", func(*Config) {}, ""},
		{"basic ok", func(c *Config) { *c = basic }, ""},
		{"no url", func(c *Config) { c.URL = "" }, "url:"},
		{"no alias", func(c *Config) { c.URL = "https://db.example.com" }, "url:"},
		{"sql path", func(c *Config) { c.URL = "https://db.example.com/ords/admin/_/sql" }, "url:"},
		{"http remote", func(c *Config) { c.URL = "http://db.example.com/ords/admin" }, "url:"},
		{"userinfo", func(c *Config) { c.URL = "https://u:p@db.example.com/ords/admin" }, "url:"},
		{"query", func(c *Config) { c.URL = "https://db.example.com/ords/admin?x=1" }, "url:"},
		{"bad auth", func(c *Config) { c.Auth = "kerberos" }, "auth:"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "client_id:"},
		{"literal secret", func(c *Config) { c.ClientSecret = "hunter2" }, "client_secret:"},
		{"basic fields with oauth", func(c *Config) { c.User = "ADMIN" }, "user, password"},
		{"basic no user", func(c *Config) { *c = basic; c.User = "" }, "user:"},
		{"basic no password", func(c *Config) { *c = basic; c.Password = "" }, "password:"},
		{"zero concurrency", func(c *Config) { c.MaxConcurrency = 0 }, "max_concurrency:"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout:"},
		{"zero attempts", func(c *Config) { c.Retry.MaxAttempts = 0 }, "retry.max_attempts:"},
		{"max below base", func(c *Config) { c.Retry.MaxDelay = time.Millisecond }, "retry.max_delay:"},
		{"page size", func(c *Config) { c.PageSize = 0 }, "page_size:"},
	}
	for _, tt := range tests {
		c := ok
		tt.mod(&c)
		err := c.Validate()
		if tt.wantErr == "" && err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error leaks the literal secret: %v", tt.name, err)
		}
	}
	if DefaultConfig().MaxConcurrency != 2 {
		t.Error("default max_concurrency must be 2")
	}
}

func TestNewResolvesSecretUpFront(t *testing.T) {
	cfg := testConfig("https://db.example.com/ords/admin")
	cfg.ClientSecret = "env:ORDS_TEST_UNSET_VARIABLE"
	if _, err := New(context.Background(), "hrdb", cfg); err == nil || !strings.Contains(err.Error(), "client_secret") {
		t.Fatalf("New with an unset secret: %v", err)
	}
	if _, err := New(context.Background(), "", testConfig("https://db.example.com/ords/admin")); err == nil {
		t.Fatal("New with an empty name: want error")
	}
	cfg.URL = ""
	if _, err := New(context.Background(), "hrdb", cfg); err == nil || !strings.Contains(err.Error(), "url:") {
		t.Fatalf("New with a bad config: %v", err)
	}
}

func TestQueryPagingBindsAndToken(t *testing.T) {
	f := newFakeORDS(t)
	all := make([]Row, 25)
	for i := range all {
		all[i] = Row{"username": fmt.Sprintf("U%02d", i), "account_status": "OPEN", "external_name": nil}
	}
	f.sql = func(w http.ResponseWriter, req sqlRequest, _ int) {
		off, lim := *req.Offset, *req.Limit
		end := min(off+lim, len(all))
		writeRows(w, req.StatementText, all[off:end], end < len(all))
	}
	cfg := testConfig(f.url())
	cfg.PageSize = 10
	c, _, reg := newTestClient(t, cfg)
	st := mustStmt(t)(QueryUsersByExternalName("IAM_PRINCIPAL_NAME=dom/%"))
	rows, err := c.Query(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 25 || rows[24].String("username") != "U24" || rows[0].String("external_name") != "" {
		t.Fatalf("got %d rows: %v", len(rows), rows)
	}
	sent := f.sent()
	if len(sent) != 3 {
		t.Fatalf("%d requests, want 3 pages", len(sent))
	}
	for i, r := range sent {
		if *r.Offset != i*10 || *r.Limit != 10 || r.StatementText != st.Text {
			t.Errorf("page %d: offset %d limit %d text %q", i, *r.Offset, *r.Limit, r.StatementText)
		}
		if len(r.Binds) != 1 || r.Binds[0].Index != 1 || r.Binds[0].DataType != "VARCHAR2" || r.Binds[0].Value != "IAM_PRINCIPAL_NAME=dom/%" {
			t.Errorf("page %d binds %+v", i, r.Binds)
		}
	}
	if n := f.tokenCalls.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	if got := metricValue(t, c.metrics.Requests.WithLabelValues("hrdb", opQuery, "200")); got != 3 {
		t.Errorf("requests_total{query,200} = %v", got)
	}
	if !gathered(t, reg, "iamflow_ords_request_seconds") {
		t.Error("no request_seconds metric")
	}

	// Stopping the iteration early sends no further page.
	before := f.sqlCalls.Load()
	for range c.Rows(context.Background(), st) {
		break
	}
	if got := f.sqlCalls.Load() - before; got != 1 {
		t.Errorf("early break sent %d requests, want 1", got)
	}
}

func TestQueryHasMoreWithEmptyPage(t *testing.T) {
	f := newFakeORDS(t)
	f.sql = func(w http.ResponseWriter, req sqlRequest, _ int) { writeRows(w, req.StatementText, nil, true) }
	c, _, _ := newTestClient(t, testConfig(f.url()))
	_, err := c.Query(context.Background(), mustStmt(t)(QueryRole(MustIdent("r1"))))
	if err == nil || !strings.Contains(err.Error(), "hasMore") {
		t.Fatalf("err = %v", err)
	}
}

func TestExecStatementErrors(t *testing.T) {
	tests := []struct {
		code      int
		msg       string
		retryable bool
	}{
		{ORAUserNotFound, "user 'ALICE' does not exist", false},
		{ORAInsufficientPrivs, "insufficient privileges", false},
		{ORAInvalidSQL, "invalid SQL statement", false},
		{ORATableNotFound, "table or view does not exist", false},
		{ORAResourceBusy, "resource busy and acquire with NOWAIT specified", true},
		{ORAListenerNoHandler, "TNS:listener could not find available handler", true},
		{ORAListenerNoHandler19, "TNS:no appropriate service handler found", true},
		{ORAListenerNoHandler20, "TNS:listener could not find available handler", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			f := newFakeORDS(t)
			f.sql = func(w http.ResponseWriter, req sqlRequest, _ int) { writeORA(w, req.StatementText, tt.code, tt.msg) }
			cfg := testConfig(f.url())
			cfg.Retry.MaxAttempts = 3
			c, sl, _ := newTestClient(t, cfg)
			st := mustStmt(t)(DropUserCascade(MustIdent("alice")))
			err := c.Exec(context.Background(), st)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v is not an *Error", err)
			}
			if e.Code != tt.code || Code(err) != tt.code || e.Status != 200 || e.Statement != st.Text || e.Op != opExec || e.Database != "hrdb" {
				t.Errorf("error fields %+v", e)
			}
			if Retryable(err) != tt.retryable {
				t.Errorf("Retryable = %v, want %v", !tt.retryable, tt.retryable)
			}
			wantCalls := 1
			if tt.retryable {
				wantCalls = 3
			}
			if got := int(f.sqlCalls.Load()); got != wantCalls || e.Attempts != wantCalls || len(sl.All()) != wantCalls-1 {
				t.Errorf("%d requests, %d attempts, %d sleeps; want %d requests", got, e.Attempts, len(sl.All()), wantCalls)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("ORA-%05d", tt.code)) || !strings.Contains(err.Error(), `DROP USER "ALICE" CASCADE`) {
				t.Errorf("message %q lacks the ORA code or the statement", err)
			}
			noSecret(t, err.Error())
		})
	}
}

func TestExecRetriesThenSucceeds(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		header string
	}{
		{"503 pool exhausted", 503, `{"code":"ServiceUnavailable","message":"The database connection pool is exhausted"}`, ""},
		{"429 retry-after", 429, `{"code":"TooManyRequests"}`, "2"},
		{"502", 502, `<html>bad gateway</html>`, ""},
		{"pool exhausted as 400 item", 400, `{"items":[{"errorCode":12516,"errorDetails":"ORA-12516: TNS:listener could not find available handler"}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeORDS(t)
			f.sql = func(w http.ResponseWriter, req sqlRequest, n int) {
				if n <= 2 {
					if tt.header != "" {
						w.Header().Set("Retry-After", tt.header)
					}
					w.WriteHeader(tt.status)
					fmt.Fprint(w, tt.body)
					return
				}
				writeDDLOK(w, req.StatementText)
			}
			c, sl, _ := newTestClient(t, testConfig(f.url()))
			if err := c.Exec(context.Background(), mustStmt(t)(LockUser(MustIdent("bob")))); err != nil {
				t.Fatal(err)
			}
			waits := sl.All()
			if len(waits) != 2 {
				t.Fatalf("waits %v, want 2", waits)
			}
			for i, d := range waits {
				limit := DefaultConfig().Retry.BaseDelay << i
				if tt.header != "" {
					if d != 2*time.Second {
						t.Errorf("wait %d = %v, want the Retry-After 2s", i, d)
					}
				} else if d < 0 || d >= limit {
					t.Errorf("wait %d = %v outside [0, %v)", i, d, limit)
				}
			}
			if got := metricValue(t, c.metrics.Retries); got != 2 {
				t.Errorf("retries_total = %v", got)
			}
		})
	}
}

func TestTerminalHTTPStatus(t *testing.T) {
	for _, status := range []int{400, 403, 404, 405, 501} {
		f := newFakeORDS(t)
		f.sql = func(w http.ResponseWriter, _ sqlRequest, _ int) {
			w.WriteHeader(status)
			fmt.Fprint(w, `{"code":"Nope","message":"not here"}`)
		}
		c, _, _ := newTestClient(t, testConfig(f.url()))
		err := c.Exec(context.Background(), mustStmt(t)(UnlockUser(MustIdent("bob"))))
		var e *Error
		if !errors.As(err, &e) || e.Status != status || Retryable(err) || f.sqlCalls.Load() != 1 {
			t.Errorf("status %d: err %v, %d calls", status, err, f.sqlCalls.Load())
		}
		if e != nil && !strings.Contains(e.Detail, "not here") {
			t.Errorf("status %d: detail %q", status, e.Detail)
		}
	}
}

func TestNetworkErrorRetryable(t *testing.T) {
	f := newFakeORDS(t)
	cfg := testConfig(f.url())
	cfg.Retry.MaxAttempts = 2
	c, _, _ := newTestClient(t, cfg)
	if err := c.Exec(context.Background(), mustStmt(t)(LockUser(MustIdent("bob")))); err != nil {
		t.Fatal(err) // token cached
	}
	f.srv.Close()
	err := c.Exec(context.Background(), mustStmt(t)(LockUser(MustIdent("bob"))))
	var e *Error
	if !errors.As(err, &e) || !Retryable(err) || e.Attempts != 2 || e.Err == nil {
		t.Fatalf("err %v (%+v), want retryable network error after 2 attempts", err, e)
	}
	noSecret(t, err.Error())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Exec(ctx, mustStmt(t)(LockUser(MustIdent("bob")))); err == nil || Retryable(err) {
		t.Fatalf("cancelled ctx: err %v, want a terminal error", err)
	}
}

func TestOAuthRefreshOn401(t *testing.T) {
	f := newFakeORDS(t)
	c, _, _ := newTestClient(t, testConfig(f.url()))
	st := mustStmt(t)(GrantCreateSession(MustIdent("alice")))
	if err := c.Exec(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	// The server forgets the token: the next call gets a 401, fetches a new
	// token once and succeeds.
	f.mu.Lock()
	f.validToken = "revoked"
	f.mu.Unlock()
	// The fake sets validToken when it issues one, so a fresh token works again.
	if err := c.Exec(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if n := f.tokenCalls.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
	if got := metricValue(t, c.metrics.Retries.WithLabelValues("hrdb", opExec, "unauthorized")); got != 1 {
		t.Errorf("unauthorized retries = %v", got)
	}
}

func TestPersistent401IsTerminal(t *testing.T) {
	f := newFakeORDS(t)
	f.sql = func(w http.ResponseWriter, _ sqlRequest, _ int) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"Unauthorized","message":"Unauthorized"}`)
	}
	c, sl, _ := newTestClient(t, testConfig(f.url()))
	err := c.Exec(context.Background(), mustStmt(t)(GrantCreateSession(MustIdent("alice"))))
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || Retryable(err) {
		t.Fatalf("err %v", err)
	}
	if f.sqlCalls.Load() != 2 || f.tokenCalls.Load() != 2 || len(sl.All()) != 0 {
		t.Errorf("%d sql, %d token requests, %d sleeps; want 2, 2, 0", f.sqlCalls.Load(), f.tokenCalls.Load(), len(sl.All()))
	}
	noSecret(t, err.Error())
}

func TestTokenRefusedNoSecretInError(t *testing.T) {
	f := newFakeORDS(t)
	var logs bytes.Buffer
	c, _, _ := newTestClient(t, testConfig(f.url()), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	t.Setenv("ORDS_TEST_SECRET", "wrong-"+testSecret) // rotated to a wrong value: resolved again per token request
	err := c.Exec(context.Background(), mustStmt(t)(LockUser(MustIdent("bob"))))
	var e *Error
	if !errors.As(err, &e) || e.Op != opToken || e.Status != 401 || Retryable(err) {
		t.Fatalf("err %v", err)
	}
	noSecret(t, err.Error())
	noSecret(t, logs.String())
	if f.sqlCalls.Load() != 0 {
		t.Error("a statement was sent without a token")
	}
}

func TestTokenSingleFlightAndRenewal(t *testing.T) {
	f := newFakeORDS(t)
	f.tokenTTL = 100
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cfg := testConfig(f.url())
	cfg.MaxConcurrency = 8
	c, _, _ := newTestClient(t, cfg, WithClock(clock))
	st := mustStmt(t)(LockUser(MustIdent("bob")))
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 16 {
		wg.Go(func() {
			if err := c.Exec(context.Background(), st); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || f.tokenCalls.Load() != 1 {
		t.Fatalf("%d failed, %d token requests; want 0 and 1", failed.Load(), f.tokenCalls.Load())
	}
	// 100s token: renewed 30s before expiry (20% = 20s < 30s margin).
	mu.Lock()
	now = now.Add(69 * time.Second)
	mu.Unlock()
	_ = c.Exec(context.Background(), st)
	if f.tokenCalls.Load() != 1 {
		t.Fatalf("renewed too early")
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if err := c.Exec(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if f.tokenCalls.Load() != 2 {
		t.Fatalf("%d token requests after 71s, want 2 (renewal ahead of expiry)", f.tokenCalls.Load())
	}
}

func TestBasicAuth(t *testing.T) {
	f := newFakeORDS(t)
	cfg := DefaultConfig()
	cfg.URL, cfg.Auth, cfg.User, cfg.Password = f.url(), AuthBasic, "ADMIN", "env:ORDS_TEST_PASSWORD"
	c, _, _ := newTestClient(t, cfg)
	if _, err := c.Query(context.Background(), mustStmt(t)(QueryUser(MustIdent("alice")))); err != nil {
		t.Fatal(err)
	}
	if f.tokenCalls.Load() != 0 || !strings.HasPrefix(f.authz[0], "Basic ") {
		t.Errorf("basic auth: %d token calls, authz %q", f.tokenCalls.Load(), f.authz[0])
	}
	t.Setenv("ORDS_TEST_PASSWORD", "wrong")
	// The cached password still works; a 401 re-resolves it (here to a wrong one).
	if _, err := c.Query(context.Background(), mustStmt(t)(QueryUser(MustIdent("alice")))); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	f := newFakeORDS(t)
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	f.sql = func(w http.ResponseWriter, req sqlRequest, _ int) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		writeDDLOK(w, req.StatementText)
	}
	c, _, _ := newTestClient(t, testConfig(f.url())) // max_concurrency 2
	// Fetch the token first, so the test sees only /_/sql requests.
	st := mustStmt(t)(LockUser(MustIdent("bob")))
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { _ = c.Exec(context.Background(), st) })
	}
	itestutil.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if inFlight.Load() != 2 || metricValue(t, c.metrics.inFlight.WithLabelValues("hrdb")) != 2 {
			return fmt.Errorf("in flight %d", inFlight.Load())
		}
		return nil
	})
	close(release)
	wg.Wait()
	if peak.Load() != 2 || f.sqlCalls.Load() != 6 {
		t.Fatalf("peak %d, calls %d; want 2 and 6", peak.Load(), f.sqlCalls.Load())
	}
}

func TestRefusesUnbuiltStatements(t *testing.T) {
	f := newFakeORDS(t)
	c, _, _ := newTestClient(t, testConfig(f.url()))
	for _, st := range []Statement{{}, {Text: "   "}, {Text: `DROP USER "A"; DROP USER "B"`}, {Text: "x\x00"}} {
		if err := c.Exec(context.Background(), st); err == nil {
			t.Errorf("Exec(%q): want refusal", st.Text)
		}
	}
	if f.sqlCalls.Load() != 0 {
		t.Error("a refused statement was sent")
	}
}

func TestRetryableClassification(t *testing.T) {
	if Retryable(nil) || Retryable(errors.New("x")) || Retryable(context.Canceled) {
		t.Error("nil, plain and cancelled errors are not retryable")
	}
	if !Retryable(fmt.Errorf("wrapped: %w", &Error{Retryable: true})) || !Retryable(context.DeadlineExceeded) {
		t.Error("wrapped retryable *Error and deadline are retryable")
	}
	for status, want := range map[int]bool{429: true, 500: true, 502: true, 503: true, 504: true, 501: false, 400: false, 403: false, 404: false} {
		if got := classifyStatus(status, ""); got != want {
			t.Errorf("status %d: %v", status, got)
		}
	}
	if !classifyStatus(400, "UCP-29: Failed to get a connection: pool exhausted") {
		t.Error("pool exhausted in body is retryable")
	}
	// What the bus sees (bus.RetryHinter): the same verdict, and the wait.
	if r, after := (&Error{Retryable: true, RetryAfter: 3 * time.Second}).RetryHint(); !r || after != 3*time.Second {
		t.Errorf("retryable error hints %v %v", r, after)
	}
	if r, _ := (&Error{Code: ORAInsufficientPrivs}).RetryHint(); r {
		t.Error("ORA-01031 hints a retry")
	}
	if r, _ := (&Error{Retryable: true, Err: context.Canceled}).RetryHint(); r {
		t.Error("a cancelled call hints a retry")
	}
}

func TestErrorRendering(t *testing.T) {
	e := &Error{Database: "hrdb", Op: "exec", Statement: `DROP USER "A" CASCADE`, Status: 200, Code: 1918, Detail: "ORA-01918: user 'A' does not exist", Attempts: 1}
	if got := e.Error(); got != `ords hrdb exec [DROP USER "A" CASCADE]: HTTP 200: ORA-01918: user 'A' does not exist` {
		t.Errorf("got %s", got)
	}
	if e.ORA() != "ORA-01918" {
		t.Error(e.ORA())
	}
}
