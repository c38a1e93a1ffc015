package dbprovisioner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/ords"
)

// Errors of the service.
var (
	// errUnknownDatabase: no database of that name is configured.
	errUnknownDatabase = errors.New("unknown database")
	// errReconcileRunning: a reconcile of the database is running already.
	errReconcileRunning = errors.New("a reconcile of this database is running")
	// errUserGone: the event's user no longer exists and names no userName.
	errUserGone = errors.New("user gone and no userName known")
)

// cause says why a reconcile runs, for audit records and logs.
type cause struct {
	source    string // "event", "reconcile" or "api"
	eventID   string
	eventType string
	dryRun    bool
}

// userResult is what syncUser found and did.
type userResult struct {
	user    User
	view    UserView
	plan    Plan
	applied int
}

// syncUser reads one IAM user and their account and runs the plan (unless
// dry run). The account book says which account the user had: when the
// user is gone, that account follows as if it left every group; when the
// user was renamed, the old name's account does too (unless a user of that
// name exists now, whose own account it is).
func (s *Service) syncUser(ctx context.Context, r *dbRuntime, ref UserRef, c cause) (res userResult, err error) {
	ctx, span := s.kit.Tracer().Start(ctx, "dbprovisioner sync user", trace.WithAttributes(
		attribute.String("iamflow.database", r.cfg.Name), attribute.String("iamflow.user", ref.String()),
		attribute.String("iamflow.trigger", c.source)))
	defer func() { endSpan(span, err) }()

	if ref.ID != "" {
		var h *held
		if ctx, h, err = s.lockUser(ctx, r, ref.ID, c); err != nil {
			return res, err
		}
		defer func() { h.unlock(ctx, time.Time{}, err) }()
	}
	had, err := s.book.get(ctx, r.cfg.Name, ref.ID)
	if err != nil {
		return res, err
	}
	if res, err = s.syncOne(ctx, r, ref, had, c); err != nil || c.dryRun {
		return res, err
	}
	if res.view.Found && had != "" && !strings.EqualFold(had, res.user.UserName) {
		if _, err := s.syncOne(ctx, r, UserRef{Name: had}, "", c); err != nil {
			return res, fmt.Errorf("the account of %q, %s's name before: %w", had, res.user.UserName, err)
		}
	}
	switch {
	case res.view.Found && res.user.ID != "" && (r.m.wantsAccount(res.view) || res.view.Account != nil):
		err = s.book.put(ctx, r.cfg.Name, res.user.ID, res.user.UserName)
	case !res.view.Found && ref.ID != "":
		err = s.book.forget(ctx, r.cfg.Name, ref.ID)
	}
	return res, err
}

// syncOne is syncUser for one name: the user ref names, or, when it is
// gone, the user of the name it had (had, else the event's name).
//
// The account is read, planned and changed under its lease (see lock), so
// replicas of the service take turns on it. The domain is read before the
// lease is taken (the account's name comes from the userName); when
// another replica has since acted on a newer read of the domain, the user
// is read again under the lease, so an older read is never applied over a
// newer one.
func (s *Service) syncOne(ctx context.Context, r *dbRuntime, ref UserRef, had string, c cause) (res userResult, err error) {
	readAt := s.kit.Now()
	res.view, err = s.readIAMUser(ctx, r, ref, had)
	var acct ords.Identifier
	if err == nil {
		acct, err = r.m.accountName(res.view.User.UserName)
	}
	if err == nil {
		var h *held
		ctx, h, err = s.lock(ctx, r, acct, c)
		if err != nil {
			res.user = res.view.User
			return res, err
		}
		defer func() { h.unlock(ctx, readAt, err) }()
		if !h.fresh(readAt) {
			readAt = s.kit.Now()
			if res.view, err = s.readIAMUser(ctx, r, ref, had); err == nil {
				err = sameAccount(r, acct, res.view.User.UserName)
			}
		}
		if err == nil {
			err = s.readAccount(ctx, r, acct, &res.view)
		}
		if err == nil {
			res.plan, err = r.m.PlanUser(res.view)
		}
	}
	res.user = res.view.User
	if errors.Is(err, errUnsafeName) {
		if !r.m.wantsAccount(res.view) {
			// Outside the mapping (or gone): no account was ever made for a
			// name that cannot be one, so there is nothing to do.
			r.counters.skipped.Add(1)
			s.metrics.outcome(r.cfg.Name, c.source, "skipped")
			r.refusals.clear(res.user)
			return res, nil
		}
		r.counters.refused.Add(1)
		s.metrics.outcome(r.cfg.Name, c.source, "refused")
		s.refuse(ctx, r, res.user, err, c)
		return res, err
	}
	if err != nil {
		return res, leaseErr(ctx, err)
	}
	r.refusals.clear(res.user)
	for round := 0; ; round++ {
		res.applied, err = s.apply(ctx, r, res.plan, resourceOfUser(res.user), len(res.plan.Groups) > 0, c)
		if ords.Code(err) != ords.ORAUserConflict || round == maxReplans {
			return res, leaseErr(ctx, err)
		}
		// ORA-01920 on CREATE USER: the account was made since it was read
		// (by a person, or a process that takes no lease). Read it and
		// plan again.
		r.counters.replanned.Add(1)
		if err = s.readAccount(ctx, r, acct, &res.view); err == nil {
			if res.view.Account == nil {
				return res, s.nameTaken(ctx, r, acct)
			}
			res.plan, err = r.m.PlanUser(res.view)
		}
		if err != nil {
			return res, leaseErr(ctx, err)
		}
	}
}

