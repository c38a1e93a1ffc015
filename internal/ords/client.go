package ords

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/iamflow/iamflow/internal/apiclient"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/token"
)

const (
	tracerName = "github.com/iamflow/iamflow/internal/ords"
	sqlPath    = "/_/sql"
	opQuery    = "query"
	opExec     = "exec"
	opToken    = "token"
	// maxResponseBody bounds one answer (a page of 10000 user rows is ~2 MB).
	maxResponseBody = 32 << 20
)

// Client runs statements on one database through ORDS REST-enabled SQL. It is
// safe for concurrent use; make one per database per process (the
// concurrency limit is per Client).
type Client struct {
	name    string
	cfg     Config
	baseURL string

	http     *http.Client
	auth     authorizer
	resolver SecretResolver
	slots    chan struct{}
	metrics  *metrics
	tracer   trace.Tracer
	log      *slog.Logger
	sleep    SleepFunc
	rnd      func() float64
}

// SleepFunc waits d or until ctx ends, returning ctx's error in that case.
// Tests inject one that does not wait.
type SleepFunc = apiclient.SleepFunc

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	apiclient.Options
	now      func() time.Time
	resolver SecretResolver
}

// WithLogger sets the logger (requests at debug level). Default: the
// telemetry's logger, or none.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.SetLogger(l) } }

// WithTelemetry makes the client trace each Query and Exec (one span per
// call, a client span per HTTP request) with t's tracer provider.
func WithTelemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.Telemetry = t } }

// WithRegisterer sets where the Prometheus metrics are registered; several
// clients may share one. Default: a private registry.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.SetRegisterer(r) } }

// WithTransport sets the HTTP transport (custom TLS, proxies, tests).
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.SetTransport(rt) } }

// WithClock sets the clock used for token renewal.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithSleep replaces how the client waits between retries.
func WithSleep(f SleepFunc) Option { return func(o *options) { o.SetSleep(f) } }

// WithSecretResolver sets how client_secret and password references are
// resolved; pass a *secret.Resolver to accept vault: references. Default:
// secret.Resolve (env: and file: only).
func WithSecretResolver(r SecretResolver) Option {
	return func(o *options) {
		if r != nil {
			o.resolver = r
		}
	}
}

// New validates cfg, resolves its secret once (so a wrong reference fails
// here) and builds the client for the database called name (used in
// metrics, logs and errors). It sends no request.
func New(ctx context.Context, name string, cfg Config, opts ...Option) (*Client, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("ords: new client: empty database name")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ords: database %s: invalid config:\n%w", name, err)
	}
	o := options{now: time.Now, resolver: packageResolver{}}
	for _, opt := range opts {
		opt(&o)
	}
	o.Defaults()
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("ords: database %s: register metrics: %w", name, err)
	}
	baseURL, _ := normalizeBaseURL(cfg.URL)
	c := &Client{
		name:     name,
		cfg:      cfg,
		baseURL:  baseURL,
		resolver: o.resolver,
		slots:    make(chan struct{}, cfg.MaxConcurrency),
		metrics:  m,
		tracer:   o.Tracer(tracerName),
		log:      o.Logger.With("database", name),
		sleep:    o.Sleep,
		rnd:      mathrand.Float64,
		http:     o.HTTPClient(func() http.RoundTripper { return http.DefaultTransport.(*http.Transport).Clone() }),
	}
	m.inFlight.WithLabelValues(name).Set(0)
	switch cfg.Auth {
	case AuthOAuth:
		if _, err := o.resolver.Resolve(ctx, cfg.ClientSecret); err != nil {
			return nil, fmt.Errorf("ords: database %s: client_secret: %w", name, err)
		}
		c.auth = oauthAuthorizer{tokens: token.New(c.fetchToken, o.now, c.log, "ORDS")}
	case AuthBasic:
		pw, err := o.resolver.Resolve(ctx, cfg.Password)
		if err != nil {
			return nil, fmt.Errorf("ords: database %s: password: %w", name, err)
		}
		c.auth = &basicAuthorizer{user: cfg.User, ref: cfg.Password, resolver: o.resolver, password: pw}
	}
	return c, nil
}

