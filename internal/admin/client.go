package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/tlsfiles"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Dial returns a client connection to the admin gRPC API at addr (host:port)
// for the CLI and tests. Every call carries "authorization: Bearer <token>"
// unless token is empty (a server in dev mode). The transport is plaintext,
// like the server, and the token is sent over it: that is meant for loopback
// addresses; give grpc.WithTransportCredentials in opts for anything else.
// opts come after Dial's own and so override them.
//
// The connection is made lazily by the first call; ctx only stops Dial when
// it has already ended.
func Dial(ctx context.Context, addr string, token secret.Value, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("admin: dial %s: %w", addr, err)
	}
	if addr == "" {
		return nil, errors.New("admin: dial: no address (host:port of admin.grpc_addr)")
	}
	dopts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if !token.IsZero() {
		dopts = append(dopts, grpc.WithPerRPCCredentials(bearerCredentials{token: token}))
	}
	conn, err := grpc.NewClient(addr, append(dopts, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("admin: dial %s: %w", addr, err)
	}
	return conn, nil
}

// bearerCredentials adds the bearer token to every call. It does not require
// transport security, so that it works over plaintext loopback connections.
type bearerCredentials struct{ token secret.Value }

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c bearerCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + c.token.Reveal()}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (bearerCredentials) RequireTransportSecurity() bool { return false }

// DialConfig is Dial configured as c says: over TLS when c.UsesTLS(),
// verifying the server with c.Client.CAFile (the system's roots when
// empty) and presenting c.Client's certificate for mutual TLS. It is how
// the CLI, and an iamflow process calling another's admin API, dial.
func DialConfig(ctx context.Context, addr string, token secret.Value, c Config, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if c.UsesTLS() {
		tc, err := tlsfiles.ClientConfig(c.Client.CAFile, c.Client.CertFile, c.Client.KeyFile, c.Client.ServerName)
		if err != nil {
			return nil, fmt.Errorf("admin.client: %w", err)
		}
		opts = append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}, opts...)
	}
	return Dial(ctx, addr, token, opts...)
}
