package expiry

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/pipelinetest"
)

type apiHarness struct {
	p    *pipeline
	svc  *Service
	grpc iamflowv1.ExpiryServiceClient
	base string
}

func newAPIHarness(t *testing.T) *apiHarness {
	t.Helper()
	p := newPipeline(t, testConfig())
	svc, _ := p.start()
	conn, base := pipelinetest.AdminAPI(t, svc.Endpoint(), Name, svc)
	return &apiHarness{p: p, svc: svc, grpc: iamflowv1.NewExpiryServiceClient(conn), base: base}
}

// rest calls the REST API and decodes a successful answer into out.
func (h *apiHarness) rest(t *testing.T, method, path, body string, out proto.Message) (int, string) {
	t.Helper()
	return pipelinetest.REST(t, method, h.base+path, body, out)
}

func TestAdminAPIOverGRPC(t *testing.T) {
	h := newAPIHarness(t)
	ctx := context.Background()
	uid := h.p.createUser("api1")
	resp, err := h.grpc.GrantMembership(ctx, &iamflowv1.GrantMembershipRequest{Domain: domainShort, Group: tempGroup, User: "api1",
		Duration: durationpb.New(4 * time.Second), Reason: "deploy", Requester: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	g := resp.Grant
	if g.State != iamflowv1.GrantState_GRANT_STATE_ACTIVE || g.UserId != uid || g.GroupName != tempGroup || !h.p.isMember(uid) {
		t.Fatalf("grant = %v", g)
	}
	// A second grant for the same membership is refused: extend it.
	_, err = h.grpc.GrantMembership(ctx, &iamflowv1.GrantMembershipRequest{Domain: domainShort, Group: tempGroup, User: uid})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("second grant: %v", err)
	}
	ext, err := h.grpc.ExtendGrant(ctx, &iamflowv1.ExtendGrantRequest{Id: g.Id, Duration: durationpb.New(5 * time.Second), Requester: "bob"})
	if err != nil || !ext.Grant.ExpiresAt.AsTime().After(g.ExpiresAt.AsTime()) {
		t.Fatalf("extend = %v, %v", ext, err)
	}
	got, err := h.grpc.GetGrant(ctx, &iamflowv1.GetGrantRequest{Id: g.Id})
	if err != nil || len(got.Grant.History) != 3 {
		t.Fatalf("get = %v, %v", got, err)
	}
	list, err := h.grpc.ListGrants(ctx, &iamflowv1.ListGrantsRequest{State: iamflowv1.GrantState_GRANT_STATE_ACTIVE, User: "api1"})
	if err != nil || len(list.Grants) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	rev, err := h.grpc.RevokeGrant(ctx, &iamflowv1.RevokeGrantRequest{Id: g.Id, Requester: "carol", Reason: "done"})
	if err != nil || rev.Grant.State != iamflowv1.GrantState_GRANT_STATE_REVOKED || h.p.isMember(uid) {
		t.Fatalf("revoke = %v, %v", rev, err)
	}
	list, err = h.grpc.ListGrants(ctx, &iamflowv1.ListGrantsRequest{State: iamflowv1.GrantState_GRANT_STATE_ACTIVE})
	if err != nil || len(list.Grants) != 0 {
		t.Errorf("active after revoke = %v, %v", list, err)
	}
}

func TestPolicyRefusals(t *testing.T) {
	h := newAPIHarness(t)
	ctx := context.Background()
	h.p.createUser("pol")
	other := "Other-Group"
	if _, _, err := h.p.human.CreateGroup(ctx, groupNamed(other)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		req  *iamflowv1.GrantMembershipRequest
		code codes.Code
		msg  string
	}{
		{"over max", &iamflowv1.GrantMembershipRequest{Domain: domainShort, Group: tempGroup, User: "pol", Duration: durationpb.New(time.Hour)},
			codes.InvalidArgument, "exceeds max_duration 5s"},
		{"not temporary", &iamflowv1.GrantMembershipRequest{Domain: domainShort, Group: other, User: "pol"},
			codes.FailedPrecondition, "not a temporary group"},
		{"unknown domain", &iamflowv1.GrantMembershipRequest{Domain: "staging", Group: tempGroup, User: "pol"},
			codes.NotFound, `domain "staging" has no temporary groups`},
		{"past", &iamflowv1.GrantMembershipRequest{Domain: domainShort, Group: tempGroup, User: "pol", Until: timestamppb.New(time.Now().Add(-time.Minute))},
			codes.InvalidArgument, "in the past"},
		{"unknown user", &iamflowv1.GrantMembershipRequest{Domain: domainShort, Group: tempGroup, User: "nobody"},
			codes.NotFound, `user "nobody" not found`},
		{"unknown group", &iamflowv1.GrantMembershipRequest{Domain: domainShort, Group: "Nope", User: "pol"},
			codes.NotFound, `group "Nope" not found`},
	}
	for _, c := range cases {
		_, err := h.grpc.GrantMembership(ctx, c.req)
		if status.Code(err) != c.code || !strings.Contains(status.Convert(err).Message(), c.msg) {
			t.Errorf("%s: %v; want %v containing %q", c.name, err, c.code, c.msg)
		}
	}
	if _, err := h.grpc.GetGrant(ctx, &iamflowv1.GetGrantRequest{Id: strings.Repeat("a", 32)}); status.Code(err) != codes.NotFound {
		t.Errorf("get unknown: %v", err)
	}
	// What is no grant id, and a negative page size, are invalid arguments.
	for name, call := range map[string]func() error{
		"extend": func() error { _, err := h.grpc.ExtendGrant(ctx, &iamflowv1.ExtendGrantRequest{Id: "x"}); return err },
		"revoke": func() error { _, err := h.grpc.RevokeGrant(ctx, &iamflowv1.RevokeGrantRequest{Id: "x"}); return err },
		"get":    func() error { _, err := h.grpc.GetGrant(ctx, &iamflowv1.GetGrantRequest{Id: "x"}); return err },
		"list":   func() error { _, err := h.grpc.ListGrants(ctx, &iamflowv1.ListGrantsRequest{PageSize: -1}); return err },
	} {
		if err := call(); status.Code(err) != codes.InvalidArgument ||
			!strings.Contains(status.Convert(err).Message(), "is not a grant id (32 hex digits)") && !strings.Contains(status.Convert(err).Message(), "page_size: -1 is negative") {
			t.Errorf("%s: %v; want InvalidArgument naming the bad id or page size", name, err)
		}
	}
	if n := len(mustList(t, h.svc)); n != 0 {
		t.Errorf("%d grants after refusals", n)
	}
}

func TestAdminAPIOverREST(t *testing.T) {
	h := newAPIHarness(t)
	uid := h.p.createUser("rest1")
	var gr iamflowv1.GrantMembershipResponse
	code, body := h.rest(t, http.MethodPost, "/v1/grants",
		`{"domain":"prod","group":"OCI-Temp-Admins","user":"rest1","duration":"3s","reason":"r","requester":"bob"}`, &gr)
	if code != http.StatusOK || gr.Grant.GetUserId() != uid {
		t.Fatalf("POST /v1/grants: %d %s", code, body)
	}
	id := gr.Grant.Id
	var ex iamflowv1.ExtendGrantResponse
	if code, body := h.rest(t, http.MethodPost, "/v1/grants/"+id+":extend", `{"duration":"4s"}`, &ex); code != http.StatusOK {
		t.Fatalf("extend: %d %s", code, body)
	}
	var get iamflowv1.GetGrantResponse
	if code, body := h.rest(t, http.MethodGet, "/v1/grants/"+id, "", &get); code != http.StatusOK || get.Grant.Id != id {
		t.Fatalf("get: %d %s", code, body)
	}
	var list iamflowv1.ListGrantsResponse
	if code, body := h.rest(t, http.MethodGet, "/v1/grants?state=GRANT_STATE_ACTIVE&group=OCI-Temp-Admins", "", &list); code != http.StatusOK || len(list.Grants) != 1 {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body := h.rest(t, http.MethodPost, "/v1/grants", `{"domain":"prod","group":"OCI-Temp-Admins","user":"rest1","duration":"3600s"}`, nil); code != http.StatusBadRequest || !strings.Contains(body, "max_duration") {
		t.Errorf("over max: %d %s", code, body)
	}
	var rv iamflowv1.RevokeGrantResponse
	if code, body := h.rest(t, http.MethodPost, "/v1/grants/"+id+":revoke", `{"requester":"carol"}`, &rv); code != http.StatusOK || rv.Grant.State != iamflowv1.GrantState_GRANT_STATE_REVOKED {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if h.p.isMember(uid) {
		t.Error("still a member after revoke")
	}
}

func mustList(t *testing.T, svc *Service) []*iamflowv1.Grant {
	t.Helper()
	gs, err := svc.list(context.Background(), filter{})
	if err != nil {
		t.Fatal(err)
	}
	return gs
}
