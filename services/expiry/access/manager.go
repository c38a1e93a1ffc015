package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// Granter is what the workflow needs of the expiry service: grants are its
// to make, extend and end.
type Granter interface {
	// Grant adds user (a userName) to the temporary group for d.
	Grant(ctx context.Context, domain, group, user string, d time.Duration, requester, reason string) (*iamflowv1.Grant, error)
	// Extend moves an active grant's deadline to d from now.
	Extend(ctx context.Context, grantID string, d time.Duration, requester, reason string) (*iamflowv1.Grant, error)
	// GetGrant reads a grant.
	GetGrant(ctx context.Context, id string) (*iamflowv1.Grant, error)
	// OpenGrant returns the user's active grant of the group, nil if none.
	OpenGrant(ctx context.Context, domain, group, user string) (*iamflowv1.Grant, error)
}

// Manager runs the workflow. Create it with New; it is safe for concurrent
// use by several goroutines and several replicas sharing the bucket.
type Manager struct {
	cfg    Config
	b      *bus.Bus
	store  *store
	notify *notifier
	grants Granter
	audit  servicekit.Auditor
	log    *slog.Logger
	now    func() time.Time
}

// New opens the requests bucket and the notification stream. cfg must have
// been validated (Config.Validate). Of the kit's options it uses the logger,
// the clock and the audit writer (default: an audit.Writer recording as
// AuditService).
func New(ctx context.Context, cfg Config, b *bus.Bus, g Granter, opts ...servicekit.Option) (*Manager, error) {
	k, err := servicekit.New(AuditService, b, opts...)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, b)
	if err != nil {
		return nil, err
	}
	n, err := newNotifier(ctx, b, cfg.Notify, notifyOptions{now: k.Clock()})
	if err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, b: b, store: st, notify: n, grants: g, audit: k.Auditor(), log: k.Log(), now: k.Clock()}, nil
}

// Run delivers notifications and scans requests until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	var errc chan error // the notification consumer's end; nil without sinks
	if len(m.notify.sinks) > 0 {
		c, err := m.b.Consumer(ctx, m.notify.consumerConfig(), m.notify.handle)
		if err != nil {
			return fmt.Errorf("access: notification consumer: %w", err)
		}
		errc = make(chan error, 1)
		go func() { errc <- c.Run(ctx) }()
	}
	t := time.NewTicker(m.cfg.ScanInterval)
	defer t.Stop()
	for {
		m.Scan(ctx)
		select {
		case <-ctx.Done():
			if errc == nil {
				return nil
			}
			return <-errc
		case err := <-errc:
			if err == nil && ctx.Err() == nil {
				err = errors.New("access: the notification consumer stopped")
			}
			return err
		case <-t.C:
		}
	}
}

