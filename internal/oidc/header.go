package oidc

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// maxTokenLen bounds what Verify reads: IDCS tokens are a few KB; a token
// of 16 KB is not one.
const maxTokenLen = 16 << 10

// header is what Verify needs of a JWS header before it picks a key.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
	// unsigned: the signature part is empty.
	unsigned bool
}

// parseHeader splits a compact JWS and decodes its header. It checks the
// shape only (an empty signature is reported after the algorithm, so that
// alg none is refused as such); the signature is checked later with the
// key.
func parseHeader(raw string) (header, error) {
	if raw == "" {
		return header{}, refuse(CodeMalformed, "the token is empty")
	}
	if len(raw) > maxTokenLen {
		return header{}, refuse(CodeMalformed, "the token is %d bytes long, more than the %d a login token may be", len(raw), maxTokenLen)
	}
	parts := strings.Split(raw, ".")
	switch {
	case len(parts) == 5:
		return header{}, refuse(CodeMalformed, "the token is encrypted (JWE); a login token is a signed JWT")
	case len(parts) != 3:
		return header{}, refuse(CodeMalformed, "the token is not a JWT (want header.payload.signature, found %d parts)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return header{}, &Error{Code: CodeMalformed, Message: "the token's header is not base64url", Err: err}
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return header{}, &Error{Code: CodeMalformed, Message: "the token's header is not a JSON object", Err: err}
	}
	h.unsigned = parts[2] == ""
	return h, nil
}
