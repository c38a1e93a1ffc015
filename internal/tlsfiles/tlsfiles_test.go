package tlsfiles_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/internal/tlsfiles"
	"github.com/iamflow/iamflow/internal/tlsfiles/tlstest"
)

// served returns the serial of the certificate a TLS server on ln presents.
func served(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestReloadOnChange serves a certificate, renews the files under the
// server, and checks that new handshakes get the new certificate without a
// restart; a broken file keeps the last good one.
func TestReloadOnChange(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	first := ca.Issue(t, "server", "127.0.0.1")
	r, err := tlsfiles.NewReloader(first.CertFile, first.KeyFile, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.ServerConfig(&tls.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	roots, _ := tlsfiles.LoadCAs(ca.CAFile)
	addr := ln.Addr().String()
	if got := served(t, addr, roots); got != first.Serial.String() {
		t.Fatalf("served %s, want %s", got, first.Serial)
	}
	renewed := ca.Issue(t, "server", "127.0.0.1") // same files, new certificate
	testutil.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		if got := served(t, addr, roots); got != renewed.Serial.String() {
			return fmt.Errorf("still serving %s, want the renewed %s", got, renewed.Serial)
		}
		return nil
	})
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	c := ca.Issue(t, "server", "127.0.0.1")
	for _, tc := range []struct {
		cert, key, ca string
		want          string
	}{
		{"/nonexistent/cert.pem", c.KeyFile, "", "/nonexistent/cert.pem"},
		{c.CertFile, ca.CAFile, "", "with key"},
		{c.CertFile, c.KeyFile, c.KeyFile, "holds no PEM certificate"},
	} {
		if _, err := tlsfiles.NewReloader(tc.cert, tc.key, tc.ca, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewReloader(%s, %s, %s) = %v, want %q", tc.cert, tc.key, tc.ca, err, tc.want)
		}
	}
	if _, err := tlsfiles.ClientConfig("", c.CertFile, "", ""); err == nil {
		t.Error("a client certificate without its key was accepted")
	}
}
