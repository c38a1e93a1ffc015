package capabilities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// Sweep limits: what a report keeps, so a sweep's memory stays bounded
// whatever the domain's size.
const (
	// maxReportChanges bounds sweepReport.Changes.
	maxReportChanges = 1000
	// maxReportFailures bounds sweepReport.Failures.
	maxReportFailures = 100
)

var (
	// errSweepRunning is returned when a sweep is asked for while one runs:
	// sweeps never overlap (they share the domains' rate limits).
	errSweepRunning = errors.New("a sweep is already running")
	// errUnknownDomain is returned for a domain the service does not enforce.
	errUnknownDomain = errors.New("domain not enforced")
)

// sweepReport is what one sweep found and did.
type sweepReport struct {
	// Domain swept, and whether changes were only reported.
	Domain string
	DryRun bool
	// Total is the domain's user count when the directory could tell it up
	// front, else 0.
	Total int64
	// Checked users were read and compared with the policy; Changed ones
	// had (or, in a dry run, would have) their flags set; Failed ones could
	// not be set.
	Checked, Changed, Failed int64
	// Changes are the first maxReportChanges changes, as previews.
	Changes []*iamflowv1.PreviewCapabilitiesResponse
	// Failures are the first maxReportFailures failures, "<user>: <reason>".
	Failures []string
	// Started and Finished bound the sweep.
	Started, Finished time.Time
}

// Proto is the API form of r.
func (r *sweepReport) Proto() *iamflowv1.SweepCapabilitiesResponse {
	out := &iamflowv1.SweepCapabilitiesResponse{
		Domain:       r.Domain,
		DryRun:       r.DryRun,
		UsersChecked: r.Checked,
		UsersChanged: r.Changed,
		UsersFailed:  r.Failed,
		Changes:      r.Changes,
		Failures:     r.Failures,
	}
	if !r.Started.IsZero() {
		out.StartedAt = timestamppb.New(r.Started)
	}
	if !r.Finished.IsZero() {
		out.FinishedAt = timestamppb.New(r.Finished)
	}
	return out
}

// sweepState is the progress of the sweep running, or of the last one,
// shown in the status counters.
type sweepState struct {
	running                         atomic.Bool
	total, checked, changed, failed atomic.Int64
	completed                       atomic.Int64
	mu                              sync.Mutex
	domain                          string
}

func (st *sweepState) snapshot(out map[string]int64) {
	running := int64(0)
	if st.running.Load() {
		running = 1
	}
	out[counterSweepRunning] = running
	out[counterSweepTotal] = st.total.Load()
	out[counterSweepChecked] = st.checked.Load()
	out[counterSweepChanged] = st.changed.Load()
	out[counterSweepFailed] = st.failed.Load()
	out[counterSweeps] = st.completed.Load()
}

// sweepDomain applies the policy to every user of domain, page by page, and
// returns what it did; with dryRun it writes nothing and reports (and
// audits, with outcome dry_run) what it would change. Progress shows in
// Status while it runs (sweep_running, sweep_total, sweep_checked,
// sweep_changed, sweep_failed). Only one sweep runs at a time: another
// gets errSweepRunning. A user that cannot be set is counted and the sweep
// goes on; a listing that fails ends the sweep with an error and the
// partial report. The sweep stops when ctx ends. Memory stays bounded:
// users are not kept beyond their page, and the report keeps at most
// maxReportChanges changes and maxReportFailures failures.
func (s *Service) sweepDomain(ctx context.Context, domain string, dryRun bool) (*sweepReport, error) {
	dir := s.dirs[domain]
	if dir == nil {
		return nil, fmt.Errorf("sweep %q: %w (enforced: %v)", domain, errUnknownDomain, s.domains)
	}
	release, err := s.beginSweep(domain)
	if err != nil {
		return nil, err
	}
	defer release()

	rep := &sweepReport{Domain: domain, DryRun: dryRun, Started: s.kit.Now()}
	log := s.kit.Log().With("domain", domain, "dry_run", dryRun)
	s.countUsers(ctx, dir, rep, log)
	log.Info("sweep started", "total", rep.Total)

	c := cause{source: "sweep", dryRun: dryRun}
	for u, lerr := range dir.Users(ctx, s.policy.readsGroups()) {
		if lerr != nil {
			err = fmt.Errorf("sweep %s: list users after %d: %w", domain, rep.Checked, lerr)
			break
		}
		if err = s.sweepUser(ctx, dir, u, c, rep); err != nil {
			break
		}
	}
	return s.endSweep(rep, err, log)
}

