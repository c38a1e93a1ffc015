package secret

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"

	"github.com/oracle/oci-go-sdk/v65/common"
)

const testOCID = "ocid1.vaultsecret.oc1.eu-frankfurt-1.amaaaaaatest"

// fakeSecrets answers GET /20190301/secretbundles/{id} like OCI Secrets.
type fakeSecrets struct {
	srv      *httptest.Server
	calls    atomic.Int32
	mu       sync.Mutex
	content  string // plain text, sent base64
	ctype    string
	status   int
	lastAuth string
}

func newFakeSecrets(t *testing.T) *fakeSecrets {
	f := &fakeSecrets{content: "first-secret-value", ctype: "BASE64", status: 200}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.lastAuth = r.Header.Get("Authorization")
		id, ok := strings.CutPrefix(r.URL.Path, "/20190301/secretbundles/")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("opc-request-id", "req-1")
		if r.Method != http.MethodGet || !ok || id != testOCID {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"code":"NotAuthorizedOrNotFound","message":"Authorization failed or requested resource not found."}`)
			return
		}
		if f.status != 200 {
			w.WriteHeader(f.status)
			fmt.Fprint(w, `{"code":"InternalServerError","message":"Internal error."}`)
			return
		}
		fmt.Fprintf(w, `{"secretId":%q,"versionNumber":1,"stages":["CURRENT","LATEST"],"secretBundleContent":{"contentType":%q,"content":%q}}`,
			id, f.ctype, base64.StdEncoding.EncodeToString([]byte(f.content)))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSecrets) set(fn func(*fakeSecrets)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// writeOCIConfig writes an OCI config file with a generated RSA key, so the
// SDK's real signer signs the requests.
func writeOCIConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`[DEFAULT]
user=ocid1.user.oc1..aaaa
fingerprint=11:22:33:44:55:66:77:88:99:00:aa:bb:cc:dd:ee:ff
tenancy=ocid1.tenancy.oc1..aaaa
region=eu-frankfurt-1
key_file=%s

[OTHER]
user=ocid1.user.oc1..bbbb
fingerprint=11:22:33:44:55:66:77:88:99:00:aa:bb:cc:dd:ee:ff
tenancy=ocid1.tenancy.oc1..bbbb
region=eu-frankfurt-1
key_file=%s
`, keyFile, keyFile)
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newVaultResolver(t *testing.T, f *fakeSecrets, profile string) (*Resolver, *emu.ManualClock, *bytes.Buffer) {
	t.Helper()
	clock := emu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	logs := &bytes.Buffer{}
	r, err := NewResolver(
		WithVault(VaultConfig{Auth: VaultAuthConfigFile, ConfigPath: writeOCIConfig(t), Profile: profile, Endpoint: f.srv.URL, RefreshInterval: time.Minute}),
		WithResolverClock(clock.Now),
		WithResolverLogger(slog.New(slog.NewTextHandler(logs, nil))),
	)
	if err != nil {
		t.Fatal(err)
	}
	if r.vault.client.Configuration.RetryPolicy == nil || r.vault.client.Configuration.RetryPolicy.MaximumNumberAttempts != 3 {
		t.Fatal("the Secrets client must have the bounded retry policy")
	}
	noRetry := common.NoRetryPolicy() // the tests' 500s would otherwise wait for the backoff
	r.vault.client.Configuration.RetryPolicy = &noRetry
	return r, clock, logs
}

func TestVaultResolveDecodesAndSigns(t *testing.T) {
	f := newFakeSecrets(t)
	r, _, _ := newVaultResolver(t, f, "OTHER")
	v, err := r.Resolve(context.Background(), Ref("vault:"+testOCID))
	if err != nil {
		t.Fatal(err)
	}
	if v.Reveal() != "first-secret-value" {
		t.Fatalf("got %q", v.Reveal())
	}
	f.mu.Lock()
	authz := f.lastAuth
	f.mu.Unlock()
	if !strings.HasPrefix(authz, "Signature ") || !strings.Contains(authz, `keyId="ocid1.tenancy.oc1..bbbb/ocid1.user.oc1..bbbb/`) {
		t.Fatalf("request not signed by the SDK with the OTHER profile: Authorization %q", authz)
	}
}