// maxReplans bounds how often one sync plans an account again after
// finding it changed under its feet.
const maxReplans = 2

// sameAccount is nil when userName still maps to acct, and a retry
// otherwise (the user was renamed since the lease was taken: the other
// name's lease is the one to take).
func sameAccount(r *dbRuntime, acct ords.Identifier, userName string) error {
	now, err := r.m.accountName(userName)
	if err != nil {
		return err
	}
	if now.Name() != acct.Name() {
		return bus.Transient(fmt.Errorf("database %s: user renamed to %q while account %s was awaited: planning again", r.cfg.Name, userName, acct.Name()))
	}
	return nil
}

// nameTaken is the error of a CREATE USER refused with ORA-01920 for a
// name no account has: a role has it (a person must rename one or the
// other), or the account was dropped again meanwhile (retried).
func (s *Service) nameTaken(ctx context.Context, r *dbRuntime, acct ords.Identifier) error {
	if err := acquire(ctx, r.sem); err != nil {
		return err
	}
	isRole, err := r.db.RoleExists(ctx, acct)
	release(r.sem)
	switch {
	case err != nil:
		r.counters.failed.Add(1)
		return fmt.Errorf("database %s: read role %s: %w", r.cfg.Name, acct.Name(), err)
	case isRole:
		return bus.Permanent(fmt.Errorf("database %s: account %s cannot be created: a role has that name", r.cfg.Name, acct.Name()))
	}
	return bus.Transient(fmt.Errorf("database %s: account %s was created and dropped again meanwhile: planning again", r.cfg.Name, acct.Name()))
}

// refuse records, once per user and reason, that a user in a mapped group
// cannot have an account: in the database's status and in the audit trail.
// It is not retried or dead-lettered per event: a person must rename the
// user or change the mapping, and the status says so until then.
func (s *Service) refuse(ctx context.Context, r *dbRuntime, u User, err error, c cause) {
	if !r.refusals.add(u, err.Error(), s.kit.Now()) || c.dryRun {
		return
	}
	s.kit.Log().WarnContext(ctx, "user in a mapped group cannot have a database account", "database", r.cfg.Name,
		"user", u.UserName, "error", err)
	rec := s.auditRecord(r, Plan{IAMName: u.UserName, Subject: u.UserName}, Step{Action: actionRefuse}, resourceOfUser(u), c)
	rec.Outcome, rec.Reason = audit.OutcomeFailed, err.Error()+"; rename the user or change the mapping"
	s.record(ctx, r, rec)
}

// inspectUser reads the user's groups and the account's state (without
// a lease: for previews, which change nothing).
func (s *Service) inspectUser(ctx context.Context, r *dbRuntime, ref UserRef, had string) (UserView, error) {
	v, err := s.readIAMUser(ctx, r, ref, had)
	if err != nil {
		return v, err
	}
	acct, err := r.m.accountName(v.User.UserName)
	if err != nil {
		return v, err // unsafe: nothing is read or run
	}
	return v, s.readAccount(ctx, r, acct, &v)
}

