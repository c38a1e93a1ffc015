package capabilities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/iamflow/iamflow/internal/audit"
)

// sweepDir has n users; every tenth one does not comply with lockedDown.
func sweepDir(n int) *fakeDir {
	dir := newFakeDir()
	for i := range n {
		f := compliantFlags()
		if i%10 == 0 {
			f.CanUseDBCredentials = ptr(true)
		}
		dir.add(User{ID: fmt.Sprintf("u%04d", i), UserName: fmt.Sprintf("user%04d", i), Flags: f})
	}
	return dir
}

func TestSweepChangesOnlyNonCompliantUsers(t *testing.T) {
	dir := sweepDir(230)
	s, a := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})
	var during []map[string]int64
	dir.onPage = func(page int) {
		if page == 2 {
			during = append(during, s.Status(context.Background()).Counters)
		}
	}
	rep, err := s.sweepDomain(context.Background(), "prod", false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 230 || rep.Checked != 230 || rep.Changed != 23 || rep.Failed != 0 || len(rep.Changes) != 23 {
		t.Errorf("report: total %d checked %d changed %d failed %d changes %d", rep.Total, rep.Checked, rep.Changed, rep.Failed, len(rep.Changes))
	}
	reads, lists, puts := dir.calls()
	if reads != 0 || lists != 5 || len(puts) != 23 {
		t.Errorf("calls: %d reads, %d pages, %d puts; want 0, 5, 23", reads, lists, len(puts))
	}
	if u := dir.user(t, "u0010"); *u.Flags.CanUseDBCredentials {
		t.Error("u0010 still has DB credentials")
	}
	if len(during) != 1 || during[0][counterSweepRunning] != 1 || during[0][counterSweepTotal] != 230 || during[0][counterSweepChecked] != 100 {
		t.Errorf("status during the sweep: %v", during)
	}
	c := s.Status(context.Background()).Counters
	if c[counterSweepRunning] != 0 || c[counterSweepChecked] != 230 || c[counterSweepChanged] != 23 || c[counterSweeps] != 1 {
		t.Errorf("status after: %v", c)
	}
	recs := a.Records()
	if len(recs) != 23 || recs[0].Reason != "default flags (sweep)" || recs[0].EventId != "" {
		t.Errorf("%d records, first %v", len(recs), recs[0])
	}
	// A second sweep finds everyone compliant.
	rep, err = s.sweepDomain(context.Background(), "prod", false)
	if err != nil || rep.Changed != 0 {
		t.Errorf("second sweep: %v changed %d", err, rep.Changed)
	}
}

func TestSweepDryRunChangesNothing(t *testing.T) {
	dir := sweepDir(100)
	s, a := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})
	rep, err := s.sweepDomain(context.Background(), "prod", true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || rep.Checked != 100 || rep.Changed != 10 || len(rep.Changes) != 10 {
		t.Errorf("report %+v", rep)
	}
	if _, _, puts := dir.calls(); len(puts) != 0 {
		t.Errorf("%d puts in a dry run", len(puts))
	}
	ch := rep.Changes[0]
	if ch.UserName != "user0000" || ch.Rules[0] != defaultRuleName || strings.Join(ch.Changes, ",") != "canUseDbCredentials: true -> false" ||
		!ch.Current.GetCanUseDbCredentials() || ch.Desired.GetCanUseDbCredentials() {
		t.Errorf("change = %v", ch)
	}
	for _, r := range a.Records() {
		if r.Outcome != audit.OutcomeDryRun {
			t.Errorf("dry run record with outcome %q", r.Outcome)
		}
	}
	if c := s.counterSnapshot(); c[counterChanged] != 0 {
		t.Errorf("users_changed = %d after a dry run", c[counterChanged])
	}
}

func TestSweepsDoNotOverlap(t *testing.T) {
	dir := sweepDir(120)
	s, _ := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})
	var inner error
	dir.onPage = func(page int) {
		if page == 1 {
			_, inner = s.sweepDomain(context.Background(), "prod", true)
		}
	}
	if _, err := s.sweepDomain(context.Background(), "prod", false); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(inner, errSweepRunning) || !strings.Contains(inner.Error(), "domain prod, 50 of 120 users checked") {
		t.Errorf("overlapping sweep: %v", inner)
	}
	if _, err := s.sweepDomain(context.Background(), "nope", false); !errors.Is(err, errUnknownDomain) {
		t.Errorf("unknown domain: %v", err)
	}
}

func TestSweepFailures(t *testing.T) {
	dir := sweepDir(30)
	s, _ := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})
	dir.putErr = errors.New("boom")
	rep, err := s.sweepDomain(context.Background(), "prod", false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 3 || rep.Changed != 0 || len(rep.Failures) != 3 || rep.Failures[0] != "user0000: set capabilities of user0000 in prod: boom" {
		t.Errorf("report %+v", rep)
	}
	dir.putErr, dir.readErr = nil, errors.New("listing broke")
	rep, err = s.sweepDomain(context.Background(), "prod", false)
	if err == nil || !strings.Contains(err.Error(), "sweep prod: list users after 0: listing broke") || rep == nil {
		t.Errorf("listing failure: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir.readErr = nil
	if _, err := s.sweepDomain(ctx, "prod", false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled sweep: %v", err)
	}
}

func TestSweepReportIsBounded(t *testing.T) {
	dir := newFakeDir()
	dir.pageSize = 500
	for i := range maxReportChanges + 50 {
		dir.add(User{ID: fmt.Sprintf("u%d", i), UserName: fmt.Sprintf("user%d", i), Flags: allTrue()})
	}
	s, _ := newTestService(t, lockedDown(), map[string]Directory{"prod": dir})
	rep, err := s.sweepDomain(context.Background(), "prod", true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed != maxReportChanges+50 || len(rep.Changes) != maxReportChanges {
		t.Errorf("changed %d, kept %d", rep.Changed, len(rep.Changes))
	}
}