// Name returns the database's name.
func (c *Client) Name() string { return c.name }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Query runs a query and returns all its rows, following ORDS's paging
// (limit page_size, offset, hasMore).
func (c *Client) Query(ctx context.Context, st Statement) ([]Row, error) {
	var rows []Row
	for r, err := range c.Rows(ctx, st) {
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// Rows runs a query and yields its rows page by page, requesting the next
// page (offset advanced by the rows received) while ORDS says hasMore. An
// error is yielded once, last.
func (c *Client) Rows(ctx context.Context, st Statement) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		ctx, span := c.startSpan(ctx, "ords.Query", st)
		defer span.End()
		if err := c.checkStatement(opQuery, st); err != nil {
			endSpan(span, err)
			yield(nil, err)
			return
		}
		offset, limit := 0, c.cfg.PageSize
		for {
			body, err := json.Marshal(sqlRequest{StatementText: st.Text, Offset: &offset, Limit: &limit, Binds: st.Binds})
			if err != nil {
				err = &Error{Database: c.name, Op: opQuery, Statement: st.Text, Detail: "encode the request", Err: err}
				endSpan(span, err)
				yield(nil, err)
				return
			}
			pg, err := c.run(ctx, opQuery, st, body)
			if err != nil {
				endSpan(span, err)
				yield(nil, err)
				return
			}
			for _, r := range pg.rows {
				if !yield(r, nil) {
					return
				}
			}
			if !pg.hasMore {
				return
			}
			if len(pg.rows) == 0 {
				err := &Error{Database: c.name, Op: opQuery, Statement: st.Text, Status: http.StatusOK,
					Detail: fmt.Sprintf("ORDS said hasMore with an empty page at offset %d", offset)}
				endSpan(span, err)
				yield(nil, err)
				return
			}
			offset += len(pg.rows)
		}
	}
}

// Exec runs a statement (DDL) and returns its error, if any. Binds are sent
// when the statement has them.
func (c *Client) Exec(ctx context.Context, st Statement) (err error) {
	ctx, span := c.startSpan(ctx, "ords.Exec", st)
	defer func() { endSpan(span, err); span.End() }()
	if err := c.checkStatement(opExec, st); err != nil {
		return err
	}
	body, err := json.Marshal(sqlRequest{StatementText: st.Text, Binds: st.Binds})
	if err != nil {
		return &Error{Database: c.name, Op: opExec, Statement: st.Text, Detail: "encode the request", Err: err}
	}
	_, err = c.run(ctx, opExec, st, body)
	return err
}

// checkStatement refuses text that cannot come from the builders: empty, or
// holding ';' (several statements) or NUL.
func (c *Client) checkStatement(op string, st Statement) error {
	if strings.TrimSpace(st.Text) == "" || strings.ContainsAny(st.Text, ";\x00") {
		return &Error{Database: c.name, Op: op, Statement: st.Text, Detail: "refused before sending: empty statement, or one holding ';' or NUL (build statements with the ords builders)"}
	}
	return nil
}

func (c *Client) startSpan(ctx context.Context, name string, st Statement) (context.Context, trace.Span) {
	return c.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("db.system.name", "oracle"),
		attribute.String("db.operation.name", operationName(st.Text)),
		attribute.String("iamflow.database", c.name),
	))
}

func endSpan(span trace.Span, err error) {
	if err == nil {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, "ORDS call failed")
	if code := Code(err); code != 0 {
		span.SetAttributes(attribute.String("db.response.status_code", fmt.Sprintf("ORA-%05d", code)))
	}
}

// operationName is the statement's first two words, upper-cased: "CREATE
// USER", "SELECT USERNAME" is cut to "SELECT".
func operationName(text string) string {
	f := strings.Fields(text)
	if len(f) == 0 {
		return ""
	}
	first := strings.ToUpper(f[0])
	switch first {
	case "CREATE", "ALTER", "DROP":
		if len(f) > 1 {
			return first + " " + strings.ToUpper(f[1])
		}
	}
	return cut(first, 20)
}

// run sends one statement request (one page) with retries and one token
// refresh on 401, and parses the answer.
func (c *Client) run(ctx context.Context, op string, st Statement, body []byte) (page, error) {
	var pg page
	err := c.withRetries(ctx, op, st.Text, func(ctx context.Context) error {
		refreshed := false
		for {
			set, used, err := c.auth.prepare(ctx)
			if err != nil {
				// The token request had its own retries.
				return noRetry{err}
			}
			res, err := c.send(ctx, op, http.MethodPost, c.baseURL+sqlPath, "application/json", body, set)
			if err != nil {
				return err
			}
			if res.status == http.StatusUnauthorized && !refreshed {
				refreshed = true
				c.metrics.Retries.WithLabelValues(c.name, op, "unauthorized").Inc()
				if err := c.auth.refresh(ctx, used); err != nil {
					return noRetry{&Error{Database: c.name, Op: op, Statement: st.Text, Status: res.status, Detail: "refresh credentials after 401", Err: err}}
				}
				continue
			}
			if res.status != http.StatusOK {
				return c.httpError(op, st.Text, res)
			}
			p, se := parseResponse(res.body)
			if se != nil {
				return c.sqlErr(op, st.Text, res.status, se)
			}
			pg = p
			return nil
		}
	})
	return pg, err
}

func (c *Client) sqlErr(op, stmt string, status int, se *sqlError) *Error {
	e := &Error{Database: c.name, Op: op, Statement: stmt, Status: status, Code: se.code, Detail: se.detail, Retryable: se.retryable}
	if se.code != 0 {
		c.metrics.sqlErrors.WithLabelValues(c.name, e.ORA()).Inc()
	}
	return e
}

