package dbprovisioner

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

var _ iamflowv1.DBProvisionerServiceServer = (*Service)(nil)

// Register adds the iamflow.v1.DBProvisionerService admin API to g (the
// shared admin server's GRPC()).
func (s *Service) Register(g *grpc.Server) {
	iamflowv1.RegisterDBProvisionerServiceServer(g, s)
}

// RegisterGateway adds the REST form of the admin API to mux:
// GET /v1/dbprovisioner/databases[/{database}],
// GET /v1/dbprovisioner/databases/{database}/users/{user} and
// POST /v1/dbprovisioner/databases/{database}:reconcile. Pass it to
// admin.Server.RegisterGateway.
func (s *Service) RegisterGateway(ctx context.Context, mux *runtime.ServeMux) error {
	return iamflowv1.RegisterDBProvisionerServiceHandlerServer(ctx, mux, s)
}

// GetDatabaseStatus reports one database, or every database.
func (s *Service) GetDatabaseStatus(ctx context.Context, req *iamflowv1.GetDatabaseStatusRequest) (*iamflowv1.GetDatabaseStatusResponse, error) {
	out := &iamflowv1.GetDatabaseStatusResponse{}
	if req.GetDatabase() != "" {
		r, err := s.apiDatabase(req.GetDatabase())
		if err != nil {
			return nil, err
		}
		out.Databases = append(out.Databases, s.databaseStatus(ctx, r))
		return out, nil
	}
	for _, r := range s.dbs {
		out.Databases = append(out.Databases, s.databaseStatus(ctx, r))
	}
	return out, nil
}

// PreviewDatabaseUser returns the statements a reconcile of one user would
// run, changing nothing.
func (s *Service) PreviewDatabaseUser(ctx context.Context, req *iamflowv1.PreviewDatabaseUserRequest) (*iamflowv1.PreviewDatabaseUserResponse, error) {
	if _, err := s.apiDatabase(req.GetDatabase()); err != nil {
		return nil, err
	}
	ref, err := apiUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	v, p, err := s.Preview(ctx, req.GetDatabase(), ref)
	if ref.ID != "" && errors.Is(err, errUserGone) {
		v, p, err = s.Preview(ctx, req.GetDatabase(), UserRef{Name: ref.ID}) // a userName that looks like an id
	}
	if err != nil {
		return nil, apiError(err)
	}
	out := &iamflowv1.PreviewDatabaseUserResponse{
		Database: req.GetDatabase(), UserId: v.User.ID, UserName: v.User.UserName, DbUser: p.Subject,
		Groups: p.Groups, AccountExists: v.Account != nil, GrantedRoles: v.Roles, Skipped: p.Skipped,
	}
	if v.Account != nil {
		out.AccountStatus = v.Account.Status
	}
	for _, st := range p.Steps {
		out.Statements = append(out.Statements, &iamflowv1.DatabaseStatement{Subject: p.Subject, Action: st.Action,
			Sql: st.Statement.Text, IamName: p.IAMName})
	}
	return out, nil
}

// ReconcileDatabase reconciles one database (with dry_run, reports what it
// would run) and answers when it ends; it stops if the call is cancelled.
func (s *Service) ReconcileDatabase(ctx context.Context, req *iamflowv1.ReconcileDatabaseRequest) (*iamflowv1.ReconcileDatabaseResponse, error) {
	if _, err := s.apiDatabase(req.GetDatabase()); err != nil {
		return nil, err
	}
	rep, err := s.Reconcile(ctx, req.GetDatabase(), req.GetDryRun())
	if err != nil {
		return nil, apiError(err)
	}
	return rep.Proto(), nil
}

func (s *Service) apiDatabase(name string) (*dbRuntime, error) {
	if name == "" {
		return nil, status.Errorf(codes.InvalidArgument, "database: required: one of %s", strings.Join(s.Databases(), ", "))
	}
	r := s.byName[name]
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "database %q is not configured (configured: %s)", name, strings.Join(s.Databases(), ", "))
	}
	return r, nil
}

var scimIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// apiUser reads the user of a request: a SCIM id (32 hex digits; tried as a
// userName too if no user has that id) or a userName.
func apiUser(user string) (UserRef, error) {
	user = strings.TrimSpace(user)
	switch {
	case user == "":
		return UserRef{}, status.Error(codes.InvalidArgument, "user: required: the user's SCIM id or userName")
	case len(user) > 1024 || strings.ContainsAny(user, "\x00\r\n"):
		return UserRef{}, status.Error(codes.InvalidArgument, "user: not a SCIM id or userName (too long, or holds control characters)")
	case scimIDRE.MatchString(user):
		return UserRef{ID: user}, nil
	}
	return UserRef{Name: user}, nil
}

// apiError maps an error to a gRPC status.
func apiError(err error) error {
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, ErrUnknownDatabase), errors.Is(err, ErrNotFound), errors.Is(err, errUserGone):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrUnsafeName):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrReconcileRunning), errors.Is(err, ErrPermanent):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}
