package identitydomain_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/emulator/identitydomain"
)

const (
	clientID     = "3f6a1c0e2b7d4e9a8c5b1d2e3f4a5b6c"
	clientSecret = "s3cr3t-7e1d"
	clientName   = "iamflow-replicator"
)

// t0 is the time manual clocks start at.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// baseConfig is a valid config with one client and no rate limits.
func baseConfig() identitydomain.Config {
	return identitydomain.Config{
		Name:    "src",
		Clients: []identitydomain.Client{{ID: clientID, Secret: clientSecret, Name: clientName}},
		Tier:    identitydomain.TierUnlimited,
	}
}

// start builds and starts a domain, closed when the test ends.
func start(t testing.TB, cfg identitydomain.Config, opts ...identitydomain.Option) *identitydomain.Domain {
	t.Helper()
	d, err := identitydomain.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// getToken gets an access token with client credentials and HTTP Basic auth.
func getToken(t testing.TB, d *identitydomain.Domain) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"urn:opc:idm:__myscopes__"}}
	req, _ := http.NewRequest(http.MethodPost, d.URL()+"/oauth2/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 {
		t.Fatalf("token: status %d, decode %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

var (
	keyOnce sync.Once
	keyPEM  string
)

// configProvider is a fake OCI configuration: the SDK client insists on one,
// but the bearer signer below never uses it.
func configProvider(t testing.TB) common.ConfigurationProvider {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	})
	return common.NewRawConfigurationProvider("ocid1.tenancy.oc1..aaaaaaaafake", "ocid1.user.oc1..aaaaaaaafake",
		"us-ashburn-1", "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34", keyPEM, nil)
}

// bearerSigner replaces the SDK's request signer: it sets the domain token.
type bearerSigner struct{ token func() string }

func (s bearerSigner) Sign(r *http.Request) error {
	r.Header.Set("Authorization", "Bearer "+s.token())
	return nil
}

// recorder is the SDK's HTTP dispatcher; it keeps the last response body so
// tests can read SCIM error bodies the SDK does not expose.
type recorder struct {
	mu       sync.Mutex
	lastBody []byte
	lastResp *http.Response
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.lastBody, r.lastResp = body, resp
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (r *recorder) last() ([]byte, *http.Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastBody, r.lastResp
}

// sdk is an oci-go-sdk Identity Domains client pointed at a domain.
type sdk struct {
	identitydomains.IdentityDomainsClient
	rec   *recorder
	mu    sync.Mutex
	token string
}

func (s *sdk) setToken(tok string) {
	s.mu.Lock()
	s.token = tok
	s.mu.Unlock()
}

func newSDK(t testing.TB, d *identitydomain.Domain) *sdk {
	t.Helper()
	c, err := identitydomains.NewIdentityDomainsClientWithConfigurationProvider(configProvider(t), d.URL())
	if err != nil {
		t.Fatalf("NewIdentityDomainsClientWithConfigurationProvider: %v", err)
	}
	s := &sdk{rec: &recorder{}}
	s.token = getToken(t, d)
	c.Host = d.URL()
	c.Signer = bearerSigner{token: func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.token
	}}
	c.HTTPClient = s.rec
	c.Configuration.CircuitBreaker = nil
	s.IdentityDomainsClient = c
	return s
}

// status returns the HTTP status of an SDK error, or 0.
func status(err error) int {
	var se common.ServiceError
	if errors.As(err, &se) {
		return se.GetHTTPStatusCode()
	}
	return 0
}

// scimError is the SCIM error body as IDCS sends it: status is a string.
type scimError struct {
	Schemas  []string `json:"schemas"`
	Detail   string   `json:"detail"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType"`
	Ext      struct {
		MessageID string `json:"messageId"`
	} `json:"urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error"`
}

func parseSCIMError(t testing.TB, body []byte) scimError {
	t.Helper()
	var e scimError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	return e
}

// call makes a raw HTTP request and decodes a JSON answer.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func call(t testing.TB, method, u, token string, body any, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: b}
	if len(b) > 0 && (b[0] == '{') {
		if err := json.Unmarshal(b, &r.json); err != nil {
			t.Fatalf("%s %s: body %s: %v", method, u, b, err)
		}
	}
	return r
}

func userBody(userName string, extra ...any) map[string]any {
	m := map[string]any{
		"schemas":  []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName,
		"name":     map[string]any{"givenName": "Given", "familyName": "Family"},
		"emails":   []any{map[string]any{"value": userName, "type": "work", "primary": true}},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func groupBody(name string, members ...string) map[string]any {
	m := map[string]any{
		"schemas":     []any{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": name,
	}
	if len(members) > 0 {
		var ms []any
		for _, id := range members {
			ms = append(ms, map[string]any{"value": id, "type": "User"})
		}
		m["members"] = ms
	}
	return m
}

func patchBody(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	return map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": list}
}

func op(o, path string, value any) map[string]any {
	m := map[string]any{"op": o}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}

// mustCreate creates a resource over raw HTTP and returns its id.
func mustCreate(t testing.TB, d *identitydomain.Domain, tok, endpoint string, body map[string]any) string {
	t.Helper()
	r := call(t, http.MethodPost, d.URL()+"/admin/v1/"+endpoint, tok, body)
	if r.status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", endpoint, r.status, r.body)
	}
	return r.json["id"].(string)
}

func str(s string) *string { return &s }

// decode parses an emitted event.
func decode(t testing.TB, b []byte) identitydomain.Event {
	t.Helper()
	var ev identitydomain.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("event %s: %v", b, err)
	}
	return ev
}
