package identitydomain

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseRetryAfter: whatever a server sends, the delay is within [0, maxRetryAfter].
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "1", "120", "-5", "99999999999999999999", "9223372036854775807",
		"Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Nov 2094 08:49:37 GMT", "soon", " 30 "} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now)
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, false: a rejected header must give 0", v, d)
		}
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [0, %v]", v, d, maxRetryAfter)
		}
	})
}

// FuzzErrorFromResponse: any error body an Identity Domain (or a proxy in
// front of it) returns becomes a typed error with a bounded, non-empty detail.
func FuzzErrorFromResponse(f *testing.F) {
	f.Add(400, []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Missing required attribute(s)","status":"400","urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error":{"messageId":"error.common.validation.missingReqAttributes"}}`))
	f.Add(401, []byte(`{"error":"invalid_client","error_description":"Client authentication failed."}`))
	f.Add(503, []byte(`<html>Service Unavailable</html>`))
	f.Add(429, []byte(`{"status":429,"scimType":["x"]}`))
	f.Add(404, []byte(strings.Repeat("x", 5000)))
	f.Add(599, []byte{})
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := errorFromResponse("GetUser", "hub", status, http.Header{}, body)
		if e.Kind == "" || e.Op != "GetUser" || e.Domain != "hub" {
			t.Fatalf("untyped error %+v", e)
		}
		if e.Detail == "" && http.StatusText(status) != "" {
			t.Fatalf("no detail for status %d body %q", status, body)
		}
		_ = e.Error()
	})
}

// FuzzDiscovery: whatever a server answers to /ServiceProviderConfig and
// /ResourceTypes, and whatever path is asked about, reading them does not
// panic, and limits are never negative.
func FuzzDiscovery(f *testing.F) {
	f.Add([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"Resources":[{"patch":{"supported":true},"filter":{"supported":true,"maxResults":1000},"bulk":{"supported":true,"maxOperations":-5}}]}`), "name.givenName")
	f.Add([]byte(`{"etag":{"supported":true}}`), `emails[type eq "work"].value`)
	f.Add([]byte(`[{"name":"User","schema":"urn:x"}]`), "urn:x:a.b")
	f.Add([]byte(`{"Resources":[1,2]}`), "[[]")
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		caps, ok := parseServiceProviderConfig(body, time.Time{})
		if ok && (caps.FilterMaxResults < 0 || caps.Bulk.MaxOperations < 0 || caps.Bulk.MaxPayloadSize < 0) {
			t.Fatalf("negative limits: %+v", caps)
		}
		_, _ = listOf(body)
		d := &declared{schemas: []string{"urn:x", "urn:x:y"}, paths: map[string]bool{"a": true, "urn:x:y:b": false}}
		caps.Discovered, caps.attrs = true, map[string]*declared{"user": d}
		_ = caps.Declares("User", path)
		_ = stripValueFilters(path)
	})
}
