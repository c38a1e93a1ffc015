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
	// In a cluster, a deadline timer's delivery can be lost when a server
	// is SIGKILLed (seen with the server leading IAM_EXPIRY or the grants'
	// bucket): the safety scan then ends the grant, within the fault's
	// allowance but not by its timer. Earlier paths to a late or misrecorded
	// end are fixed (claims by process, a released claim, a retried final
	// write, an early timer that no longer marks the grant:
	// TestRevocationOutcomeSurvivesAFailedWrite,
	// TestEarlyTimerDoesNotBlockARevoke).
	gapExpiryClaim = knownGap{"expiry-claim",
		"services/expiry: find where a fired timer's due message is lost when a server of a replicated IAM_EXPIRY is killed " +
			"(the schedule's firing, or the due message's delivery before the new leader), and re-arm it, so no grant needs the scan"}
	// A service records what it did after doing it (the replicator buffers a
	// plan's records and stores them at its end): a process killed in
	// between leaves a change without a record, and the retry finds the
	// change made and records nothing.
	gapAuditCrash = knownGap{"audit-after-crash",
		"services (replicator first): record an action before it is taken (an intent, completed or failed after), or have the " +
			"retry that finds a change already made by iamflow record it as done, so a crash between a change and its record loses no record"}
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
