package capabilities

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

var _ iamflowv1.CapabilitiesServiceServer = (*Service)(nil)

// Register adds the iamflow.v1.CapabilitiesService admin API to g (the
// shared admin server's GRPC()).
func (s *Service) Register(g *grpc.Server) {
	iamflowv1.RegisterCapabilitiesServiceServer(g, s)
}

// RegisterGateway adds the REST form of the admin API to mux:
// GET /v1/capabilities/{domain}/users/{user},
// POST /v1/capabilities/{domain}/users/{user}:apply and
// POST /v1/capabilities/{domain}:sweep. Pass it to admin.Server.RegisterGateway.
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux) error {
	return iamflowv1.RegisterCapabilitiesServiceHandlerServer(ctx, mux, s)
}

// PreviewCapabilities returns a user's current and desired flags and the
// rule that decided, changing nothing.
func (s *Service) PreviewCapabilities(ctx context.Context, req *iamflowv1.PreviewCapabilitiesRequest) (*iamflowv1.PreviewCapabilitiesResponse, error) {
	dir, err := s.apiDomain(req.GetDomain())
	if err != nil {
		return nil, err
	}
	ref, err := apiUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	var chk check
	err = s.byRef(ref, func(r UserRef) (err error) {
		chk, err = s.inspect(ctx, req.GetDomain(), dir, r)
		return err
	})
	if err != nil {
		return nil, apiError(err)
	}
	return chk.preview(), nil
}

// ApplyCapabilities makes one user's flags match the policy now.
func (s *Service) ApplyCapabilities(ctx context.Context, req *iamflowv1.ApplyCapabilitiesRequest) (*iamflowv1.ApplyCapabilitiesResponse, error) {
	dir, err := s.apiDomain(req.GetDomain())
	if err != nil {
		return nil, err
	}
	ref, err := apiUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	var (
		chk     check
		changed bool
	)
	err = s.byRef(ref, func(r UserRef) (err error) {
		chk, changed, err = s.reconcile(ctx, req.GetDomain(), dir, r, cause{source: "api"})
		return err
	})
	if err != nil {
		return nil, apiError(err)
	}
	return &iamflowv1.ApplyCapabilitiesResponse{Result: chk.preview(), Changed: changed}, nil
}

// SweepCapabilities applies the policy to every user of a domain (with
// dry_run, reports what it would change) and answers when the sweep ends;
// the sweep stops if the call is cancelled. Progress shows in the status.
func (s *Service) SweepCapabilities(ctx context.Context, req *iamflowv1.SweepCapabilitiesRequest) (*iamflowv1.SweepCapabilitiesResponse, error) {
	if _, err := s.apiDomain(req.GetDomain()); err != nil {
		return nil, err
	}
	rep, err := s.Sweep(ctx, req.GetDomain(), req.GetDryRun())
	if err != nil {
		return nil, apiError(err)
	}
	return rep.Proto(), nil
}

// apiDomain checks the domain of a request.
func (s *Service) apiDomain(domain string) (Directory, error) {
	if domain == "" {
		return nil, status.Errorf(codes.InvalidArgument, "domain: required: the short name of an enforced domain (%s)", strings.Join(s.domains, ", "))
	}
	dir := s.dirs[domain]
	if dir == nil {
		return nil, status.Errorf(codes.NotFound, "domain %q is not enforced by capabilities (enforced: %s)", domain, strings.Join(s.domains, ", "))
	}
	return dir, nil
}

var scimIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// apiUser reads the user of a request: an OCID, a SCIM id (32 hex digits;
// tried as a userName too if no user has that id) or a userName.
func apiUser(user string) (UserRef, error) {
	user = strings.TrimSpace(user)
	switch {
	case user == "":
		return UserRef{}, status.Error(codes.InvalidArgument, "user: required: the user's SCIM id, OCID or userName")
	case len(user) > 1024 || strings.ContainsAny(user, "\x00\r\n\""):
		return UserRef{}, status.Error(codes.InvalidArgument, "user: not a SCIM id, OCID or userName (too long, or holds quotes or control characters)")
	case strings.HasPrefix(user, "ocid1."):
		return UserRef{OCID: user}, nil
	case scimIDRE.MatchString(user):
		return UserRef{ID: user}, nil
	}
	return UserRef{Name: user}, nil
}

// byRef runs fn with ref, and again by userName when ref is an id that
// matched no user (a userName may look like an id).
func (s *Service) byRef(ref UserRef, fn func(UserRef) error) error {
	err := fn(ref)
	if ref.ID != "" && errors.Is(err, ErrNotFound) {
		if err2 := fn(UserRef{Name: ref.ID}); !errors.Is(err2, ErrNotFound) {
			return err2
		}
	}
	return err
}

// apiError maps an error to a gRPC status.
func apiError(err error) error {
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, ErrUnknownDomain), errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrSweepRunning):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrPermanent):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}