// httpError turns a non-200 answer into an *Error. A body in the ORDS items
// shape reporting a statement error gives its ORA code.
func (c *Client) httpError(op, stmt string, res *httpResult) *Error {
	if _, se := parseResponse(res.body); se != nil && se.code != 0 {
		e := c.sqlErr(op, stmt, res.status, se)
		e.Retryable = e.Retryable || classifyStatus(res.status, string(res.body))
		e.RetryAfter = res.retryAfter
		return e
	}
	detail, code := describeErrorBody(res.status, res.body)
	if op == opToken && (res.status == http.StatusUnauthorized || res.status == http.StatusBadRequest) {
		detail = "the token endpoint refused the client credentials: " + detail
	}
	return &Error{Database: c.name, Op: op, Statement: stmt, Status: res.status, Code: code, Detail: detail,
		Retryable: classifyStatus(res.status, string(res.body)) || retryableORA[code], RetryAfter: res.retryAfter}
}

// noRetry marks an error the retry loop must return at once.
type noRetry struct{ err error }

func (n noRetry) Error() string { return n.err.Error() }
func (n noRetry) Unwrap() error { return n.err }

// withRetries calls fn until it succeeds, fails terminally, or has been
// called retry.max_attempts times, waiting with full-jitter backoff (raised
// to a Retry-After) between calls.
func (c *Client) withRetries(ctx context.Context, op, stmt string, fn func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var nr noRetry
		if errors.As(err, &nr) {
			return nr.err
		}
		var e *Error
		if errors.As(err, &e) {
			e.Attempts = attempt
		}
		if !Retryable(err) || attempt >= c.cfg.Retry.MaxAttempts || ctx.Err() != nil {
			return err
		}
		wait := c.cfg.Retry.Backoff(attempt, c.rnd)
		if e != nil && e.RetryAfter > wait {
			wait = min(e.RetryAfter, c.cfg.Retry.MaxDelay)
		}
		c.metrics.Retries.WithLabelValues(c.name, op, retryReason(e)).Inc()
		c.log.Debug("ORDS request failed, retrying", "op", op, "attempt", attempt, "wait", wait, "err", err)
		if serr := c.sleep(ctx, wait); serr != nil {
			return err
		}
	}
}

func retryReason(e *Error) string {
	switch {
	case e == nil:
		return "network"
	case e.Code != 0:
		return fmt.Sprintf("ora_%05d", e.Code)
	case e.Status != 0:
		return "http_" + strconv.Itoa(e.Status)
	}
	return "network"
}

// httpResult is an answer with its body read.
type httpResult struct {
	status     int
	body       []byte
	retryAfter time.Duration
}

// send makes one HTTP request under one of the database's slots and the
// request timeout. Transport failures become a retryable *Error (unless the
// caller's context ended).
func (c *Client) send(ctx context.Context, op, method, url, contentType string, body []byte, setAuth func(*http.Request)) (*httpResult, error) {
	waitStart := time.Now()
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.metrics.slotWait.WithLabelValues(c.name).Observe(time.Since(waitStart).Seconds())
	c.metrics.inFlight.WithLabelValues(c.name).Inc()
	defer func() {
		<-c.slots
		c.metrics.inFlight.WithLabelValues(c.name).Dec()
	}()

	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Database: c.name, Op: op, Detail: "build the request", Err: err}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	setAuth(req)
	start := time.Now()
	resp, err := c.http.Do(req)
	var res *httpResult
	if err == nil {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
		resp.Body.Close()
		if err == nil && len(b) > maxResponseBody {
			err = fmt.Errorf("answer larger than %d bytes", maxResponseBody)
		}
		res = &httpResult{status: resp.StatusCode, body: b, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	}
	elapsed := time.Since(start)
	c.metrics.Seconds.WithLabelValues(c.name, op).Observe(elapsed.Seconds())
	if err != nil {
		code := "network"
		if errors.Is(err, context.DeadlineExceeded) {
			code = "timeout"
		}
		c.metrics.Requests.WithLabelValues(c.name, op, code).Inc()
		c.log.Debug("ORDS request failed", "op", op, "err", err, "elapsed", elapsed)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		status := 0
		if res != nil {
			status = res.status
		}
		return nil, &Error{Database: c.name, Op: op, Status: status, Detail: "request failed", Retryable: true, Err: stripURL(err)}
	}
	c.metrics.Requests.WithLabelValues(c.name, op, strconv.Itoa(res.status)).Inc()
	c.log.Debug("ORDS request", "op", op, "status", res.status, "elapsed", elapsed)
	return res, nil
}

// stripURL drops the *url.Error wrapper's method and URL (the URL holds no
// secret, but the error is clearer without it: the *Error names the database).
func stripURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Post ") {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// parseRetryAfter reads delay-seconds (HTTP dates are ignored), bounded to an hour.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}
