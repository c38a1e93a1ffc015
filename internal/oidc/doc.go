// Package oidc tells who is calling: it verifies the OpenID Connect tokens
// an Identity Domain issues to people (the "login" domain), reads the
// caller's groups from that domain, and runs the authorization code flow
// with PKCE for the CLI and the console.
//
// # Verifying a token
//
// Verifier.Verify accepts an access token or an ID token (both are RS256
// JWTs from the domain, docs/oci-sources.md §7) when:
//   - it is a compact JWS whose header names an allowed algorithm (RS256 by
//     default; ES256 may be allowed; "none" and every HMAC algorithm are
//     always refused) and a kid;
//   - the kid is a key of the domain's JWKS (/admin/v1/SigningCert/jwk),
//     fetched on first use, cached, fetched again when it is older than
//     Config.JWKSMaxAge and when a token names a kid the cache lacks (at
//     most once per Config.JWKSMinRefresh, so a flood of forged kids cannot
//     hammer the domain);
//   - the signature verifies with that key;
//   - iss is Config.Issuer. Every OCI domain uses the same issuer, so the
//     issuer does not tell domains apart: the key does (another domain's
//     token fails the signature check), and so does the tenant claim when
//     Config.Tenant is set;
//   - aud holds one of Config.Audience (the client id by default, which is
//     an ID token's aud; add the application's primary audience to accept
//     its access tokens);
//   - exp is in the future and nbf and iat are not, each within
//     Config.ClockSkew;
//   - it speaks for a person: sub_type, when present, is "user".
//
// Each refusal is an *Error with a stable Code and a message that says
// what was wrong (the expiry time, the audience found and the ones
// accepted, the kid not found). No error and no log line carries the
// token, its signature or any secret.
//
// # Groups come from a read, not from a claim
//
// Authenticator.Authenticate verifies the token, then reads the user from
// the domain (GET /admin/v1/Users/{user_id}?attributes=groups,...) and
// caches the answer for Config.GroupsCacheTTL (30 s by default). Tokens can
// carry groups only when the application is set up to add them, and they
// then hold the groups of the moment of login for the token's whole life
// (an hour by default): a person removed from an approver group, or
// whose temporary membership ended, would keep acting on it until the
// token expired. A read costs one SCIM call per person per TTL and ends
// that window; it also refuses a user deactivated since login.
package oidc