// beginSweep claims the one sweep that may run at a time for domain and
// resets its progress; release ends the claim. A sweep already running is
// errSweepRunning, with its progress.
func (s *Service) beginSweep(domain string) (release func(), err error) {
	st := &s.sweep
	if !st.running.CompareAndSwap(false, true) {
		st.mu.Lock()
		running := st.domain
		st.mu.Unlock()
		return nil, fmt.Errorf("sweep %s: %w (domain %s, %d of %d users checked)", domain, errSweepRunning,
			running, st.checked.Load(), st.total.Load())
	}
	st.mu.Lock()
	st.domain = domain
	st.mu.Unlock()
	st.total.Store(0)
	st.checked.Store(0)
	st.changed.Store(0)
	st.failed.Store(0)
	s.metrics.sweepRunning.Set(1)
	return func() {
		s.metrics.sweepRunning.Set(0)
		st.running.Store(false)
	}, nil
}

// countUsers sets the sweep's total when the directory can count its users
// (else the total shows once the sweep is done).
func (s *Service) countUsers(ctx context.Context, dir Directory, rep *sweepReport, log *slog.Logger) {
	uc, ok := dir.(userCounter)
	if !ok {
		return
	}
	n, err := uc.CountUsers(ctx)
	if err != nil {
		log.Warn("sweep: cannot count users; the total shows once done", "error", err)
		return
	}
	rep.Total = int64(n)
	s.sweep.total.Store(rep.Total)
}

// sweepUser checks and enforces one user, counting it in the report. The
// error ends the sweep: only a context that ended does.
func (s *Service) sweepUser(ctx context.Context, dir Directory, u User, c cause, rep *sweepReport) error {
	st := &s.sweep
	rep.Checked++
	st.checked.Add(1)
	s.counters.checked.Add(1)
	s.metrics.sweepUsers.WithLabelValues(rep.Domain).Inc()
	chk := s.evaluate(rep.Domain, u)
	changed, werr := s.enforce(ctx, dir, chk, c)
	switch {
	case werr != nil:
		rep.Failed++
		st.failed.Add(1)
		if len(rep.Failures) < maxReportFailures {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %v", u.label(), werr))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sweep %s: %w", rep.Domain, ctx.Err())
		}
	case changed || (rep.DryRun && !chk.compliant()):
		rep.Changed++
		st.changed.Add(1)
		if len(rep.Changes) < maxReportChanges {
			rep.Changes = append(rep.Changes, chk.preview())
		}
	}
	return nil
}

// endSweep finishes the report: its total once known, the error that
// ended it (recorded as the service's last error), or the sweep counted
// as completed.
func (s *Service) endSweep(rep *sweepReport, err error, log *slog.Logger) (*sweepReport, error) {
	st := &s.sweep
	rep.Finished = s.kit.Now()
	if rep.Total == 0 || err == nil {
		rep.Total = max(rep.Total, rep.Checked)
		st.total.Store(rep.Total)
	}
	if err != nil {
		s.kit.Error(err)
		if len(rep.Failures) < maxReportFailures {
			rep.Failures = append(rep.Failures, err.Error())
		}
		return rep, err
	}
	st.completed.Add(1)
	log.Info("sweep finished", "checked", rep.Checked, "changed", rep.Changed, "failed", rep.Failed,
		"took", rep.Finished.Sub(rep.Started).Round(time.Millisecond))
	return rep, nil
}

// sweepAll sweeps every enforced domain, one at a time: the repair the
// sweep configuration schedules.
func (s *Service) sweepAll(ctx context.Context, why string) {
	for _, d := range s.domains {
		if ctx.Err() != nil {
			return
		}
		rep, err := s.sweepDomain(ctx, d, false)
		switch {
		case errors.Is(err, errSweepRunning):
			s.kit.Log().Info("sweep skipped: another sweep is running", "domain", d, "trigger", why)
		case err != nil && ctx.Err() == nil:
			s.kit.Log().Error("sweep failed", "domain", d, "trigger", why, "error", err)
		case err == nil:
			s.kit.Log().Info("sweep done", "domain", d, "trigger", why, "checked", rep.Checked, "changed", rep.Changed,
				"failed", rep.Failed, "took", rep.Finished.Sub(rep.Started).Round(time.Millisecond))
		}
	}
}
