package token

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/iamflow/iamflow/internal/secret"
)

// Parse reads a token endpoint's answer (RFC 6749 §5.1): the bearer token
// and its lifetime. An answer that is not JSON, has no access_token or is of
// a token_type other than Bearer is an error saying so; the error never
// holds the token.
func Parse(body []byte) (Fetched, error) {
	var r response
	if err := json.Unmarshal(body, &r); err != nil || r.AccessToken == "" {
		return Fetched{}, errors.New("the token endpoint's answer has no access_token")
	}
	if !r.Bearer() {
		return Fetched{}, fmt.Errorf("the token endpoint answered token_type %.40q, want Bearer", r.TokenType)
	}
	return Fetched{Value: secret.NewValue(r.AccessToken), TTL: r.TTL()}, nil
}
