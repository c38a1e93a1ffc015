package dbprovisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/ords"
)

// Report bounds.
const (
	maxReportStatements = 1000
	maxReportLines      = 100
)

// reconcileReport is what a full reconcile of one database did (or, in a
// dry run, would do).
type reconcileReport struct {
	Database string
	DryRun   bool
	// Checked counts users (user mode) or groups checked; Changed those that
	// needed statements; Failed those that failed; Skipped those left alone.
	Checked, Changed, Failed, Skipped int
	// Statements run (or that would run), at most 1000.
	Statements []reportStatement
	// Failures and Skips, "<name>: <reason>", at most 100 each.
	Failures, Skips   []string
	Started, Finished time.Time
	// Accounts are the accounts checked (user mode) against the mapping,
	// at most 1000.
	Accounts []*iamflowv1.DatabaseAccount
}

// reportStatement is one statement of a report.
type reportStatement struct {
	Subject, Action, SQL, IAMName string
}

func (rep *reconcileReport) addPlan(p Plan) {
	if len(p.Steps) > 0 {
		rep.Changed++
	}
	for _, st := range p.Steps {
		if len(rep.Statements) < maxReportStatements {
			rep.Statements = append(rep.Statements, reportStatement{Subject: p.Subject, Action: st.Action, SQL: st.Statement.Text, IAMName: p.IAMName})
		}
	}
	if p.Skipped != "" {
		rep.Skipped++
		rep.skip(p.IAMName, p.Skipped)
	}
}

// addAccount records one checked account (in user mode) as found.
func (rep *reconcileReport) addAccount(v UserView, p Plan) {
	if len(rep.Accounts) >= maxReportStatements || (v.Account == nil && len(p.Groups) == 0) {
		return // at most 1000; a user without account who needs none is not one
	}
	a := &iamflowv1.DatabaseAccount{Account: p.Subject, IamUser: p.IAMName, Groups: p.Groups,
		InStep: len(p.Steps) == 0, Skipped: p.Skipped, GrantedRoles: slices.Sorted(slices.Values(v.Roles))}
	if v.Account != nil {
		a.Status = v.Account.Status
	}
	rep.Accounts = append(rep.Accounts, a)
}

func (rep *reconcileReport) fail(name string, err error) {
	rep.Failed++
	if len(rep.Failures) < maxReportLines {
		rep.Failures = append(rep.Failures, name+": "+err.Error())
	}
}

func (rep *reconcileReport) skip(name, why string) {
	if len(rep.Skips) < maxReportLines {
		rep.Skips = append(rep.Skips, name+": "+why)
	}
}

// Reconcile brings one database in line with IAM: in user mode every member
// of every mapped group and every account iamflow created in the database
// (external_name IAM_PRINCIPAL_NAME=<principal_domain>/...), so users who
// left every group, or were deleted, are locked (or dropped); in shared and
// global_role modes every mapped group's objects. With dryRun nothing is
// run and the report lists the statements that would be. One reconcile per
// database runs at a time (errReconcileRunning). A failing user does not
// stop the reconcile; an error is returned only when the users to check
// cannot be listed.
func (s *Service) Reconcile(ctx context.Context, database string, dryRun bool) (reconcileReport, error) {
	r := s.byName[database]
	if r == nil {
		return reconcileReport{}, fmt.Errorf("%w: %q", errUnknownDatabase, database)
	}
	if !r.reconciling.CompareAndSwap(false, true) {
		return reconcileReport{}, fmt.Errorf("database %s: %w", database, errReconcileRunning)
	}
	defer r.reconciling.Store(false)

	rep := reconcileReport{Database: database, DryRun: dryRun, Started: s.kit.Now()}
	c := cause{source: "reconcile", dryRun: dryRun}
	var err error
	if r.m.Mode() == modeUser {
		err = s.reconcileUsers(ctx, r, c, &rep)
	} else {
		for i := range r.m.groupCount() {
			if ctx.Err() != nil {
				err = ctx.Err()
				break
			}
			rep.Checked++
			p, gerr := s.syncGroup(ctx, r, i, c)
			if gerr != nil {
				rep.fail(r.m.Groups()[i], gerr)
				continue
			}
			rep.addPlan(p)
		}
	}
	rep.Finished = s.kit.Now()
	if err != nil {
		s.recordError(r, err)
		return rep, err
	}
	if !dryRun {
		r.counters.reconciles.Add(1)
	}
	cp := rep
	r.lastReport.Store(&cp)
	return rep, nil
}

