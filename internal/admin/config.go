package admin

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/iamflow/iamflow/internal/console"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/validate"
)

// Config is the admin section of the configuration.
type Config struct {
	// GRPCAddr is the host:port the gRPC admin API listens on. Port 0 picks a
	// free port (see Server.GRPCAddr).
	GRPCAddr string `yaml:"grpc_addr"`
	// HTTPAddr is the host:port of the REST API (grpc-gateway, under /v1/),
	// /metrics, /healthz and /readyz.
	HTTPAddr string `yaml:"http_addr"`
	// Token references the bearer token every admin call must present
	// (env:NAME, file:/path or vault:<ocid>). Required unless Insecure.
	Token secret.Ref `yaml:"token"`
	// TLS serves both listeners over TLS when cert_file and key_file are set.
	TLS TLSConfig `yaml:"tls"`
	// AllowPlaintext lets a listener that is not on loopback serve without
	// TLS, for when something in front adds it (a mesh sidecar, a load
	// balancer) or the network is private. Without it such a listener is
	// refused: the admin token would cross the network in clear.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// Client is how this configuration calls an admin API: the CLI
	// (`iamflow status`, `grant`, `reconcile`) and iamflow processes calling
	// one another's.
	Client ClientConfig `yaml:"client"`
	// Console is the web console served at / on the HTTP listener.
	Console console.Config `yaml:"console"`
	// Insecure turns the token checks off. It is set by dev mode, never from
	// YAML.
	Insecure bool `yaml:"-"`
}

// TLSConfig is the admin API's TLS: a certificate and key in PEM files,
// read again when they change, and optionally the CAs whose client
// certificates callers must present.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile (PEM) turns on mutual TLS: every admin call must come
	// with a client certificate signed by one of these CAs, besides the
	// token. Health, reflection, /healthz, /readyz and /metrics stay open,
	// so probes need no certificate.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether the listeners serve TLS.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" }

// ClientConfig is the client side of the admin API's TLS. A client dials
// with TLS when any of these is set, or when the same configuration's
// admin.tls is (a process and its CLI sharing one file).
type ClientConfig struct {
	// CAFile (PEM) verifies the server's certificate; the system's roots
	// when empty.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server's certificate must carry, when it
	// is not the host dialled (e.g. dialling 127.0.0.1 through a tunnel).
	ServerName string `yaml:"server_name"`
}

// UsesTLS reports whether a client with this configuration dials with TLS.
func (c Config) UsesTLS() bool {
	return c.TLS.Enabled() || c.Client.CAFile != "" || c.Client.CertFile != "" || c.Client.ServerName != ""
}

// DefaultConfig returns the defaults: gRPC on 127.0.0.1:9090, HTTP on
// 127.0.0.1:9091, no token (which Validate rejects unless Insecure).
func DefaultConfig() Config {
	return Config{GRPCAddr: "127.0.0.1:9090", HTTPAddr: "127.0.0.1:9091"}
}

// Validate reports every problem in the configuration, each naming its YAML
// key relative to the admin section (the config package adds "admin.", and
// New does too) and how to fix it. An address off loopback needs TLS or
// allow_plaintext; see Warnings.
func (c Config) Validate() error {
	return c.validate(false)
}

// validate is Validate; haveToken says a resolved token was given some other
// way (WithToken), so cfg.Token may be empty.
func (c Config) validate(haveToken bool) error {
	var errs []error
	grpcErr := validateAddr("grpc_addr", c.GRPCAddr, DefaultConfig().GRPCAddr)
	httpErr := validateAddr("http_addr", c.HTTPAddr, DefaultConfig().HTTPAddr)
	errs = append(errs, grpcErr, httpErr)
	if grpcErr == nil && httpErr == nil && c.GRPCAddr == c.HTTPAddr && !strings.HasSuffix(c.GRPCAddr, ":0") {
		errs = append(errs, fmt.Errorf("http_addr: %q is also grpc_addr: give each its own port", c.HTTPAddr))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: set both cert_file and key_file, or neither"))
	}
	if c.TLS.ClientCAFile != "" && !c.TLS.Enabled() {
		errs = append(errs, errors.New("tls.client_ca_file: mutual TLS needs the server's own cert_file and key_file"))
	}
	if (c.Client.CertFile == "") != (c.Client.KeyFile == "") {
		errs = append(errs, errors.New("client: set both cert_file and key_file, or neither"))
	}
	if !c.TLS.Enabled() && !c.AllowPlaintext {
		for _, a := range []struct{ key, addr string }{{"grpc_addr", c.GRPCAddr}, {"http_addr", c.HTTPAddr}} {
			if a.addr != "" && !isLoopback(a.addr) {
				errs = append(errs, fmt.Errorf("%s: %q is not a loopback address and admin.tls is not set, so the admin API "+
					"and its token would cross the network in clear: set admin.tls.cert_file and key_file, keep it on 127.0.0.1, "+
					"or set admin.allow_plaintext: true when something in front adds TLS", a.key, a.addr))
			}
		}
	}
	errs = append(errs, validate.Prefix("console.", c.Console.Validate()))
	switch {
	case c.Insecure:
	case !c.Token.IsZero():
		if err := c.Token.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("token: %w", err))
		}
	case !haveToken:
		errs = append(errs, errors.New("token: required (e.g. env:IAMFLOW_ADMIN_TOKEN), or run in dev mode"))
	}
	return errors.Join(errs...)
}

func validateAddr(key, addr, example string) error {
	if addr == "" {
		return fmt.Errorf("%s: required, e.g. %s", key, example)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port (e.g. %s): %w", key, addr, example, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%s: %q: the port must be a number from 0 to 65535 (e.g. %s)", key, addr, example)
	}
	return nil
}

// Warnings lists what is allowed but probably a mistake: a listener off
// loopback without TLS (allow_plaintext), which is worse still without a
// token. New logs these.
func (c Config) Warnings() []string {
	var out []string
	for _, a := range []struct{ key, addr string }{{"admin.grpc_addr", c.GRPCAddr}, {"admin.http_addr", c.HTTPAddr}} {
		if isLoopback(a.addr) || c.TLS.Enabled() {
			continue
		}
		w := fmt.Sprintf("%s: %q is not a loopback address: the admin API is reachable from the network without TLS (admin.allow_plaintext)", a.key, a.addr)
		if c.Insecure {
			w += " and without authentication (dev mode)"
		}
		out = append(out, w)
	}
	return out
}

// isLoopback reports whether addr's host is localhost or a loopback IP. An
// empty host (all interfaces) or any other name is not loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
