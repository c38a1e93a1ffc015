//go:build linux

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// "No service decided anything twice" is checked against what the domains
// themselves recorded, so that an idempotent retry is not mistaken for a
// second decision, and a second decision is not hidden by being harmless.
//
// Rule 1, writes: every change iamflow made in an identity domain (an
// entry of the domain's write log by iamflow's OAuth client) has exactly one
// audit record that says it was done, and every such record has its change.
// The emulators log only writes that changed something, so:
//   - a retry that finds its work done (a redelivery after a crash, a
//     timer that fires after the scan) writes nothing and must record
//     nothing: no record, no entry, fine;
//   - two replicas, or an event and a reconcile, that both decide to add
//     the same member make one change and two records: decided twice;
//   - a change with no record is an action nobody can account for, allowed
//     only as often as the service counted a record it could not store
//     (status counter audit_failed, e.g. JetStream away for longer than the
//     publish timeout).
// It covers, by (domain, operation, resource, member): users and groups the
// replicator created or deleted, memberships it added or removed, the
// memberships the expiry service added (grants) and removed (expiry,
// revocation), and capabilities the capabilities service set.
//
// Rule 2, sequences, for actions whose writes are not one to one with log
// entries (a user update may log as updateuser and deactivateuser) or that
// go to a database: for one object, the same action with the same result
// twice in a row is a decision made twice. That covers the replicator's
// copies (a source user or group created twice in a target without a
// delete between: it then exists twice), its user and group updates and
// deactivations (same attribute values twice in a row), the database
// provisioner's statements (create_user twice without
// drop_user between, grant_role of one role twice without revoke_role
// between, lock_user twice without unlock_user between), and the expiry
// service's grants (one grant record and at most one end record per grant).
//
// Records of skipped, held, planned, refused or failed actions decide
// nothing and are left out.

// writeKey identifies a write by what it changed.
type writeKey struct{ domain, op, resource, member string }

func (k writeKey) String() string {
	if k.member != "" {
		return fmt.Sprintf("%s %s %s member %s", k.domain, k.op, k.resource, k.member)
	}
	return fmt.Sprintf("%s %s %s", k.domain, k.op, k.resource)
}

// auditEntry is one audit record and its position in IAM_AUDIT.
type auditEntry struct {
	seq uint64
	r   *iamflowv1.AuditRecord
}

// decided reports whether a record says something was done.
func decided(r *iamflowv1.AuditRecord) bool {
	switch r.GetOutcome() {
	case "applied", "done":
		return true
	}
	return false
}

// writeKeyOf maps a record to the write it caused, if rule 1 covers it.
func writeKeyOf(r *iamflowv1.AuditRecord) (writeKey, bool) {
	res, rel := r.GetResource().GetId(), r.GetRelated().GetId()
	switch r.GetService() + "/" + r.GetAction() {
	case "replicator/create_user":
		return writeKey{r.GetTarget(), "createuser", res, ""}, true
	case "replicator/create_group":
		return writeKey{r.GetTarget(), "creategroup", res, ""}, true
	case "replicator/delete_group":
		return writeKey{r.GetTarget(), "deletegroup", res, ""}, true
	case "replicator/delete_user":
		return writeKey{r.GetTarget(), "deleteuser", res, ""}, true
	case "replicator/add_member":
		return writeKey{r.GetTarget(), "addusertogroup", res, rel}, true
	case "replicator/remove_member":
		return writeKey{r.GetTarget(), "removeuserfromgroup", res, rel}, true
	case "expiry/grant":
		if r.GetAfter()["source"] != "api" {
			return writeKey{}, false // a membership made outside iamflow, adopted
		}
		return writeKey{r.GetDomain(), "addusertogroup", res, rel}, true
	case "expiry/expire", "expiry/revoke":
		return writeKey{r.GetDomain(), "removeuserfromgroup", res, rel}, true
	case "capabilities/set_capabilities":
		return writeKey{r.GetDomain(), "updateusercapabilities", res, ""}, true
	}
	return writeKey{}, false
}

