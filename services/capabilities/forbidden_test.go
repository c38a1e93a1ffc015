package capabilities

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

// refusesCapabilities is a domain whose app roles allow everything iamflow
// does except PUT /admin/v1/UserCapabilitiesChanger: the emulated domain
// behind a proxy that answers that call 403 with the SCIM error body an
// identity domain sends.
func refusesCapabilities(t *testing.T, d *emu.Domain) string {
	t.Helper()
	target, err := url.Parse(d.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/admin/v1/UserCapabilitiesChanger/") {
			w.Header().Set("Content-Type", "application/scim+json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"You do not have access to perform this operation.","status":"403"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A 403 from UserCapabilitiesChanger is dead-lettered at once and reported in
// the status's last error, the log and the audit record, each saying which
// app role to check; the user's flags are untouched and no secret is shown.
func TestForbiddenCapabilitiesNameTheAppRole(t *testing.T) {
	d := pipelinetest.Emulator(t, domainShort, emu.TierUnlimited, "")
	cfg := pipelinetest.ClientConfig(t, refusesCapabilities(t, d), pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, false)
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}
	client := pipelinetest.Client(t, domainShort, cfg)
	u, _, err := client.CreateUser(context.Background(), identitydomains.User{UserName: ptrS("jane.doe"),
		Name: &identitydomains.UserName{GivenName: ptrS("Jane"), FamilyName: ptrS("Doe")}})
	if err != nil {
		t.Fatal(err)
	}

	var logs testutil.SyncBuffer
	s, a := newTestService(t, lockedDown(), map[string]Directory{domainShort: NewDirectory(client)},
		servicekit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	res := s.handle(context.Background(), msg(t, userEvent("e1", domainShort, *u.Id, iamflowv1.Action_ACTION_CREATED), 1))

	const role = "User Administrator"
	if !res.IsTerminal() || !strings.Contains(res.Err().Error(), "UserCapabilitiesChanger (403)") || !strings.Contains(res.Err().Error(), role) {
		t.Fatalf("result = %v, want terminal naming the endpoint and the role", res)
	}
	if st := s.Status(context.Background()); !strings.Contains(st.LastError, role) || !strings.Contains(st.LastError, `domain "prod"`) {
		t.Errorf("status last error %q", st.LastError)
	}
	recs := a.Records()
	if len(recs) != 1 || recs[0].Outcome != audit.OutcomeFailed || !strings.Contains(recs[0].Reason, role) {
		t.Errorf("audit records = %v", recs)
	}
	if l := logs.String(); !strings.Contains(l, "an app role is missing") || !strings.Contains(l, role) {
		t.Errorf("log:\n%s", l)
	}
	if strings.Contains(logs.String(), pipelinetest.IamflowSecret) || strings.Contains(res.Err().Error(), pipelinetest.IamflowSecret) {
		t.Error("the client secret is shown")
	}
	if got := caps(t, d, *u.Id); !got["canUseApiKeys"] || !got["canUseAuthTokens"] {
		t.Errorf("flags changed despite the 403: %v", got)
	}
}
