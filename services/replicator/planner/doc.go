// Package planner is the replicator's pure planner: given what a reconcile
// read of a source object and its copy in a target, it returns the
// smallest plan that makes the copy match, and it never reads or writes
// anything itself. The event path and the full reconcile plan with it
// alike, and it is tested without a server.
//
//   - Link (link.go): one replication link of the configuration, its
//     defaults and validation.
//   - Rules (rules.go): a link compiled: its scopes, copy rules and delete
//     policy, safe for concurrent use. NewRules makes one.
//   - UserState, GroupState (model.go): the comparable part of SDK users
//     and groups, and the request bodies that create them.
//   - PlanUser, PlanGroup (user.go, group.go): level-triggered plans from a
//     UserInput or GroupInput (the source object, its recorded Mapping, the
//     target object found by mapping or by the link's match rule, and, for
//     a group, its members resolved the same way).
//   - Plan, Action (plan.go): what to do in one target, in order, with the
//     before and after every audit record shows.
//   - UserFingerprint, GroupFingerprint (fingerprint.go): digests of what a
//     link compares, by which the replicator recognises its own writes.
//
// The planner promises: a nil source counts as deleted only when the read
// was complete (SourceComplete), and then deletes, deactivates or removes
// from groups only what iamflow created or adopted unless the link says
// otherwise (delete.only_managed); an attribute a target does not declare
// (Declares) is neither sent nor compared; a retired user leaves the link's
// groups first; an object already in line yields an empty plan.
package planner
