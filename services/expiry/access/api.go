package access

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// API is the iamflow.v1.AccessService admin API. People call it with their
// Identity Domain login: every call acts as the caller (admin.CallerFrom).
type API struct {
	iamflowv1.UnimplementedAccessServiceServer
	m *Manager
}

// NewAPI returns the admin API of m.
func NewAPI(m *Manager) *API { return &API{m: m} }

// PeopleCalls are the calls open to people (the admin server's policy
// lets people make only read-only calls unless a service opens others):
// every AccessService call, gRPC and REST. Pass them to
// admin.Server.AllowPeople.
var PeopleCalls = []string{
	"/iamflow.v1.AccessService/RequestAccess", "POST /v1/access/requests",
	"/iamflow.v1.AccessService/ApproveRequest", "POST /v1/access/requests/{id}:approve",
	"/iamflow.v1.AccessService/DenyRequest", "POST /v1/access/requests/{id}:deny",
	"/iamflow.v1.AccessService/CancelRequest", "POST /v1/access/requests/{id}:cancel",
}

// Endpoint is the API ready for the admin server: the gRPC service and its
// REST form (POST /v1/access/requests, GET /v1/access/requests[/{id}], POST
// /v1/access/requests/{id}:approve|:deny|:cancel, GET /v1/access/eligibility).
func (a *API) Endpoint() servicekit.Endpoint {
	return servicekit.NewEndpoint(iamflowv1.RegisterAccessServiceServer, iamflowv1.RegisterAccessServiceHandlerServer, iamflowv1.AccessServiceServer(a))
}

// caller is who makes the call, as the workflow sees them.
func caller(ctx context.Context) (Person, error) {
	c, ok := admin.CallerFrom(ctx)
	if !ok {
		return Person{}, status.Error(codes.Unauthenticated, "no caller: log in (iamflow login) or present the admin token")
	}
	if c.IsOperator() {
		return Person{Operator: true}, nil
	}
	if c.Person == nil {
		return Person{}, status.Error(codes.Unauthenticated, "no person in the call")
	}
	p := Person{UserName: c.Person.UserName, UserID: c.Person.UserID}
	for _, g := range c.Person.Groups {
		p.Groups = append(p.Groups, g.Name)
	}
	return p, nil
}

// apiError maps the workflow's errors to gRPC codes, keeping the message.
func apiError(err error) error {
	var r *Refusal
	if !errors.As(err, &r) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return status.Error(codes.Canceled, err.Error())
		}
		return status.Error(codes.Unavailable, err.Error())
	}
	code := codes.FailedPrecondition
	switch r.Code {
	case CodeNotEligible, CodeSelfApproval, CodeNotApprover, CodeNotYours:
		code = codes.PermissionDenied
	case CodeNoPolicy, CodeNotFound:
		code = codes.NotFound
	case CodeTooLong, CodeJustification, CodeTicket, CodeInvalid:
		code = codes.InvalidArgument
	case CodeDuplicate, CodeAlreadyApproved:
		code = codes.AlreadyExists
	}
	return status.Error(code, r.Message)
}

// asCaller runs call as the caller of the request (see caller), answering
// its refusals and failures as status errors (apiError).
func asCaller[T any](ctx context.Context, call func(who Person) (T, error)) (T, error) {
	var none T
	who, err := caller(ctx)
	if err != nil {
		return none, err
	}
	out, err := call(who)
	if err != nil {
		return none, apiError(err)
	}
	return out, nil
}

// RequestAccess implements iamflow.v1.AccessService.
func (a *API) RequestAccess(ctx context.Context, req *iamflowv1.RequestAccessRequest) (*iamflowv1.RequestAccessResponse, error) {
	in := RequestInput{Domain: req.GetDomain(), Group: req.GetGroup(), Reason: req.GetReason(), Ticket: req.GetTicket(), User: req.GetUser()}
	if req.Duration != nil {
		in.Duration = req.GetDuration().AsDuration()
	}
	return asCaller(ctx, func(who Person) (*iamflowv1.RequestAccessResponse, error) {
		r, err := a.m.Request(ctx, who, in)
		return &iamflowv1.RequestAccessResponse{Request: r}, err
	})
}

// ListRequests implements iamflow.v1.AccessService.
func (a *API) ListRequests(ctx context.Context, req *iamflowv1.ListRequestsRequest) (*iamflowv1.ListRequestsResponse, error) {
	return asCaller(ctx, func(who Person) (*iamflowv1.ListRequestsResponse, error) {
		rs, err := a.m.List(ctx, who, req.GetView(), req.GetStates(), int(req.GetLimit()))
		return &iamflowv1.ListRequestsResponse{Requests: rs}, err
	})
}

// GetRequest implements iamflow.v1.AccessService.
func (a *API) GetRequest(ctx context.Context, req *iamflowv1.GetRequestRequest) (*iamflowv1.GetRequestResponse, error) {
	return asCaller(ctx, func(who Person) (*iamflowv1.GetRequestResponse, error) {
		r, err := a.m.Get(ctx, who, req.GetId())
		return &iamflowv1.GetRequestResponse{Request: r}, err
	})
}

// ApproveRequest implements iamflow.v1.AccessService.
func (a *API) ApproveRequest(ctx context.Context, req *iamflowv1.ApproveRequestRequest) (*iamflowv1.ApproveRequestResponse, error) {
	return asCaller(ctx, func(who Person) (*iamflowv1.ApproveRequestResponse, error) {
		r, err := a.m.Approve(ctx, who, req.GetId(), req.GetReason())
		return &iamflowv1.ApproveRequestResponse{Request: r}, err
	})
}

// DenyRequest implements iamflow.v1.AccessService.
func (a *API) DenyRequest(ctx context.Context, req *iamflowv1.DenyRequestRequest) (*iamflowv1.DenyRequestResponse, error) {
	return asCaller(ctx, func(who Person) (*iamflowv1.DenyRequestResponse, error) {
		r, err := a.m.Deny(ctx, who, req.GetId(), req.GetReason())
		return &iamflowv1.DenyRequestResponse{Request: r}, err
	})
}

// CancelRequest implements iamflow.v1.AccessService.
func (a *API) CancelRequest(ctx context.Context, req *iamflowv1.CancelRequestRequest) (*iamflowv1.CancelRequestResponse, error) {
	return asCaller(ctx, func(who Person) (*iamflowv1.CancelRequestResponse, error) {
		r, err := a.m.Cancel(ctx, who, req.GetId(), req.GetReason())
		return &iamflowv1.CancelRequestResponse{Request: r}, err
	})
}

// ListEligibility implements iamflow.v1.AccessService.
func (a *API) ListEligibility(ctx context.Context, _ *iamflowv1.ListEligibilityRequest) (*iamflowv1.ListEligibilityResponse, error) {
	return asCaller(ctx, func(who Person) (*iamflowv1.ListEligibilityResponse, error) {
		return &iamflowv1.ListEligibilityResponse{Groups: a.m.Eligibility(who)}, nil
	})
}
