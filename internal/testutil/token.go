package testutil

import (
	"net/http"
	"strings"
	"testing"
)

// ClientCredentialsToken gets an access token for the OAuth client id and
// secret from the token endpoint of the identity domain at domainURL (an
// emulated one in tests), with the scope iamflow asks for.
func ClientCredentialsToken(t testing.TB, domainURL, id, secret string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, domainURL+"/oauth2/v1/token",
		strings.NewReader("grant_type=client_credentials&scope=urn:opc:idm:__myscopes__"))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(id, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code, err := DoJSON(req, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token from %s: %d %v", domainURL, code, err)
	}
	return tok.AccessToken
}
