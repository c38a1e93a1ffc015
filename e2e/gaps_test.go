//go:build linux

package e2e

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// A knownGap is a weakness of a service that the proofs show and, until
// the service changes, tolerate: each names the change that removes it.
// Only a failure that matches a gap's narrow signature is tolerated, and
// only in the shape that shows it (replicas, NATS faults, a killed
// process); it is logged as "KNOWN GAP" and counted in the summary. IAMFLOW_E2E_STRICT=1
// turns every one into an error: run it so once the change is made, then
// delete the gap.
type knownGap struct {
	id, needs string
}

var (
	// Two dbprovisioner processes handle events about one account at once
	// and both act on the catalog they read: a role granted twice, a lock
	// issued twice, and one CREATE USER refused with ORA-01920 (the other
	// made the account first) and dead-lettered.
	gapDBReplicas = knownGap{"dbprovisioner-replicas",
		"services/dbprovisioner: serialize the work on one account across replicas, e.g. a lease per (database, account) in a KV bucket " +
			"as the replicator's fences do, held while an account is planned and changed; and treat ORA-01920 on CREATE USER as " +
			"'someone made it meanwhile: read again and re-plan' (retry), not terminal"}
	// A revocation whose last KV write fails (JetStream away for a moment,
	// a NATS server killed or cut off) leaves the grant claimed for
	// ClaimTTL (30 s): the same replica's retry takes a new claim token,
	// finds its own old claim and waits it out, so the membership goes up
	// to 30 s late, and the safety scan, which then ends it, counts a
	// "missed timer". If the failed write was the one after the membership
	// was removed (an early revoke), the grant is later recorded as expired
	// late by the scan although it was revoked in time.
	gapExpiryClaim = knownGap{"expiry-claim",
		"services/expiry: claim with the process's instance id (not a token per attempt) so the claimant's own retry takes over at once, " +
			"release the claim when a revocation fails, and retry the final transition (it is idempotent) until it is stored, " +
			"so a revoke's outcome is not lost and later mis-recorded as a late expiry"}
	// The replicator's mass-deletion guard holds a deletion when it cannot
	// read or save its own state (its KV bucket has no leader for a moment)
	// and acknowledges the event: nothing retries it, and the deleted user
	// stays active (the group stays) in the target until the next full
	// reconcile, an hour later by default.
	gapGuardHold = knownGap{"replicator-guard-hold",
		"services/replicator: when the guard's state cannot be read or saved, retry the event (bus.RetryAfter) instead of " +
			"holding the deletion and acknowledging it; hold only what the guard's limits hold"}
	// A service records what it did after doing it (the replicator buffers a
	// plan's records and stores them at its end): a process killed in
	// between leaves a change without a record, and the retry finds the
	// change made and records nothing.
	gapAuditCrash = knownGap{"audit-after-crash",
		"services (replicator first): record an action before it is taken (an intent, completed or failed after), or have the " +
			"retry that finds a change already made by iamflow record it as done, so a crash between a change and its record loses no record"}
	// A process connected to a NATS server that is cut off from the
	// others stays connected to it (the TCP connection is fine) and can do
	// nothing until the partition heals: its JetStream requests time out
	// and messages it holds are redelivered only after ack_wait.
	gapPartitionedClients = knownGap{"partitioned-clients",
		"internal/bus: when JetStream requests keep failing (no response, no meta leader) for a few seconds while the connection is up, " +
			"reconnect to another server (nats.Conn.ForceReconnect); then a partition costs a process the election time, not the partition's length"}
)

func strictGaps() bool { return os.Getenv("IAMFLOW_E2E_STRICT") == "1" }

// tolerate reports a failure that matches gap g: an error in strict mode,
// otherwise a log line and a count.
func (s *stackT) tolerate(g knownGap, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strictGaps() {
		s.t.Errorf("[%s] %s (needs: %s)", g.id, msg, g.needs)
		return
	}
	s.mu.Lock()
	if s.gaps == nil {
		s.gaps = map[string]int{}
	}
	first := s.gaps[g.id] == 0
	s.gaps[g.id]++
	s.mu.Unlock()
	if first {
		s.t.Logf("KNOWN GAP %s (needs: %s): %s", g.id, g.needs, msg)
	} else {
		s.t.Logf("KNOWN GAP %s: %s", g.id, msg)
	}
}

// gapsLine summarises the gaps seen.
func (s *stackT) gapsLine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.gaps) == 0 {
		return "none"
	}
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(s.gaps)) {
		parts = append(parts, fmt.Sprintf("%s %d", id, s.gaps[id]))
	}
	return strings.Join(parts, ", ") + " (IAMFLOW_E2E_STRICT=1 fails on them)"
}

// inFault returns the NATS fault (outage) of a cluster that overlaps
// [from, to], if any.
func (s *stackT) inFault(from, to time.Time) (outage, bool) {
	if !s.clustered() {
		return outage{}, false
	}
	return s.during(from, to, "nats")
}

// claimNet is how late a grant whose deadline fell into a NATS fault may
// end in a cluster with gapExpiryClaim: the claim's lifetime, then the
// scan's grace and two scans.
const claimNet = 30*time.Second + scanNet
