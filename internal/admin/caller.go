package admin

import (
	"context"
	"net/http"
	"regexp"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iamflow/iamflow/internal/oidc"
)

// CallerKind says what kind of caller an admin call comes from.
type CallerKind string

// The kinds of caller.
const (
	// CallerOperator presented the admin token (operators, machines, one
	// iamflow process calling another), or called a server in dev mode
	// without a token.
	CallerOperator CallerKind = "operator"
	// CallerPerson presented a token from the login domain.
	CallerPerson CallerKind = "person"
)

// Caller is who makes an admin call. Services read it with CallerFrom.
type Caller struct {
	Kind CallerKind
	// Person is who logged in, for CallerPerson: user id, userName,
	// display name and groups, read from the login domain.
	Person *oidc.Identity
	// Dev is set for an operator call that presented no token to a server
	// in dev mode.
	Dev bool
}

// IsOperator reports whether the caller holds the admin token (or is the
// dev-mode caller).
func (c *Caller) IsOperator() bool { return c != nil && c.Kind == CallerOperator }

// Name is how the caller appears in audit records and messages: the
// person's userName, else "operator".
func (c *Caller) Name() string {
	if c != nil && c.Kind == CallerPerson && c.Person != nil {
		return c.Person.UserName
	}
	return string(CallerOperator)
}

type callerKey struct{}

// CallerFrom returns the caller of the admin call ctx belongs to. Every
// call that passed authentication has one, over gRPC and REST alike; ok is
// false only outside an admin call (and for the open health and
// reflection services).
func CallerFrom(ctx context.Context) (c *Caller, ok bool) {
	c, ok = ctx.Value(callerKey{}).(*Caller)
	return c, ok && c != nil
}

// WithCaller returns ctx carrying c, as the admin server passes it to
// services. Tests of services use it to call them as someone.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// Call is one admin call as the policy sees it.
type Call struct {
	// Method is the gRPC method ("/iamflow.v1.ExpiryService/GrantMembership"),
	// empty for a REST call.
	Method string
	// Route is the REST route ("POST /v1/grants/{id}:extend"), empty for a
	// gRPC call.
	Route string
	// ReadOnly: the call only reads. gRPC methods named Get..., List... or
	// Preview... are, and REST GET requests (the HTTP rules map exactly
	// those methods to GET).
	ReadOnly bool
	// OpenToPeople: a service declared, with Server.AllowPeople, that
	// people may make this call (the service then decides who, from
	// CallerFrom).
	OpenToPeople bool
}

// Policy decides whether caller may make call; a non-nil error refuses it
// (a gRPC status error keeps its code, anything else is PermissionDenied).
// It runs after authentication, before the service.
type Policy func(ctx context.Context, caller *Caller, call Call) error

// DefaultPolicy lets operators make every call, and people the read-only
// calls and those a service opened to them with AllowPeople.
func DefaultPolicy(_ context.Context, c *Caller, call Call) error {
	switch {
	case c.IsOperator(), call.ReadOnly, call.OpenToPeople:
		return nil
	}
	what := call.Method
	if what == "" {
		what = call.Route
	}
	return status.Errorf(codes.PermissionDenied, "admin: %s may not call %s: people may read; this call needs the admin token", c.Name(), what)
}

// readOnlyPrefixes name the gRPC methods that only read.
var readOnlyPrefixes = []string{"Get", "List", "Preview"}

// readOnlyMethod reports whether the gRPC method fullMethod only reads.
func readOnlyMethod(fullMethod string) bool {
	name := fullMethod[strings.LastIndex(fullMethod, "/")+1:]
	for _, p := range readOnlyPrefixes {
		if strings.HasPrefix(name, p) && (len(name) == len(p) || name[len(p)] >= 'A' && name[len(p)] <= 'Z') {
			return true
		}
	}
	return false
}

// AllowPeople opens calls to people: gRPC methods
// ("/iamflow.v1.AccessService/RequestAccess") and the REST routes that
// carry them ("POST /v1/requests"), as the HTTP rules write them. Opening
// a call makes the service responsible for deciding which people may make
// it (CallerFrom). Call it before Start.
func (s *Server) AllowPeople(callsOrRoutes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range callsOrRoutes {
		s.openToPeople[normalizeRoute(c)] = true
	}
}

func (s *Server) isOpenToPeople(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openToPeople[key]
}

var captureRE = regexp.MustCompile(`\{([^=}]+)=\*\}`)

// normalizeRoute writes a gateway pattern's captures as the HTTP rules do:
// {id=*} becomes {id}.
func normalizeRoute(r string) string { return captureRE.ReplaceAllString(r, "{$1}") }

// authorize runs the policy for a call.
func (s *Server) authorize(ctx context.Context, c *Caller, call Call) error {
	if call.Method != "" {
		call.OpenToPeople = s.isOpenToPeople(call.Method)
	} else {
		call.OpenToPeople = s.isOpenToPeople(call.Route)
	}
	err := s.policy(ctx, c, call)
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); !ok {
		err = status.Error(codes.PermissionDenied, "admin: "+err.Error())
	}
	s.log.InfoContext(ctx, "admin: call refused by policy", "caller", c.Name(), "kind", string(c.Kind), "method", call.Method, "route", call.Route)
	return err
}

// gatewayPolicy is the REST side of the policy: a grpc-gateway middleware,
// so that it sees the matched route.
func (s *Server) gatewayPolicy(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		c, ok := CallerFrom(r.Context())
		if !ok {
			writeJSONError(w, http.StatusUnauthorized, codes.Unauthenticated, "admin: the call is not authenticated")
			return
		}
		route := r.Method + " " + r.URL.Path
		if pat, ok := runtime.HTTPPattern(r.Context()); ok {
			route = r.Method + " " + normalizeRoute(pat.String())
		}
		ro := r.Method == http.MethodGet || r.Method == http.MethodHead
		if err := s.authorize(r.Context(), c, Call{Route: route, ReadOnly: ro}); err != nil {
			st, _ := status.FromError(err)
			writeJSONError(w, runtime.HTTPStatusFromCode(st.Code()), st.Code(), st.Message())
			return
		}
		next(w, r, params)
	}
}
