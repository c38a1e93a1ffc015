package scimserver

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestErrors answers every error with the status, the scimType and a SCIM
// error body that says what was wrong.
func TestErrors(t *testing.T) {
	h := newHarness(t, WithMaxBodyBytes(4096))
	ann := h.must(http.StatusCreated, "POST", "/Users", user("ann@example.com"))["id"].(string)
	bob := h.must(http.StatusCreated, "POST", "/Users", user("bob@example.com"))["id"].(string)
	grp := h.must(http.StatusCreated, "POST", "/Groups", group("Admins", ann))["id"].(string)
	h.must(http.StatusCreated, "POST", "/Groups", group("Ops"))

	tests := []struct {
		name         string
		method, path string
		body         any
		hdr          []string
		status       int
		scimType     string
		detail       string
	}{
		{"duplicate userName, other case", "POST", "/Users", user("ANN@example.com"), nil, 409, "uniqueness", "already taken"},
		{"duplicate displayName", "POST", "/Groups", group("admins"), nil, 409, "uniqueness", "already taken"},
		{"rename onto a taken userName", "PATCH", "/Users/" + bob, patchOps(map[string]any{"op": "replace", "path": "userName", "value": "ann@example.com"}), nil, 409, "uniqueness", "ann@example.com"},
		{"group rename onto a taken name", "PUT", "/Groups/" + grp, group("Ops"), nil, 409, "uniqueness", "Ops"},
		{"unknown user", "GET", "/Users/nope", nil, nil, 404, "", "User nope not found"},
		{"patch unknown group", "PATCH", "/Groups/nope", patchOps(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": ann}}}), nil, 404, "", "not found"},
		{"delete unknown", "DELETE", "/Groups/nope", nil, nil, 404, "", "not found"},
		{"unknown endpoint", "GET", "/Devices", nil, nil, 404, "", "not a SCIM endpoint"},
		{"bulk", "POST", "/Bulk", "{}", nil, 501, "", "not supported"},
		{"stale If-Match on PUT", "PUT", "/Users/" + ann, user("ann@example.com"), []string{"If-Match", `W/"7"`}, 412, "", "version"},
		{"stale If-Match on PATCH", "PATCH", "/Groups/" + grp, patchOps(map[string]any{"op": "replace", "path": "displayName", "value": "x"}), []string{"If-Match", `W/"7"`}, 412, "", "version"},
		{"stale If-Match on DELETE", "DELETE", "/Users/" + bob, nil, []string{"If-Match", `"3"`}, 412, "", "version"},
		{"body too large", "POST", "/Users", user("big@example.com", "title", strings.Repeat("x", 5000)), nil, 413, "", "4096-byte limit"},
		{"not JSON", "POST", "/Users", "{not json", nil, 400, "invalidSyntax", "not JSON"},
		{"wrong JSON shape", "PATCH", "/Users/" + ann, `{"Operations":"replace"}`, nil, 400, "invalidSyntax", "Operations"},
		{"no userName", "POST", "/Users", map[string]any{"schemas": []string{SchemaUser}, "displayName": "x"}, nil, 400, "invalidValue", "userName is required"},
		{"wrong schema", "POST", "/Users", map[string]any{"schemas": []string{SchemaGroup}, "userName": "x"}, nil, 400, "invalidValue", "schemas must include"},
		{"not a boolean", "POST", "/Users", user("c@example.com", "active", "maybe"), nil, 400, "invalidValue", `active must be a boolean (true or false), not "maybe"`},
		{"complex as a string", "POST", "/Users", user("d@example.com", "name", "Dee"), nil, 400, "invalidValue", "name must be an object"},
		{"unknown member", "PATCH", "/Groups/" + grp, patchOps(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": "ghost"}}}), nil, 400, "invalidValue", `member "ghost" is not a user`},
		{"nested group", "POST", "/Groups", map[string]any{"displayName": "N", "members": []any{map[string]any{"value": grp, "type": "Group"}}}, nil, 400, "invalidValue", "only users"},
		{"bad filter", "GET", "/Users?filter=" + url.QueryEscape(`userName eq`), nil, nil, 400, "invalidFilter", "expected a value"},
		{"filter that cannot be evaluated", "GET", "/Users?filter=" + url.QueryEscape(`active gt 3`), nil, nil, 400, "invalidFilter", "cannot be applied to a boolean"},
		{"bad count", "GET", "/Users?count=ten", nil, nil, 400, "invalidValue", "count"},
		{"bad attributes", "GET", "/Users?attributes=" + url.QueryEscape("emails[x"), nil, nil, 400, "invalidValue", "attributes"},
		{"bad path", "PATCH", "/Users/" + ann, patchOps(map[string]any{"op": "replace", "path": `emails[type eq "work"`, "value": "x"}), nil, 400, "invalidPath", `path "emails[type eq \"work\""`},
		{"remove without path", "PATCH", "/Users/" + ann, patchOps(map[string]any{"op": "remove"}), nil, 400, "noTarget", "remove needs a path"},
		{"replace through a filter matching nothing", "PATCH", "/Users/" + ann, patchOps(map[string]any{"op": "replace", "path": `emails[type eq "home"]`, "value": map[string]any{"value": "x"}}), nil, 400, "noTarget", "no value of emails"},
		{"unknown op", "PATCH", "/Users/" + ann, patchOps(map[string]any{"op": "move", "path": "title", "value": "x"}), nil, 400, "invalidSyntax", `op "move"`},
		{"change id", "PATCH", "/Users/" + ann, patchOps(map[string]any{"op": "replace", "path": "id", "value": "x"}), nil, 400, "mutability", "id is read-only"},
		{"change id without path", "PATCH", "/Users/" + ann, patchOps(map[string]any{"op": "replace", "value": map[string]any{"id": "x"}}), nil, 400, "mutability", "id is read-only"},
		{"set a user's groups", "PATCH", "/Users/" + ann, patchOps(map[string]any{"op": "add", "path": "groups", "value": []any{map[string]any{"value": grp}}}), nil, 400, "mutability", "groups is read-only"},
		{"PUT with another id", "PUT", "/Users/" + ann, user("ann@example.com", "id", bob), nil, 400, "mutability", "is not the resource's id"},
		{"no operations", "PATCH", "/Users/" + ann, patchOps(), nil, 400, "invalidValue", "at least one operation"},
		{"form body", "POST", "/Users", "userName=x", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "", "not JSON"},
		{"method", "DELETE", "/Users", nil, nil, 405, "", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.do(tt.method, tt.path, tt.body, tt.hdr...)
			checkError(t, resp, body, tt.status, tt.scimType, tt.detail)
		})
	}
	// Nothing above changed anything: three users' and groups' creations only.
	if n := len(h.events()); n != 5 { // 2 users, Admins + its member, Ops
		t.Fatalf("%d events after refused requests, want 5", n)
	}
}

func checkError(t *testing.T, resp *http.Response, body map[string]any, status int, scimType, detail string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %v", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != contentType {
		t.Errorf("Content-Type %q", ct)
	}
	schemas, _ := body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != SchemaError || body["status"] != itoa(status) {
		t.Errorf("not a SCIM error body: %v", body)
	}
	if got, _ := body["scimType"].(string); got != scimType {
		t.Errorf("scimType %q, want %q (%v)", got, scimType, body["detail"])
	}
	if d, _ := body["detail"].(string); !strings.Contains(d, detail) {
		t.Errorf("detail %q does not say %q", d, detail)
	}
}

func TestUnauthorized(t *testing.T) {
	h := newHarness(t)
	for _, auth := range []string{"", "Bearer wrong-token", "Basic " + testToken, "Bearer"} {
		req, _ := http.NewRequest("GET", h.base+"/Users", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(string(b), `"status":"401"`) {
			t.Errorf("Authorization %q: %d %s", auth, resp.StatusCode, b)
		}
		if strings.Contains(string(b), testToken) {
			t.Errorf("the answer names the token: %s", b)
		}
	}
}

// TestTooManyInFlight: beyond the in-flight bound a request gets 429 with
// Retry-After; below it, none does.
func TestTooManyInFlight(t *testing.T) {
	h := newHarness(t, WithMaxInFlight(1), WithRetryAfter(7*time.Second))
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", h.base+"/Users", pr)
	req.Header.Set("Authorization", "Bearer "+testToken)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- nil
			return
		}
		done <- resp
	}()
	// The first request holds the only slot while its body is read.
	if _, err := pw.Write([]byte(`{"userName":`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var resp *http.Response
	var body map[string]any
	for {
		resp, body = h.do("GET", "/Users", nil)
		if resp.StatusCode == 429 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling until the first request is in
	}
	checkError(t, resp, body, 429, "", "already in progress")
	if resp.Header.Get("Retry-After") != "7" {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	_, _ = pw.Write([]byte(`"held@example.com"}`))
	pw.Close()
	if r := <-done; r == nil || r.StatusCode != 201 {
		t.Fatalf("the held request: %v", r)
	}
	h.must(http.StatusOK, "GET", "/Users", nil)
}

// TestPublishLostIsRepublished: a change stored whose events JetStream did
// not take is answered 503; the IdP's retry of the same request publishes
// them, once.
func TestPublishLostIsRepublished(t *testing.T) {
	h := newHarness(t, WithRetryAfter(2*time.Second))
	id := h.must(http.StatusCreated, "POST", "/Users", user("ann@example.com"))["id"].(string)
	var fail atomic.Bool
	h.srv.publishFault = func() error {
		if fail.Load() {
			return errors.New("JetStream unavailable")
		}
		return nil
	}
	fail.Store(true)
	deactivate := patchOps(map[string]any{"op": "replace", "value": map[string]any{"active": false}})
	resp, body := h.do("PATCH", "/Users/"+id, deactivate)
	checkError(t, resp, body, 503, "", "retry later")
	if resp.Header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if got := types(h.events()); len(got) != 1 {
		t.Fatalf("events while JetStream refused: %v", got)
	}
	fail.Store(false)
	h.must(http.StatusOK, "PATCH", "/Users/"+id, deactivate) // the IdP's retry
	h.must(http.StatusOK, "PATCH", "/Users/"+id, deactivate) // and once more
	got := types(h.events())
	if len(got) != 2 || got[1] != "user.deactivated ann@example.com" {
		t.Fatalf("events = %v", got)
	}
}

// TestRequestsCountedByStatus checks iamflow_scim_requests_total's status
// label: the code the handler wrote, 200 where it wrote a body without one.
func TestRequestsCountedByStatus(t *testing.T) {
	h := newHarness(t)
	resp, _ := h.do(http.MethodPost, "/Users", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "counted@example.com"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	if resp, _ = h.do(http.MethodGet, "/Users", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d", resp.StatusCode)
	}
	if resp, _ = h.do(http.MethodGet, "/Users/no-such-user", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("get a missing user: %d", resp.StatusCode)
	}
	for _, c := range []struct{ method, code string }{{"POST", "201"}, {"GET", "200"}, {"GET", "404"}} {
		var m dto.Metric
		if err := h.srv.metrics.requests.WithLabelValues("idp", c.method, c.code).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != 1 {
			t.Errorf("%s answered %s counted %v times, want 1", c.method, c.code, got)
		}
	}
}
