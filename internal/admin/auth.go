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

// authenticator checks bearer tokens. It keeps only the token's SHA-256, and
// compares digests in constant time, so neither the content nor the length
// of the token leaks through timing.
type authenticator struct {
	insecure bool
	sum      [sha256.Size]byte
	log      *slog.Logger
	// requireClientCert: admin calls must come over TLS with a client
	// certificate that verified against admin.tls.client_ca_file.
	requireClientCert bool
}

var errNoClientCert = errors.New("a client certificate signed by admin.tls.client_ca_file is required: set admin.client.cert_file and key_file")

func newAuthenticator(token secret.Value, insecure bool, log *slog.Logger) *authenticator {
	a := &authenticator{insecure: insecure, log: log}
	if !insecure {
		a.sum = sha256.Sum256([]byte(token.Reveal()))
	}
	return a
}

// check verifies an authorization header value ("Bearer <token>").
func (a *authenticator) check(header string) error {
	if a.insecure {
		return nil
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return errNoToken
	}
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
		return errBadToken
	}
	return nil
}

func isOpenMethod(fullMethod string) bool {
	for _, p := range openMethodPrefixes {
		if strings.HasPrefix(fullMethod, p) {
			return true
		}
	}
	return false
}

// checkGRPC authenticates a gRPC call from its incoming metadata.
func (a *authenticator) checkGRPC(ctx context.Context, fullMethod string) error {
	if isOpenMethod(fullMethod) {
		return nil
	}
	if a.requireClientCert {
		var st *tls.ConnectionState
		if p, ok := peer.FromContext(ctx); ok {
			if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				st = &info.State
			}
		}
		if !tlsfiles.Verified(st) {
			return status.Error(codes.Unauthenticated, "admin: "+errNoClientCert.Error())
		}
	}
	if a.insecure {
		return nil
	}
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	if err := a.check(header); err != nil {
		from := ""
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			from = p.Addr.String()
		}
		a.log.DebugContext(ctx, "admin: rejected gRPC call", "method", fullMethod, "peer", from, "reason", err.Error())
		return status.Error(codes.Unauthenticated, "admin: "+err.Error())
	}
	return nil
}

func (a *authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.checkGRPC(ctx, info.FullMethod); err != nil {
		_ = grpc.SetHeader(ctx, metadata.Pairs("www-authenticate", "Bearer"))
		return nil, err
	}
	return handler(ctx, req)
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.checkGRPC(ss.Context(), info.FullMethod); err != nil {
		_ = ss.SetHeader(metadata.Pairs("www-authenticate", "Bearer"))
		return err
	}
	return handler(srv, ss)
}

// httpMiddleware requires the bearer token on every request to next. A
// rejected request gets 401, WWW-Authenticate: Bearer and a JSON error shaped
// like grpc-gateway's ({"code":16,"message":...}).
func (a *authenticator) httpMiddleware(next http.Handler) http.Handler {
	if a.insecure && !a.requireClientCert {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.requireClientCert && !tlsfiles.Verified(r.TLS) {
			writeJSONError(w, http.StatusUnauthorized, codes.Unauthenticated, "admin: "+errNoClientCert.Error())
			return
		}
		if a.insecure {
			next.ServeHTTP(w, r)
			return
		}
		err := a.check(r.Header.Get("Authorization"))
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		a.log.DebugContext(r.Context(), "admin: rejected HTTP request", "method", r.Method, "path", r.URL.Path, "peer", r.RemoteAddr, "reason", err.Error())
		challenge := `Bearer realm="iamflow-admin"`
		if errors.Is(err, errBadToken) {
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
