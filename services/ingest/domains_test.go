package ingest

import (
	"testing"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// TestDomainMatchedByURL: a domain is recognised by its URL's host and port,
// with the scheme's default port optional, so two domains on one host (the
// emulators of the local stack) are never confused.
func TestDomainMatchedByURL(t *testing.T) {
	ix := newDomainIndex([]Domain{
		{Name: "hub", URL: "https://idcs-abc.identity.oraclecloud.com"},
		{Name: "src", URL: "http://127.0.0.1:9001"},
		{Name: "tgt", URL: "http://127.0.0.1:9002/"},
	})
	for _, tc := range []struct {
		url, want string
	}{
		{"https://idcs-abc.identity.oraclecloud.com/", "hub"},
		{"https://IDCS-ABC.identity.oraclecloud.com:443", "hub"},
		{"https://idcs-abc.identity.oraclecloud.com:443/admin/v1/Groups", "hub"},
		{"http://127.0.0.1:9001", "src"},
		{"http://127.0.0.1:9002/admin/v1/Users", "tgt"},
		{"http://127.0.0.1:9003", ""},
		{"http://127.0.0.1", ""},
		{"https://idcs-abc.identity.oraclecloud.com:8443", ""},
		{"::not a url", ""},
	} {
		got, ok := ix.resolve(&iamflowv1.IdentityEvent{OciDomainUrl: tc.url})
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("resolve(%q) = %q, %v; want %q", tc.url, got, ok, tc.want)
		}
	}
}
