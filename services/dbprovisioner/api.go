package dbprovisioner

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

// Endpoint is the iamflow.v1.DBProvisionerService admin API, over gRPC and
// REST: GET /v1/dbprovisioner/databases[/{database}],
// GET /v1/dbprovisioner/databases/{database}/users/{user} and
// POST /v1/dbprovisioner/databases/{database}:reconcile.
func (s *Service) Endpoint() servicekit.Endpoint {
	return servicekit.NewEndpoint(iamflowv1.RegisterDBProvisionerServiceServer, iamflowv1.RegisterDBProvisionerServiceHandlerServer,
		iamflowv1.DBProvisionerServiceServer(s))
}

// apiErrors maps the service's errors to status codes: a call refused for
// good is a failed precondition, a domain or database that cannot answer
// is unavailable.
var apiErrors = servicekit.APIErrors{}.
	Map(codes.NotFound, errUnknownDatabase, ErrNotFound, errUserGone).
	Map(codes.InvalidArgument, errUnsafeName).
	Map(codes.FailedPrecondition, errReconcileRunning).
	Permanent(codes.FailedPrecondition)

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
	v, p, err := s.preview(ctx, req.GetDatabase(), ref)
	if ref.ID != "" && errors.Is(err, errUserGone) {
		v, p, err = s.preview(ctx, req.GetDatabase(), UserRef{Name: ref.ID}) // a userName that looks like an id
	}
	if err != nil {
		return nil, apiErrors.Status(err)
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
		return nil, apiErrors.Status(err)
	}
	return rep.Proto(), nil
}

func (s *Service) apiDatabase(name string) (*dbRuntime, error) {
	if name == "" {
		return nil, status.Errorf(codes.InvalidArgument, "database: required: one of %s", strings.Join(s.databases(), ", "))
	}
	r := s.byName[name]
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "database %q is not configured (configured: %s)", name, strings.Join(s.databases(), ", "))
	}
	return r, nil
}

// apiUser reads the user of a request: a SCIM id (32 hex digits; tried as a
// userName too if no user has that id) or a userName.
func apiUser(user string) (UserRef, error) {
	user = strings.TrimSpace(user)
	switch {
	case user == "":
		return UserRef{}, status.Error(codes.InvalidArgument, "user: required: the user's SCIM id or userName")
	case len(user) > 1024 || strings.ContainsAny(user, "\x00\r\n"):
		return UserRef{}, status.Error(codes.InvalidArgument, "user: not a SCIM id or userName (too long, or holds control characters)")
	case identitydomain.LooksLikeID(user):
		return UserRef{ID: user}, nil
	}
	return UserRef{Name: user}, nil
}
