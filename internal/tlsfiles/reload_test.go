package tlsfiles

import (
	"os"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/tlsfiles/tlstest"
)

// TestBrokenRenewalKeepsTheLastGoodCertificate: a certificate file that
// does not load (half written, wrong key) leaves the server on the last
// good certificate, and a good one after it is picked up.
func TestBrokenRenewalKeepsTheLastGoodCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	good := ca.Issue(t, "server", "127.0.0.1")
	r, err := NewReloader(good.CertFile, good.KeyFile, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	serial := func() string { return r.Certificate().Leaf.SerialNumber.String() }
	if err := os.WriteFile(good.CertFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(CheckInterval)
	if got := serial(); got != good.Serial.String() {
		t.Fatalf("after a broken renewal: %s, want the last good %s", got, good.Serial)
	}
	renewed := ca.Issue(t, "server", "127.0.0.1")
	if got := serial(); got != good.Serial.String() {
		t.Fatalf("read again before the check interval: %s", got)
	}
	now = now.Add(CheckInterval)
	if got := serial(); got != renewed.Serial.String() {
		t.Fatalf("after a good renewal: %s, want %s", got, renewed.Serial)
	}
}
