package scimserver

import (
	"testing"

	"github.com/iamflow/iamflow/internal/scimtest/idpfixture"
)

// TestIdPFixtures replays each IdP's documented request sequence and checks
// every answer it expects (the end-to-end replay, through the replicator
// and the DB provisioner, is in internal/app).
func TestIdPFixtures(t *testing.T) {
	forEachIdP(t, func(*testing.T, *harness) {})
}

// forEachIdP replays each IdP's fixture into an endpoint of its own, in a
// subtest named for the IdP, then calls check with it.
func forEachIdP(t *testing.T, check func(t *testing.T, h *harness)) {
	for _, name := range idpfixture.Names() {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			idpfixture.Load(t, name).Replay(t, h.base, testToken)
			check(t, h)
		})
	}
}
