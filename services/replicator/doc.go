// Package replicator mirrors users, groups and memberships from a source
// Identity Domain to target domains (issue #4).
//
//   - Config and Link (config.go): the replication links, validated up front
//     (Config.Validate, then Config.CheckDomains with the configured domains).
//   - UserState and GroupState (model.go): comparable snapshots of the SDK
//     models; SDKUser and SDKGroup give create bodies.
//   - Rules (rules.go, planuser.go, plangroup.go): PlanUser, PlanGroup and
//     PlanMembership, pure level-triggered planners that compare the
//     source's current state with the target's and return the minimal Plan.
//   - IDMap (idmap.go): source id -> target id per link, direction and kind,
//     in JetStream KV, with a reverse entry that says what iamflow manages.
//   - Guard (guard.go): the mass-deletion guard; holds wait in KV for approval.
//   - direction (direction.go, read.go, apply.go): one direction of a link.
//     An event is read as a trigger: a user event reconciles the user; a
//     group or membership event reconciles the group with all its members
//     (read.go reads both sides, resolving members through the id map so a
//     mapped member costs no call), then the plan passes the guard and is
//     applied (apply.go: adds and removes batched per group, mappings
//     recorded, one audit record per action).
//   - full.go: the full reconcile, listing both sides page by page and
//     planning every object against an in-memory index, deletions last and
//     judged together by the guard.
//   - Service (service.go, schedule.go, status.go, api.go): one durable
//     consumer per target, coalescing per entity (iamflow's own changes
//     keyed apart, so an echo never hides a human change), the scheduled
//     full reconcile claimed through KV so replicas run it once, and the
//     ReplicatorService admin API.
//
// # Safety
//
// A nil source counts as deleted only when the read was complete; a failed
// read retries, and a full listing that returns nothing while mappings
// exist deletes nothing. Deletions, deactivations and membership removals
// touch only objects iamflow created or adopted unless delete.only_managed
// is false; a reverse mapping (the original object of a bidirectional link)
// is never managed. Changes made by iamflow's own client are not echoed
// back. A reconcile with nothing to do writes nothing.
//
// # Known limits
//
// The emails attribute is replaced as a whole list. Users are replicated
// when in the link's user scope, whether or not a replicated group holds
// them. A bidirectional
// link whose two sides change the same attribute at once settles on
// whichever change is reconciled last.
package replicator