// ruleOneOps are the write log operations rule 1 covers.
var ruleOneOps = map[string]bool{
	"createuser": true, "creategroup": true, "deletegroup": true, "deleteuser": true,
	"addusertogroup": true, "removeuserfromgroup": true, "updateusercapabilities": true,
}

// decisionReport is what checkDecisions found.
type decisionReport struct {
	records, covered int
	twice            []string      // decided twice
	unrecorded       []string      // changes with no record
	unrecordedN      int           // how many changes have no record
	unrecordedAt     [][]time.Time // per unrecorded line, when its changes were made
	bySvc            map[string]int
}

// compareDecisions applies rules 1 and 2 to the audit records (in stream
// order) and the domains' write logs (by domain, iamflow's client id
// actor).
func compareDecisions(recs []auditEntry, logs map[string][]emu.Write, actor string) decisionReport {
	rep := decisionReport{bySvc: map[string]int{}}
	writes := map[writeKey]int{}
	writeTimes := map[writeKey][]time.Time{}
	for d, l := range logs {
		for _, w := range l {
			if w.Actor == actor && ruleOneOps[w.Op] {
				k := writeKey{d, w.Op, w.ResourceID, w.RefID}
				writes[k]++
				writeTimes[k] = append(writeTimes[k], w.Time)
			}
		}
	}
	records := map[writeKey][]auditEntry{}
	byResource := map[string][]auditEntry{} // every record, whatever its outcome, by resource id
	for _, e := range recs {
		if id := e.r.GetResource().GetId(); id != "" {
			byResource[id] = append(byResource[id], e)
		}
	}
	// Rule 2's sequences: key -> the last result seen.
	last := map[string]string{}
	grants := map[string]map[string]int{} // grant id -> action -> records
	for _, e := range recs {
		r := e.r
		if !decided(r) {
			continue
		}
		rep.records++
		rep.bySvc[r.GetService()]++
		if k, ok := writeKeyOf(r); ok {
			records[k] = append(records[k], e)
		}
		if r.GetService() == "expiry" {
			g := r.GetAfter()["grant"]
			if grants[g] == nil {
				grants[g] = map[string]int{}
			}
			action := r.GetAction()
			if action == "expire" || action == "revoke" {
				action = "end"
			}
			grants[g][action]++
			if grants[g][action] == 2 && action != "extend" {
				rep.twice = append(rep.twice, fmt.Sprintf("expiry: grant %s has two %s records (seq %d)", g, action, e.seq))
			}
			continue
		}
		key, result, ok := sequenceKey(r)
		if !ok {
			continue
		}
		if prev, seen := last[key]; seen && prev == result {
			rep.twice = append(rep.twice, fmt.Sprintf("%s: %s twice in a row (%s; seq %d)", r.GetService(), key, result, e.seq))
		}
		last[key] = result
		// An opposite action resets its partner's sequence.
		if opp, ok := opposite(r); ok {
			delete(last, opp)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(records), func(a, b writeKey) int { return strings.Compare(a.String(), b.String()) }) {
		rs, w := records[k], writes[k]
		rep.covered += len(rs)
		if len(rs) > w {
			var seqs []string
			for _, e := range rs {
				seqs = append(seqs, fmt.Sprintf("%s %s (seq %d, event %q)", e.r.GetService(), e.r.GetAction(), e.seq, e.r.GetEventId()))
			}
			rep.twice = append(rep.twice, fmt.Sprintf("%s: %d records, %d changes in the domain's write log: %s", k, len(rs), w, strings.Join(seqs, "; ")))
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(writes), func(a, b writeKey) int { return strings.Compare(a.String(), b.String()) }) {
		if n := writes[k] - len(records[k]); n > 0 {
			rep.unrecordedN += n
			var other []string
			for _, e := range byResource[k.resource] {
				other = append(other, fmt.Sprintf("%s %s %s (seq %d)", e.r.GetService(), e.r.GetAction(), e.r.GetOutcome(), e.seq))
			}
			rep.unrecorded = append(rep.unrecorded, fmt.Sprintf("%s: %d changes in the domain's write log, %d records (records about it: %s)",
				k, writes[k], len(records[k]), strings.Join(other, "; ")))
			rep.unrecordedAt = append(rep.unrecordedAt, writeTimes[k])
		}
	}
	return rep
}

// sequenceKey returns rule 2's key of a record and the result that must not
// repeat, for the actions it covers.
func sequenceKey(r *iamflowv1.AuditRecord) (key, result string, ok bool) {
	switch r.GetService() {
	case "replicator":
		switch r.GetAction() {
		case "create_user", "create_group":
			// One source object, one copy: a second create (without a
			// delete of the first copy) makes it exist twice.
			if src := r.GetAfter()["source_id"]; src != "" {
				return fmt.Sprintf("%s copy of %s", r.GetTarget(), src), "created", true
			}
		case "delete_user", "delete_group":
			if src := r.GetAfter()["source_id"]; src != "" {
				return fmt.Sprintf("%s copy of %s", r.GetTarget(), src), "deleted", true
			}
		case "update_user", "update_group", "deactivate_user":
			after := maps.Clone(r.GetAfter())
			delete(after, "cause")
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(after)) {
				parts = append(parts, k+"="+after[k])
			}
			return fmt.Sprintf("%s %s %s", r.GetTarget(), r.GetAction(), r.GetResource().GetId()), strings.Join(parts, ","), true
		}
	case "dbprovisioner":
		account := r.GetTarget() + " " + r.GetResource().GetName()
		switch r.GetAction() {
		case "create_user", "drop_user":
			return account + " account", r.GetAction(), true
		case "lock_user", "unlock_user":
			return account + " lock", r.GetAction(), true
		case "grant_role", "revoke_role":
			return account + " role " + r.GetAfter()["role"], r.GetAction(), true
		case "grant_create_session":
			return account + " create session", r.GetAction(), true
		}
	}
	return "", "", false
}

// opposite returns the key whose sequence an action ends, if any: after a
// drop_user, the next create_user is a new decision (the sequences above
// already alternate by result; this resets a key's result when its object
// is gone, e.g. a deleted user's updates).
func opposite(r *iamflowv1.AuditRecord) (string, bool) {
	if r.GetService() == "dbprovisioner" && r.GetAction() == "drop_user" {
		return r.GetTarget() + " " + r.GetResource().GetName() + " lock", true
	}
	return "", false
}

// readAudit reads every record of IAM_AUDIT, in order.
func readAudit(ctx context.Context, natsURL string) ([]auditEntry, error) {
	return readStream(ctx, natsURL, "IAM_AUDIT", "records", func(m jetstream.Msg, meta *jetstream.MsgMetadata) (auditEntry, error) {
		r := &iamflowv1.AuditRecord{}
		if err := proto.Unmarshal(m.Data(), r); err != nil {
			return auditEntry{}, fmt.Errorf("audit record %d on %s: %w", meta.Sequence.Stream, m.Subject(), err)
		}
		return auditEntry{seq: meta.Sequence.Stream, r: r}, nil
	})
}

// checkDecisions waits until no service has work left, then checks that no
// service decided anything twice and that every change iamflow made in a
// domain has its record (see the rules above), and returns a summary line.
func (s *stackT) checkDecisions(ctx context.Context) string {
	t := s.t
	if err := waitFor(2*time.Minute, 500*time.Millisecond, func() error {
		for _, svc := range []string{"replicator", "capabilities", "expiry", "dbprovisioner"} {
			if n, err := s.backlog(ctx, svc); err != nil || n > 0 {
				return fmt.Errorf("%s: %d messages unfinished (%v)", svc, n, err)
			}
		}
		return nil
	}); err != nil {
		t.Errorf("before reading the audit trail, the services did not finish: %v", err)
	}
	var recs []auditEntry
	if err := waitFor(time.Minute, time.Second, func() error {
		var err error
		recs, err = readAudit(ctx, s.natsURL())
		return err
	}); err != nil {
		t.Errorf("read IAM_AUDIT: %v", err)
		return "unreadable"
	}
	logs := map[string][]emu.Write{}
	for _, d := range []string{"src", "tgt"} {
		var l emu.WriteLog
		if err := getJSON(ctx, s.urls[d]+"/_emulator/writes", &l); err != nil {
			t.Errorf("read %s's write log: %v", d, err)
			return "write logs unreadable"
		}
		logs[d] = l.Writes
	}
	rep := compareDecisions(recs, logs, "iamflow")
	if len(rep.twice) > 0 {
		t.Errorf("%d decisions were made twice (one audit record per action, see decisions_test.go):\n%s", len(rep.twice), head(rep.twice, 20))
	}
	// A change made just before its service was killed may have lost its
	// record with the process (records are written after the change).
	for i := 0; i < len(rep.unrecorded); i++ {
		o, ok := s.killedJustAfter(rep.unrecordedAt[i])
		if !ok {
			continue
		}
		s.tolerate(gapAuditCrash, "%s, made just before %s", rep.unrecorded[i], o)
		rep.unrecordedN -= len(rep.unrecordedAt[i])
		rep.unrecorded = slices.Delete(rep.unrecorded, i, i+1)
		rep.unrecordedAt = slices.Delete(rep.unrecordedAt, i, i+1)
		i--
	}
	var failed int64
	for _, svc := range []string{"replicator", "capabilities", "expiry", "dbprovisioner"} {
		failed += max(0, s.counter(ctx, svc, "audit_failed"))
	}
	if int64(rep.unrecordedN) > failed {
		t.Errorf("%d changes iamflow made have no audit record, and the services counted %d records they could not store:\n%s",
			rep.unrecordedN, failed, head(rep.unrecorded, 20))
	}
	return fmt.Sprintf("%d records of actions taken (%s), %d of them matched one to one with the domains' write logs; decided twice: %d; changes without a record: %d (records not stored, as counted: %d)",
		rep.records, formatCounts(rep.bySvc), rep.covered, len(rep.twice), rep.unrecordedN, failed)
}

// killedJustAfter returns the SIGKILL of an iamflow service that came at
// most auditCrashWindow after the last of times.
func (s *stackT) killedJustAfter(times []time.Time) (outage, bool) {
	if len(times) == 0 {
		return outage{}, false
	}
	last := slices.MaxFunc(times, time.Time.Compare)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.outages {
		if slices.Contains(services, o.name) && o.name != "ingest" && !o.from.Before(last) && o.from.Sub(last) <= auditCrashWindow {
			return o, true
		}
	}
	return outage{}, false
}

// auditCrashWindow is how long before its process was killed a change may
// have been made without its record being stored: the replicator buffers a
// plan's records and stores them when the plan is done.
const auditCrashWindow = 3 * time.Second

// The rules themselves can fail: each case is what a run could leave.
func TestCompareDecisions(t *testing.T) {
	rec := func(svc, action, domain, target, res, rel, outcome string, after map[string]string) auditEntry {
		r := &iamflowv1.AuditRecord{Service: svc, Action: action, Domain: domain, Target: target, Outcome: outcome, After: after,
			Resource: &iamflowv1.Resource{Id: res, Name: res}}
		if rel != "" {
			r.Related = &iamflowv1.Resource{Id: rel}
		}
		return auditEntry{r: r}
	}
	add := func(outcome string) auditEntry {
		return rec("replicator", "add_member", "src", "tgt", "g1", "u1", outcome, nil)
	}
	logged := func(op, res, ref string) emu.Write {
		return emu.Write{Op: op, ResourceID: res, RefID: ref, Actor: "iamflow"}
	}
	upd := func(name string) auditEntry {
		return rec("replicator", "update_user", "src", "tgt", "u1", "", "applied", map[string]string{"displayName": name})
	}
	db := func(action, role string) auditEntry {
		return rec("dbprovisioner", action, "src", "db1", "ALICE", "", "done", map[string]string{"role": role})
	}
	grant := func(action, id string) auditEntry {
		return rec("expiry", action, "tgt", "", "g9", "u9", "done", map[string]string{"grant": id, "source": "api"})
	}
	for _, tc := range []struct {
		name              string
		recs              []auditEntry
		tgt               []emu.Write
		twice, unrecorded int
	}{
		{"one change, one record", []auditEntry{add("applied")}, []emu.Write{logged("addusertogroup", "g1", "u1")}, 0, 0},
		{"a retry that found the work done records nothing", nil, nil, 0, 0},
		{"two replicas decided the same add", []auditEntry{add("applied"), add("applied")}, []emu.Write{logged("addusertogroup", "g1", "u1")}, 1, 0},
		{"a no-op write recorded as done", []auditEntry{add("applied")}, nil, 1, 0},
		{"a change nobody recorded", nil, []emu.Write{logged("addusertogroup", "g1", "u1")}, 0, 1},
		{"someone else's change is not iamflow's", nil, []emu.Write{{Op: "addusertogroup", ResourceID: "g1", RefID: "u1", Actor: "e2e-driver"}}, 0, 0},
		{"failed and skipped records decide nothing", []auditEntry{add("failed"), add("skipped"), add("applied")}, []emu.Write{logged("addusertogroup", "g1", "u1")}, 0, 0},
		{"added, removed, added again", []auditEntry{add("applied"), rec("replicator", "remove_member", "src", "tgt", "g1", "u1", "applied", nil), add("applied")},
			[]emu.Write{logged("addusertogroup", "g1", "u1"), logged("removeuserfromgroup", "g1", "u1"), logged("addusertogroup", "g1", "u1")}, 0, 0},
		{"the same update twice in a row", []auditEntry{upd("A"), upd("A")}, nil, 1, 0},
		{"one source user copied twice", []auditEntry{
			rec("replicator", "create_user", "src", "tgt", "t1", "", "applied", map[string]string{"source_id": "s1"}),
			rec("replicator", "create_user", "src", "tgt", "t2", "", "applied", map[string]string{"source_id": "s1"})},
			[]emu.Write{logged("createuser", "t1", ""), logged("createuser", "t2", "")}, 1, 0},
		{"two updates", []auditEntry{upd("A"), upd("B"), upd("A")}, nil, 0, 0},
		{"a role granted twice", []auditEntry{db("grant_role", "R"), db("grant_role", "R")}, nil, 1, 0},
		{"a role granted, revoked, granted", []auditEntry{db("grant_role", "R"), db("revoke_role", "R"), db("grant_role", "R")}, nil, 0, 0},
		{"two roles", []auditEntry{db("grant_role", "R"), db("grant_role", "W")}, nil, 0, 0},
		{"locked twice", []auditEntry{db("lock_user", ""), db("lock_user", "")}, nil, 1, 0},
		{"a grant ended twice", []auditEntry{grant("grant", "x"), grant("expire", "x"), grant("revoke", "x")},
			[]emu.Write{logged("addusertogroup", "g9", "u9"), logged("removeuserfromgroup", "g9", "u9")}, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := compareDecisions(tc.recs, map[string][]emu.Write{"tgt": tc.tgt}, "iamflow")
			if len(rep.twice) != tc.twice || rep.unrecordedN != tc.unrecorded {
				t.Errorf("decided twice %d (want %d), unrecorded %d (want %d):\n%s\n%s", len(rep.twice), tc.twice,
					rep.unrecordedN, tc.unrecorded, strings.Join(rep.twice, "\n"), strings.Join(rep.unrecorded, "\n"))
			}
		})
	}
}
