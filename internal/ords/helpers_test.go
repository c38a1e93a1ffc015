package ords

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const (
	testClientID = "cid"
	testSecret   = "s3cr3t-client-value"
	testPassword = "pa55-word-value"
)

// fakeORDS answers /oauth/token and /_/sql like ORDS. sql decides each
// /_/sql answer; by default it answers an empty query result.
type fakeORDS struct {
	t   *testing.T
	srv *httptest.Server

	tokenCalls atomic.Int32
	sqlCalls   atomic.Int32
	tokenTTL   int
	// validToken is the token /_/sql accepts; empty: any "tok-N".
	mu         sync.Mutex
	validToken string
	requests   []sqlRequest
	authz      []string

	sql func(w http.ResponseWriter, req sqlRequest, n int)
}

func newFakeORDS(t *testing.T) *fakeORDS {
	f := &fakeORDS{t: t, tokenTTL: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ords/hr/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		id, sec, ok := r.BasicAuth()
		b, _ := io.ReadAll(r.Body)
		if !ok || id != testClientID || sec != testSecret || string(b) != "grant_type=client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"Unauthorized","message":"Unauthorized"}`)
			return
		}
		n := f.tokenCalls.Add(1)
		tok := fmt.Sprintf("tok-%d", n)
		f.mu.Lock()
		f.validToken = tok
		f.mu.Unlock()
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":%d}`, tok, f.tokenTTL)
	})
	mux.HandleFunc("POST /ords/hr/_/sql", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		valid := f.validToken
		f.mu.Unlock()
		authz := r.Header.Get("Authorization")
		okAuth := authz == "Bearer "+valid && valid != ""
		if u, p, ok := r.BasicAuth(); ok && u == "ADMIN" && p == testPassword {
			okAuth = true
		}
		if !okAuth || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"Unauthorized","message":"Unauthorized","type":"tag:oracle.com,2020:error/Unauthorized"}`)
			return
		}
		var req sqlRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		n := int(f.sqlCalls.Add(1))
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.authz = append(f.authz, authz)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if f.sql != nil {
			f.sql(w, req, n)
			return
		}
		writeRows(w, req.StatementText, nil, false)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeORDS) url() string { return f.srv.URL + "/ords/hr/" }

func (f *fakeORDS) sent() []sqlRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sqlRequest(nil), f.requests...)
}

func writeRows(w http.ResponseWriter, text string, rows []Row, hasMore bool) {
	if rows == nil {
		rows = []Row{}
	}
	b, _ := json.Marshal(map[string]any{
		"env": map[string]any{"defaultTimeZone": "UTC"},
		"items": []any{map[string]any{
			"statementId": 1, "statementType": "query", "statementText": text,
			"resultSet": map[string]any{"metadata": []any{}, "items": rows, "hasMore": hasMore, "limit": 10000, "offset": 0, "count": len(rows)},
			"response":  []string{}, "result": 0,
		}},
	})
	_, _ = w.Write(b)
}

func writeDDLOK(w http.ResponseWriter, text string) {
	fmt.Fprintf(w, `{"env":{"defaultTimeZone":"UTC"},"items":[{"statementId":1,"statementType":"ddl","statementPos":{"startLine":1,"endLine":1},"statementText":%q,"response":["\nUser created.\n\n"],"result":0}]}`, text)
}

func writeORA(w http.ResponseWriter, text string, code int, msg string) {
	fmt.Fprintf(w, `{"env":{"defaultTimeZone":"UTC"},"items":[{"statementId":1,"statementType":"ddl","statementText":%q,"response":[],"errorCode":%d,"errorLine":1,"errorColumn":1,"errorMessage":%q,"errorDetails":%q,"result":0}]}`,
		text, code, msg, fmt.Sprintf("ORA-%05d: %s", code, msg))
}

func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.ClientID = testClientID
	cfg.ClientSecret = "env:ORDS_TEST_SECRET"
	cfg.Timeout = 10 * time.Second
	return cfg
}

func newTestClient(t *testing.T, cfg Config, opts ...Option) (*Client, *testutil.Sleeps, *prometheus.Registry) {
	t.Helper()
	t.Setenv("ORDS_TEST_SECRET", testSecret)
	t.Setenv("ORDS_TEST_PASSWORD", testPassword)
	s := &testutil.Sleeps{}
	reg := prometheus.NewRegistry()
	c, err := New(context.Background(), "hrdb", cfg, append([]Option{WithSleep(s.Sleep), WithRegisterer(reg)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c, s, reg
}

func mustStmt(t *testing.T) func(Statement, error) Statement {
	return func(s Statement, err error) Statement {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func noSecret(t *testing.T, s string) {
	t.Helper()
	for _, sec := range []string{testSecret, testPassword, "tok-"} {
		if strings.Contains(s, sec) {
			t.Fatalf("%q leaks a secret or token", s)
		}
	}
}

// metricValue sums the counter or gauge values of c.
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		}
	}
	return sum
}

// gathered reports whether reg has a metric family called name.
func gathered(t *testing.T, reg *prometheus.Registry, name string) bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}
