package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/secret"
)

// adminConn is a connection to a running iamflow's admin API, with what it
// takes to explain a failed call to a person.
type adminConn struct {
	*grpc.ClientConn
	addr      string
	withToken bool
	tls       bool
	// login is the kept login whose token the calls carry (no admin
	// token was given).
	login *cachedLogin
}

// dialAdmin connects to a running iamflow's admin API: at addr, else
// admin.grpc_addr from the configuration; with admin.token, else
// $IAMFLOW_ADMIN_TOKEN when set, else the token 'iamflow login' kept (dev
// mode needs none).
func dialAdmin(ctx context.Context, e *env, cfgPath, addr string) (*adminConn, error) {
	cfg, err := config.Load(cfgPath, e.getenv)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = cfg.Admin.GRPCAddr
	}
	ref := cfg.Admin.Token
	if ref.IsZero() {
		if _, ok := e.getenv("IAMFLOW_ADMIN_TOKEN"); ok {
			ref = "env:IAMFLOW_ADMIN_TOKEN"
		}
	}
	var token secret.Value
	if !ref.IsZero() {
		if token, err = secret.ResolveWith(ctx, ref, e.getenv); err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
	}
	var login *cachedLogin
	if token.IsZero() {
		if login, err = readLogin(e); err != nil {
			return nil, err
		}
		if login != nil {
			if login.expired(time.Now()) {
				// Calling without it would act as nobody, or, on a
				// server that needs no token (dev), as an operator.
				return nil, fmt.Errorf("your login as %s expired at %s: run 'iamflow login' again, or 'iamflow logout' to call without a login",
					login.User, login.Expiry.Local().Format(time.RFC1123))
			}
			token = secret.NewValue(login.IDToken)
		}
	}
	conn, err := admin.DialConfig(ctx, addr, token, cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return &adminConn{ClientConn: conn, addr: addr, withToken: !token.IsZero(), tls: cfg.Admin.UsesTLS(), login: login}, nil
}

// adminFlags are the flags of every command that calls the admin API.
type adminFlags struct {
	cfgPath, addr *string
	asJSON        *bool
	timeout       *time.Duration
}

// newAdminFlags defines --config, --addr, --json and --timeout on fs, with
// the command's own help for --json and its own default timeout.
func newAdminFlags(e *env, fs *flag.FlagSet, jsonHelp string, timeout time.Duration, timeoutHelp string) adminFlags {
	return adminFlags{
		cfgPath: configFlag(e, fs),
		addr:    fs.String("addr", "", "admin gRPC address (default admin.grpc_addr, 127.0.0.1:9090)"),
		asJSON:  fs.Bool("json", false, jsonHelp),
		timeout: fs.Duration("timeout", timeout, timeoutHelp),
	}
}

