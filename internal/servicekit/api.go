package servicekit

import (
	"context"
	"errors"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iamflow/iamflow/internal/bus"
)

// Endpoint is a service's admin API: its gRPC service and the REST gateway
// over it, ready for the admin server.
type Endpoint struct {
	// Register adds the gRPC service to the admin server's gRPC server.
	Register func(*grpc.Server)
	// Gateway adds the REST routes to the admin server's gateway mux.
	Gateway func(ctx context.Context, mux *runtime.ServeMux) error
}

// NewEndpoint ties srv to its generated registration functions, e.g.
// NewEndpoint(iamflowv1.RegisterExpiryServiceServer,
// iamflowv1.RegisterExpiryServiceHandlerServer, s).
func NewEndpoint[S any](register func(grpc.ServiceRegistrar, S), gateway func(context.Context, *runtime.ServeMux, S) error, srv S) Endpoint {
	return Endpoint{
		Register: func(g *grpc.Server) { register(g, srv) },
		Gateway:  func(ctx context.Context, mux *runtime.ServeMux) error { return gateway(ctx, mux, srv) },
	}
}

// Server is where an Endpoint is served: internal/admin's Server is one.
type Server interface {
	GRPC() *grpc.Server
	RegisterGateway(register func(ctx context.Context, mux *runtime.ServeMux) error) error
}

// ServeOn puts the endpoint's gRPC service and REST routes on s.
func (e Endpoint) ServeOn(s Server) error {
	e.Register(s.GRPC())
	return s.RegisterGateway(e.Gateway)
}

// APIErrors maps a service's errors to the gRPC status codes of its admin
// API. Build it once with [APIErrors.Map] (rules are tried in order) and
// answer with [APIErrors.Status].
type APIErrors struct {
	rules     []apiRule
	permanent codes.Code
	fallback  codes.Code
}

type apiRule struct {
	code codes.Code
	errs []error
}

// Map answers code for an error that is (errors.Is) one of errs.
func (m APIErrors) Map(code codes.Code, errs ...error) APIErrors {
	m.rules = append(m.rules[:len(m.rules):len(m.rules)], apiRule{code: code, errs: errs})
	return m
}

// Permanent answers code for an error no rule maps that retrying cannot
// fix (bus.IsPermanent): a call to a domain or a database refused for good.
func (m APIErrors) Permanent(code codes.Code) APIErrors {
	m.permanent = code
	return m
}

// Otherwise answers code for an error nothing else maps (Unavailable when
// not set: something the service depends on failed, try again).
func (m APIErrors) Otherwise(code codes.Code) APIErrors {
	m.fallback = code
	return m
}

// Status returns err as a gRPC status error: nil stays nil; a status error
// (other than Unknown) passes through; a cancelled or expired context
// becomes its status; then the rules, the permanent code and the fallback
// decide. The message is err's.
func (m APIErrors) Status(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	for _, r := range m.rules {
		for _, target := range r.errs {
			if errors.Is(err, target) {
				return status.Error(r.code, err.Error())
			}
		}
	}
	if m.permanent != codes.OK && bus.IsPermanent(err) {
		return status.Error(m.permanent, err.Error())
	}
	code := m.fallback
	if code == codes.OK {
		code = codes.Unavailable
	}
	return status.Error(code, err.Error())
}

// PageSize is the page size a list call asks for, n: def when n is 0, max
// when n is larger. ok is false for a negative n, which the caller refuses
// (InvalidArgument) naming its field and bounds.
func PageSize(n, def, max int) (size int, ok bool) {
	switch {
	case n < 0:
		return 0, false
	case n == 0:
		return def, true
	}
	return min(n, max), true
}
