package replicator

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// Endpoint is the iamflow.v1.ReplicatorService admin API, over gRPC and
// REST (the routes are in proto/iamflow/v1/iamflow.http.yaml, under
// /v1/replicator/).
func (s *Service) Endpoint() servicekit.Endpoint {
	return servicekit.NewEndpoint(iamflowv1.RegisterReplicatorServiceServer, iamflowv1.RegisterReplicatorServiceHandlerServer,
		iamflowv1.ReplicatorServiceServer(s))
}

// apiErrors maps the service's errors to status codes; anything unexpected
// is internal.
var apiErrors = servicekit.APIErrors{}.
	Map(codes.NotFound, errNoLink, errNoHold).
	Map(codes.FailedPrecondition, errReconcileRunning).
	Otherwise(codes.Internal)

// GetReplicatorStatus reports every link (or one) per direction.
func (s *Service) GetReplicatorStatus(ctx context.Context, req *iamflowv1.GetReplicatorStatusRequest) (*iamflowv1.GetReplicatorStatusResponse, error) {
	ls, err := s.linkStatus(ctx, req.GetLink())
	if err != nil {
		return nil, apiErrors.Status(err)
	}
	return &iamflowv1.GetReplicatorStatusResponse{Links: ls}, nil
}

// Reconcile runs a full reconcile of a link now, or plans one (dry_run).
func (s *Service) Reconcile(ctx context.Context, req *iamflowv1.ReconcileRequest) (*iamflowv1.ReconcileResponse, error) {
	if req.GetLink() == "" {
		return nil, status.Error(codes.InvalidArgument, "link: empty; name the link to reconcile")
	}
	reps, err := s.ReconcileLink(ctx, req.GetLink(), req.GetDryRun())
	if err != nil && len(reps) == 0 {
		return nil, apiErrors.Status(err)
	}
	// Errors of single directions are in their reports.
	return &iamflowv1.ReconcileResponse{Reports: reps}, nil
}

// ListHolds lists the deletions held for approval.
func (s *Service) ListHolds(ctx context.Context, req *iamflowv1.ListHoldsRequest) (*iamflowv1.ListHoldsResponse, error) {
	resp := &iamflowv1.ListHoldsResponse{}
	for _, h := range s.holds(ctx, req.GetLink()) {
		resp.Holds = append(resp.Holds, holdProto(h))
	}
	return resp, nil
}

// ApproveDeletions applies one hold's deletions.
func (s *Service) ApproveDeletions(ctx context.Context, req *iamflowv1.ApproveDeletionsRequest) (*iamflowv1.ApproveDeletionsResponse, error) {
	h, n, failed, err := s.approve(ctx, req.GetId())
	if err != nil {
		return nil, apiErrors.Status(err)
	}
	return &iamflowv1.ApproveDeletionsResponse{Hold: holdProto(h), Applied: int32(n), Failed: failed}, nil
}

// RejectDeletions discards one hold.
func (s *Service) RejectDeletions(ctx context.Context, req *iamflowv1.RejectDeletionsRequest) (*iamflowv1.RejectDeletionsResponse, error) {
	h, err := s.reject(ctx, req.GetId())
	if err != nil {
		return nil, apiErrors.Status(err)
	}
	return &iamflowv1.RejectDeletionsResponse{Hold: holdProto(h)}, nil
}

// Default and largest ListActions page.
const (
	defaultActions = 100
	maxActions     = 1000
)

// ListActions reads the replicator's audit records from IAM_AUDIT, newest
// first.
func (s *Service) ListActions(ctx context.Context, req *iamflowv1.ListActionsRequest) (*iamflowv1.ListActionsResponse, error) {
	limit, ok := servicekit.PageSize(int(req.GetLimit()), defaultActions, maxActions)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "limit: %d; give 1 to %d (default %d)", req.GetLimit(), maxActions, defaultActions)
	}
	since := s.kit.Now().Add(-24 * time.Hour)
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	recs, err := s.actions(ctx, req.GetLink(), req.GetTarget(), req.GetAction(), since, limit)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "read the audit trail: %v", err)
	}
	return &iamflowv1.ListActionsResponse{Records: recs}, nil
}

