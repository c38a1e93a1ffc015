package admin_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	idclient "github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/oidc"
	"github.com/iamflow/iamflow/internal/oidc/oidctest"
	"github.com/iamflow/iamflow/internal/pipelinetest"
)

const (
	cliID     = "iamflow-cli"
	sysID     = "iamflow-sys"
	sysSecret = "sys-secret-0123456789abcdef"
	bob       = "bob@example.com"
	bobPass   = "Bob-Password-42"
)

// grantRecorder is an ExpiryService that records who called it: a call it
// sees is a side effect a refused caller must not cause.
type grantRecorder struct {
	iamflowv1.UnimplementedExpiryServiceServer
	calls atomic.Int32
	last  atomic.Pointer[admin.Caller]
}

func (g *grantRecorder) GrantMembership(ctx context.Context, _ *iamflowv1.GrantMembershipRequest) (*iamflowv1.GrantMembershipResponse, error) {
	g.calls.Add(1)
	c, ok := admin.CallerFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no caller in the context")
	}
	g.last.Store(c)
	return &iamflowv1.GrantMembershipResponse{Grant: &iamflowv1.Grant{Id: "g1", Requester: c.Name()}}, nil
}

func (g *grantRecorder) ListGrants(ctx context.Context, _ *iamflowv1.ListGrantsRequest) (*iamflowv1.ListGrantsResponse, error) {
	c, _ := admin.CallerFrom(ctx)
	g.last.Store(c)
	return &iamflowv1.ListGrantsResponse{}, nil
}

// loginDomain is an emulated login domain with bob (group Approvers) and
// an Authenticator over it, reading groups with iamflow's own client.
func loginDomain(t *testing.T) (*identitydomain.Domain, *oidc.Authenticator) {
	t.Helper()
	d := pipelinetest.LoginDomain(t, "login", sysID, sysSecret, cliID, identitydomain.SeedData{
		Users:  []map[string]any{{"userName": bob, "displayName": "Bob", "password": bobPass}},
		Groups: []map[string]any{{"displayName": "Approvers", "members": []any{bob}}}})
	dir := pipelinetest.Client(t, "login", pipelinetest.ClientConfig(t, d.URL(), sysID, sysSecret, false))
	v, err := oidc.NewVerifier(oidc.Config{Domain: "login", ClientID: cliID, Tenant: d.Config().DomainID}, d.URL())
	if err != nil {
		t.Fatal(err)
	}
	a, err := oidc.NewAuthenticator(v, dir)
	if err != nil {
		t.Fatal(err)
	}
	return d, a
}

// personToken logs bob in through the domain's login page.
func personToken(t *testing.T, d *identitydomain.Domain) string {
	t.Helper()
	p, err := oidc.Discover(t.Context(), nil, d.URL())
	if err != nil {
		t.Fatal(err)
	}
	f := oidc.NewFlow(p, cliID, "", "http://127.0.0.1:40001/callback", []string{"openid"})
	pend := f.Start()
	back, err := oidctest.Login(t.Context(), nil, pend.AuthURL, bob, bobPass)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := f.Finish(t.Context(), pend, back.Query())
	if err != nil {
		t.Fatal(err)
	}
	return toks.IDToken
}

// withClaims re-signs tok's claims, changed by edit, with d's key.
func withClaims(t *testing.T, d *identitydomain.Domain, tok string, edit func(map[string]any)) string {
	t.Helper()
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	edit(c)
	out, err := d.SignToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func post(t *testing.T, s testServer, path, auth, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTPAddr().String()+path, strings.NewReader(body))
	req.Header.Set("Authorization", auth)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, sb.String()
}

func peopleServer(t *testing.T, a admin.PersonAuthenticator, opts ...admin.Option) (testServer, *grantRecorder) {
	t.Helper()
	rec := &grantRecorder{}
	t.Setenv("IAMFLOW_TEST_ADMIN_TOKEN", testToken)
	cfg := admin.DefaultConfig()
	cfg.Token = "env:IAMFLOW_TEST_ADMIN_TOKEN"
	s := startWith(t, cfg, func(s *admin.Server) {
		iamflowv1.RegisterExpiryServiceServer(s.GRPC(), rec)
		if err := s.RegisterGateway(func(ctx context.Context, mux *runtime.ServeMux) error {
			return iamflowv1.RegisterExpiryServiceHandlerServer(ctx, mux, rec)
		}); err != nil {
			t.Fatal(err)
		}
	}, append([]admin.Option{admin.WithPeople(a)}, opts...)...)
	addServices(s)
	return s, rec
}

