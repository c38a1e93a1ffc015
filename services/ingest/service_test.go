package ingest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/internal/tlsfiles"
	"github.com/iamflow/iamflow/internal/tlsfiles/tlstest"
)

const testPassword = "correct horse battery staple"

// harness is a real JetStream server, a bus on it, and the ingest service
// behind a real HTTP server.
type harness struct {
	t    *testing.T
	srv  *bustest.Server
	bus  *bus.Bus
	svc  *Service
	http *httptest.Server
}

func newHarness(t *testing.T, mutate func(*Config), opts ...servicekit.Option) *harness {
	t.Helper()
	return newHarnessWith(t, mutate, Webhook{}, opts...)
}

// newHarnessWith is newHarness with w's domains (default hub and spoke) and
// confirmation client.
func newHarnessWith(t *testing.T, mutate func(*Config), w Webhook, opts ...servicekit.Option) *harness {
	t.Helper()
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	cfg := DefaultConfig()
	cfg.Password = "env:UNUSED_IN_TESTS"
	cfg.PublishTimeout = 2 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	w.Password = secret.NewValue(testPassword)
	if w.Domains == nil {
		w.Domains = []Domain{{Name: "hub", OCIName: "Default"}, {Name: "spoke", ID: "ocid1.domain.oc1..spoke"}}
	}
	svc, err := New(context.Background(), cfg, b, w, opts...)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, bus: b, svc: svc, http: httptest.NewServer(svc.Handler())}
	t.Cleanup(h.http.Close)
	return h
}

func (h *harness) url() string { return h.http.URL + "/v1/events" }

// post sends body with the right credentials and decodes the JSON answer.
func (h *harness) post(body string, hdr ...string) (int, map[string]any, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url(), strings.NewReader(body))
	req.SetBasicAuth("iamflow", testPassword)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(h.t, req)
}

// do sends req and returns the answer's status, JSON body and header.
func do(t *testing.T, req *http.Request) (int, map[string]any, http.Header) {
	t.Helper()
	code, b, hdr := doRaw(t, req)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("response is not JSON (%d): %q", code, b)
	}
	return code, out, hdr
}

