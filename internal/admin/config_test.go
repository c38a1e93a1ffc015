package admin_test

import (
	"strings"
	"testing"

	"github.com/iamflow/iamflow/internal/admin"
)

func TestConfigValidate(t *testing.T) {
	withToken := admin.DefaultConfig()
	withToken.Token = "env:IAMFLOW_ADMIN_TOKEN"
	if err := withToken.Validate(); err != nil {
		t.Fatalf("defaults with a token: %v", err)
	}
	dev := admin.DefaultConfig()
	dev.Insecure = true
	if err := dev.Validate(); err != nil {
		t.Fatalf("defaults in dev mode: %v", err)
	}
	if w := withToken.Warnings(); len(w) != 0 {
		t.Errorf("loopback defaults warn: %v", w)
	}

	tests := []struct {
		name string
		edit func(*admin.Config)
		want []string
	}{
		{"no token", func(c *admin.Config) { c.Token = "" },
			[]string{"token: required (e.g. env:IAMFLOW_ADMIN_TOKEN), or run in dev mode"}},
		{"literal token", func(c *admin.Config) { c.Token = "hunter2" },
			[]string{"token: ", "literal secrets are not accepted"}},
		{"empty grpc addr", func(c *admin.Config) { c.GRPCAddr = "" },
			[]string{"grpc_addr: required, e.g. 127.0.0.1:9090"}},
		{"no port", func(c *admin.Config) { c.HTTPAddr = "localhost" },
			[]string{"http_addr: ", "not host:port"}},
		{"bad port", func(c *admin.Config) { c.GRPCAddr = "127.0.0.1:99999" },
			[]string{"grpc_addr: ", "0 to 65535"}},
		{"same port", func(c *admin.Config) { c.HTTPAddr = c.GRPCAddr },
			[]string{"http_addr: ", "own port"}},
		{"all at once", func(c *admin.Config) { c.Token, c.GRPCAddr, c.HTTPAddr = "", "x", "y" },
			[]string{"token: required", "grpc_addr: ", "http_addr: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := withToken
			tt.edit(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error reveals the literal token: %v", err)
			}
			// New names the full key.
			if _, err := admin.New(cfg); err == nil || !strings.Contains(err.Error(), "admin.") {
				t.Errorf("New() = %v, want an error naming admin.<key>", err)
			}
		})
	}
}

// TestOffLoopbackNeedsTLS: a listener off loopback without TLS is refused
// (the token would cross the network in clear) unless allow_plaintext says
// something in front adds TLS; then it is a warning.
func TestOffLoopbackNeedsTLS(t *testing.T) {
	cfg := admin.Config{GRPCAddr: "0.0.0.0:9090", HTTPAddr: ":9091", Token: "env:T"}
	err := cfg.Validate()
	for _, want := range []string{`grpc_addr: "0.0.0.0:9090" is not a loopback address and admin.tls is not set`, `http_addr: ":9091"`, "allow_plaintext: true"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
	withTLS := cfg
	withTLS.TLS = admin.TLSConfig{CertFile: "/etc/iamflow/tls.crt", KeyFile: "/etc/iamflow/tls.key"}
	if err := withTLS.Validate(); err != nil || len(withTLS.Warnings()) != 0 {
		t.Errorf("with TLS: %v, warnings %v", err, withTLS.Warnings())
	}
	for _, tc := range []struct {
		edit func(*admin.Config)
		want string
	}{
		{func(c *admin.Config) { c.TLS.KeyFile = "" }, "tls: set both cert_file and key_file"},
		{func(c *admin.Config) { c.TLS = admin.TLSConfig{ClientCAFile: "/ca.pem"}; c.AllowPlaintext = true }, "tls.client_ca_file: mutual TLS needs"},
		{func(c *admin.Config) { c.Client.CertFile = "/c.pem" }, "client: set both cert_file and key_file"},
	} {
		c := withTLS
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

func TestConfigWarnings(t *testing.T) {
	cfg := admin.Config{GRPCAddr: "0.0.0.0:9090", HTTPAddr: ":9091", Insecure: true, AllowPlaintext: true}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("non-loopback addresses must be allowed with allow_plaintext: %v", err)
	}
	w := strings.Join(cfg.Warnings(), "\n")
	for _, want := range []string{"admin.grpc_addr", "admin.http_addr", "not a loopback address", "without authentication"} {
		if !strings.Contains(w, want) {
			t.Errorf("Warnings() = %q, want %q", w, want)
		}
	}
	for _, addr := range []string{"127.0.0.1:1", "[::1]:1", "localhost:1", "127.0.0.2:0"} {
		if w := (admin.Config{GRPCAddr: addr, HTTPAddr: addr}).Warnings(); len(w) != 0 {
			t.Errorf("%s is loopback, got warnings %v", addr, w)
		}
	}
}

func TestNewToken(t *testing.T) {
	cfg := admin.DefaultConfig()
	cfg.Token = "env:IAMFLOW_TEST_ADMIN_TOKEN_UNSET"
	t.Setenv("IAMFLOW_TEST_ADMIN_TOKEN_UNSET", "")
	if _, err := admin.New(cfg); err == nil || !strings.Contains(err.Error(), "admin.token") {
		t.Errorf("New with an unresolvable token = %v, want an admin.token error", err)
	}
	cfg.Token = ""
	if _, err := admin.New(cfg, admin.WithToken(secretValue(testToken))); err != nil {
		t.Errorf("New with WithToken and no token reference: %v", err)
	}
	// A token anyone could guess is refused, with how to make a better one.
	t.Setenv("IAMFLOW_TEST_ADMIN_TOKEN_WEAK", "t0ken")
	cfg.Token = "env:IAMFLOW_TEST_ADMIN_TOKEN_WEAK"
	if _, err := admin.New(cfg); err == nil || !strings.Contains(err.Error(), "admin.token: too weak: 5 characters") ||
		!strings.Contains(err.Error(), "openssl rand") || strings.Contains(err.Error(), "t0ken") {
		t.Errorf("New with a 5-character token = %v, want too weak, how to generate one, and no token", err)
	}
	cfg.Token = ""
	if _, err := admin.New(cfg, admin.WithToken(secretValue(""))); err == nil {
		t.Error("New accepted an empty WithToken")
	}
}
