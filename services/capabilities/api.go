package capabilities

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// Endpoint is the iamflow.v1.CapabilitiesService admin API, over gRPC and
// REST: GET /v1/capabilities/{domain}/users/{user},
// POST /v1/capabilities/{domain}/users/{user}:apply and
// POST /v1/capabilities/{domain}:sweep.
func (s *Service) Endpoint() servicekit.Endpoint {
	return servicekit.NewEndpoint(iamflowv1.RegisterCapabilitiesServiceServer, iamflowv1.RegisterCapabilitiesServiceHandlerServer,
		iamflowv1.CapabilitiesServiceServer(s))
}

// apiErrors maps the service's errors to status codes: a domain refusing
// for good (a forbidden or invalid call) is a failed precondition, a
// domain that cannot answer is unavailable.
var apiErrors = servicekit.APIErrors{}.
	Map(codes.NotFound, errUnknownDomain, ErrNotFound).
	Map(codes.FailedPrecondition, errSweepRunning).
	Permanent(codes.FailedPrecondition)

// PreviewCapabilities returns a user's current and desired flags and the
// rule that decided, changing nothing.
func (s *Service) PreviewCapabilities(ctx context.Context, req *iamflowv1.PreviewCapabilitiesRequest) (*iamflowv1.PreviewCapabilitiesResponse, error) {
	dir, ref, err := s.apiDomainUser(req.GetDomain(), req.GetUser())
	if err != nil {
		return nil, err
	}
	var chk check
	err = s.byRef(ref, func(r UserRef) (err error) {
		chk, err = s.inspect(ctx, req.GetDomain(), dir, r)
		return err
	})
	if err != nil {
		return nil, apiErrors.Status(err)
	}
	return chk.preview(), nil
}

// ApplyCapabilities makes one user's flags match the policy now.
func (s *Service) ApplyCapabilities(ctx context.Context, req *iamflowv1.ApplyCapabilitiesRequest) (*iamflowv1.ApplyCapabilitiesResponse, error) {
	dir, ref, err := s.apiDomainUser(req.GetDomain(), req.GetUser())
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
		return nil, apiErrors.Status(err)
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
	rep, err := s.sweepDomain(ctx, req.GetDomain(), req.GetDryRun())
	if err != nil {
		return nil, apiErrors.Status(err)
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

// apiDomainUser checks a request's domain and user, as apiDomain and
// apiUser do.
func (s *Service) apiDomainUser(domain, user string) (Directory, UserRef, error) {
	dir, err := s.apiDomain(domain)
	if err != nil {
		return nil, UserRef{}, err
	}
	ref, err := apiUser(user)
	if err != nil {
		return nil, UserRef{}, err
	}
	return dir, ref, nil
}

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
	case identitydomain.LooksLikeID(user):
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
