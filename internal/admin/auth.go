package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/iamflow/iamflow/internal/oidc"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/tlsfiles"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// openMethodPrefixes are the gRPC services callable without a token: probes
// and reflection (grpcurl needs it to list and describe services).
var openMethodPrefixes = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

var (
	errNoToken  = errors.New("missing bearer token: send the header authorization: Bearer <admin token>")
	errBadToken = errors.New("invalid bearer token")
)

// PersonAuthenticator verifies a person's token from the login domain and
// says who they are; *oidc.Authenticator is one.
type PersonAuthenticator interface {
	Authenticate(ctx context.Context, raw string) (*oidc.Identity, error)
}

// authenticator checks bearer tokens. It keeps only the admin token's
// SHA-256, and compares digests in constant time, so neither the content
// nor the length of the token leaks through timing. A token that is not
// the admin token and looks like a JWT goes to people, when people may log
// in.
type authenticator struct {
	insecure bool
	sum      [sha256.Size]byte
	log      *slog.Logger
	// requireClientCert: admin calls must come over TLS with a client
	// certificate that verified against admin.tls.client_ca_file.
	requireClientCert bool
	// people verifies login tokens; nil when no login domain is configured.
	people PersonAuthenticator
}

var errNoClientCert = errors.New("a client certificate signed by admin.tls.client_ca_file is required: set admin.client.cert_file and key_file")

func newAuthenticator(token secret.Value, insecure bool, log *slog.Logger) *authenticator {
	a := &authenticator{insecure: insecure, log: log}
	if !insecure {
		a.sum = sha256.Sum256([]byte(token.Reveal()))
	}
	return a
}

// devCaller is the caller of a dev-mode server that presented no token.
var devCaller = &Caller{Kind: CallerOperator, Dev: true}

// authenticate returns who an authorization header value ("Bearer
// <token>") speaks for: an operator (the admin token), a person (a token
// from the login domain), or, in dev mode, the dev operator when no token
// is given. A login token is verified even in dev mode, so a forged or
// expired one is refused there too.
func (a *authenticator) authenticate(ctx context.Context, header string) (*Caller, error) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		if a.insecure {
			return devCaller, nil
		}
		if a.people != nil {
			return nil, errNoTokenOrLogin
		}
		return nil, errNoToken
	}
	if !a.insecure {
		sum := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(sum[:], a.sum[:]) == 1 {
			return operatorCaller, nil
		}
	}
	if a.people != nil && strings.Count(tok, ".") >= 2 {
		id, err := a.people.Authenticate(ctx, tok)
		if err != nil {
			return nil, err
		}
		return &Caller{Kind: CallerPerson, Person: id}, nil
	}
	if a.insecure {
		return devCaller, nil
	}
	return nil, errBadToken
}

// operatorCaller is the caller that presented the admin token.
var operatorCaller = &Caller{Kind: CallerOperator}

var errNoTokenOrLogin = errors.New("missing bearer token: send the header authorization: Bearer <admin token>, or log in with 'iamflow login'")

// grpcCode is the status code of an authentication failure: Unavailable
// when the login domain could not be reached (the call may succeed later),
// Unauthenticated otherwise.
func grpcCode(err error) codes.Code {
	var oe *oidc.Error
	if errors.As(err, &oe) && oe.Temporary() {
		return codes.Unavailable
	}
	return codes.Unauthenticated
}

func isOpenMethod(fullMethod string) bool {
	for _, p := range openMethodPrefixes {
		if strings.HasPrefix(fullMethod, p) {
			return true
		}
	}
	return false
}

// checkGRPC authenticates a gRPC call from its incoming metadata, runs the
// policy, and returns the context the service gets: with the caller.
func (s *Server) checkGRPC(ctx context.Context, fullMethod string) (context.Context, error) {
	a := s.auth
	if isOpenMethod(fullMethod) {
		return ctx, nil
	}
	if a.requireClientCert {
		var st *tls.ConnectionState
		if p, ok := peer.FromContext(ctx); ok {
			if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				st = &info.State
			}
		}
		if !tlsfiles.Verified(st) {
			return nil, status.Error(codes.Unauthenticated, "admin: "+errNoClientCert.Error())
		}
	}
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	c, err := a.authenticate(ctx, header)
	if err != nil {
		from := ""
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			from = p.Addr.String()
		}
		a.log.DebugContext(ctx, "admin: rejected gRPC call", "method", fullMethod, "peer", from, "reason", err.Error())
		return nil, status.Error(grpcCode(err), "admin: "+err.Error())
	}
	if err := s.authorize(ctx, c, Call{Method: fullMethod, ReadOnly: readOnlyMethod(fullMethod)}); err != nil {
		return nil, err
	}
	return WithCaller(ctx, c), nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	cctx, err := s.checkGRPC(ctx, info.FullMethod)
	if err != nil {
		if status.Code(err) == codes.Unauthenticated {
			_ = grpc.SetHeader(ctx, metadata.Pairs("www-authenticate", "Bearer"))
		}
		return nil, err
	}
	return handler(cctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.checkGRPC(ss.Context(), info.FullMethod)
	if err != nil {
		if status.Code(err) == codes.Unauthenticated {
			_ = ss.SetHeader(metadata.Pairs("www-authenticate", "Bearer"))
		}
		return err
	}
	return handler(srv, &callerStream{ServerStream: ss, ctx: ctx})
}

// callerStream is a server stream whose context carries the caller.
type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context implements grpc.ServerStream.
func (c *callerStream) Context() context.Context { return c.ctx }

// httpMiddleware authenticates every request to next and puts the caller
// in its context (the policy runs in the gateway, gatewayPolicy, where the
// route is known). A rejected request gets 401 (503 when the login domain
// is out of reach), WWW-Authenticate: Bearer and a JSON error shaped like
// grpc-gateway's ({"code":16,"message":...}).
func (a *authenticator) httpMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.requireClientCert && !tlsfiles.Verified(r.TLS) {
			writeJSONError(w, http.StatusUnauthorized, codes.Unauthenticated, "admin: "+errNoClientCert.Error())
			return
		}
		c, err := a.authenticate(r.Context(), r.Header.Get("Authorization"))
		if err == nil {
			next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
			return
		}
		a.log.DebugContext(r.Context(), "admin: rejected HTTP request", "method", r.Method, "path", r.URL.Path, "peer", r.RemoteAddr, "reason", err.Error())
		if code := grpcCode(err); code == codes.Unavailable {
			writeJSONError(w, http.StatusServiceUnavailable, code, "admin: "+err.Error())
			return
		}
		challenge := `Bearer realm="iamflow-admin"`
		var oe *oidc.Error
		if errors.Is(err, errBadToken) || errors.As(err, &oe) {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeJSONError(w, http.StatusUnauthorized, codes.Unauthenticated, "admin: "+err.Error())
	})
}

func writeJSONError(w http.ResponseWriter, httpStatus int, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []any  `json:"details"`
	}{int(code), msg, []any{}})
}
