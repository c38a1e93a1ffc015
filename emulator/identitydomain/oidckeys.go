package identitydomain

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is the SHA-1 thumbprint by definition (RFC 7517 §4.8)
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"sync"
	"time"
)

// Signing keys (docs/oci-sources.md §7): a domain signs its JWTs with RS256 and publishes
// the public keys as a JWKS at /admin/v1/SigningCert/jwk, at most ten keys at
// a time. IDCS names its key "SIGNING_KEY" and sends x5t, the SHA-1
// thumbprint of the key's certificate, beside kid; the emulator does the
// same, with a self-signed certificate per key, and names the keys of later
// rotations SIGNING_KEY_2, SIGNING_KEY_3, ...
//
// Keys are made on first use (RSA key generation takes tens of
// milliseconds), so domains that never sign a token never pay for it.

// maxPublishedKeys is how many keys the JWKS holds at most (docs/oci-sources.md §7).
const maxPublishedKeys = 10

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
	cert []byte // DER, self-signed
	x5t  string
}

// keyRing holds the domain's signing keys, newest first; the newest signs.
type keyRing struct {
	mu   sync.Mutex
	keys []*signingKey
	gen  int
	name string // the domain's DomainID, the certificates' subject
	now  func() time.Time
}

func newKeyRing(name string, now func() time.Time) *keyRing {
	return &keyRing{name: name, now: now}
}

// current returns the signing key, making the first one if needed.
func (k *keyRing) current() (*signingKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 {
		if _, err := k.addLocked(); err != nil {
			return nil, err
		}
	}
	return k.keys[0], nil
}

// published returns the keys the JWKS serves, newest first.
func (k *keyRing) published() ([]*signingKey, error) {
	if _, err := k.current(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*signingKey(nil), k.keys...), nil
}

// rotate makes a new signing key. The previous keys stay published (tokens
// they signed still verify) unless dropOld, and the oldest beyond ten are
// dropped.
func (k *keyRing) rotate(dropOld bool) (*signingKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.addLocked()
	if err != nil {
		return nil, err
	}
	if dropOld {
		k.keys = k.keys[:1]
	}
	return key, nil
}

func (k *keyRing) addLocked() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("identitydomain: generate signing key: %w", err)
	}
	k.gen++
	kid := "SIGNING_KEY"
	if k.gen > 1 {
		kid += "_" + strconv.Itoa(k.gen)
	}
	now := k.now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(k.gen)),
		Subject:      pkix.Name{CommonName: "SIGNING_KEY", Organization: []string{k.name}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("identitydomain: signing certificate: %w", err)
	}
	sum := sha1.Sum(der) //nolint:gosec // see the import
	key := &signingKey{kid: kid, priv: priv, cert: der, x5t: base64.RawURLEncoding.EncodeToString(sum[:])}
	k.keys = append([]*signingKey{key}, k.keys...)
	if len(k.keys) > maxPublishedKeys {
		k.keys = k.keys[:maxPublishedKeys]
	}
	return key, nil
}

// jwk is one key of the JWKS.
type jwk struct {
	Kty string   `json:"kty"`
	Use string   `json:"use"`
	Alg string   `json:"alg"`
	Kid string   `json:"kid"`
	X5t string   `json:"x5t"`
	X5c []string `json:"x5c"`
	N   string   `json:"n"`
	E   string   `json:"e"`
}

func (s *signingKey) jwk() jwk {
	pub := s.priv.PublicKey
	return jwk{
		Kty: "RSA", Use: "sig", Alg: "RS256", Kid: s.kid, X5t: s.x5t,
		X5c: []string{base64.StdEncoding.EncodeToString(s.cert)},
		N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// sign returns the compact JWS (RS256) of claims.
func (s *signingKey) sign(claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": s.kid, "x5t": s.x5t})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("identitydomain: encode token claims: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.priv, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("identitydomain: sign token: %w", err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// SigningKey is one published signing key, as RotateSigningKey reports it.
type SigningKey struct {
	// KeyID is the JWKS kid (and the JWT header's kid).
	KeyID string `json:"kid"`
	// Thumbprint is x5t, the certificate's SHA-1 thumbprint.
	Thumbprint string `json:"x5t"`
}

// RotateSigningKey makes a new key the one that signs every token from now
// on and publishes it in the JWKS. The previous keys stay published, so
// tokens they signed still verify, unless dropOld, which unpublishes them
// (as a domain does once a rotation is complete). It returns the keys now
// published, the signing key first. POST /_emulator/keys/rotate does the
// same over HTTP.
func (d *Domain) RotateSigningKey(dropOld bool) ([]SigningKey, error) {
	if _, err := d.keys.rotate(dropOld); err != nil {
		return nil, err
	}
	return d.SigningKeys()
}

// SigningKeys returns the published signing keys, the signing key first.
func (d *Domain) SigningKeys() ([]SigningKey, error) {
	keys, err := d.keys.published()
	if err != nil {
		return nil, err
	}
	out := make([]SigningKey, len(keys))
	for i, k := range keys {
		out[i] = SigningKey{KeyID: k.kid, Thumbprint: k.x5t}
	}
	return out, nil
}

// SignToken signs claims with the domain's current key, as the domain signs
// the tokens it issues. Tests use it to make tokens the domain never
// issued (another audience, an expired one) that still carry its signature.
func (d *Domain) SignToken(claims map[string]any) (string, error) {
	k, err := d.keys.current()
	if err != nil {
		return "", err
	}
	return k.sign(claims)
}
