// Package identitydomain is the one client through which iamflow talks to an
// OCI IAM Identity Domain: users, groups, memberships and user capabilities
// over the SCIM API (/admin/v1), with the domain's OAuth token endpoint.
//
// It is built on the oci-go-sdk identitydomains client (its models, paths and
// query encoding) with the SDK's signer, retry policy and circuit breaker
// replaced by the client's own:
//
//   - auth.go: OAuth client credentials, the resource-principal token
//     exchange or a static token; cached, renewed ahead of expiry, one
//     renewal at a time, and renewed once on a 401;
//   - ratelimit.go: per-domain token buckets for the "others" and "token" API
//     groups, per second and per minute, from the domain's tier;
//   - retry.go: 429, 5xx and network errors retried with full-jitter backoff
//     and Retry-After; creates are retried only where that cannot duplicate;
//   - breaker.go: a circuit breaker per domain;
//   - errors.go: *Error with a Kind, sentinels for errors.Is, Retryable and
//     RetryAfter;
//   - metrics.go and a span per call for observability;
//   - list.go, paging.go, members.go: paging as Go iterators (users, groups,
//     members beyond 10,000), every page checked against the paging
//     invariants; a read that breaks them is read another way or fails with
//     KindInconsistentRead, never comes back short;
//   - discovery.go: Capabilities from /ServiceProviderConfig, /ResourceTypes
//     and /Schemas, refreshed every discovery_interval.
//
// The client also talks to SCIM 2.0 servers other than identity domains:
// Config.SCIMPath moves the SDK's /admin/v1 paths under the server's base
// path (docs/scim-compatibility.md says what such a server must offer).
//
// Values placed in SCIM filters go through Quote (or Eq). Secrets (the
// client secret, tokens) are resolved once and never logged or put in errors.
package identitydomain