// readIAMUser reads the user from the domain. A user gone from the domain
// is known by the name its account was made for (had) or, for an account
// made before the book kept it, by the event's name.
func (s *Service) readIAMUser(ctx context.Context, r *dbRuntime, ref UserRef, had string) (UserView, error) {
	var v UserView
	u, err := r.dir.ReadUser(ctx, ref)
	if errors.Is(err, ErrNotFound) && ref.ID != "" {
		if had != "" {
			ref.Name = had
		}
		if ref.Name != "" {
			// The id is gone. A user of that name may exist now (re-created
			// since, or the event is stale or forged): the domain decides,
			// not the event.
			u, err = r.dir.ReadUser(ctx, UserRef{Name: ref.Name})
		}
	}
	switch {
	case err == nil:
		v.User, v.Found = u, true
	case errors.Is(err, ErrNotFound) && ref.Name != "":
		// No user of that name exists: its account, if any, follows as
		// if it left every group (the plan touches only an account that
		// is IAM_PRINCIPAL_NAME=<domain>/<that name>).
		v.User = User{UserName: ref.Name}
	case errors.Is(err, ErrNotFound):
		return v, fmt.Errorf("user %s: %w: %w", ref, errUserGone, err)
	default:
		r.counters.failed.Add(1)
		return v, fmt.Errorf("read user %s in %s: %w", ref, r.cfg.Domain, err)
	}
	return v, nil
}

// readAccount reads account acct and its roles into v (Account nil when
// it does not exist).
func (s *Service) readAccount(ctx context.Context, r *dbRuntime, acct ords.Identifier, v *UserView) error {
	v.Account, v.Roles = nil, nil
	if err := acquire(ctx, r.sem); err != nil {
		return err
	}
	defer release(r.sem)
	r.counters.checked.Add(1)
	dbu, found, err := r.db.UserByName(ctx, acct)
	if err != nil {
		r.counters.failed.Add(1)
		return fmt.Errorf("database %s: read account %s: %w", r.cfg.Name, acct.Name(), err)
	}
	if !found {
		return nil
	}
	v.Account = &dbu
	if v.Roles, err = r.db.RolesOf(ctx, acct); err != nil {
		r.counters.failed.Add(1)
		return fmt.Errorf("database %s: read roles of %s: %w", r.cfg.Name, acct.Name(), err)
	}
	return nil
}

// syncGroup ensures mapped group i's objects (shared, global_role modes).
func (s *Service) syncGroup(ctx context.Context, r *dbRuntime, i int, c cause) (p Plan, err error) {
	subject := r.m.groupSubject(i)
	ctx, span := s.kit.Tracer().Start(ctx, "dbprovisioner sync group", trace.WithAttributes(
		attribute.String("iamflow.database", r.cfg.Name), attribute.String("iamflow.subject", subject.Name()),
		attribute.String("iamflow.trigger", c.source)))
	defer func() { endSpan(span, err) }()
	ctx, h, err := s.lock(ctx, r, subject, c)
	if err != nil {
		return Plan{}, err
	}
	defer func() { h.unlock(ctx, time.Time{}, err) }()
	var v groupView
	if err := func() error {
		if err := acquire(ctx, r.sem); err != nil {
			return err
		}
		defer release(r.sem)
		r.counters.checked.Add(1)
		if r.m.Mode() == modeGlobalRole {
			ok, err := r.db.RoleExists(ctx, subject)
			v.RoleExists = ok
			return err
		}
		u, found, err := r.db.UserByName(ctx, subject)
		if err != nil || !found {
			return err
		}
		v.Account = &u
		v.Roles, err = r.db.RolesOf(ctx, subject)
		return err
	}(); err != nil {
		r.counters.failed.Add(1)
		return Plan{}, fmt.Errorf("database %s: read %s: %w", r.cfg.Name, subject.Name(), err)
	}
	p, err = r.m.PlanGroup(i, v)
	if err != nil {
		return p, err
	}
	group := r.m.Groups()[i]
	_, err = s.apply(ctx, r, p, &iamflowv1.Resource{Name: group, Type: "Group"}, true, c)
	return p, leaseErr(ctx, err)
}

