package admin_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/internal/tlsfiles"
	"github.com/iamflow/iamflow/internal/tlsfiles/tlstest"
)

// TestTLSAndMutualTLS runs the admin server with TLS and a client CA: both
// listeners speak TLS; admin calls need a client certificate the CA signed
// (and the token); health and probes do not; a renewed server certificate
// is served without a restart.
func TestTLSAndMutualTLS(t *testing.T) {
	serverCA, clientCA := tlstest.NewCA(t, "server"), tlstest.NewCA(t, "clients")
	srvCert := serverCA.Issue(t, "admin", "127.0.0.1")
	cliCert := clientCA.Issue(t, "operator")
	strangerCert := tlstest.NewCA(t, "elsewhere").Issue(t, "stranger")
	t.Setenv("IAMFLOW_TEST_ADMIN_TOKEN", testToken)
	cfg := admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Token: "env:IAMFLOW_TEST_ADMIN_TOKEN",
		TLS: admin.TLSConfig{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, ClientCAFile: clientCA.CAFile}}
	s, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(ctx) })
	grpcAddr, httpAddr := s.GRPCAddr().String(), s.HTTPAddr().String()

	client := func(cert *tlstest.Issued) admin.Config {
		c := admin.Config{Client: admin.ClientConfig{CAFile: serverCA.CAFile}}
		if cert != nil {
			c.Client.CertFile, c.Client.KeyFile = cert.CertFile, cert.KeyFile
		}
		return c
	}
	getStatus := func(c admin.Config) error {
		conn, err := admin.DialConfig(ctx, grpcAddr, secretValue(testToken), c)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			return fmt.Errorf("health: %w", err)
		}
		_, err = iamflowv1.NewStatusServiceClient(conn).GetStatus(ctx, &iamflowv1.GetStatusRequest{})
		return err
	}
	if err := getStatus(client(&cliCert)); err != nil {
		t.Fatalf("gRPC with the client certificate: %v", err)
	}
	for name, c := range map[string]admin.Config{"no client certificate": client(nil), "a certificate of another CA": client(&strangerCert)} {
		err := getStatus(c)
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "client certificate") {
			t.Errorf("gRPC with %s: %v, want Unauthenticated asking for a client certificate (health still answering)", name, err)
		}
	}
	// Plaintext to a TLS listener does not get through.
	if err := getStatus(admin.Config{}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext gRPC: %v, want Unavailable", err)
	}

	roots, err := tlsfiles.LoadCAs(serverCA.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	httpGet := func(path string, cert *tlstest.Issued) int {
		tc := &tls.Config{RootCAs: roots}
		if cert != nil {
			pair, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, "https://"+httpAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path string
		cert *tlstest.Issued
		want int
	}{
		{"/healthz", nil, 200}, {"/readyz", nil, 200}, {"/metrics", nil, 200},
		{"/v1/status", nil, 401}, {"/v1/status", &strangerCert, 401}, {"/v1/status", &cliCert, 200},
	} {
		if got := httpGet(tc.path, tc.cert); got != tc.want {
			t.Errorf("GET https://.../%s (client certificate %v): %d, want %d", tc.path, tc.cert != nil, got, tc.want)
		}
	}

	// A renewed certificate is served by both listeners, no restart.
	renewed := serverCA.Issue(t, "admin", "127.0.0.1")
	for _, addr := range []string{grpcAddr, httpAddr} {
		testutil.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
			if err != nil {
				return err
			}
			defer c.Close()
			if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(renewed.Serial) != 0 {
				return fmt.Errorf("%s still serves %s, want the renewed %s", addr, got, renewed.Serial)
			}
			return nil
		})
	}
	if err := getStatus(client(&cliCert)); err != nil {
		t.Fatalf("gRPC after the renewal: %v", err)
	}
}

func TestTLSFilesAreCheckedAtStart(t *testing.T) {
	cfg := admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Insecure: true,
		TLS: admin.TLSConfig{CertFile: "/nonexistent/admin.pem", KeyFile: "/nonexistent/admin-key.pem"}}
	if _, err := admin.New(cfg); err == nil || !strings.Contains(err.Error(), "admin.tls") || !strings.Contains(err.Error(), "/nonexistent/admin.pem") {
		t.Fatalf("New with missing certificate files = %v, want an admin.tls error naming the file", err)
	}
}
