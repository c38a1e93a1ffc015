package ords_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/emulator/ords"
)

const (
	alias        = "pdb1"
	clientID     = "ords-client-1"
	clientSecret = "ords-s3cret"
	basicUser    = "ADMIN"
	basicPass    = "Adm1n-pw"
)

// t0 is the time manual clocks start at.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func baseConfig() ords.Config {
	return ords.Config{Databases: []ords.Database{{
		Alias: alias, ClientID: clientID, ClientSecret: clientSecret,
		BasicUser: basicUser, BasicPassword: basicPass,
	}}}
}

// env is a started emulator with its test server.
type env struct {
	t   testing.TB
	emu *ords.Emulator
	srv *httptest.Server
}

func start(t testing.TB, cfg ords.Config, opts ...ords.Option) *env {
	t.Helper()
	e, err := ords.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, emu: e, srv: srv}
}

func (v *env) base(a string) string { return v.srv.URL + "/ords/" + a }

// token gets an OAuth token for the alias with the test client.
func (v *env) token(a string) string {
	v.t.Helper()
	status, body := v.tokenReq(a, clientID, clientSecret, "client_credentials")
	if status != 200 {
		v.t.Fatalf("token: status %d: %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		v.t.Fatalf("token: %v", err)
	}
	return tok.AccessToken
}

func (v *env) tokenReq(a, id, secret, grant string) (int, []byte) {
	v.t.Helper()
	form := url.Values{"grant_type": {grant}}
	req, _ := http.NewRequest(http.MethodPost, v.base(a)+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return do(v.t, req)
}

func do(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, b
}

// auth sets Authorization on a request: "bearer:<tok>", "basic:<u>:<p>" or "".
type auth func(*http.Request)

func bearer(tok string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func basic(u, p string) auth { return func(r *http.Request) { r.SetBasicAuth(u, p) } }

func (v *env) post(a string, au auth, contentType string, body []byte) (int, []byte) {
	v.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, v.base(a)+"/_/sql", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if au != nil {
		au(req)
	}
	return do(v.t, req)
}

// hold posts stmt with the Basic user and waits for the answer or for ctx's
// end; under a Latency fault it holds a pool connection until then.
func (v *env) hold(ctx context.Context, stmt string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, v.base(alias)+"/_/sql", strings.NewReader(stmt))
	req.Header.Set("Content-Type", "application/sql")
	req.SetBasicAuth(basicUser, basicPass)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// request is the JSON body.
type request struct {
	StatementText string `json:"statementText"`
	Offset        *int   `json:"offset,omitempty"`
	Limit         *int   `json:"limit,omitempty"`
	Binds         []bind `json:"binds,omitempty"`
}

type bind struct {
	Index    int    `json:"index,omitempty"`
	Name     string `json:"name,omitempty"`
	DataType string `json:"data_type"`
	Value    any    `json:"value"`
}

func vbind(i int, v string) bind { return bind{Index: i, DataType: "VARCHAR2", Value: v} }

func intp(i int) *int { return &i }

// response is the decoded answer.
type response struct {
	Env struct {
		DefaultTimeZone string `json:"defaultTimeZone"`
	} `json:"env"`
	Items []item `json:"items"`
}

type item struct {
	StatementID   int    `json:"statementId"`
	StatementType string `json:"statementType"`
	StatementPos  struct {
		StartLine int `json:"startLine"`
		EndLine   int `json:"endLine"`
	} `json:"statementPos"`
	StatementText string     `json:"statementText"`
	Response      []string   `json:"response"`
	Result        *int       `json:"result"`
	ResultSet     *resultSet `json:"resultSet"`
	ErrorCode     int        `json:"errorCode"`
	ErrorDetails  string     `json:"errorDetails"`
	ErrorMessage  string     `json:"errorMessage"`
	ErrorLine     int        `json:"errorLine"`
	ErrorColumn   int        `json:"errorColumn"`
}

type resultSet struct {
	Metadata []struct {
		ColumnName      string `json:"columnName"`
		JSONColumnName  string `json:"jsonColumnName"`
		ColumnTypeName  string `json:"columnTypeName"`
		ColumnClassName string `json:"columnClassName"`
		Precision       int    `json:"precision"`
		Scale           int    `json:"scale"`
		IsNullable      int    `json:"isNullable"`
	} `json:"metadata"`
	Items   []map[string]any `json:"items"`
	HasMore bool             `json:"hasMore"`
	Limit   int              `json:"limit"`
	Offset  int              `json:"offset"`
	Count   int              `json:"count"`
}

// sql runs a JSON request with Basic auth and returns the decoded answer.
func (v *env) sql(a string, req request) response {
	v.t.Helper()
	body, _ := json.Marshal(req)
	status, out := v.post(a, basic(basicUser, basicPass), "application/json", body)
	if status != 200 {
		v.t.Fatalf("sql %q: status %d: %s", req.StatementText, status, out)
	}
	var r response
	if err := json.Unmarshal(out, &r); err != nil {
		v.t.Fatalf("sql %q: decode: %v: %s", req.StatementText, err, out)
	}
	return r
}

// one runs a single statement and returns its item.
func (v *env) one(text string, binds ...bind) item {
	v.t.Helper()
	r := v.sql(alias, request{StatementText: text, Binds: binds, Limit: intp(10000), Offset: intp(0)})
	if len(r.Items) != 1 {
		v.t.Fatalf("%q: %d items, want 1", text, len(r.Items))
	}
	return r.Items[0]
}

// ok runs statements that must succeed.
func (v *env) ok(texts ...string) {
	v.t.Helper()
	for _, text := range texts {
		if it := v.one(text); it.ErrorCode != 0 {
			v.t.Fatalf("%q: %s", text, it.ErrorDetails)
		}
	}
}

// script runs an application/sql body with a bearer token.
func (v *env) script(a, tok, text string) response {
	v.t.Helper()
	status, out := v.post(a, bearer(tok), "application/sql", []byte(text))
	if status != 200 {
		v.t.Fatalf("script: status %d: %s", status, out)
	}
	var r response
	if err := json.Unmarshal(out, &r); err != nil {
		v.t.Fatalf("script: decode: %v", err)
	}
	return r
}

// ordsErrorBody checks an ORDS error body and returns its code.
func ordsErrorBody(t testing.TB, body []byte) string {
	t.Helper()
	var e map[string]string
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e["type"] != "tag:oracle.com,2020:error/"+e["code"] || !strings.HasPrefix(e["instance"], "tag:oracle.com,2020:ecid/") || e["message"] == "" {
		t.Errorf("error body %s: not the ORDS shape", body)
	}
	return e["code"]
}
