package capabilities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
)

// actionSetCapabilities is the action of the service's audit records.
const actionSetCapabilities = "set_capabilities"

// cause says why a reconcile runs, for audit records and logs.
type cause struct {
	source    string // "event", "sweep" or "api"
	eventID   string
	eventType string
	actor     string
	drift     bool // an event said the flags changed: differences are drift
	dryRun    bool
}

// check is one user's state against the policy.
type check struct {
	domain   string
	user     User
	decision decision
	// desired is the flags the user should have: the current ones with
	// the policy's overlaid, so flags the policy does not manage keep their
	// values.
	desired Flags
	// changes lists the flags that differ; empty when the user complies.
	changes []string
}

func (c check) compliant() bool { return len(c.changes) == 0 }

// preview builds the API form of c.
func (c check) preview() *iamflowv1.PreviewCapabilitiesResponse {
	return &iamflowv1.PreviewCapabilitiesResponse{
		UserId:   c.user.ID,
		UserName: c.user.UserName,
		Current:  c.user.Flags.Proto(),
		Desired:  c.desired.Proto(),
		Rules:    []string{c.decision.Rule},
		Changes:  c.changes,
	}
}

// inspect reads the user and decides, changing nothing.
func (s *Service) inspect(ctx context.Context, domain string, dir Directory, ref UserRef) (check, error) {
	u, err := dir.ReadUser(ctx, ref, s.policy.readsGroups())
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			s.counters.notFound.Add(1)
		} else {
			s.counters.failed.Add(1)
		}
		return check{}, fmt.Errorf("read user %s in %s: %w", ref, domain, err)
	}
	s.counters.checked.Add(1)
	return s.evaluate(domain, u), nil
}

// evaluate decides for a user already read.
func (s *Service) evaluate(domain string, u User) check {
	d := s.policy.decide(domain, u)
	return check{domain: domain, user: u, decision: d, desired: u.Flags.overlay(d.Target), changes: u.Flags.changes(d.Target)}
}

// reconcile reads one user and makes its flags comply, returning what it
// found and whether it wrote.
func (s *Service) reconcile(ctx context.Context, domain string, dir Directory, ref UserRef, c cause) (_ check, changed bool, err error) {
	ctx, span := s.kit.Tracer().Start(ctx, "capabilities reconcile", trace.WithAttributes(
		attribute.String("iamflow.domain", domain), attribute.String("iamflow.user", ref.String()),
		attribute.String("iamflow.trigger", c.source)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	chk, err := s.inspect(ctx, domain, dir, ref)
	if err != nil {
		s.metrics.outcome(c.source, outcomeOf(err))
		return check{}, false, err
	}
	span.SetAttributes(attribute.String("iamflow.rule", chk.decision.Rule), attribute.Int("iamflow.changes", len(chk.changes)))
	changed, err = s.enforce(ctx, dir, chk, c)
	return chk, changed, err
}

// enforce writes chk.desired when the user does not comply (unless dry
// run) and records it. It reports whether it wrote.
func (s *Service) enforce(ctx context.Context, dir Directory, chk check, c cause) (bool, error) {
	if chk.compliant() {
		s.counters.compliant.Add(1)
		s.metrics.outcome(c.source, "compliant")
		return false, nil
	}
	if c.drift {
		s.counters.drift.Add(1)
	}
	rec := s.auditRecord(chk, c)
	if c.dryRun {
		rec.Outcome = audit.OutcomeDryRun
		s.metrics.outcome(c.source, "dry_run")
		s.record(ctx, rec)
		return false, nil
	}
	if err := dir.SetCapabilities(ctx, chk.user.ID, chk.desired); err != nil {
		err = fmt.Errorf("set capabilities of %s in %s: %w", chk.user.label(), chk.domain, err)
		if errors.Is(err, ErrForbidden) {
			err = fmt.Errorf("%w; %s", err, forbiddenHint(chk.domain))
			s.kit.Log().ErrorContext(ctx, "capabilities refused by the domain: an app role is missing", "domain", chk.domain,
				"user", chk.user.label(), "error", err)
		}
		s.counters.failed.Add(1)
		s.metrics.outcome(c.source, outcomeOf(err))
		rec.Outcome = audit.OutcomeFailed
		rec.Reason += "; failed: " + err.Error()
		s.record(ctx, rec)
		return false, err
	}
	s.counters.changed.Add(1)
	s.metrics.outcome(c.source, "changed")
	s.record(ctx, rec)
	s.kit.Log().InfoContext(ctx, "capabilities set", "domain", chk.domain, "user", chk.user.label(), "rule", chk.decision.Rule,
		"changes", chk.changes, "trigger", c.source, "event", c.eventID, "drift", c.drift)
	return true, nil
}

// forbiddenHint says what to check when a domain answers 403 to
// PUT /admin/v1/UserCapabilitiesChanger. Oracle's AppRole Permissions tables
// list that endpoint for no role, so which role allows it is not documented.
func forbiddenHint(domain string) string {
	return fmt.Sprintf("the domain refused PUT /admin/v1/UserCapabilitiesChanger (403): check the app roles of iamflow's "+
		"application in domain %q; Oracle documents no role for this endpoint, User Administrator is the one to try "+
		"(docs/oci-setup.md, \"UserCapabilitiesChanger\")", domain)
}

// auditRecord describes the change chk calls for (outcome done; the caller
// adjusts it). Records carry flag values and names, never secrets.
func (s *Service) auditRecord(chk check, c cause) *iamflowv1.AuditRecord {
	var reason strings.Builder
	if c.drift {
		fmt.Fprintf(&reason, "drift: %s", strings.Join(chk.changes, ", "))
		if c.eventType != "" {
			fmt.Fprintf(&reason, " after %s", c.eventType)
		}
		if c.actor != "" {
			fmt.Fprintf(&reason, " by %s", c.actor)
		}
		reason.WriteString("; ")
	}
	if chk.decision.Rule == defaultRuleName {
		reason.WriteString("default flags")
	} else {
		fmt.Fprintf(&reason, "rule %q", chk.decision.Rule)
	}
	switch c.source {
	case "sweep":
		reason.WriteString(" (sweep)")
	case "api":
		reason.WriteString(" (admin API)")
	case "event":
		if !c.drift && c.eventType != "" {
			fmt.Fprintf(&reason, " (%s)", c.eventType)
		}
	}
	return &iamflowv1.AuditRecord{
		Action:   actionSetCapabilities,
		Domain:   chk.domain,
		Resource: &iamflowv1.Resource{Id: chk.user.ID, Ocid: chk.user.OCID, Name: chk.user.UserName, Type: "User"},
		Outcome:  audit.OutcomeDone,
		Reason:   reason.String(),
		Before:   chk.user.Flags.auditValues(),
		After:    chk.desired.auditValues(),
		EventId:  c.eventID,
	}
}

// record stores an audit record. A record that cannot be stored is logged
// and counted: the change it describes is made already, and JetStream
// being unreachable shows in the consumer too.
func (s *Service) record(ctx context.Context, rec *iamflowv1.AuditRecord) {
	if s.kit.Audit(ctx, rec, "domain", rec.Domain, "user", rec.GetResource().GetName(), "outcome", rec.Outcome, "reason", rec.Reason) != nil {
		s.counters.auditFailed.Add(1)
	}
}

// outcomeOf names a failure for metrics.
func outcomeOf(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case bus.IsPermanent(err):
		return "failed_permanent"
	}
	return "failed"
}
