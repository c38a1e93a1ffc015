// Package scimserver is iamflow's SCIM 2.0 service provider (RFC 7643,
// RFC 7644) for identity providers that push changes: Okta, Microsoft Entra
// ID or any other SCIM client. Each pushed source (a domains[] entry with
// push) has its own base path and bearer token, and its own directory of
// Users and Groups.
//
// Durable before it answers: a pushed directory lives in a JetStream KV
// bucket (iamflow_scim_<source>), and every change is published to
// IAM_EVENTS as an iamflow.v1.IdentityEvent on the subjects OCI's events use
// (iam.event.<source>.<kind>.<action>), with a stable id made of the
// resource, its new version and the action, before the SCIM answer is sent.
// A request replayed by the IdP changes nothing and publishes the same ids,
// which JetStream stores once; a change whose events could not be published
// (JetStream down, a crash between the write and the publish) has them
// published again by the next request that touches the resource, and a
// replica's full reconcile repairs anything else, as for any domain.
//
// Consumers read a pushed directory like any other domain: the server
// answers SCIM reads, so the replicator, the DB provisioner and expiry use
// the Identity Domains client pointed at it (auth static, scim_path the
// source's path). The package's handler is mounted on ingest's listener.
//
// What real IdPs send and the server accepts (docs/scim-push.md):
// capitalised PATCH ops ("Replace"), booleans as strings ("False"), PATCH
// without a path carrying an object of attributes, member add and remove in
// one request, removal by value filter (members[value eq "id"]) or by a
// value list, excludedAttributes=members, deactivation by active:false, and
// Entra's test connection (a filter for a random userName answered with an
// empty ListResponse).
package scimserver