// apply runs a plan's statements in order (none in a dry run), one audit
// record each; it stops at the first failure, which the next reconcile
// plans around. A skipped plan is audited when the subject would otherwise
// be managed (inScope).
func (s *Service) apply(ctx context.Context, r *dbRuntime, p Plan, related *iamflowv1.Resource, inScope bool, c cause) (int, error) {
	if p.Skipped != "" {
		r.counters.skipped.Add(1)
		s.metrics.outcome(r.cfg.Name, c.source, "skipped")
		if inScope && !c.dryRun {
			rec := s.auditRecord(r, p, Step{Action: actionSkip}, related, c)
			rec.Outcome, rec.Reason = audit.OutcomeSkipped, p.Skipped
			s.record(ctx, r, rec)
		}
		return 0, nil
	}
	if len(p.Steps) == 0 {
		r.counters.inLine.Add(1)
		s.metrics.outcome(r.cfg.Name, c.source, "in_line")
		return 0, nil
	}
	if c.dryRun {
		s.metrics.outcome(r.cfg.Name, c.source, "dry_run")
		return 0, nil
	}
	if err := acquire(ctx, r.sem); err != nil {
		return 0, err
	}
	defer release(r.sem)
	for i, st := range p.Steps {
		rec := s.auditRecord(r, p, st, related, c)
		if err := r.db.Exec(ctx, st.Statement); err != nil {
			err = fmt.Errorf("database %s: %s (%s): %w", r.cfg.Name, st.Statement.Text, st.Action, err)
			r.counters.failed.Add(1)
			s.metrics.statement(r.cfg.Name, st.Action, "failed")
			s.metrics.outcome(r.cfg.Name, c.source, "failed")
			rec.Outcome = audit.OutcomeFailed
			rec.Reason += "; failed: " + err.Error()
			s.record(ctx, r, rec)
			return i, err
		}
		r.counters.statements.Add(1)
		s.metrics.statement(r.cfg.Name, st.Action, "done")
		s.record(ctx, r, rec)
	}
	r.counters.changed.Add(1)
	s.metrics.outcome(r.cfg.Name, c.source, "changed")
	s.kit.Log().InfoContext(ctx, "database account changed", "database", r.cfg.Name, "subject", p.Subject, "iam", p.IAMName,
		"statements", len(p.Steps), "trigger", c.source, "event", c.eventID)
	return len(p.Steps), nil
}

// auditRecord describes one statement (outcome done; the caller adjusts it).
// Records carry names and SQL text built from names, never secrets.
func (s *Service) auditRecord(r *dbRuntime, p Plan, st Step, related *iamflowv1.Resource, c cause) *iamflowv1.AuditRecord {
	typ := "DatabaseUser"
	if r.m.Mode() == modeGlobalRole {
		typ = "DatabaseRole"
	}
	var reason strings.Builder
	switch {
	case len(p.Groups) > 0 && r.m.Mode() == modeUser:
		fmt.Fprintf(&reason, "member of %s", strings.Join(p.Groups, ", "))
	case r.m.Mode() == modeUser:
		fmt.Fprintf(&reason, "in no mapped group (on_leave %s)", r.cfg.OnLeave)
	default:
		fmt.Fprintf(&reason, "group %s (%s)", p.IAMName, r.m.Mode())
	}
	switch c.source {
	case "event":
		fmt.Fprintf(&reason, " (%s)", c.eventType)
	case "reconcile":
		reason.WriteString(" (reconcile)")
	case "api":
		reason.WriteString(" (admin API)")
	}
	after := map[string]string{}
	if st.Statement.Text != "" {
		after["statement"] = st.Statement.Text
	}
	if st.Role != "" {
		after["role"] = st.Role
	}
	return &iamflowv1.AuditRecord{
		Action:   st.Action,
		Domain:   r.cfg.Domain,
		Target:   r.cfg.Name,
		Resource: &iamflowv1.Resource{Name: p.Subject, Type: typ},
		Related:  related,
		Outcome:  audit.OutcomeDone,
		Reason:   reason.String(),
		After:    after,
		EventId:  c.eventID,
	}
}

func resourceOfUser(u User) *iamflowv1.Resource {
	return &iamflowv1.Resource{Id: u.ID, Name: u.UserName, Type: "User"}
}

// record stores an audit record; one that cannot be stored is logged and
// counted, and is the database's last error too.
func (s *Service) record(ctx context.Context, r *dbRuntime, rec *iamflowv1.AuditRecord) {
	if err := s.kit.Audit(ctx, rec, "database", r.cfg.Name, "subject", rec.GetResource().GetName(), "action", rec.Action, "outcome", rec.Outcome); err != nil {
		r.counters.auditFailed.Add(1)
		r.last.Error(err, s.kit.Now())
	}
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func release(sem chan struct{}) { <-sem }

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
