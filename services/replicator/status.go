package replicator

import (
	"context"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
)

// Status counter names.
const (
	counterEvents      = "events"       // events handled
	counterWrites      = "writes"       // calls that changed a target
	counterEchoes      = "echoes"       // events skipped as iamflow's own changes
	counterCovered     = "covered"      // events a reconcile begun after they were stored had covered
	counterCatchUps    = "catch_ups"    // full reconciles begun for a backlog of events
	counterHeld        = "held"         // deletions held for approval
	counterAuditFailed = "audit_failed" // audit records not stored
	counterBulkCreates = "bulk_creates" // users created through SCIM Bulk (also counted in writes)
	counterBulkUpdates = "bulk_updates" // users updated or deactivated through SCIM Bulk
	counterBulkDeletes = "bulk_deletes" // users and groups deleted through SCIM Bulk
	// Groups created (with their members) and members added to or removed
	// from existing groups through SCIM Bulk.
	counterBulkGroupCreates  = "bulk_group_creates"
	counterBulkMemberChanges = "bulk_member_changes"
)

// Status reports the service's state, its consumers' progress, counters and
// the last event and error.
func (s *Service) Status(ctx context.Context) *iamflowv1.ServiceStatus {
	st := s.kit.Status(map[string]int64{counterEvents: s.events.Load()})
	for _, d := range s.dirs {
		st.Counters[counterWrites] += d.stats.writes.Load()
		st.Counters[counterEchoes] += d.stats.echoes.Load()
		st.Counters[counterCovered] += d.stats.covered.Load()
		st.Counters[counterCatchUps] += d.stats.catchUps.Load()
		st.Counters[counterAuditFailed] += d.stats.auditFailed.Load()
		st.Counters[counterBulkCreates] += d.stats.bulkCreates.Load()
		st.Counters[counterBulkUpdates] += d.stats.bulkUpdates.Load()
		st.Counters[counterBulkDeletes] += d.stats.bulkDeletes.Load()
		st.Counters[counterBulkGroupCreates] += d.stats.bulkGroupCreates.Load()
		st.Counters[counterBulkMemberChanges] += d.stats.bulkMemberChanges.Load()
	}
	for _, h := range s.guard.pending() {
		st.Counters[counterHeld] += int64(len(h.Actions))
	}
	var cons []*bus.Consumer
	for _, t := range s.targets {
		if c, ok := s.consumers.Load(t); ok {
			cons = append(cons, c.(*bus.Consumer))
		}
	}
	return s.kit.Report(ctx, st, cons...)
}

// linkStatus reports each link (or the named one) per direction.
func (s *Service) linkStatus(ctx context.Context, link string) ([]*iamflowv1.LinkStatus, error) {
	held := map[[2]string]int32{}
	for _, h := range s.holds(ctx, link) {
		held[[2]string{h.Link, h.Target}] += int32(len(h.Actions))
	}
	var out []*iamflowv1.LinkStatus
	for _, l := range s.cfg.Links {
		if link != "" && l.Name != link {
			continue
		}
		ls := &iamflowv1.LinkStatus{Name: l.Name, Source: l.Source, Targets: l.Targets, Bidirectional: l.Bidirectional, DryRun: l.DryRun}
		for _, d := range s.linkDirections(l.Name) {
			ds := &iamflowv1.DirectionStatus{Source: d.source, Target: d.target, Circuit: string(d.tgt.BreakerState()),
				HeldDeletions: held[[2]string{l.Name, d.target}]}
			d.stats.mu.Lock()
			if !d.stats.lastSuccess.IsZero() {
				ds.LastSuccess = timestamppb.New(d.stats.lastSuccess)
			}
			if d.stats.lastError != "" {
				ds.LastError, ds.LastErrorTime = d.stats.lastError, timestamppb.New(d.stats.lastErrorAt)
			}
			ds.LastReconcile, ds.Reconciling, ds.Progress = summary(d.stats.lastReport), d.stats.reconciling, d.stats.progress
			if d.stats.lastDryRun != nil {
				ds.LastDryRun = proto.CloneOf(d.stats.lastDryRun)
			}
			d.stats.mu.Unlock()
			ds.Unsupported = d.attrs.list()
			if c, ok := s.consumers.Load(d.target); ok {
				if cs, err := c.(*bus.Consumer).Stats(ctx); err == nil {
					ds.Pending, ds.AckPending = cs.Pending, uint64(cs.AckPending)
				}
			}
			ls.Directions = append(ls.Directions, ds)
		}
		out = append(out, ls)
	}
	if link != "" && len(out) == 0 {
		return nil, errNoLink
	}
	return out, nil
}

// summary is a report without its action list.
func summary(r *iamflowv1.ReconcileReport) *iamflowv1.ReconcileReport {
	if r == nil {
		return nil
	}
	c := proto.Clone(r).(*iamflowv1.ReconcileReport)
	c.Planned = nil
	return c
}
