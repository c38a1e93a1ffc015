package identitydomain_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/emulator/identitydomain"
)

func TestTokenEndpoint(t *testing.T) {
	clock := identitydomain.NewManualClock(t0)
	d := start(t, baseConfig(), identitydomain.WithClock(clock))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(clientID+":"+clientSecret))
	badBasic := "Basic " + base64.StdEncoding.EncodeToString([]byte(clientID+":wrong"))
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	std := form("grant_type", "client_credentials", "scope", "urn:opc:idm:__myscopes__")
	tests := []struct {
		name, auth, body string
		status           int
		oauthError       string
		expiresIn        float64
	}{
		{"basic", basic, std, 200, "", 3600},
		{"form credentials", "", form("grant_type", "client_credentials", "scope", "urn:opc:idm:__myscopes__",
			"client_id", clientID, "client_secret", clientSecret), 200, "", 3600},
		{"custom expiry", basic, form("grant_type", "client_credentials", "scope", "urn:opc:idm:__myscopes__ urn:opc:resource:expiry=300"), 200, "", 300},
		{"expiry capped", basic, form("grant_type", "client_credentials", "scope", "urn:opc:idm:__myscopes__ urn:opc:resource:expiry=99999"), 200, "", 3600},
		{"wrong secret", badBasic, std, 401, "invalid_client", 0},
		{"unknown client", "", form("grant_type", "client_credentials", "scope", "urn:opc:idm:__myscopes__",
			"client_id", "nobody", "client_secret", "x"), 401, "invalid_client", 0},
		{"no credentials", "", std, 401, "invalid_client", 0},
		{"client assertion", "", form("grant_type", "client_credentials", "scope", "urn:opc:idm:__myscopes__",
			"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", "x.y.z"), 401, "invalid_client", 0},
		{"no grant", basic, form("scope", "urn:opc:idm:__myscopes__"), 400, "invalid_request", 0},
		{"password grant", basic, form("grant_type", "password", "scope", "urn:opc:idm:__myscopes__"), 400, "unsupported_grant_type", 0},
		{"token exchange", basic, form("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange", "scope", "urn:opc:idm:__myscopes__",
			"requested_token_type", "urn:ietf:params:oauth:token-type:access_token"), 400, "unsupported_grant_type", 0},
		{"no scope", basic, form("grant_type", "client_credentials"), 400, "invalid_scope", 0},
		{"bad expiry", basic, form("grant_type", "client_credentials", "scope", "urn:opc:idm:__myscopes__ urn:opc:resource:expiry=x"), 400, "invalid_scope", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, d.URL()+"/oauth2/v1/token", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tt.status, body)
			}
			if resp.Header.Get("X-ORACLE-DMS-ECID") == "" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", resp.Header)
			}
			if tt.oauthError != "" {
				if body["error"] != tt.oauthError || body["error_description"] == "" {
					t.Errorf("body %v, want error %s", body, tt.oauthError)
				}
				// A client that failed Basic auth is challenged for Basic.
				challenge := resp.Header.Get("WWW-Authenticate")
				if wantChallenge := tt.status == 401 && tt.auth != ""; wantChallenge != strings.HasPrefix(challenge, `Basic realm="idcs-`) {
					t.Errorf("WWW-Authenticate = %q", challenge)
				}
				return
			}
			tok, _ := body["access_token"].(string)
			if body["token_type"] != "Bearer" || body["expires_in"] != tt.expiresIn || strings.Count(tok, ".") != 2 {
				t.Fatalf("body %v", body)
			}
			payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
			var claims map[string]any
			if err != nil || json.Unmarshal(payload, &claims) != nil || claims["client_id"] != clientID ||
				claims["exp"] != float64(t0.Unix())+tt.expiresIn {
				t.Errorf("claims %s", payload)
			}
			r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users", tok, nil)
			if r.status != 200 {
				t.Errorf("token does not work: %d", r.status)
			}
		})
	}
	if r := call(t, http.MethodGet, d.URL()+"/oauth2/v1/token", "", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET token endpoint: %d", r.status)
	}
	// Every token expires on its own schedule.
	short := call(t, http.MethodPost, d.URL()+"/oauth2/v1/token", "", form("grant_type", "client_credentials",
		"scope", "urn:opc:idm:__myscopes__ urn:opc:resource:expiry=60", "client_id", clientID, "client_secret", clientSecret),
		"Content-Type", "application/x-www-form-urlencoded").json["access_token"].(string)
	long := getToken(t, d)
	clock.Advance(61 * time.Second)
	if r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users", short, nil); r.status != 401 {
		t.Errorf("60s token after 61s: %d", r.status)
	}
	if r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users", long, nil); r.status != 200 {
		t.Errorf("3600s token after 61s: %d", r.status)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := baseConfig()
	tests := []struct {
		name   string
		mutate func(*identitydomain.Config)
		want   string
	}{
		{"no name", func(c *identitydomain.Config) { c.Name = "" }, "name"},
		{"upper-case name", func(c *identitydomain.Config) { c.Name = "Src" }, "name"},
		{"bad domain id", func(c *identitydomain.Config) { c.DomainID = "idcs-xyz" }, "domainId"},
		{"no clients", func(c *identitydomain.Config) { c.Clients = nil }, "clients"},
		{"client without secret", func(c *identitydomain.Config) { c.Clients = []identitydomain.Client{{ID: "a"}} }, "clients[0]"},
		{"duplicate client", func(c *identitydomain.Config) { c.Clients = append(c.Clients, c.Clients[0]) }, "duplicate"},
		{"negative ttl", func(c *identitydomain.Config) { c.TokenTTL = -time.Second }, "tokenTTL"},
		{"unknown tier", func(c *identitydomain.Config) { c.Tier = "gold" }, "tier"},
		{"bad webhook", func(c *identitydomain.Config) { c.EventsWebhook.URL = "ftp://x" }, "eventsWebhook"},
		{"bad rate", func(c *identitydomain.Config) { c.Faults.Rate429 = 2 }, "rate429"},
		{"bad status", func(c *identitydomain.Config) { c.Faults.Status5xx = 404 }, "status5xx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.mutate(&cfg)
			_, err := identitydomain.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	d, err := identitydomain.New(ok)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := d.Config()
	if !strings.HasPrefix(c.DomainID, "idcs-") || len(c.DomainID) != 37 || c.TokenTTL != time.Hour || c.DisplayName != "src" ||
		!strings.HasPrefix(c.DomainOCID, "ocid1.domain.oc1..") || c.Clients[0].Name != clientName {
		t.Errorf("defaults %+v", c)
	}
	d2, _ := identitydomain.New(ok)
	defer d2.Close()
	if d2.Config().DomainID != c.DomainID {
		t.Error("DomainID is not derived from Name deterministically")
	}
	cfg := ok
	cfg.EventsWebhook.URL = "https://user:pa%3Ass@hooks.example/path"
	d3, err := identitydomain.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Close()
	if w := d3.Config().EventsWebhook; w.Username != "user" || w.Password != "pa:ss" || w.MinBackoff == 0 {
		t.Errorf("webhook credentials from URL: %+v", w)
	}
}