// RequestInput is what a person asks for.
type RequestInput struct {
	Domain, Group  string
	Duration       time.Duration
	Reason, Ticket string
	// User, for operators only: whom the request is for.
	User string
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Request records a request, approving it at once when the policy says
// the requester is auto-approved.
func (m *Manager) Request(ctx context.Context, who Person, in RequestInput) (*iamflowv1.AccessRequest, error) {
	p, ok := m.cfg.policy(in.Domain, in.Group)
	if !ok {
		return nil, refuse(CodeNoPolicy, "%s cannot be requested: no access policy names it%s", in.Group, m.groupsHint(who))
	}
	user := who.UserName
	if who.Operator {
		if in.User == "" {
			return nil, refuse(CodeInvalid, "an operator requests for a user: give user")
		}
		user = in.User
	} else if in.User != "" && !strings.EqualFold(in.User, who.UserName) {
		return nil, refuse(CodeNotYours, "%s may request only for themselves", who.Name())
	}
	d, err := p.check(who, in.Duration, in.Reason, in.Ticket)
	if err != nil {
		return nil, err
	}
	now := m.now()
	r := &iamflowv1.AccessRequest{
		Id: newRequestID(), Domain: p.Domain, Group: p.Group, UserName: user, Requester: who.Name(),
		Duration: durationpb.New(d), Reason: in.Reason, Ticket: in.Ticket, State: iamflowv1.RequestState_REQUEST_STATE_PENDING,
		CreatedAt: timestamppb.New(now), DecideBy: timestamppb.New(now.Add(p.DecideWithin)), ApprovalsRequired: int32(p.Approvals),
	}
	if who.UserName == user {
		r.UserId = who.UserID
	}
	open, err := m.grants.OpenGrant(ctx, p.Domain, p.Group, user)
	if err != nil {
		return nil, fmt.Errorf("request %s for %s: %w", p.Group, user, err)
	}
	if open != nil {
		if !p.Extend {
			return nil, refuse(CodeDuplicate, "%s already holds grant %s of %s until %s; the policy does not allow extensions",
				user, open.Id, p.Group, open.ExpiresAt.AsTime().UTC().Format(time.RFC3339))
		}
		r.Extension, r.GrantId, r.ExpiresAt = true, open.Id, open.ExpiresAt
	}
	other, err := m.store.claim(ctx, r)
	if err != nil {
		return nil, err
	}
	if other != "" {
		return nil, refuse(CodeDuplicate, "%s already has open request %s for %s", user, other, p.Group)
	}
	rec := &record{r: r}
	rev, err := m.store.create(ctx, rec)
	if err != nil {
		m.store.release(ctx, r)
		return nil, err
	}
	m.log.InfoContext(ctx, "access requested", "request", r.Id, "domain", r.Domain, "group", r.Group, "user", user,
		"requester", r.Requester, "duration", d.String(), "extension", r.Extension)
	m.announce(ctx, StepRequested, r)
	if !who.Operator && p.AutoApprove.Has(who) {
		rec.r.Decisions = append(rec.r.Decisions, &iamflowv1.Decision{By: "policy:auto_approve", Approved: true,
			Reason: "requester is auto-approved by the policy", At: timestamppb.New(m.now())})
		rec.r.State = iamflowv1.RequestState_REQUEST_STATE_APPROVED
		if _, err := m.store.update(ctx, rec, rev); err != nil {
			return rec.r, err // still pending: an approver decides
		}
		m.announce(ctx, StepApproved, rec.r)
		return m.activate(ctx, rec.r.Id)
	}
	return r, nil
}

// decide applies fn to a pending request under compare-and-set, reading
// again when another replica or approver changed it meanwhile.
func (m *Manager) decide(ctx context.Context, id string, fn func(*record, *Policy) error) (*record, error) {
	for attempt := 0; ; attempt++ {
		rec, rev, err := m.store.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			return nil, refuse(CodeNotFound, "no request %s", id)
		}
		p, ok := m.cfg.policy(rec.r.Domain, rec.r.Group)
		if !ok {
			return nil, refuse(CodeNoPolicy, "request %s: no access policy names %s any more", id, rec.r.Group)
		}
		if rec.r.State != iamflowv1.RequestState_REQUEST_STATE_PENDING {
			return nil, refuse(CodeAlreadyDecided, "request %s is %s", id, stateName(rec.r.State))
		}
		if err := fn(rec, p); err != nil {
			return nil, err
		}
		if _, err = m.store.update(ctx, rec, rev); errors.Is(err, errConflict) && attempt < 5 {
			continue
		}
		return rec, err
	}
}

