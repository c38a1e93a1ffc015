package expiry

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

var _ iamflowv1.ExpiryServiceServer = (*Service)(nil)

// Register adds the iamflow.v1.ExpiryService admin API to g.
func (s *Service) Register(g *grpc.Server) { iamflowv1.RegisterExpiryServiceServer(g, s) }

// RegisterGateway adds the REST form of the admin API to mux: POST
// /v1/grants, POST /v1/grants/{id}:extend, POST /v1/grants/{id}:revoke,
// GET /v1/grants/{id}, GET /v1/grants.
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux) error {
	return iamflowv1.RegisterExpiryServiceHandlerServer(ctx, mux, s)
}

// GrantMembership implements iamflow.v1.ExpiryService.
func (s *Service) GrantMembership(ctx context.Context, req *iamflowv1.GrantMembershipRequest) (*iamflowv1.GrantMembershipResponse, error) {
	gr := GrantRequest{Domain: req.GetDomain(), Group: req.GetGroup(), User: req.GetUser(), Reason: req.GetReason(), Requester: req.GetRequester()}
	if req.Duration != nil {
		gr.Duration = req.GetDuration().AsDuration()
	}
	if req.Until != nil {
		gr.Until = req.GetUntil().AsTime()
	}
	g, err := s.Grant(ctx, gr)
	if err != nil {
		return nil, err
	}
	return &iamflowv1.GrantMembershipResponse{Grant: g}, nil
}

// ExtendGrant implements iamflow.v1.ExpiryService.
func (s *Service) ExtendGrant(ctx context.Context, req *iamflowv1.ExtendGrantRequest) (*iamflowv1.ExtendGrantResponse, error) {
	if !validID(req.GetId()) {
		return nil, status.Errorf(codes.InvalidArgument, "id: %q is not a grant id (32 hex digits)", req.GetId())
	}
	var (
		d     time.Duration
		until time.Time
	)
	if req.Duration != nil {
		d = req.GetDuration().AsDuration()
	}
	if req.Until != nil {
		until = req.GetUntil().AsTime()
	}
	g, err := s.Extend(ctx, req.GetId(), d, until, req.GetRequester(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &iamflowv1.ExtendGrantResponse{Grant: g}, nil
}

// RevokeGrant implements iamflow.v1.ExpiryService.
func (s *Service) RevokeGrant(ctx context.Context, req *iamflowv1.RevokeGrantRequest) (*iamflowv1.RevokeGrantResponse, error) {
	if !validID(req.GetId()) {
		return nil, status.Errorf(codes.InvalidArgument, "id: %q is not a grant id (32 hex digits)", req.GetId())
	}
	g, err := s.Revoke(ctx, req.GetId(), req.GetRequester(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &iamflowv1.RevokeGrantResponse{Grant: g}, nil
}

// GetGrant implements iamflow.v1.ExpiryService.
func (s *Service) GetGrant(ctx context.Context, req *iamflowv1.GetGrantRequest) (*iamflowv1.GetGrantResponse, error) {
	g, err := s.Get(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &iamflowv1.GetGrantResponse{Grant: g}, nil
}

// Filter selects grants for List; zero fields match all.
type Filter struct {
	State                       iamflowv1.GrantState
	Domain                      string
	Group, User                 string // SCIM id or name
	ExpiresAfter, ExpiresBefore time.Time
}

func (f Filter) match(g *iamflowv1.Grant) bool {
	eq := func(want, id, name string) bool {
		return want == "" || want == id || strings.EqualFold(want, name)
	}
	exp := g.ExpiresAt.AsTime()
	return (f.State == 0 || g.State == f.State) && (f.Domain == "" || f.Domain == g.Domain) &&
		eq(f.Group, g.GroupId, g.GroupName) && eq(f.User, g.UserId, g.UserName) &&
		(f.ExpiresAfter.IsZero() || !exp.Before(f.ExpiresAfter)) && (f.ExpiresBefore.IsZero() || exp.Before(f.ExpiresBefore))
}

// List returns the grants f selects, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]*iamflowv1.Grant, error) {
	st, err := s.init(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	var out []*iamflowv1.Grant
	if err := st.all(ctx, func(r *record, _ uint64) {
		if f.match(r.g) {
			out = append(out, s.view(r.g))
		}
	}); err != nil {
		return nil, apiError(err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].CreatedAt.AsTime(), out[j].CreatedAt.AsTime()
		if !a.Equal(b) {
			return a.After(b)
		}
		return out[i].Id < out[j].Id
	})
	return out, nil
}

// ListGrants implements iamflow.v1.ExpiryService.
func (s *Service) ListGrants(ctx context.Context, req *iamflowv1.ListGrantsRequest) (*iamflowv1.ListGrantsResponse, error) {
	f := Filter{State: req.GetState(), Domain: req.GetDomain(), Group: req.GetGroup(), User: req.GetUser()}
	if req.ExpiresAfter != nil {
		f.ExpiresAfter = req.GetExpiresAfter().AsTime()
	}
	if req.ExpiresBefore != nil {
		f.ExpiresBefore = req.GetExpiresBefore().AsTime()
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Errorf(codes.InvalidArgument, "page_size: %d is negative", size)
	case size == 0:
		size = 100
	case size > 1000:
		size = 1000
	}
	off := 0
	if t := req.GetPageToken(); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "page_token: %q is not a token from a previous response", t)
		}
		off = n
	}
	all, err := s.List(ctx, f)
	if err != nil {
		return nil, err
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
