package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzVerify feeds arbitrary tokens to a verifier whose keys are already
// cached (no network): it must refuse with an *Error, never panic, and
// never accept a token it was not given the key's signature for.
func FuzzVerify(f *testing.F) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "K"})
	pl, _ := json.Marshal(map[string]any{"iss": DefaultIssuer, "aud": "cli", "exp": 4102444800, "sub": "a"})
	f.Add(enc.EncodeToString(hdr) + "." + enc.EncodeToString(pl) + ".c2ln")
	f.Add(enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(pl) + ".")
	f.Add("a.b.c")
	f.Add("..")
	f.Add(enc.EncodeToString([]byte(`{"alg":"RS256","kid":"K","crit":["x"]}`)) + ".e30.AAAA")
	v, err := NewVerifier(Config{Domain: "d", ClientID: "cli"}, "http://127.0.0.1:1")
	if err != nil {
		f.Fatal(err)
	}
	v.keys.keys = map[string]jose.JSONWebKey{"K": {Key: &priv.PublicKey, KeyID: "K", Algorithm: "RS256"}}
	v.keys.fetched = time.Now()
	v.keys.unknownFetch = time.Now() // unknown kids answer from the cache
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := v.Verify(context.Background(), raw)
		if err == nil {
			t.Fatalf("accepted a token nobody signed: %+v", tok)
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error %T %v is not an *Error", err, err)
		}
	})
}

// FuzzParseJWKS: any body is a JWKS of public signing keys or an error.
func FuzzParseJWKS(f *testing.F) {
	n := enc(big.NewInt(0).Lsh(big.NewInt(1), 2047).Bytes())
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"K","use":"sig","alg":"RS256","n":"` + n + `","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"H","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"E","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseJWKS(body)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for kid, k := range keys {
			if kid == "" || !k.IsPublic() {
				t.Fatalf("kept key %q public=%v", kid, k.IsPublic())
			}
			if _, ok := k.Key.([]byte); ok {
				t.Fatal("kept a symmetric key")
			}
		}
	})
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