// Approve records who's approval; with enough of them the request is
// granted.
func (m *Manager) Approve(ctx context.Context, who Person, id, reason string) (*iamflowv1.AccessRequest, error) {
	rec, err := m.decide(ctx, id, func(rec *record, p *Policy) error {
		if err := p.mayDecide(who, rec.r.Requester); err != nil {
			return err
		}
		approvals := 0
		for _, d := range rec.r.Decisions {
			if d.Approved && strings.EqualFold(d.By, who.Name()) && !who.Operator {
				return refuse(CodeAlreadyApproved, "%s approved request %s already", who.Name(), id)
			}
			if d.Approved {
				approvals++
			}
		}
		rec.r.Decisions = append(rec.r.Decisions, &iamflowv1.Decision{By: who.Name(), Approved: true, Reason: reason, At: timestamppb.New(m.now())})
		if approvals+1 >= int(rec.r.ApprovalsRequired) || who.Operator {
			rec.r.State = iamflowv1.RequestState_REQUEST_STATE_APPROVED
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.log.InfoContext(ctx, "access request approved", "request", id, "by", who.Name(), "state", stateName(rec.r.State))
	if rec.r.State != iamflowv1.RequestState_REQUEST_STATE_APPROVED {
		return rec.r, nil // more approvals needed
	}
	m.announce(ctx, StepApproved, rec.r)
	return m.activate(ctx, id)
}

// Deny refuses a pending request.
func (m *Manager) Deny(ctx context.Context, who Person, id, reason string) (*iamflowv1.AccessRequest, error) {
	rec, err := m.decide(ctx, id, func(rec *record, p *Policy) error {
		if err := p.mayDecide(who, rec.r.Requester); err != nil {
			return err
		}
		if strings.TrimSpace(reason) == "" {
			return refuse(CodeInvalid, "a denial needs a reason (--reason)")
		}
		rec.r.Decisions = append(rec.r.Decisions, &iamflowv1.Decision{By: who.Name(), Reason: reason, At: timestamppb.New(m.now())})
		rec.r.State, rec.r.EndedAt = iamflowv1.RequestState_REQUEST_STATE_DENIED, timestamppb.New(m.now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.store.release(ctx, rec.r)
	m.log.InfoContext(ctx, "access request denied", "request", id, "by", who.Name())
	m.announce(ctx, StepDenied, rec.r)
	return rec.r, nil
}

// Cancel withdraws a pending request: its requester's, or any for an operator.
func (m *Manager) Cancel(ctx context.Context, who Person, id, reason string) (*iamflowv1.AccessRequest, error) {
	rec, err := m.decide(ctx, id, func(rec *record, _ *Policy) error {
		if !who.Operator && !strings.EqualFold(rec.r.Requester, who.UserName) {
			return refuse(CodeNotYours, "request %s is %s's; only they (or an operator) may cancel it", id, rec.r.Requester)
		}
		rec.r.Decisions = append(rec.r.Decisions, &iamflowv1.Decision{By: who.Name(), Reason: orDash(reason), At: timestamppb.New(m.now())})
		rec.r.State, rec.r.EndedAt = iamflowv1.RequestState_REQUEST_STATE_CANCELLED, timestamppb.New(m.now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.store.release(ctx, rec.r)
	m.announce(ctx, StepCancelled, rec.r)
	return rec.r, nil
}

// activate turns an approved request into its grant (or extension).
func (m *Manager) activate(ctx context.Context, id string) (*iamflowv1.AccessRequest, error) {
	rec, rev, err := m.store.get(ctx, id)
	if err != nil || rec == nil {
		return nil, err
	}
	r := rec.r
	if r.State != iamflowv1.RequestState_REQUEST_STATE_APPROVED {
		return r, nil // another replica activated it
	}
	by := "approved by " + approvers(r)
	var g *iamflowv1.Grant
	if r.Extension {
		g, err = m.grants.Extend(ctx, r.GrantId, r.Duration.AsDuration(), r.Requester, "access request "+r.Id+" "+by)
	} else {
		g, err = m.grants.Grant(ctx, r.Domain, r.Group, r.UserName, r.Duration.AsDuration(), r.Requester,
			fmt.Sprintf("access request %s (%s) %s", r.Id, orDash(r.Reason), by))
		if err != nil {
			// A crash may have left the grant made and the request not
			// updated: the open grant is this request's.
			if open, oerr := m.grants.OpenGrant(ctx, r.Domain, r.Group, r.UserName); oerr == nil && open != nil {
				g, err = open, nil
			}
		}
	}
	step := StepActive
	if err != nil {
		r.State, r.LastError, r.EndedAt = iamflowv1.RequestState_REQUEST_STATE_FAILED, err.Error(), timestamppb.New(m.now())
		step = StepFailed
	} else {
		r.State, r.GrantId, r.ExpiresAt = iamflowv1.RequestState_REQUEST_STATE_ACTIVE, g.Id, g.ExpiresAt
		if r.UserId == "" {
			r.UserId = g.UserId
		}
	}
	if _, uerr := m.store.update(ctx, rec, rev); uerr != nil {
		if errors.Is(uerr, errConflict) {
			cur, _, _ := m.store.get(ctx, id)
			if cur != nil {
				return cur.r, nil
			}
		}
		return r, uerr
	}
	// Decided: a new request of the user for the group is an extension of
	// the grant, or a fresh one after a failure.
	m.store.release(ctx, r)
	if step == StepFailed {
		m.log.ErrorContext(ctx, "approved access request could not be granted", "request", id, "error", err)
	} else {
		m.log.InfoContext(ctx, "access granted", "request", id, "grant", r.GrantId, "until", r.ExpiresAt.AsTime())
	}
	m.announce(ctx, step, r)
	return r, nil
}

func approvers(r *iamflowv1.AccessRequest) string {
	var by []string
	for _, d := range r.Decisions {
		if d.Approved {
			by = append(by, d.By)
		}
	}
	return strings.Join(by, ", ")
}

// AuditService is the service name of the workflow's audit records
// (iam.audit.access.request_<step>).
const AuditService = "access"

// announce records a step in the audit trail and stores its notifications;
// a failure is logged (the request stands; the scan does not announce it
// again).
func (m *Manager) announce(ctx context.Context, step string, r *iamflowv1.AccessRequest) {
	after := map[string]string{"request": r.Id, "state": stateName(r.State), "requester": r.Requester,
		"duration": r.Duration.AsDuration().String(), "ticket": r.Ticket}
	if r.GrantId != "" {
		after["grant"] = r.GrantId
	}
	if n := len(r.Decisions); n > 0 {
		after["decided_by"] = r.Decisions[n-1].By
	}
	outcome, reason := audit.OutcomeDone, r.Reason
	if n := len(r.Decisions); n > 0 && step != StepActive {
		reason = r.Decisions[n-1].Reason
	}
	if step == StepFailed {
		outcome, reason = audit.OutcomeFailed, r.LastError
	}
	if err := m.audit.Record(ctx, &iamflowv1.AuditRecord{Action: "request_" + step, Domain: r.Domain, Outcome: outcome, Reason: reason,
		After: after, Resource: &iamflowv1.Resource{Name: r.Group, Type: "Group"}, Related: &iamflowv1.Resource{Id: r.UserId, Name: r.UserName, Type: "User"}}); err != nil {
		m.log.ErrorContext(ctx, "access audit record not stored", "request", r.Id, "step", step, "error", err)
	}
	if err := m.notify.announce(ctx, step, r); err != nil {
		m.log.ErrorContext(ctx, "access notification not stored", "request", r.Id, "step", step, "error", err)
	}
}

// Scan expires pending requests nobody decided in time, activates approved
// ones whose grant was not made (a crash), follows active ones to their
// grant's end, and announces grants about to end.
func (m *Manager) Scan(ctx context.Context) {
	recs, err := m.store.all(ctx)
	if err != nil {
		m.log.WarnContext(ctx, "access requests not scanned", "error", err)
		return
	}
	now := m.now()
	for _, rec := range recs {
		r := rec.r
		switch r.State {
		case iamflowv1.RequestState_REQUEST_STATE_PENDING:
			if now.After(r.DecideBy.AsTime()) {
				m.expire(ctx, r.Id)
			}
		case iamflowv1.RequestState_REQUEST_STATE_APPROVED:
			if _, err := m.activate(ctx, r.Id); err != nil {
				m.log.WarnContext(ctx, "approved access request not activated", "request", r.Id, "error", err)
			}
		case iamflowv1.RequestState_REQUEST_STATE_ACTIVE:
			m.follow(ctx, r.Id, now)
		}
	}
}

func (m *Manager) expire(ctx context.Context, id string) {
	rec, err := m.decide(ctx, id, func(rec *record, _ *Policy) error {
		rec.r.State, rec.r.EndedAt = iamflowv1.RequestState_REQUEST_STATE_EXPIRED, timestamppb.New(m.now())
		return nil
	})
	if err != nil {
		return // decided meanwhile
	}
	m.store.release(ctx, rec.r)
	m.announce(ctx, StepExpired, rec.r)
}

// follow updates an active request from its grant.
func (m *Manager) follow(ctx context.Context, id string, now time.Time) {
	rec, rev, err := m.store.get(ctx, id)
	if err != nil || rec == nil {
		return
	}
	r := rec.r
	g, err := m.grants.GetGrant(ctx, r.GrantId)
	if err != nil {
		m.log.WarnContext(ctx, "grant of an active access request not readable", "request", id, "grant", r.GrantId, "error", err)
		return
	}
	step := ""
	switch g.State {
	case iamflowv1.GrantState_GRANT_STATE_EXPIRED:
		r.State, step = iamflowv1.RequestState_REQUEST_STATE_ENDED, StepEnded
	case iamflowv1.GrantState_GRANT_STATE_REVOKED:
		r.State, step = iamflowv1.RequestState_REQUEST_STATE_REVOKED, StepRevoked
	case iamflowv1.GrantState_GRANT_STATE_FAILED:
		r.State, step, r.LastError = iamflowv1.RequestState_REQUEST_STATE_FAILED, StepFailed, g.LastError
	default:
		r.ExpiresAt = g.ExpiresAt // extended by an operator, say
		if g.ExpiresAt.AsTime().Sub(now) <= m.cfg.Notify.BeforeEnd && !slices.Contains(rec.Notified, StepEndsSoon) {
			rec.Notified = append(rec.Notified, StepEndsSoon)
			if _, err := m.store.update(ctx, rec, rev); err == nil {
				m.announce(ctx, StepEndsSoon, r)
			}
		}
		return
	}
	r.EndedAt = g.EndedAt
	if _, err := m.store.update(ctx, rec, rev); err != nil {
		return
	}
	m.store.release(ctx, r)
	m.announce(ctx, step, r)
}

// Get returns a request the caller may see: their own, one of a group they
// approve, or any for an operator.
func (m *Manager) Get(ctx context.Context, who Person, id string) (*iamflowv1.AccessRequest, error) {
	rec, _, err := m.store.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec == nil || !m.visible(who, rec.r) {
		return nil, refuse(CodeNotFound, "no request %s", id)
	}
	return rec.r, nil
}

func (m *Manager) visible(who Person, r *iamflowv1.AccessRequest) bool {
	if who.Operator || strings.EqualFold(r.Requester, who.UserName) || strings.EqualFold(r.UserName, who.UserName) {
		return true
	}
	p, ok := m.cfg.policy(r.Domain, r.Group)
	return ok && p.Approvers.Has(who)
}

// List returns requests, newest first: the caller's own, those waiting for
// the caller's decision, or all (operators).
func (m *Manager) List(ctx context.Context, who Person, view iamflowv1.RequestView, states []iamflowv1.RequestState, limit int) ([]*iamflowv1.AccessRequest, error) {
	if view == iamflowv1.RequestView_REQUEST_VIEW_UNSPECIFIED {
		view = iamflowv1.RequestView_REQUEST_VIEW_MINE
		if who.Operator {
			view = iamflowv1.RequestView_REQUEST_VIEW_ALL
		}
	}
	if view == iamflowv1.RequestView_REQUEST_VIEW_ALL && !who.Operator {
		return nil, refuse(CodeNotYours, "only operators list every request; ask for yours or those waiting for you")
	}
	recs, err := m.store.all(ctx)
	if err != nil {
		return nil, err
	}
	var out []*iamflowv1.AccessRequest
	for _, rec := range recs {
		r := rec.r
		if len(states) > 0 && !slices.Contains(states, r.State) {
			continue
		}
		switch view {
		case iamflowv1.RequestView_REQUEST_VIEW_MINE:
			if !strings.EqualFold(r.Requester, who.UserName) && !strings.EqualFold(r.UserName, who.UserName) {
				continue
			}
		case iamflowv1.RequestView_REQUEST_VIEW_WAITING_FOR_ME:
			p, ok := m.cfg.policy(r.Domain, r.Group)
			if r.State != iamflowv1.RequestState_REQUEST_STATE_PENDING || !ok || p.mayDecide(who, r.Requester) != nil ||
				slices.ContainsFunc(r.Decisions, func(d *iamflowv1.Decision) bool { return strings.EqualFold(d.By, who.Name()) }) {
				continue
			}
		}
		out = append(out, r)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// Eligibility lists what the caller may request.
func (m *Manager) Eligibility(who Person) []*iamflowv1.Eligibility {
	var out []*iamflowv1.Eligibility
	for i := range m.cfg.Policies {
		p := &m.cfg.Policies[i]
		if !who.Operator && !p.Requesters.Has(who) {
			continue
		}
		out = append(out, &iamflowv1.Eligibility{Domain: p.Domain, Group: p.Group,
			DefaultDuration: durationpb.New(p.DefaultDuration), MaxDuration: durationpb.New(p.MaxDuration),
			JustificationRequired: p.Justification, TicketRequired: p.Ticket.Required, TicketPattern: p.Ticket.Pattern,
			ApprovalsRequired: int32(p.Approvals), AutoApproved: !who.Operator && p.AutoApprove.Has(who), ExtensionAllowed: p.Extend})
	}
	return out
}

// groupsHint names what the caller may request, for a refusal.
func (m *Manager) groupsHint(who Person) string {
	var names []string
	for _, e := range m.Eligibility(who) {
		names = append(names, e.Group)
	}
	if len(names) == 0 {
		return ""
	}
	return "; you may request: " + strings.Join(names, ", ")
}

func stateName(s iamflowv1.RequestState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "REQUEST_STATE_"))
}
