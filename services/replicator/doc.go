// Package replicator mirrors users, groups and memberships from a source
// Identity Domain (or any SCIM 2.0 server) to target domains.
//
//   - Config (config.go): the replication links (planner.Link), validated
//     up front (Config.Validate, then Config.CheckDomains with the
//     configured domains).
//   - planner: the pure planner (models, rules, PlanUser and PlanGroup), a
//     package of its own that the event path and the full reconcile share.
//   - idMap (idmap.go): source id -> target id per link, direction and kind,
//     in JetStream KV, with a reverse entry that says what iamflow manages.
//     One target object is the copy of one source object.
//   - guard (guard.go): the mass-deletion guard; holds wait in KV for approval.
//   - fences (fence.go): per-object leases and watermarks in KV.
//   - ownWrites (ownwrites.go): fingerprints of the states the replicator
//     wrote, for echo suppression.
//   - targetAttrs (targetattrs.go): what a target takes, from its schemas
//     and from what it refused.
//   - direction (direction.go, read.go, apply.go): one direction of a link.
//   - full.go: the full reconcile, listing both sides and planning every
//     object against an in-memory index, deletions last and judged together
//     by the guard.
//   - Service (service.go, events.go, resync.go, status.go, api.go): one
//     durable consumer per target, coalescing per entity (events.go), a
//     backlog caught up with a full reconcile (catchup.go), the
//     scheduled full reconcile claimed through KV so replicas run it once
//     (resync.go), and the ReplicatorService admin API.
//
// # Events are triggers
//
// An event names the entity to look at: a user event reconciles the user, a
// group or membership event the group with all its members, whoever made the
// change and whatever the event says about it. Every reconcile of an object
// runs under the object's lease (a local lock and a KV lease shared by
// replicas), reads both sides, plans and applies. A plan that writes objects
// it did not read under their leases (a group creating a member, a retired
// user leaving groups, a full reconcile's listing, a held deletion approved
// later) takes their leases too, and is refused when any of them was
// reconciled after the read the plan rests on (its watermark), or when the
// mapping it rests on changed: it is read and planned again. So a reconcile
// delayed by retries cannot apply an old plan over a newer one.
//
// # Backlogs
//
// An event stored before a reconcile that covers it began has nothing left
// to do and is acknowledged without a call (covered.go): a reconcile of its
// entity, or a full reconcile of its source that ended cleanly (no error,
// no deletion held, not a dry run). A handler that finds 1,000 events or
// more queued behind its own (after an outage of the replicator
// or of a target) catches the link up with one full reconcile, which writes
// through SCIM Bulk where the target takes it, and the handlers of the
// direction's events wait for it, or for the full reconcile of the link
// already under way in the process (catchup.go). One replica does so a
// minute, claimed in KV; when it cannot (another replica claimed it, or it
// failed) the events are reconciled one by one as before.
//
// # Echoes
//
// After a write the replicator records a fingerprint of the state it left
// the object in (what the link compares). An event about an object whose
// current state has that fingerprint is the echo of that write, and the
// reverse direction of a bidirectional link copies nothing back. Any other
// change is real, including those made with iamflow's own OAuth client
// (temporary grants, capability fixes).
//
// # Safety
//
// A nil source counts as deleted only when the read was complete: a failed
// or inconsistent read (paging the server broke) retries or fails the
// reconcile, and a full listing that returns nothing while mappings exist
// deletes nothing. Deletions, deactivations and membership removals touch
// only objects iamflow created or adopted unless delete.only_managed is
// false; a reverse mapping (the original object of a bidirectional link) is
// never managed. A user retired in a target first leaves the link's groups
// there, and a group member that is not a user of the target any more is
// removed, whether or not the target cascades deletes. A retired copy's
// mapping is forgotten, but a record (markRetired) keeps it iamflow's: an
// event's group plan adds no member whose mapping changed since its read,
// and a retired copy in a group all the same is removed by the group's
// next reconcile. An attribute a target
// does not declare is not sent, one it refuses costs that attribute and not
// the object. A reconcile with nothing to do writes nothing.
//
// # Known limits
//
// The emails attribute is replaced as a whole list. Users are replicated
// when in the link's user scope, whether or not a replicated group holds
// them. A bidirectional link whose two sides change the same attribute at
// once settles on whichever change is reconciled last. A membership that
// lives in the source for less time than the replicator is behind (an
// outage) is never copied: it is gone when the group is read.
package replicator
