// Package e2e is the proof of issue 8: iamflow in microservices mode, each
// service its own `iamflow serve` process against a separate nats-server
// (the module's own, built by the test), fed by emulated identity domains,
// under a few thousand identity changes while the replicator, the ingest and
// the NATS server are killed with SIGKILL and restarted.
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
