package access

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/oidc"
)

// as is ctx with p as the admin API's caller.
func as(p Person) context.Context {
	if p.Operator {
		return admin.WithCaller(context.Background(), &admin.Caller{Kind: admin.CallerOperator})
	}
	id := &oidc.Identity{UserID: p.UserID, UserName: p.UserName}
	for _, g := range p.Groups {
		id.Groups = append(id.Groups, oidc.Group{Name: g})
	}
	return admin.WithCaller(context.Background(), &admin.Caller{Kind: admin.CallerPerson, Person: id})
}

// The API acts as its caller, refuses a call without one, and answers the
// workflow's refusals with the status codes clients act on.
func TestAPIActsAsTheCaller(t *testing.T) {
	h := newHarness(t, NotifyConfig{})
	api := NewAPI(h.m)
	req := &iamflowv1.RequestAccessRequest{Domain: "src", Group: "OCI-Temp-Admins", Reason: "incident INC-42", Ticket: "INC-42",
		Duration: durationpb.New(30 * time.Minute)}
	wantCode := func(what string, err error, want codes.Code) {
		t.Helper()
		if got := status.Code(err); got != want {
			t.Errorf("%s: %v (%s), want %s", what, err, got, want)
		}
	}

	_, err := api.RequestAccess(context.Background(), req)
	wantCode("no caller", err, codes.Unauthenticated)
	_, err = api.ListEligibility(context.Background(), &iamflowv1.ListEligibilityRequest{})
	wantCode("no caller", err, codes.Unauthenticated)
	_, err = api.RequestAccess(as(eve), req)
	wantCode("not a requester", err, codes.PermissionDenied)

	got, err := api.RequestAccess(as(rita), req)
	if err != nil {
		t.Fatal(err)
	}
	r := got.GetRequest()
	if r.GetRequester() != rita.UserName || r.GetDuration().AsDuration() != 30*time.Minute {
		t.Fatalf("request %v, want rita's for 30m", r)
	}
	_, err = api.RequestAccess(as(rita), req)
	wantCode("a second open request", err, codes.AlreadyExists)
	_, err = api.GetRequest(as(eve), &iamflowv1.GetRequestRequest{Id: r.GetId()})
	wantCode("a stranger reads", err, codes.NotFound)
	_, err = api.ApproveRequest(as(rita), &iamflowv1.ApproveRequestRequest{Id: r.GetId()})
	wantCode("approval by a non-approver", err, codes.PermissionDenied)
	_, err = api.DenyRequest(as(adam), &iamflowv1.DenyRequestRequest{Id: r.GetId()})
	wantCode("a denial without a reason", err, codes.InvalidArgument)

	list, err := api.ListRequests(as(adam), &iamflowv1.ListRequestsRequest{View: iamflowv1.RequestView_REQUEST_VIEW_WAITING_FOR_ME})
	if err != nil || len(list.GetRequests()) != 1 {
		t.Fatalf("waiting for adam: %v, %v", list, err)
	}
	el, err := api.ListEligibility(as(rita), &iamflowv1.ListEligibilityRequest{})
	if err != nil || len(el.GetGroups()) == 0 {
		t.Fatalf("rita's eligibility: %v, %v", el, err)
	}
	ok, err := api.ApproveRequest(as(adam), &iamflowv1.ApproveRequestRequest{Id: r.GetId(), Reason: "ok"})
	if err != nil || ok.GetRequest().GetState() != iamflowv1.RequestState_REQUEST_STATE_ACTIVE {
		t.Fatalf("approval: %v, %v", ok, err)
	}
	if g, err := api.GetRequest(as(op), &iamflowv1.GetRequestRequest{Id: r.GetId()}); err != nil || g.GetRequest().GetGrantId() == "" {
		t.Fatalf("the operator reads the request: %v, %v", g, err)
	}
	_, err = api.CancelRequest(as(eve), &iamflowv1.CancelRequestRequest{Id: r.GetId()})
	wantCode("cancel of a request already active", err, codes.FailedPrecondition)
}