// runInBackground runs run until the test ends, then cancels its context
// and waits for it to return.
func runInBackground(t *testing.T, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// doRaw sends req and returns the answer's status, body and header.
func doRaw(t *testing.T, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// stored returns every message in IAM_EVENTS.
func (h *harness) stored() []*jetstream.RawStreamMsg {
	h.t.Helper()
	ctx := context.Background()
	s, err := h.bus.JetStream().Stream(ctx, bus.StreamEvents)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func envelope(id, typ, domain string, details map[string]any) string {
	if domain != "" {
		details["domainName"] = domain
	}
	b, _ := json.Marshal(map[string]any{
		"eventType": "com.oraclecloud.identitycontrolplane." + typ, "cloudEventsVersion": "0.1", "eventTypeVersion": "2.0",
		"source": "IdentityControlPlane", "eventID": id, "eventTime": "2026-11-20T10:00:00Z", "contentType": "application/json",
		"data": map[string]any{"additionalDetails": details},
	})
	return string(b)
}

func addUserToGroup(id, domain string) string {
	return envelope(id, "addusertogroup", domain, map[string]any{
		"adminResourceId": "g1", "adminResourceName": "Admins", "adminResourceType": "Group",
		"adminRefResourceId": "u1", "adminRefResourceName": "jane", "adminRefResourceType": "User",
		"actorId": "c1", "actorName": "iamflow-client", "actorType": "Client",
	})
}

func TestWebhookPublishesOnTheEventSubject(t *testing.T) {
	h := newHarness(t, nil)
	code, body, hdr := h.post(addUserToGroup("ev-1", "Default"))
	if code != http.StatusAccepted || body["published"] != 1.0 {
		t.Fatalf("got %d %v, want 202 with published=1", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("202 Content-Type = %q, want application/json", ct)
	}
	msgs := h.stored()
	if len(msgs) != 1 {
		t.Fatalf("stored %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "iam.event.hub.membership.member_added" {
		t.Errorf("subject = %s", m.Subject)
	}
	if got := m.Header.Get("Nats-Msg-Id"); got != "ev-1" {
		t.Errorf("Nats-Msg-Id = %q, want the OCI event id", got)
	}
	if got, want := m.Header.Get("Content-Type"), event.ContentType; got != want {
		t.Errorf("message Content-Type = %q, want %q", got, want)
	}
	if got := m.Header.Get("Iamflow-Event-Type"); got != "membership.member_added" {
		t.Errorf("Iamflow-Event-Type = %q, want membership.member_added", got)
	}
	e, err := event.Unmarshal(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if e.GetDomain() != "hub" || e.GetResource().GetId() != "g1" || e.GetRelated().GetId() != "u1" ||
		e.GetActor().GetName() != "iamflow-client" || e.GetReceivedAt() == nil {
		t.Errorf("stored event = %v", e)
	}
}

func TestWebhookAcceptsEveryFixtureShape(t *testing.T) {
	fxs := fixtures(t)
	if len(fxs) < 5 {
		t.Fatalf("only %d fixtures in testdata", len(fxs))
	}
	for _, f := range fxs {
		t.Run(f.name, func(t *testing.T) {
			h := newHarnessWith(t, func(c *Config) { c.Confirm.Auto = false },
				Webhook{Domains: []Domain{{Name: "any", OCIName: "Default"}}})
			header := f.header()
			batch, err := Parse(header, f.body, time.Now())
			if err != nil {
				t.Fatalf("fixture does not parse: %v", err)
			}
			hdr := []string{}
			for k := range header {
				hdr = append(hdr, k, header.Get(k))
			}
			code, body, _ := h.post(string(f.body), hdr...)
			if batch.Confirmation != nil {
				if code != http.StatusAccepted || body["confirmation"] != "pending" {
					t.Fatalf("confirmation: got %d %v", code, body)
				}
				return
			}
			if code != http.StatusAccepted {
				t.Fatalf("got %d %v, want 202", code, body)
			}
			got := int(body["published"].(float64)) + int(body["duplicates"].(float64))
			unknownDomain, _ := body["unknown_domain"].(float64)
			if got+int(unknownDomain) != len(batch.Events) {
				t.Fatalf("published+duplicates+unknown_domain = %d+%v, want %d events", got, unknownDomain, len(batch.Events))
			}
			if n := len(h.stored()); n != got {
				t.Fatalf("stream has %d messages, want %d", n, got)
			}
		})
	}
}

func TestDuplicateDeliveryIsStoredOnce(t *testing.T) {
	h := newHarness(t, nil)
	body := addUserToGroup("ev-dup", "Default")
	if code, out, _ := h.post(body); code != http.StatusAccepted || out["published"] != 1.0 {
		t.Fatalf("first delivery: %d %v", code, out)
	}
	code, out, _ := h.post(body)
	if code != http.StatusAccepted || out["duplicates"] != 1.0 || out["published"] != 0.0 {
		t.Fatalf("second delivery: %d %v, want 202 with duplicates=1", code, out)
	}
	if n := len(h.stored()); n != 1 {
		t.Fatalf("stored %d messages, want 1", n)
	}
	st := h.svc.Status(context.Background())
	if st.GetCounters()["published"] != 1 || st.GetCounters()["duplicates"] != 1 || st.GetLastEventId() != "ev-dup" {
		t.Fatalf("status = %v", st)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, nil)
	body := addUserToGroup("ev-auth", "Default")
	for _, tc := range []struct {
		name       string
		user, pass string
		noAuth     bool
	}{
		{name: "no credentials", noAuth: true},
		{name: "wrong password", user: "iamflow", pass: "wrong"},
		{name: "wrong user", user: "admin", pass: testPassword},
		{name: "password prefix", user: "iamflow", pass: testPassword[:5]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.url(), strings.NewReader(body))
			if !tc.noAuth {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			code, out, hdr := do(t, req)
			if code != http.StatusUnauthorized || out["error"] != "unauthorized" {
				t.Fatalf("got %d %v, want 401", code, out)
			}
			if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
			}
		})
	}
	if n := len(h.stored()); n != 0 {
		t.Fatalf("unauthenticated requests stored %d messages", n)
	}
}

// Bad input (malformed, oversized, deeply nested, wrongly typed) is refused
// with a status and a reason naming what was wrong, and nothing is stored.
func TestBadRequestsAreRefusedWithAReason(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	tests := []struct {
		name, method, ctype, body string
		code                      int
		errCode, msg              string
	}{
		{"malformed JSON", "POST", "application/json", `{"eventType":`, 400, "malformed_json", "JSON"},
		{"not an event", "POST", "application/json", `{"hello":"world"}`, 400, "unsupported_shape", ""},
		{"too large", "POST", "application/json", `{"x":"` + strings.Repeat("a", 5000) + `"}`, 413, "body_too_large", "4096-byte limit"},
		{"form body", "POST", "application/x-www-form-urlencoded", `a=b`, 415, "unsupported_media_type", "not JSON"},
		{"GET", "GET", "", ``, 405, "method_not_allowed", "GET"},
		{"deeply nested", "POST", "application/json", strings.Repeat("[", 2000) + strings.Repeat("]", 2000), 400, "wrong_type", "body[0]: entry is an array, want an object"},
		{"deeply nested object", "POST", "application/json", strings.Repeat(`{"a":`, 600) + "1" + strings.Repeat("}", 600), 400, "unsupported_shape", "none of the keys of a known shape"},
		{"eventType a number", "POST", "application/json", `{"eventType":42,"cloudEventsVersion":"0.1","eventID":"x","data":{}}`, 400, "wrong_type", "eventType is a number, want a string"},
		{"data a string", "POST", "application/json", `{"eventType":"com.oraclecloud.identitycontrolplane.createuser","cloudEventsVersion":"0.1","eventID":"x","data":"nope"}`, 400, "wrong_type", "data is a string, want an object"},
		{"additionalDetails a list", "POST", "application/json", `{"eventType":"com.oraclecloud.identitycontrolplane.createuser","cloudEventsVersion":"0.1","eventID":"x","data":{"additionalDetails":[1,2]}}`, 400, "wrong_type", "additionalDetails is an array, want an object"},
		{"batch of numbers", "POST", "application/json", `[1,2,3]`, 400, "wrong_type", "body[0]: entry is a number"},
		{"null", "POST", "application/json", `null`, 400, "unsupported_shape", "body is null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, h.url(), strings.NewReader(tt.body))
			req.SetBasicAuth("iamflow", testPassword)
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			code, out, _ := do(t, req)
			msg, _ := out["message"].(string)
			if code != tt.code || out["error"] != tt.errCode || msg == "" || !strings.Contains(msg, tt.msg) {
				t.Fatalf("got %d %v, want %d %s mentioning %q", code, out, tt.code, tt.errCode, tt.msg)
			}
		})
	}
	if n := len(h.stored()); n != 0 {
		t.Fatalf("bad requests stored %d messages", n)
	}
}

func TestUnknownTypesAndDomainsAreAcknowledgedNotPublished(t *testing.T) {
	h := newHarness(t, nil)
	code, out, _ := h.post(envelope("ev-pol", "createpolicy", "Default", map[string]any{"adminResourceId": "p1"}))
	if code != http.StatusAccepted || out["unknown_type"] != 1.0 {
		t.Fatalf("unknown type: %d %v", code, out)
	}
	code, out, _ = h.post(addUserToGroup("ev-other", "SomeOtherDomain"))
	if code != http.StatusAccepted || out["unknown_domain"] != 1.0 {
		t.Fatalf("unknown domain: %d %v", code, out)
	}
	if n := len(h.stored()); n != 0 {
		t.Fatalf("stored %d messages, want 0", n)
	}
	c := h.svc.Status(context.Background()).GetCounters()
	if c["unknown_type"] != 1 || c["unknown_domain"] != 1 {
		t.Fatalf("counters = %v", c)
	}
}

func TestDomainMatchedByID(t *testing.T) {
	h := newHarness(t, nil)
	body := envelope("ev-spoke", "createuser", "", map[string]any{
		"adminResourceId": "u9", "adminResourceName": "bob", "adminResourceType": "User", "domainId": "OCID1.DOMAIN.OC1..SPOKE",
	})
	if code, out, _ := h.post(body); code != http.StatusAccepted || out["published"] != 1.0 {
		t.Fatalf("got %d %v", code, out)
	}
	if s := h.stored()[0].Subject; s != "iam.event.spoke.user.created" {
		t.Fatalf("subject = %s", s)
	}
}

// TestJetStreamDownAnswers503AndLosesNothing stops the NATS server under the
// webhook: requests then get 503 with Retry-After (so OCI retries), and after
// the server returns, everything acknowledged before is still there and the
// retried deliveries are stored exactly once.
func TestJetStreamDownAnswers503AndLosesNothing(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PublishTimeout = 500 * time.Millisecond })
	for i := range 3 {
		if code, out, _ := h.post(addUserToGroup(fmt.Sprintf("before-%d", i), "Default")); code != http.StatusAccepted {
			t.Fatalf("before outage: %d %v", code, out)
		}
	}
	h.srv.Shutdown()
	during := addUserToGroup("during", "Default")
	code, out, hdr := h.post(during)
	if code != http.StatusServiceUnavailable || out["error"] != "unavailable" || hdr.Get("Retry-After") != "30" {
		t.Fatalf("during outage: got %d %v Retry-After=%q, want 503 with Retry-After 30", code, out, hdr.Get("Retry-After"))
	}
	if st := h.svc.Status(context.Background()); st.GetState() != iamflowv1.State_STATE_DEGRADED || st.GetLastError() == "" {
		t.Fatalf("status during outage = %v", st)
	}
	h.srv.Restart(h.t)
	// OCI retries the refused delivery; poll until the bus has reconnected.
	if err := testutil.Poll(20*time.Second, 0, func() error {
		if code, _, _ := h.post(during); code != http.StatusAccepted {
			return fmt.Errorf("still %d", code)
		}
		return nil
	}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	ids := map[string]int{}
	for _, m := range h.stored() {
		ids[m.Header.Get("Nats-Msg-Id")]++
	}
	for _, id := range []string{"before-0", "before-1", "before-2", "during"} {
		if ids[id] != 1 {
			t.Errorf("event %s stored %d times, want exactly once (stored: %v)", id, ids[id], ids)
		}
	}
	if st := h.svc.Status(context.Background()); st.GetState() != iamflowv1.State_STATE_RUNNING {
		t.Fatalf("state after recovery = %v", st.GetState())
	}
}

func TestSubscriptionConfirmation(t *testing.T) {
	var fetched atomic.Int32
	oci := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/confirm":
			fetched.Add(1)
			fmt.Fprint(w, `{"message":"confirmed"}`)
		case "/elsewhere":
			http.Redirect(w, r, "https://attacker.example/confirm", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer oci.Close()
	u, _ := url.Parse(oci.URL)
	h := newHarnessWith(t, func(c *Config) { c.Confirm.AllowedHosts = []string{u.Hostname()} }, Webhook{ConfirmClient: oci.Client()})
	confirm := func(target string) (int, map[string]any) {
		code, out, _ := h.post(`{"ConfirmationURL":"`+target+`"}`,
			"X-OCI-NS-MessageType", "SubscriptionConfirmation", "X-OCI-NS-ConfirmationURL", target,
			"X-OCI-NS-SubscriptionId", "ocid1.onssubscription.oc1..x")
		return code, out
	}
	if code, out := confirm(oci.URL + "/confirm?token=abc"); code != http.StatusOK || out["confirmation"] != "confirmed" || fetched.Load() != 1 {
		t.Fatalf("allowed host: %d %v fetched=%d", code, out, fetched.Load())
	}
	for _, target := range []string{
		"https://metadata.internal.example/latest",        // host not allowed
		"http://" + u.Host + "/confirm",                   // not https
		"https://" + u.Hostname() + ".attacker.example/c", // suffix trick
		"https://user:pw@" + u.Host + "/confirm",          // user info
	} {
		if code, out := confirm(target); code != http.StatusAccepted || out["confirmation"] != "pending" {
			t.Errorf("%s: %d %v, want 202 pending (logged for an operator)", target, code, out)
		}
	}
	if code, out := confirm(oci.URL + "/elsewhere"); code != http.StatusBadGateway || out["error"] != "confirmation_failed" ||
		!strings.Contains(out["message"].(string), "redirected to another host") {
		t.Errorf("redirect to another host: %d %v, want 502 refusing the redirect", code, out)
	}
	if fetched.Load() != 1 {
		t.Errorf("confirmation URL fetched %d times, want 1", fetched.Load())
	}
	if n := len(h.stored()); n != 0 {
		t.Fatalf("confirmations stored %d messages", n)
	}
}

func TestConfirmClientRefusesPrivateAddresses(t *testing.T) {
	local := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer local.Close()
	u, _ := url.Parse(local.URL + "/confirm")
	err := fetchConfirmation(context.Background(), sameHostRedirects(newConfirmClient(2*time.Second)), u)
	if err == nil || !strings.Contains(err.Error(), "non-public address") {
		t.Fatalf("fetch of a loopback URL: %v, want a refusal", err)
	}
}

// TestConfirmationFailureAnswerAndLog: a failed confirmation answers 502
// confirmation_failed with a reason that reveals no resolver or internal
// address, and the log names the URL without its user info.
func TestConfirmationFailureAnswerAndLog(t *testing.T) {
	var logs testutil.SyncBuffer
	h := newHarness(t, func(c *Config) { c.Confirm.AllowedHosts = []string{"*.notification.invalid"} },
		servicekit.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	post := func(target string) (int, map[string]any) {
		code, out, _ := h.post(`{"ConfirmationURL":"`+target+`"}`, "X-OCI-NS-MessageType", "SubscriptionConfirmation",
			"X-OCI-NS-ConfirmationURL", target)
		return code, out
	}
	code, out := post("https://cell1.notification.invalid/confirm?token=t")
	msg, _ := out["message"].(string)
	if code != http.StatusBadGateway || out["error"] != "confirmation_failed" || !strings.Contains(msg, "could not be resolved") {
		t.Fatalf("unresolvable host: %d %v, want 502 confirmation_failed", code, out)
	}
	if regexp.MustCompile(`\d+\.\d+\.\d+\.\d+|:53\b|\[[0-9a-f:]+\]`).MatchString(msg) {
		t.Errorf("the 502 reveals an address: %s", msg)
	}
	if code, out := post("https://iamflow:hunter2-secret@cell1.notification.invalid/c"); code != http.StatusAccepted || out["confirmation"] != "pending" {
		t.Fatalf("URL with user info: %d %v, want pending", code, out)
	}
	if strings.Contains(logs.String(), "hunter2-secret") || !strings.Contains(logs.String(), "REDACTED@cell1.notification.invalid") {
		t.Errorf("the log shows the URL's user info, or not the URL:\n%s", logs.String())
	}
}

// TestNamesAreStoredExactlyOrRefused: a name is stored as sent (non-ASCII
// and escaped pairs included) or the request is refused with 400; bytes
// that are not UTF-8 are never replaced with U+FFFD, which would change the
// name and the Nats-Msg-Id.
func TestNamesAreStoredExactlyOrRefused(t *testing.T) {
	h := newHarness(t, nil)
	user := func(id, name string) string {
		return `{"eventType":"com.oraclecloud.identitycontrolplane.createuser","cloudEventsVersion":"0.1","eventID":"` + id +
			`","data":{"additionalDetails":{"adminResourceId":"u1","adminResourceName":"` + name + `","adminResourceType":"User","domainName":"Default"}}}`
	}
	for _, tc := range []struct{ name, id, adminName string }{
		{"latin-1 byte in the name", "ev-latin1", "j\xe9r\xf4me"},
		{"latin-1 byte in the event id", "ev-\xff", "jane"},
		{"truncated UTF-8 sequence", "ev-trunc", "caf\xc3"},
		{"lone high surrogate escape", "ev-hi", `x\ud800y`},
		{"lone low surrogate escape", "ev-lo", `x\udc00`},
		{"high surrogate then a letter", "ev-hi2", `\ud83d\u0041`},
	} {
		code, out, _ := h.post(user(tc.id, tc.adminName))
		if msg, _ := out["message"].(string); code != http.StatusBadRequest || out["error"] != "malformed_json" ||
			!(strings.Contains(msg, "not valid UTF-8") || strings.Contains(msg, "surrogate")) {
			t.Errorf("%s: %d %v, want 400 saying what is wrong", tc.name, code, out)
		}
	}
	if n := len(h.stored()); n != 0 {
		t.Fatalf("refused requests stored %d messages", n)
	}
	// Valid UTF-8, escaped or not, is stored exactly.
	for i, tc := range []struct{ sent, stored string }{
		{"Jérôme Ĳsselmeer 😀", "Jérôme Ĳsselmeer 😀"},
		{`J\u00e9r\u00f4me \ud83d\ude00`, "Jérôme 😀"},
		{`back\\ud800slash`, `back\ud800slash`}, // an escaped backslash, not a surrogate
	} {
		id := fmt.Sprintf("ev-ok-%d", i)
		if code, out, _ := h.post(user(id, tc.sent)); code != http.StatusAccepted || out["published"] != 1.0 {
			t.Fatalf("%q: %d %v", tc.sent, code, out)
		}
		msgs := h.stored()
		e, err := event.Unmarshal(msgs[len(msgs)-1].Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.GetResource().GetName() != tc.stored || msgs[len(msgs)-1].Header.Get("Nats-Msg-Id") != id {
			t.Errorf("%q stored as %q (id %q), want %q", tc.sent, e.GetResource().GetName(), msgs[len(msgs)-1].Header.Get("Nats-Msg-Id"), tc.stored)
		}
	}
}

// TestAnswersHaveOneShape: a 202 to events carries every count, zeros
// included; a confirmation answer carries only the confirmation.
func TestAnswersHaveOneShape(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Confirm.Auto = false })
	req, _ := http.NewRequest(http.MethodPost, h.url(), strings.NewReader(addUserToGroup("ev-shape", "Default")))
	req.SetBasicAuth("iamflow", testPassword)
	_, b, _ := doRaw(t, req)
	if got := strings.TrimSpace(string(b)); got != `{"published":1,"duplicates":0,"unknown_type":0,"unknown_domain":0}` {
		t.Errorf("202 body = %s", got)
	}
	req, _ = http.NewRequest(http.MethodPost, h.url(), strings.NewReader(`{"ConfirmationURL":"https://cell1.notification.oraclecloud.com/c?token=t"}`))
	req.SetBasicAuth("iamflow", testPassword)
	req.Header.Set("X-OCI-NS-MessageType", "SubscriptionConfirmation")
	code, b, _ := doRaw(t, req)
	if got := strings.TrimSpace(string(b)); code != http.StatusAccepted || got != `{"confirmation":"pending"}` {
		t.Errorf("confirmation answer = %d %s", code, got)
	}
}

// TestWeakPasswordIsRefused: a webhook password anyone could guess stops
// the service at start, saying how to make a better one.
func TestWeakPasswordIsRefused(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	cfg := DefaultConfig()
	cfg.Password = "env:IAMFLOW_TEST_WEAK_WEBHOOK_PASSWORD"
	t.Setenv("IAMFLOW_TEST_WEAK_WEBHOOK_PASSWORD", "iamflow")
	_, err := New(context.Background(), cfg, b, Webhook{})
	if err == nil || !strings.Contains(err.Error(), "ingest.password: too weak") || !strings.Contains(err.Error(), "openssl rand") {
		t.Fatalf("New with a 7-character password = %v, want too weak and how to generate one", err)
	}
	if _, err := New(context.Background(), cfg, b, Webhook{Password: secret.NewValue("pw")}); err == nil {
		t.Fatal("New accepted a 2-character password given directly")
	}
}

// TestWebhookServesTLSFromFiles: with ingest.tls the webhook speaks HTTPS
// with the certificate in the files, and serves a renewed one without a
// restart.
func TestWebhookServesTLSFromFiles(t *testing.T) {
	ca := tlstest.NewCA(t, "webhook")
	cert := ca.Issue(t, "ingest", "127.0.0.1")
	b := bustest.RunServer(t).Open(t)
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS = TLSConfig{CertFile: cert.CertFile, KeyFile: cert.KeyFile}
	svc, err := New(context.Background(), cfg, b, Webhook{Password: secret.NewValue(testPassword), Domains: []Domain{{Name: "hub", OCIName: "Default"}}})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, svc.Run)
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if svc.Addr() == nil {
			return fmt.Errorf("not listening yet")
		}
		return nil
	})
	roots, err := tlsfiles.LoadCAs(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	post := func() (int, *big.Int) {
		req, _ := http.NewRequest(http.MethodPost, "https://"+svc.Addr().String()+"/v1/events", strings.NewReader(addUserToGroup(fmt.Sprintf("ev-tls-%d", time.Now().UnixNano()), "Default")))
		req.SetBasicAuth("iamflow", testPassword)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber
	}
	if code, serial := post(); code != http.StatusAccepted || serial.Cmp(cert.Serial) != 0 {
		t.Fatalf("HTTPS post: %d, certificate %s", code, serial)
	}
	renewed := ca.Issue(t, "ingest", "127.0.0.1")
	client.CloseIdleConnections()
	testutil.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		client.CloseIdleConnections()
		if _, serial := post(); serial.Cmp(renewed.Serial) != 0 {
			return fmt.Errorf("still serving %s", serial)
		}
		return nil
	})
}

// TestPublishOutlivesTheSender checks that a publish, once started, is not
// cut short by the sender's connection: an event whose sender has gone
// away is stored all the same, and the sender's retry is a duplicate.
func TestPublishOutlivesTheSender(t *testing.T) {
	h := newHarness(t, nil)
	req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(addUserToGroup("ev-gone", "Default")))
	req.SetBasicAuth("iamflow", testPassword)
	ctx, cancel := context.WithCancel(req.Context())
	cancel() // the sender hung up before the publish
	rec := httptest.NewRecorder()
	h.svc.Handler().ServeHTTP(rec, req.WithContext(ctx))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d (%s), want 202: the event is stored", rec.Code, rec.Body)
	}
	if n := len(h.stored()); n != 1 {
		t.Fatalf("stored %d messages, want 1", n)
	}
	if code, body, _ := h.post(addUserToGroup("ev-gone", "Default")); code != http.StatusAccepted || body["duplicates"] != 1.0 {
		t.Errorf("the retry: %d %v, want 202 with one duplicate", code, body)
	}
}
