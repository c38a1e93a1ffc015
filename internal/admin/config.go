package admin

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/iamflow/iamflow/internal/secret"
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
	// Insecure turns the token checks off. It is set by dev mode, never from
	// YAML.
	Insecure bool `yaml:"-"`
}

// DefaultConfig returns the defaults: gRPC on 127.0.0.1:9090, HTTP on
// 127.0.0.1:9091, no token (which Validate rejects unless Insecure).
func DefaultConfig() Config {
	return Config{GRPCAddr: "127.0.0.1:9090", HTTPAddr: "127.0.0.1:9091"}
}

// Validate reports every problem in the configuration, each naming its YAML
// key relative to the admin section (the config package adds "admin.", and
// New does too) and how to fix it. Non-loopback addresses are allowed; see
// Warnings.
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

// Warnings lists what is allowed but probably a mistake: an address that is
// not loopback exposes the admin API to the network (without TLS), which is
// worse still without a token. New logs these.
func (c Config) Warnings() []string {
	var out []string
	for _, a := range []struct{ key, addr string }{{"admin.grpc_addr", c.GRPCAddr}, {"admin.http_addr", c.HTTPAddr}} {
		if isLoopback(a.addr) {
			continue
		}
		w := fmt.Sprintf("%s: %q is not a loopback address: the admin API is reachable from the network, without TLS", a.key, a.addr)
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