func TestVaultCachingAndRefresh(t *testing.T) {
	f := newFakeSecrets(t)
	r, clock, logs := newVaultResolver(t, f, "")
	ref := Ref("vault:" + testOCID)
	ctx := context.Background()
	for range 2 {
		if v, err := r.Resolve(ctx, ref); err != nil || v.Reveal() != "first-secret-value" {
			t.Fatalf("%q, %v", v.Reveal(), err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d requests for two resolves, want 1", n)
	}

	// After the refresh interval the new version is read.
	f.set(func(f *fakeSecrets) { f.content = "rotated-secret-value" })
	clock.Advance(61 * time.Second)
	if v, err := r.Resolve(ctx, ref); err != nil || v.Reveal() != "rotated-secret-value" || f.calls.Load() != 2 {
		t.Fatalf("after refresh: %q, %v, %d requests", v.Reveal(), err, f.calls.Load())
	}

	// A failed refresh keeps the previous value and logs the OCID, not the value.
	f.set(func(f *fakeSecrets) { f.status = 500; f.content = "never-seen" })
	clock.Advance(61 * time.Second)
	v, err := r.Resolve(ctx, ref)
	if err != nil || v.Reveal() != "rotated-secret-value" {
		t.Fatalf("stale value expected: %q, %v", v.Reveal(), err)
	}
	calls := f.calls.Load()
	if !strings.Contains(logs.String(), testOCID) || strings.Contains(logs.String(), "rotated-secret-value") {
		t.Fatalf("log %q: want the OCID and not the secret", logs.String())
	}
	// Within 30s the failing refresh is not retried.
	clock.Advance(10 * time.Second)
	if _, err := r.Resolve(ctx, ref); err != nil || f.calls.Load() != calls {
		t.Fatalf("failing refresh retried too soon: %v, %d requests", err, f.calls.Load())
	}
	f.set(func(f *fakeSecrets) { f.status = 200; f.content = "third-secret-value" })
	clock.Advance(31 * time.Second)
	if v, err := r.Resolve(ctx, ref); err != nil || v.Reveal() != "third-secret-value" {
		t.Fatalf("recovery: %q, %v", v.Reveal(), err)
	}
}

func TestVaultErrors(t *testing.T) {
	f := newFakeSecrets(t)
	r, _, _ := newVaultResolver(t, f, "")
	ctx := context.Background()

	// Unknown secret: the error names the OCID.
	missing := "ocid1.vaultsecret.oc1.eu-frankfurt-1.amaaaaaamissing"
	_, err := r.Resolve(ctx, Ref("vault:"+missing))
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing secret: %v", err)
	}

	// Non-BASE64 content is refused, the content not shown.
	f.set(func(f *fakeSecrets) { f.ctype = "TEXT"; f.content = "plain-secret-value" })
	_, err = r.Resolve(ctx, Ref("vault:"+testOCID))
	if err == nil || !errors.Is(err, errVaultContent) || !strings.Contains(err.Error(), testOCID) || !strings.Contains(err.Error(), `"TEXT"`) {
		t.Fatalf("TEXT content: %v", err)
	}
	enc := base64.StdEncoding.EncodeToString([]byte("plain-secret-value"))
	if strings.Contains(err.Error(), "plain-secret-value") || strings.Contains(err.Error(), enc) {
		t.Fatalf("error leaks the content: %v", err)
	}

	// A server error on the first read is an error (nothing cached to fall back on).
	f.set(func(f *fakeSecrets) { f.ctype = "BASE64"; f.status = 500 })
	if _, err := r.Resolve(ctx, Ref("vault:"+testOCID)); err == nil || !strings.Contains(err.Error(), testOCID) {
		t.Fatalf("500: %v", err)
	}
}

func TestResolverEnvFileAndNoVault(t *testing.T) {
	t.Setenv("IAMFLOW_TEST_RESOLVER", "from-env")
	r, err := NewResolver()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.Resolve(context.Background(), "env:IAMFLOW_TEST_RESOLVER"); err != nil || v.Reveal() != "from-env" {
		t.Fatalf("env: %q, %v", v.Reveal(), err)
	}
	file := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Resolve(context.Background(), Ref("file:"+file)); err != nil || v.Reveal() != "from-file" {
		t.Fatalf("file: %q, %v", v.Reveal(), err)
	}
	_, err = r.Resolve(context.Background(), Ref("vault:"+testOCID))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "configure vault") {
		t.Fatalf("vault without WithVault: %v", err)
	}
	_, err = Resolve(context.Background(), Ref("vault:"+testOCID))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "configure vault") {
		t.Fatalf("package Resolve of vault: %v", err)
	}
	if _, err := r.Resolve(context.Background(), "hunter2"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("literal: %v", err)
	}
}

func TestVaultConfigValidate(t *testing.T) {
	for _, c := range []VaultConfig{
		{Auth: "password"},
		{Auth: VaultAuthConfigFile, Endpoint: "ftp://x"},
		{Auth: VaultAuthConfigFile, Endpoint: "https://x/path"},
		{Auth: VaultAuthResourcePrincipal, Profile: "DEFAULT"},
		{Auth: VaultAuthConfigFile, RefreshInterval: -time.Second},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: want error", c)
		}
		if _, err := NewResolver(WithVault(c)); err == nil {
			t.Errorf("NewResolver(%+v): want error", c)
		}
	}
	if _, err := NewResolver(WithVault(VaultConfig{Auth: VaultAuthConfigFile, ConfigPath: filepath.Join(t.TempDir(), "none")})); err == nil {
		t.Error("missing config file: want error at NewResolver")
	}
}
