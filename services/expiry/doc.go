// Package expiry makes temporary group memberships revoke themselves on
// time. A grant adds a user to a temporary group (Config.Groups) until a
// deadline; at the deadline iamflow removes the membership in the OCI
// identity domain itself, instead of waiting for the IdP and a SCIM cycle.
//
// # Durability
//
// Grants live in the JetStream KV bucket IAM_EXPIRY_GRANTS. Each deadline is
// a JetStream message schedule (Nats-Schedule: @at <RFC3339>) in the stream
// IAM_EXPIRY (AllowMsgSchedules, nats-server 2.12+), whose target
// iam.expiry.due.<grant id> is consumed by the durable consumer
// "<durable>-due": the timer survives restarts of the service and of the
// server, and a second replica shares the consumer rather than doubling it.
// Every replica also scans the grants every ScanInterval, a safety net: it
// re-publishes a due message for a grant whose revocation failed, and for
// one whose timer has not fired within timerGrace of its deadline. The
// latter is a fault, counted and logged as a missed timer: the scan is not
// the way deadlines are kept.
//
// Whatever fires, the handler is level-triggered: it reads the grant, acts
// only if it is still open and its deadline has passed, and changes it only
// by compare-and-set on the KV revision. Before calling the domain it claims
// the grant (a CAS that records the claimant for claimTTL), so two
// replicas, or a timer and a scan, never both revoke it. The claimant is
// the process (its instance id): its own retry takes the claim over at
// once, whatever became of the attempt that made it. The outcome (the
// grant ended, or marked with the domain's error) is written until it is
// stored, within the claim, and a revocation that fails all the same
// releases its claim; so a KV write that fails for a moment neither holds
// a revocation back for claimTTL nor loses a revoke's outcome (to be
// recorded later as an expiry). An extended grant's old timer finds the
// deadline in the future and does nothing.
//
// # Revocation
//
// Revocation removes the membership (RemoveMembers; removing a non-member
// succeeds), then reads the user's groups to verify it is gone. A user
// removed from the group by other means before the deadline ends the same
// way: the grant becomes expired at its deadline (iamflow does not watch
// for early removals). While the domain cannot be reached the grant stays
// active with overdue set and last_error, the revocation is retried, the
// status counter "overdue" and the gauge iamflow_expiry_overdue_grants count
// it.
//
// # Memberships added outside iamflow
//
// A member_added event for a temporary group (the IdP's SCIM push, a JIT
// login, the console) opens a grant with the group's default duration,
// unless the membership already has an open grant (iamflow's own Grant
// records the grant before adding the member). The membership index
// ("m.<domain>.<group>.<user>" in the bucket, created atomically) keeps
// replicas from opening two grants for one membership.
package expiry