// actions reads the records matching the filters, keeping the newest limit.
func (s *Service) actions(ctx context.Context, link, target, action string, since time.Time, limit int) ([]*iamflowv1.AuditRecord, error) {
	subject := bus.AuditSubject(Name, "*")
	if action != "" {
		subject = bus.AuditSubject(Name, action)
	}
	js := s.bus.JetStream()
	c, err := js.OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	})
	if err != nil {
		return nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	pending := info.NumPending
	var out []*iamflowv1.AuditRecord
	for pending > 0 {
		batch, err := c.FetchNoWait(int(min(pending, 500)))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			r, err := audit.Decode(m.Data())
			if err != nil {
				continue
			}
			if (link == "" || r.GetLink() == link) && (target == "" || r.GetTarget() == target) {
				out = append(out, r)
				if len(out) > limit {
					out = out[1:]
				}
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		pending -= uint64(n)
	}
	slices.Reverse(out)
	return out, nil
}

// ReplayDeadLetters republishes a target consumer's dead letters.
func (s *Service) ReplayDeadLetters(ctx context.Context, req *iamflowv1.ReplayDeadLettersRequest) (*iamflowv1.ReplayDeadLettersResponse, error) {
	if !slices.Contains(s.targets, req.GetTarget()) {
		return nil, status.Errorf(codes.NotFound, "target %q: no link replicates into it (targets: %v)", req.GetTarget(), s.targets)
	}
	n, err := s.bus.ReplayDeadLetters(ctx, s.ConsumerConfig(req.GetTarget()).Durable, int(req.GetMax()))
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "replay dead letters of %s: %v", req.GetTarget(), err)
	}
	return &iamflowv1.ReplayDeadLettersResponse{Replayed: int32(n)}, nil
}

// holdProto is a hold in the admin API's form.
func holdProto(h hold) *iamflowv1.Hold {
	p := &iamflowv1.Hold{Id: h.ID, Link: h.Link, Target: h.Target, Reason: h.Reason, CreatedAt: timestamppb.New(h.At)}
	for _, a := range h.Actions {
		p.Actions = append(p.Actions, actionProto(a))
	}
	return p
}

// holds lists the held deletions, oldest first; link "" lists all. The
// list is read from the guard's bucket, so holds other replicas made show.
func (s *Service) holds(ctx context.Context, link string) []hold {
	if err := s.guard.refresh(ctx); err != nil {
		s.kit.Log().Warn("guard state not readable; listing the holds this process knows", "error", err)
	}
	var out []hold
	for _, h := range s.guard.pending() {
		if link == "" || h.Link == link {
			out = append(out, h)
		}
	}
	return out
}

// approve releases a hold and applies its deletions now. It
// returns the hold, how many were applied and the failures.
func (s *Service) approve(ctx context.Context, id string) (hold, int, []string, error) {
	var d *direction
	for _, h := range s.holds(ctx, "") {
		if h.ID == id {
			for _, x := range s.linkDirections(h.Link) {
				if x.target == h.Target {
					d = x
				}
			}
		}
	}
	h, err := s.guard.approve(ctx, id)
	if err != nil {
		return h, 0, nil, err
	}
	if d == nil {
		return h, 0, nil, fmt.Errorf("approve hold %q: link %q has no direction to %s any more", id, h.Link, h.Target)
	}
	applied := 0
	var failed []string
	c := cause{reconcile: "approve:" + id}
	var buf auditBuf
	defer d.flush(context.WithoutCancel(ctx), &buf)
	for _, a := range h.Actions {
		stale, err := d.applyApproved(ctx, a, c, &buf, h.At)
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s %s %q: %v", a.Kind, a.Entity, a.Name, err))
		case stale:
			failed = append(failed, fmt.Sprintf("%s %s %q: not applied: %s", a.Kind, a.Entity, a.Name, planner.ReasonStale))
		default:
			applied++
		}
	}
	return h, applied, failed, nil
}

// reject discards a hold: its deletions are not applied.
func (s *Service) reject(ctx context.Context, id string) (hold, error) {
	return s.guard.reject(ctx, id)
}