func (s *Service) reconcileUsers(ctx context.Context, r *dbRuntime, c cause, rep *reconcileReport) error {
	done := map[string]bool{} // lower-case userNames and "id:<id>" synced already
	sync := func(ref UserRef) {
		rep.Checked++
		res, err := s.syncUser(ctx, r, ref, c)
		name := res.view.User.UserName
		if name != "" {
			done[strings.ToLower(name)] = true
		} else {
			name = ref.String()
		}
		if err != nil {
			rep.fail(name, err)
			return
		}
		rep.addPlan(res.plan)
		rep.addAccount(res.view, res.plan)
	}
	// Every member of every mapped group...
	for _, g := range r.m.Groups() {
		for ref, err := range r.dir.GroupMembers(ctx, g) {
			if errors.Is(err, ErrNotFound) {
				rep.skip(g, "no such group in domain "+r.cfg.Domain)
				break
			}
			if err != nil {
				return fmt.Errorf("database %s: list members of %q: %w", r.cfg.Name, g, err)
			}
			key := "id:" + ref.ID
			if ref.ID == "" {
				key = strings.ToLower(ref.Name)
			}
			if done[key] {
				continue
			}
			done[key] = true
			if ctx.Err() != nil {
				return ctx.Err()
			}
			sync(ref)
		}
	}
	// ... and every account iamflow created, whatever its user's groups now.
	pattern, err := r.m.principalPattern()
	if err != nil {
		return err
	}
	if err := acquire(ctx, r.sem); err != nil {
		return err
	}
	accounts, err := r.db.MappedUsers(ctx, pattern)
	release(r.sem)
	if err != nil {
		return fmt.Errorf("database %s: list accounts: %w", r.cfg.Name, err)
	}
	for _, a := range accounts {
		g, err := ords.ParseGlobalName(a.ExternalName)
		if err != nil || g.Kind() != ords.GlobalKindPrincipal || !strings.EqualFold(g.Domain(), r.cfg.iamDomain()) {
			continue // '_' is a LIKE wildcard: another domain's account
		}
		if done[strings.ToLower(g.Name())] {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sync(UserRef{Name: g.Name()})
	}
	return nil
}

// preview reads one IAM user and their account in one database and returns
// what a reconcile would run, changing nothing.
func (s *Service) preview(ctx context.Context, database string, ref UserRef) (UserView, Plan, error) {
	r := s.byName[database]
	if r == nil {
		return UserView{}, Plan{}, fmt.Errorf("%w: %q", errUnknownDatabase, database)
	}
	if r.m.Mode() != modeUser {
		return UserView{}, Plan{}, fmt.Errorf("database %s: mode %s has no per-user accounts: %w", database, r.m.Mode(), ErrPermanent)
	}
	had, err := s.book.get(ctx, r.cfg.Name, ref.ID)
	if err != nil {
		return UserView{}, Plan{}, err
	}
	v, err := s.inspectUser(ctx, r, ref, had)
	if err != nil {
		return v, Plan{}, err
	}
	p, err := r.m.PlanUser(v)
	return v, p, err
}

// reconcileAll reconciles every database, one at a time: the repair the
// reconcile configuration schedules.
func (s *Service) reconcileAll(ctx context.Context, why string) {
	for _, r := range s.dbs {
		if ctx.Err() != nil {
			return
		}
		rep, err := s.Reconcile(ctx, r.cfg.Name, false)
		switch {
		case errors.Is(err, errReconcileRunning):
			s.kit.Log().Info("reconcile skipped: another is running", "database", r.cfg.Name, "trigger", why)
		case err != nil && ctx.Err() == nil:
			s.kit.Log().Error("reconcile failed", "database", r.cfg.Name, "trigger", why, "error", err)
		case err == nil:
			s.kit.Log().Info("reconcile done", "database", r.cfg.Name, "trigger", why, "checked", rep.Checked,
				"changed", rep.Changed, "failed", rep.Failed, "skipped", rep.Skipped,
				"took", rep.Finished.Sub(rep.Started).Round(time.Millisecond))
		}
	}
}
