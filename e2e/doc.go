// Package e2e is the proof of issues 8 and 21: iamflow in microservices
// mode, each service its own `iamflow serve` process against a separate
// nats-server (the module's own, built by the test), fed by emulated
// identity domains, under a few thousand identity changes (users and groups
// created, renamed, deleted; memberships; deactivations) and temporary
// grants in both domains, while the replicator, the ingest and the NATS
// server are killed with SIGKILL and restarted.
//
// Every check can fail: each kill must land while work is in flight and the
// outage must meet traffic; a process that exits on its own fails the
// proof; ingest may refuse deliveries only during the outages that explain
// it; after the event path settles, before any full reconcile, every target
// must equal its source, and the final full reconcile must find nothing to
// repair; each grant must end at its deadline (or revoke) as the domains'
// own write logs show, in the source and in the target a source grant is
// replicated to, never early and never by the expiry service's safety
// scan; failed grant calls must fall into a NATS outage; no event ingest
// acknowledged may be lost. Every process binds port 0 and the test reads
// the port it got (NATS sits behind a proxy the test holds for the whole
// run, so it can restart on a new port).
//
// The package has no code of its own, only TestProof. Run it with
//
//	make e2e        # go test -count=1 -run TestProof -v ./e2e/
//
// `go test -short` skips it. IAMFLOW_E2E_CHANGES sets the number of changes
// (default 3000) and IAMFLOW_E2E_KILLS=0 runs it without the kills. The
// processes' logs stay in the test's temporary directory, whose path the
// test logs; IAMFLOW_E2E_KEEP=1 keeps it.
package e2e
