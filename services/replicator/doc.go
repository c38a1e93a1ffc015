// Package replicator mirrors users, groups and memberships from a source
// Identity Domain to target domains (issue #4). This package holds the core:
//
//   - Config and Link: the replication links, validated up front
//     (Config.Validate, then Config.CheckDomains with the configured domains);
//   - UserState and GroupState: comparable snapshots of the SDK models
//     (FromSDKUser, FromSDKGroup; SDKUser and SDKGroup give create bodies);
//   - Rules (NewRules per link): PlanUser, PlanGroup and PlanMembership,
//     pure level-triggered planners that compare the source's current state
//     with the target's and return the minimal Plan of Actions;
//   - IDMap: source id -> target id per link, direction and kind, in
//     JetStream KV, with a reverse entry that says what iamflow manages;
//   - Guard: the mass-deletion guard that holds deletions for approval
//     (OpenGuard keeps holds and windows in KV).
//
// # Safety
//
// A nil source counts as deleted only when the read was complete
// (SourceComplete); a failed or empty read plans no deletion and no
// membership removal. Deletions, deactivations and membership removals
// touch only objects iamflow created or adopted unless delete.only_managed is
// false; a reverse mapping (the original object of a bidirectional link) is
// never managed. Changes made by iamflow's own client (Trigger.Own) are not
// echoed back. A reconcile with nothing to do returns an empty plan.
//
// # Wiring (for the consumers)
//
// Per target and event: read the source entity through the client (a 404 is
// Source nil with SourceComplete true; any other error is SourceComplete
// false, or a retry); look up IDMap.Get(scope, sourceID) and read the mapped
// target by id (Mapped); if there is no mapping or the mapped object is
// gone, look it up by the link's match rule (Matched: FindUserByName or
// FindUserByExternalID(sourceID); FindGroupByName or FindGroupByExternalID);
// plan; pass the plan through Guard.Check with the target's object count;
// unless DryRun, apply Plan.Writes in order, resolving empty TargetIDs to
// what earlier creates in the plan made; record IDMap.Put after creates
// (OriginCreated) and adopts (OriginAdopted, and apply the adopt's Ops to
// stamp externalId), IDMap.Delete after deletes; write one audit record per
// action with its Changes.
package replicator
