// Package capabilities enforces a least-privilege capability policy on the
// users of OCI IAM Identity Domains. OCI lets a new, federated or
// just-in-time provisioned user hold every kind of credential (API keys,
// auth tokens, console password, SMTP credentials, customer secret keys,
// OAuth 2.0 client credentials, DB credentials); the only way to change that
// is PUT /admin/v1/UserCapabilitiesChanger/{id}, per user. This service
// makes the configured policy (Config) hold:
//
//   - on events: user.created (createuser, createfederateduser: the JIT
//     path), user.updated, user.activated, user.capabilities_changed (a
//     capability turned back on by hand is drift: it is reverted and
//     audited), and membership changes when a rule matches on groups;
//   - on sweeps, scheduled (sweep.interval, sweep.on_start) or asked for
//     through the admin API, over every user of a domain, so users that
//     existed before iamflow are covered too;
//   - on demand for one user through the admin API (Preview, Apply).
//
// Every reconcile is level-triggered: it reads the user's current flags
// (and groups when a rule needs them), computes the desired flags, and
// writes only when they differ: one PUT carrying the policy's flags and,
// for flags the policy does not manage, the values just read, so the outcome
// does not depend on how the domain treats flags left out of a PUT. A
// compliant user costs one read; the
// updateusercapabilities event iamflow's own write causes finds the user
// compliant and writes nothing, so there is no loop. Every change (and
// every drift found) is recorded in IAM_AUDIT; what cannot be done goes to
// IAM_DLQ with the reason.
package capabilities
