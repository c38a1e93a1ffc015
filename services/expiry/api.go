package expiry

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// Endpoint is the iamflow.v1.ExpiryService admin API, over gRPC and REST:
// POST /v1/grants, POST /v1/grants/{id}:extend, POST /v1/grants/{id}:revoke,
// GET /v1/grants/{id}, GET /v1/grants.
func (s *Service) Endpoint() servicekit.Endpoint {
	return servicekit.NewEndpoint(iamflowv1.RegisterExpiryServiceServer, iamflowv1.RegisterExpiryServiceHandlerServer,
		iamflowv1.ExpiryServiceServer(s))
}

// apiErrors maps the refusals of Grant, Extend, Revoke and Get to status
// codes; anything else (the domain or JetStream failing) is unavailable.
var apiErrors = servicekit.APIErrors{}.
	Map(codes.InvalidArgument, errInvalid).
	Map(codes.NotFound, errNoSuch, errNotFound, identitydomain.ErrNotFound).
	Map(codes.FailedPrecondition, errPrecondition).
	Map(codes.AlreadyExists, errHeld).
	Map(codes.Aborted, errClaimed)

// window reads the deadline a request gives: a duration, or an absolute
// time; each is zero when not given.
func window(d *durationpb.Duration, until *timestamppb.Timestamp) (time.Duration, time.Time) {
	var (
		dur time.Duration
		at  time.Time
	)
	if d != nil {
		dur = d.AsDuration()
	}
	if until != nil {
		at = until.AsTime()
	}
	return dur, at
}

// GrantMembership implements iamflow.v1.ExpiryService.
func (s *Service) GrantMembership(ctx context.Context, req *iamflowv1.GrantMembershipRequest) (*iamflowv1.GrantMembershipResponse, error) {
	gr := grantRequest{Domain: req.GetDomain(), Group: req.GetGroup(), User: req.GetUser(), Reason: req.GetReason(), Requester: req.GetRequester()}
	gr.Duration, gr.Until = window(req.GetDuration(), req.GetUntil())
	g, err := s.grant(ctx, gr)
	if err != nil {
		return nil, apiErrors.Status(err)
	}
	return &iamflowv1.GrantMembershipResponse{Grant: g}, nil
}

// ExtendGrant implements iamflow.v1.ExpiryService.
func (s *Service) ExtendGrant(ctx context.Context, req *iamflowv1.ExtendGrantRequest) (*iamflowv1.ExtendGrantResponse, error) {
	d, until := window(req.GetDuration(), req.GetUntil())
	g, err := s.extend(ctx, req.GetId(), d, until, req.GetRequester(), req.GetReason())
	if err != nil {
		return nil, apiErrors.Status(err)
	}
	return &iamflowv1.ExtendGrantResponse{Grant: g}, nil
}

// RevokeGrant implements iamflow.v1.ExpiryService.
func (s *Service) RevokeGrant(ctx context.Context, req *iamflowv1.RevokeGrantRequest) (*iamflowv1.RevokeGrantResponse, error) {
	g, err := s.revoke(ctx, req.GetId(), req.GetRequester(), req.GetReason())
	if err != nil {
		return nil, apiErrors.Status(err)
	}
	return &iamflowv1.RevokeGrantResponse{Grant: g}, nil
}

// GetGrant implements iamflow.v1.ExpiryService.
func (s *Service) GetGrant(ctx context.Context, req *iamflowv1.GetGrantRequest) (*iamflowv1.GetGrantResponse, error) {
	g, err := s.get(ctx, req.GetId())
	if err != nil {
		return nil, apiErrors.Status(err)
	}
	return &iamflowv1.GetGrantResponse{Grant: g}, nil
}

// ListGrants implements iamflow.v1.ExpiryService.
func (s *Service) ListGrants(ctx context.Context, req *iamflowv1.ListGrantsRequest) (*iamflowv1.ListGrantsResponse, error) {
	f := filter{State: req.GetState(), Domain: req.GetDomain(), Group: req.GetGroup(), User: req.GetUser()}
	if req.ExpiresAfter != nil {
		f.ExpiresAfter = req.GetExpiresAfter().AsTime()
	}
	if req.ExpiresBefore != nil {
		f.ExpiresBefore = req.GetExpiresBefore().AsTime()
	}
	size, ok := servicekit.PageSize(int(req.GetPageSize()), 100, 1000)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "page_size: %d is negative", req.GetPageSize())
	}
	off := 0
	if t := req.GetPageToken(); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "page_token: %q is not a token from a previous response", t)
		}
		off = n
	}
	all, err := s.list(ctx, f)
	if err != nil {
		return nil, apiErrors.Status(err)
	}
	resp := &iamflowv1.ListGrantsResponse{}
	if off < len(all) {
		end := min(off+size, len(all))
		resp.Grants = all[off:end]
		if end < len(all) {
			resp.NextPageToken = strconv.Itoa(end)
		}
	}
	return resp, nil
}