func TestPeopleCallTheAdminAPI(t *testing.T) {
	d, a := loginDomain(t)
	// The server starts after the domain, so its logs are checked for
	// the person's token at cleanup, before the domain stops.
	s, rec := peopleServer(t, a)
	tok := personToken(t, d)
	ctx := t.Context()

	// Read-only calls are open to any person, over gRPC and REST, and the
	// service sees who called.
	conn := dial(t, s, tok)
	if _, err := iamflowv1.NewStatusServiceClient(conn).GetStatus(ctx, &iamflowv1.GetStatusRequest{}); err != nil {
		t.Fatalf("GetStatus as a person: %v", err)
	}
	if _, err := iamflowv1.NewExpiryServiceClient(conn).ListGrants(ctx, &iamflowv1.ListGrantsRequest{}); err != nil {
		t.Fatalf("ListGrants as a person: %v", err)
	}
	c := rec.last.Load()
	if c == nil || c.Kind != admin.CallerPerson || c.Person.UserName != bob || !c.Person.InGroup("Approvers") {
		t.Fatalf("caller seen by the service: %+v", c)
	}
	rec.last.Store(nil)
	if resp, body := get(t, s, "/v1/grants", "Bearer "+tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/grants as a person: %d %s", resp.StatusCode, body)
	}
	if c := rec.last.Load(); c == nil || c.Person == nil || c.Person.UserName != bob {
		t.Errorf("REST caller seen by the service: %+v", c)
	}
	// Everything else is for operators unless a service opens it.
	_, err := iamflowv1.NewExpiryServiceClient(conn).GrantMembership(ctx, &iamflowv1.GrantMembershipRequest{})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), bob) {
		t.Errorf("GrantMembership as a person: %v, want PermissionDenied naming the person", err)
	}
	if resp, body := post(t, s, "/v1/grants", "Bearer "+tok, `{}`); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /v1/grants as a person: %d %s, want 403", resp.StatusCode, body)
	}
	if n := rec.calls.Load(); n != 0 {
		t.Fatalf("a refused call reached the service %d times", n)
	}
	// The operator may.
	if _, err := iamflowv1.NewExpiryServiceClient(dial(t, s, testToken)).GrantMembership(ctx, &iamflowv1.GrantMembershipRequest{}); err != nil {
		t.Fatal(err)
	}
	if c := rec.last.Load(); c == nil || !c.IsOperator() || c.Name() != "operator" {
		t.Errorf("operator caller %+v", c)
	}
	// A service opens a call to people (and then decides itself who).
	s.AllowPeople("/iamflow.v1.ExpiryService/GrantMembership", "POST /v1/grants")
	resp, err := iamflowv1.NewExpiryServiceClient(conn).GrantMembership(ctx, &iamflowv1.GrantMembershipRequest{})
	if err != nil || resp.GetGrant().GetRequester() != bob {
		t.Errorf("opened GrantMembership as a person: %v %v", resp, err)
	}
	if r, body := post(t, s, "/v1/grants", "Bearer "+tok, `{}`); r.StatusCode != http.StatusOK || !strings.Contains(body, bob) {
		t.Errorf("opened POST /v1/grants: %d %s", r.StatusCode, body)
	}
	// A route with a path parameter and a custom verb is opened as the
	// HTTP rules write it (the access requests' approve is one).
	extend := "/v1/grants/0123456789abcdef0123456789abcdef:extend"
	if r, body := post(t, s, extend, "Bearer "+tok, `{}`); r.StatusCode != http.StatusForbidden {
		t.Errorf("POST %s as a person before it is opened: %d %s, want 403", extend, r.StatusCode, body)
	}
	s.AllowPeople("POST /v1/grants/{id}:extend")
	if r, body := post(t, s, extend, "Bearer "+tok, `{}`); r.StatusCode != http.StatusNotImplemented {
		t.Errorf("opened POST %s: %d %s, want the service's own 501", extend, r.StatusCode, body)
	}
}

