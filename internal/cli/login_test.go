package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/oidc"
	"github.com/iamflow/iamflow/internal/oidc/oidctest"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/testutil"
)

func TestMain(m *testing.M) {
	// Tests that run the CLI with the process environment must not read or
	// write the login of the person running them.
	dir, err := os.MkdirTemp("", "iamflow-cli-test-")
	if err == nil {
		os.Setenv("IAMFLOW_LOGIN_CACHE", filepath.Join(dir, "login.json"))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// grantSpy is an ExpiryService that counts the grants it was asked for:
// a refused caller must leave it at zero.
type grantSpy struct {
	iamflowv1.UnimplementedExpiryServiceServer
	grants atomic.Int32
}

func (g *grantSpy) GrantMembership(ctx context.Context, _ *iamflowv1.GrantMembershipRequest) (*iamflowv1.GrantMembershipResponse, error) {
	g.grants.Add(1)
	c, _ := admin.CallerFrom(ctx)
	return &iamflowv1.GrantMembershipResponse{Grant: &iamflowv1.Grant{Id: "g-1", Requester: c.Name(), State: iamflowv1.GrantState_GRANT_STATE_ACTIVE}}, nil
}

// TestLoginEndToEnd: 'iamflow login' against the emulated domain, its
// login page driven by Go's HTTP client as a browser, the loopback
// redirect received by the command; then admin calls as that person, and
// a forged and an expired login refused with a clear error and no side
// effect.
func TestLoginEndToEnd(t *testing.T) {
	const sysID, sysSecret, cliID = "iamflow", "sys-secret-0123456789", "iamflow-cli"
	dom := pipelinetest.LoginDomain(t, "src", sysID, sysSecret, cliID, identitydomain.SeedData{
		Users: []map[string]any{{"userName": "rita@example.com", "displayName": "Rita Requester", "password": "Rita-Pass-1"}}})
	// The admin API: the admin token for operators, logins from src for people.
	dir := pipelinetest.Client(t, "src", pipelinetest.ClientConfig(t, dom.URL(), sysID, sysSecret, false))
	v, err := oidc.NewVerifier(oidc.Config{Domain: "src", ClientID: cliID}, dom.URL())
	if err != nil {
		t.Fatal(err)
	}
	people, _ := oidc.NewAuthenticator(v, dir)
	spy := &grantSpy{}
	srv, err := admin.New(admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		admin.WithToken(secret.NewValue("operator-token-0123456789abcdef")), admin.WithPeople(people))
	if err != nil {
		t.Fatal(err)
	}
	iamflowv1.RegisterExpiryServiceServer(srv.GRPC(), spy)
	srv.AddStatus("expiry", admin.StatusFunc(func(context.Context) *iamflowv1.ServiceStatus {
		return &iamflowv1.ServiceStatus{State: iamflowv1.State_STATE_RUNNING}
	}))
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	addr := srv.GRPCAddr().String()

	cache := filepath.Join(t.TempDir(), "cfg", "iamflow", "login.json")
	vars := map[string]string{"IAMFLOW_LOGIN_CACHE": cache}
	e := func(out *testutil.SyncBuffer) *env {
		return &env{stdout: out, stderr: out, getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	}

	// iamflow login, in the background; the test is the browser.
	out := &testutil.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runEnv(t.Context(), []string{"login", "--domain-url", dom.URL(), "--client-id", cliID, "--timeout", "1m"}, e(out))
	}()
	urlRE := regexp.MustCompile(`\n  (http://\S+/oauth2/v1/authorize\S+)\n`)
	var authURL string
	for deadline := time.Now().Add(10 * time.Second); authURL == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			authURL = m[1]
		}
	}
	if authURL == "" {
		t.Fatalf("login printed no URL:\n%s", out.String())
	}
	// A wrong password shows the page again; nothing is kept.
	if _, err := oidctest.Login(t.Context(), nil, authURL, "rita@example.com", "wrong"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	back, err := oidctest.Login(t.Context(), nil, authURL, "rita@example.com", "Rita-Pass-1")
	if err != nil {
		t.Fatal(err)
	}
	// Something else knocking on the loopback port is turned away.
	forgedBack := *back
	q := forgedBack.Query()
	q.Set("state", "not-the-state")
	forgedBack.RawQuery = q.Encode()
	if code, _, _ := oidctest.Follow(t.Context(), nil, &forgedBack); code != 400 {
		t.Errorf("a redirect with another state: %d, want 400", code)
	}
	code, page, err := oidctest.Follow(t.Context(), nil, back)
	if err != nil || code != 200 || !strings.Contains(page, "logged in") {
		t.Fatalf("redirect to the CLI: %d %q %v\n%s", code, page, err, out.String())
	}
	select {
	case c := <-done:
		if c != 0 {
			t.Fatalf("login exited %d:\n%s", c, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("login did not finish")
	}
	if !strings.Contains(out.String(), "Logged in as rita@example.com") {
		t.Errorf("login output:\n%s", out.String())
	}
	st, err := os.Stat(cache)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kept login: %v %v, want mode 0600", st, err)
	}
	if dst, _ := os.Stat(filepath.Dir(cache)); dst.Mode().Perm() != 0o700 {
		t.Errorf("login directory mode %v, want 0700", dst.Mode().Perm())
	}

	// An admin call as that person: read-only, allowed.
	out = &testutil.SyncBuffer{}
	if c := runEnv(t.Context(), []string{"status", "--addr", addr}, e(out)); c != 0 {
		t.Fatalf("status as the person: %d\n%s", c, out.String())
	}
	// A grant needs the admin token: refused, clearly, and nothing granted.
	out = &testutil.SyncBuffer{}
	if c := runEnv(t.Context(), []string{"grant", "add", "--addr", addr, "--domain", "src", "--group", "Admins", "--user", "rita@example.com", "--for", "1h", "--reason", "x"}, e(out)); c != 1 ||
		!strings.Contains(out.String(), "rita@example.com is not allowed to") {
		t.Errorf("grant as the person: %d\n%s", c, out.String())
	}

	// A forged login (claims changed, signature kept) and an expired one.
	var kept cachedLogin
	b, _ := os.ReadFile(cache)
	_ = json.Unmarshal(b, &kept)
	parts := strings.Split(kept.IDToken, ".")
	var claims map[string]any
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(pb, &claims)
	claims["sub"] = "root@example.com"
	forged := kept
	forged.IDToken = parts[0] + "." + b64json(claims) + "." + parts[2]
	writeKept(t, cache, forged)
	out = &testutil.SyncBuffer{}
	if c := runEnv(t.Context(), []string{"status", "--addr", addr}, e(out)); c != 1 || !strings.Contains(out.String(), "refused your login") ||
		!strings.Contains(out.String(), "bad_signature") {
		t.Errorf("status with a forged login: %d\n%s", c, out.String())
	}
	if strings.Contains(out.String(), parts[2]) {
		t.Error("the error shows the token")
	}
	expired := kept
	expired.Expiry = time.Now().Add(-time.Minute)
	writeKept(t, cache, expired)
	out = &testutil.SyncBuffer{}
	if c := runEnv(t.Context(), []string{"grant", "add", "--addr", addr, "--domain", "src", "--group", "Admins", "--user", "rita@example.com", "--for", "1h", "--reason", "x"}, e(out)); c != 1 ||
		!strings.Contains(out.String(), "expired") || !strings.Contains(out.String(), "iamflow login") {
		t.Errorf("grant with an expired login: %d\n%s", c, out.String())
	}
	// An expired token the server checks itself (the kept expiry lies).
	tooOld := kept
	claims["sub"] = "rita@example.com"
	claims["exp"] = time.Now().Add(-time.Hour).Unix()
	tooOld.IDToken, _ = dom.SignToken(claims)
	writeKept(t, cache, tooOld)
	out = &testutil.SyncBuffer{}
	if c := runEnv(t.Context(), []string{"status", "--addr", addr}, e(out)); c != 1 || !strings.Contains(out.String(), "(expired)") {
		t.Errorf("status with a token the server finds expired: %d\n%s", c, out.String())
	}
	if n := spy.grants.Load(); n != 0 {
		t.Errorf("refused callers caused %d grants", n)
	}
	// The operator still may; logout forgets the login.
	vars["IAMFLOW_ADMIN_TOKEN"] = "operator-token-0123456789abcdef"
	out = &testutil.SyncBuffer{}
	if c := runEnv(t.Context(), []string{"grant", "add", "--addr", addr, "--domain", "src", "--group", "Admins", "--user", "rita@example.com", "--for", "1h", "--reason", "x"}, e(out)); c != 0 || spy.grants.Load() != 1 {
		t.Errorf("grant as the operator: %d\n%s", c, out.String())
	}
	out = &testutil.SyncBuffer{}
	if c := runEnv(t.Context(), []string{"logout"}, e(out)); c != 0 || !strings.Contains(out.String(), "Logged out") {
		t.Errorf("logout: %d %s", c, out.String())
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("the login is still kept: %v", err)
	}
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeKept(t *testing.T, path string, c cachedLogin) {
	t.Helper()
	b, _ := json.Marshal(c)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