// callAdmin dials the admin API, makes one call within --timeout and prints
// its answer as JSON (--json) or with show; op names the call in a failure.
func callAdmin[R proto.Message](ctx context.Context, e *env, f adminFlags, op string,
	call func(context.Context, grpc.ClientConnInterface) (R, error), show func(R) error) error {
	conn, err := dialAdmin(ctx, e, *f.cfgPath, *f.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	resp, err := call(ctx, conn)
	if err != nil {
		return conn.explain(op, err)
	}
	if *f.asJSON {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(resp)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	return show(resp)
}

// apiOwners names the iamflow service behind each gRPC service the CLI
// calls, and the setting that makes a process run it.
var apiOwners = map[string]struct{ service, setting string }{
	"iamflow.v1.ExpiryService":     {"expiry", "expiry.groups"},
	"iamflow.v1.AccessService":     {"expiry", "expiry.access.policies"},
	"iamflow.v1.ReplicatorService": {"replicator", "replicator.links"},
}

// explain turns a failed call's gRPC error into what a person can act on:
// nothing answers at the address, a token is missing or wrong, the process
// does not run that service; otherwise op and the server's message.
func (c *adminConn) explain(op string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		if err := c.explainUnavailable(msg); err != nil {
			return err
		}
	case codes.DeadlineExceeded:
		if _, ok := transportFailure(msg); ok || strings.Contains(msg, "context deadline exceeded") {
			return fmt.Errorf("%s: no answer from %s within the time allowed (--timeout)", op, c.addr)
		}
	case codes.Unauthenticated:
		return c.explainUnauthenticated(msg)
	case codes.PermissionDenied:
		if c.login != nil {
			return fmt.Errorf("%s: %s is not allowed to (%s)", op, c.login.User, strings.TrimPrefix(msg, "admin: "))
		}
	case codes.Unimplemented:
		if svc, ok := strings.CutPrefix(msg, "unknown service "); ok {
			if o, known := apiOwners[svc]; known {
				return fmt.Errorf("the iamflow at %s does not run the %s service: configure %s and restart it (see 'iamflow help %s')",
					c.addr, o.service, o.setting, strings.Fields(op)[0])
			}
		}
	}
	if msg == "" {
		msg = st.Code().String()
	}
	return errors.New(op + ": " + msg)
}

// explainUnavailable says why a call could not reach the admin API: TLS
// on one side only, an untrusted certificate, or no iamflow listening;
// nil when the message says none of these.
func (c *adminConn) explainUnavailable(msg string) error {
	switch {
	case !c.tls && (strings.Contains(msg, "server preface") || strings.Contains(msg, "EOF")):
		return fmt.Errorf("the admin API at %s closed the connection, as a TLS server does to plain text: "+
			"dial it with TLS by setting admin.client.ca_file (IAMFLOW_ADMIN_CLIENT_CA_FILE) to the CA of its certificate", c.addr)
	case c.tls && strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Errorf("the admin API at %s does not speak TLS: remove admin.client and admin.tls from the configuration the CLI reads", c.addr)
	case c.tls && (strings.Contains(msg, "certificate") || strings.Contains(msg, "x509")):
		return fmt.Errorf("the admin API at %s presented a certificate this client does not trust (%s): "+
			"set admin.client.ca_file to the CA that signed it, or admin.client.server_name to the name it carries", c.addr, certProblem(msg))
	}
	if cause, ok := transportFailure(msg); ok {
		return fmt.Errorf("no iamflow answers at %s (%s): start one with 'iamflow dev' or 'iamflow serve all', "+
			"or point --addr at the admin.grpc_addr of one that runs", c.addr, cause)
	}
	return nil
}

// explainUnauthenticated says what the admin API wants that the call did
// not bring: a client certificate, a fresh login, or the admin token.
func (c *adminConn) explainUnauthenticated(msg string) error {
	if strings.Contains(msg, "client certificate") {
		return fmt.Errorf("the iamflow at %s requires a client certificate (mutual TLS): set admin.client.cert_file and key_file "+
			"to a certificate its admin.tls.client_ca_file signed", c.addr)
	}
	if c.login != nil {
		return fmt.Errorf("the iamflow at %s refused your login as %s (%s): run 'iamflow login' again, or check that it accepts logins from %s",
			c.addr, c.login.User, strings.TrimPrefix(msg, "admin: "), c.login.DomainURL)
	}
	if !c.withToken {
		return fmt.Errorf("the iamflow at %s needs its admin token: set IAMFLOW_ADMIN_TOKEN, "+
			"or give --config with the admin.token the server uses; people log in with 'iamflow login'", c.addr)
	}
	return fmt.Errorf("the iamflow at %s refused the admin token: check IAMFLOW_ADMIN_TOKEN or admin.token in --config", c.addr)
}

// transportFailure reports whether a gRPC status message says the
// connection itself failed (rather than the server answering with an
// error), and the cause in a few words.
func transportFailure(msg string) (string, bool) {
	if !strings.HasPrefix(msg, "connection error") && !strings.Contains(msg, "Error while dialing") &&
		!strings.Contains(msg, "server preface") && !strings.Contains(msg, "name resolver") {
		return "", false
	}
	if strings.Contains(msg, "produced zero addresses") || strings.Contains(msg, "no such host") {
		return "the host name does not resolve", true
	}
	for _, cause := range []string{"connection refused", "i/o timeout", "network is unreachable",
		"no route to host", "connection reset by peer"} {
		if strings.Contains(msg, cause) {
			return cause, true
		}
	}
	return "the connection failed", true
}

// certProblem is the gist of a certificate verification error.
func certProblem(msg string) string {
	for _, p := range []string{"certificate signed by unknown authority", "certificate is valid for", "certificate has expired"} {
		if i := strings.Index(msg, p); i >= 0 {
			end := strings.IndexAny(msg[i:], "\"")
			if end < 0 {
				end = len(msg) - i
			}
			return msg[i : i+end]
		}
	}
	return "verification failed"
}
