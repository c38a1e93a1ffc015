package capabilities

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/pipelinetest"
)

// apiHarness is the service registered on a real admin server (insecure
// mode, 127.0.0.1:0), over an emulated domain of 20 generated users.
type apiHarness struct {
	domain *emu.Domain
	svc    *Service
	grpc   iamflowv1.CapabilitiesServiceClient
	base   string // http://host:port
}

func newAPIHarness(t *testing.T) *apiHarness {
	t.Helper()
	b := bustest.RunServer(t).Open(t)
	d := pipelinetest.Emulator(t, domainShort, emu.TierUnlimited, "")
	if err := d.Generate(emu.GenerateConfig{Users: 20, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, d, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, false)
	svc, err := New(context.Background(), e2ePolicy(), b, map[string]Directory{domainShort: NewDirectory(c)})
	if err != nil {
		t.Fatal(err)
	}
	conn, base := pipelinetest.AdminAPI(t, svc.Endpoint(), Name, svc)
	return &apiHarness{domain: d, svc: svc, grpc: iamflowv1.NewCapabilitiesServiceClient(conn), base: base}
}

// rest calls the REST API and decodes a successful answer into out.
func (h *apiHarness) rest(t *testing.T, method, path, body string, out proto.Message) int {
	t.Helper()
	code, _ := pipelinetest.REST(t, method, h.base+path, body, out)
	return code
}

func TestAdminAPIOverGRPC(t *testing.T) {
	h := newAPIHarness(t)
	ctx := context.Background()
	u1, _ := h.domain.UserByName("user000001")

	// Preview, by userName and by id: current vs desired, the rule, the changes; nothing written.
	for _, user := range []string{"user000001", u1.ID} {
		p, err := h.grpc.PreviewCapabilities(ctx, &iamflowv1.PreviewCapabilitiesRequest{Domain: domainShort, User: user})
		if err != nil {
			t.Fatalf("Preview %s: %v", user, err)
		}
		if p.UserId != u1.ID || p.UserName != "user000001" || !slices.Equal(p.Rules, []string{defaultRuleName}) ||
			!p.Current.GetCanUseApiKeys() || p.Desired.GetCanUseApiKeys() || !p.Desired.GetCanUseConsolePassword() || len(p.Changes) != 6 ||
			p.Changes[0] != "canUseApiKeys: true -> false" {
			t.Errorf("Preview %s = %v", user, p)
		}
	}
	if n := h.domain.CallCount(emu.OpPutUserCapabilitiesChanger); n != 0 {
		t.Fatalf("Preview wrote: %d PUTs", n)
	}

	// Apply changes that one user, once.
	a, err := h.grpc.ApplyCapabilities(ctx, &iamflowv1.ApplyCapabilitiesRequest{Domain: domainShort, User: "user000001"})
	if err != nil || !a.Changed || len(a.Result.Changes) != 6 {
		t.Fatalf("Apply = %v, %v", a, err)
	}
	if err := hasFlags(h.domain, u1.ID, e2ePolicy().Default); err != nil {
		t.Error(err)
	}
	a, err = h.grpc.ApplyCapabilities(ctx, &iamflowv1.ApplyCapabilitiesRequest{Domain: domainShort, User: "user000001"})
	if err != nil || a.Changed || len(a.Result.Changes) != 0 {
		t.Errorf("second Apply = %v, %v; want unchanged", a, err)
	}
	if n := h.domain.CallCount(emu.OpPutUserCapabilitiesChanger); n != 1 {
		t.Errorf("%d PUTs, want 1", n)
	}
	u2, _ := h.domain.UserByName("user000002")
	if err := hasFlags(h.domain, u2.ID, Flags{CanUseAPIKeys: ptr(true)}); err != nil {
		t.Errorf("Apply touched another user: %v", err)
	}

	// A dry-run sweep reports and changes nothing.
	s, err := h.grpc.SweepCapabilities(ctx, &iamflowv1.SweepCapabilitiesRequest{Domain: domainShort, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !s.DryRun || s.Domain != domainShort || s.UsersChecked != 20 || s.UsersChanged != 19 || s.UsersFailed != 0 ||
		len(s.Changes) != 19 || s.StartedAt == nil || s.FinishedAt == nil {
		t.Errorf("dry-run sweep = checked %d changed %d failed %d, %d changes", s.UsersChecked, s.UsersChanged, s.UsersFailed, len(s.Changes))
	}
	if n := h.domain.CallCount(emu.OpPutUserCapabilitiesChanger); n != 1 {
		t.Errorf("dry-run sweep wrote: %d PUTs, want still 1", n)
	}
	if err := hasFlags(h.domain, u2.ID, Flags{CanUseAPIKeys: ptr(true)}); err != nil {
		t.Errorf("dry run changed a user: %v", err)
	}

	// Errors say what is wrong.
	for _, tc := range []struct {
		domain, user string
		code         codes.Code
		msg          string
	}{
		{"", "x", codes.InvalidArgument, "domain: required"},
		{"nope", "x", codes.NotFound, `domain "nope" is not enforced by capabilities (enforced: prod)`},
		{domainShort, " ", codes.InvalidArgument, "user: required"},
		{domainShort, "ghost", codes.NotFound, "read user ghost in prod"},
		{domainShort, "0123456789abcdef0123456789abcdef", codes.NotFound, "not found"},
	} {
		_, err := h.grpc.PreviewCapabilities(ctx, &iamflowv1.PreviewCapabilitiesRequest{Domain: tc.domain, User: tc.user})
		if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("Preview(%q, %q) = %v, want %v containing %q", tc.domain, tc.user, err, tc.code, tc.msg)
		}
	}
	if _, err := h.grpc.SweepCapabilities(ctx, &iamflowv1.SweepCapabilitiesRequest{Domain: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("Sweep of an unknown domain: %v", err)
	}
}

func TestAdminAPIOverREST(t *testing.T) {
	h := newAPIHarness(t)
	u2, _ := h.domain.UserByName("user000002")

	var p iamflowv1.PreviewCapabilitiesResponse
	if code := h.rest(t, http.MethodGet, "/v1/capabilities/prod/users/user000002", "", &p); code != http.StatusOK {
		t.Fatalf("GET preview: %d", code)
	}
	if p.UserId != u2.ID || p.Rules[0] != defaultRuleName || !p.Current.GetCanUseDbCredentials() || p.Desired.GetCanUseDbCredentials() {
		t.Errorf("preview = %v", &p)
	}

	var a iamflowv1.ApplyCapabilitiesResponse
	if code := h.rest(t, http.MethodPost, "/v1/capabilities/prod/users/"+u2.ID+":apply", "{}", &a); code != http.StatusOK || !a.Changed {
		t.Fatalf("POST apply: %d %v", code, &a)
	}
	if err := hasFlags(h.domain, u2.ID, e2ePolicy().Default); err != nil {
		t.Error(err)
	}

	var s iamflowv1.SweepCapabilitiesResponse
	if code := h.rest(t, http.MethodPost, "/v1/capabilities/prod:sweep", `{"dryRun": true}`, &s); code != http.StatusOK {
		t.Fatalf("POST sweep: %d", code)
	}
	if !s.DryRun || s.UsersChecked != 20 || s.UsersChanged != 19 {
		t.Errorf("dry-run sweep = %v", &s)
	}
	if n := h.domain.CallCount(emu.OpPutUserCapabilitiesChanger); n != 1 {
		t.Errorf("%d PUTs, want 1 (the apply)", n)
	}
	recs := auditRecords(t, h.svc.bus)
	dry := 0
	for _, r := range recs {
		if r.Outcome == audit.OutcomeDryRun {
			dry++
		}
	}
	if len(recs) != 20 || dry != 19 {
		t.Errorf("%d audit records (%d dry run), want 20 (19)", len(recs), dry)
	}

	// A real sweep then changes the other 19.
	if code := h.rest(t, http.MethodPost, "/v1/capabilities/prod:sweep", `{}`, &s); code != http.StatusOK || s.DryRun || s.UsersChanged != 19 {
		t.Errorf("POST sweep: %d %v", code, &s)
	}
	if n := h.domain.CallCount(emu.OpPutUserCapabilitiesChanger); n != 20 {
		t.Errorf("%d PUTs, want 20", n)
	}

	if code := h.rest(t, http.MethodGet, "/v1/capabilities/nope/users/x", "", nil); code != http.StatusNotFound {
		t.Errorf("unknown domain: %d, want 404", code)
	}
	if code := h.rest(t, http.MethodGet, "/v1/capabilities/prod/users/nobody", "", nil); code != http.StatusNotFound {
		t.Errorf("unknown user: %d, want 404", code)
	}
	if code := h.rest(t, http.MethodGet, "/v1/capabilities/prod/users/%20", "", nil); code != http.StatusBadRequest {
		t.Errorf("blank user: %d, want 400", code)
	}

	var st iamflowv1.GetStatusResponse
	if code := h.rest(t, http.MethodGet, "/v1/status/capabilities", "", &st); code != http.StatusOK || len(st.Services) != 1 {
		t.Fatalf("status: %d %v", code, &st)
	}
	if c := st.Services[0].Counters; c[counterSweeps] != 2 || c[counterSweepChecked] != 20 || c[counterChanged] != 20 {
		t.Errorf("status counters %v", c)
	}
}