func TestForgedAndExpiredTokensAreRefused(t *testing.T) {
	d, a := loginDomain(t)
	s, rec := peopleServer(t, a)
	s.AllowPeople("/iamflow.v1.ExpiryService/GrantMembership", "POST /v1/grants")
	tok := personToken(t, d)
	parts := strings.Split(tok, ".")
	forgedClaims := withClaims(t, d, tok, func(c map[string]any) { c["sub"] = "mallory" })
	now := time.Now().Unix()
	for _, tc := range []struct {
		name, token string
		code        oidc.Code
	}{
		{"tampered", parts[0] + "." + strings.Split(forgedClaims, ".")[1] + "." + parts[2], oidc.CodeSignature},
		{"expired", withClaims(t, d, tok, func(c map[string]any) { c["exp"] = now - 3600 }), oidc.CodeExpired},
		{"wrong audience", withClaims(t, d, tok, func(c map[string]any) { c["aud"] = "other-app" }), oidc.CodeAudience},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"SIGNING_KEY"}`)) + "." + parts[1] + ".", oidc.CodeAlgorithm},
	} {
		_, err := iamflowv1.NewExpiryServiceClient(dial(t, s, tc.token)).GrantMembership(t.Context(), &iamflowv1.GrantMembershipRequest{})
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), string(tc.code)) {
			t.Errorf("%s over gRPC: %v, want Unauthenticated (%s)", tc.name, err, tc.code)
		}
		if err != nil && strings.Contains(err.Error(), tc.token) {
			t.Errorf("%s: the error shows the token", tc.name)
		}
		resp, body := post(t, s, "/v1/grants", "Bearer "+tc.token, `{}`)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
			!strings.Contains(body, string(tc.code)) {
			t.Errorf("%s over REST: %d %q %s", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	if n := rec.calls.Load(); n != 0 {
		t.Errorf("refused tokens reached the service %d times", n)
	}
	if strings.Contains(s.logs.String(), parts[2]) {
		t.Error("a token's signature reached the logs")
	}
}

func TestLoginDomainOutOfReach(t *testing.T) {
	d, _ := loginDomain(t)
	tok := personToken(t, d)
	v, err := oidc.NewVerifier(oidc.Config{Domain: "login", ClientID: cliID}, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := oidc.NewAuthenticator(v, &idclient.Client{})
	s, _ := peopleServer(t, a)
	_, err = iamflowv1.NewStatusServiceClient(dial(t, s, tok)).GetStatus(t.Context(), &iamflowv1.GetStatusRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("JWKS out of reach: %v, want Unavailable", err)
	}
	if resp, body := get(t, s, "/v1/status", "Bearer "+tok); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("JWKS out of reach over REST: %d %s", resp.StatusCode, body)
	}
	// The admin token does not depend on the login domain.
	if _, err := iamflowv1.NewStatusServiceClient(dial(t, s, testToken)).GetStatus(t.Context(), &iamflowv1.GetStatusRequest{}); err != nil {
		t.Errorf("operator while the login domain is down: %v", err)
	}
}

func TestCustomPolicy(t *testing.T) {
	_, a := loginDomain(t)
	var seen []admin.Call
	s, _ := peopleServer(t, a, admin.WithPolicy(func(_ context.Context, c *admin.Caller, call admin.Call) error {
		seen = append(seen, call)
		return status.Error(codes.FailedPrecondition, "closed for maintenance")
	}))
	_, err := iamflowv1.NewStatusServiceClient(dial(t, s, testToken)).GetStatus(t.Context(), &iamflowv1.GetStatusRequest{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("custom policy: %v", err)
	}
	if resp, _ := get(t, s, "/v1/status/replicator", "Bearer "+testToken); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("custom policy over REST: %d", resp.StatusCode)
	}
	if len(seen) != 2 || seen[0].Method != "/iamflow.v1.StatusService/GetStatus" || !seen[0].ReadOnly ||
		seen[1].Route != "GET /v1/status/{service}" || !seen[1].ReadOnly {
		t.Errorf("calls the policy saw: %+v", seen)
	}
}

// TestReadOnlyMatchesTheHTTPRules keeps the two views of "read-only" in
// step: a gRPC method is read-only by its name (Get, List, Preview), a
// REST call by its verb (GET). Every rule must agree, or a person could
// do over one transport what the other refuses.
func TestReadOnlyMatchesTheHTTPRules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "proto", "iamflow", "v1", "iamflow.http.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type binding struct {
		Get, Post, Put, Patch, Delete string
	}
	var doc struct {
		HTTP struct {
			Rules []struct {
				Selector   string
				binding    `yaml:",inline"`
				Additional []binding `yaml:"additional_bindings"`
			}
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.HTTP.Rules) < 10 {
		t.Fatalf("read %d rules", len(doc.HTTP.Rules))
	}
	for _, r := range doc.HTTP.Rules {
		i := strings.LastIndex(r.Selector, ".")
		method := "/" + r.Selector[:i] + "/" + r.Selector[i+1:]
		for _, bnd := range append([]binding{r.binding}, r.Additional...) {
			isGet := bnd.Get != ""
			if admin.ReadOnlyMethod(method) != isGet {
				t.Errorf("%s: read-only by name %v, but its HTTP rule %+v", method, admin.ReadOnlyMethod(method), bnd)
			}
		}
	}
}
