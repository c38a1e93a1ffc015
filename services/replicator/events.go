package replicator

import (
	"context"
	"errors"
	"fmt"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// coalesceKey is the entity an event reconciles: the user, or the group
// (group and membership events alike). Who made the change does not
// matter: the reconcile reads the entity as it is now.
func coalesceKey(m *bus.Msg) string {
	e, err := event.Unmarshal(m.Data)
	if err != nil || e.GetResource().GetId() == "" {
		return ""
	}
	kind := planner.KindGroup
	if e.GetKind() == iamflowv1.Kind_KIND_USER {
		kind = planner.KindUser
	}
	return entityKey(e.GetDomain(), kind, e.GetResource().GetId())
}

// entityKey is the coalescing key of an object of domain: its events, and
// those of a group's memberships, share it.
func entityKey(domain string, kind planner.Kind, id string) string {
	return domain + "/" + string(kind) + "/" + id
}

// handler handles the events of one target's consumer.
func (s *Service) handler(target string) bus.Handler {
	cov := s.covers[target]
	return func(ctx context.Context, m *bus.Msg) bus.Result {
		e, err := event.Unmarshal(m.Data)
		if err != nil {
			return bus.Terminal(fmt.Errorf("replicator: %w", err))
		}
		d := s.direction(e.GetDomain(), target)
		if d == nil {
			return bus.Done()
		}
		s.events.Add(1)
		s.kit.Event(e.GetId())
		key := coalesceKey(m)
		if !s.noCoalesce && s.isCovered(ctx, d, cov, key, m) {
			d.stats.covered.Add(1)
			return bus.Done()
		}
		if err := waitForBreaker(ctx, d.tgt, s.kit.Clock()); err != nil {
			return bus.Retry(err)
		}
		last := s.streamLast(ctx, m.Stream)
		start := s.kit.Now()
		p, err := d.handle(ctx, e)
		if err == nil {
			cov.note(key, last)
		}
		s.metrics.observe(d, p, err, s.kit.Now().Sub(start))
		d.log.DebugContext(ctx, "event reconciled", "link", d.link.Name, "target", target, "event", e.GetId(), "type", e.GetType(),
			"resource", e.GetResource().GetId(), "actions", p.Kinds(), "took", s.kit.Now().Sub(start).String(), "error", err)
		res := resultOf(err)
		switch {
		case res.IsDone():
		case res.IsTerminal():
			s.kit.Error(err)
			d.log.Error("replication failed for good; event dead-lettered", "link", d.link.Name, "target", target, "event", e.GetId(), "error", err)
		default:
			s.kit.Error(err)
		}
		return res
	}
}

// isCovered reports whether a reconcile begun after m was stored covers it:
// one of its entity, or a full reconcile of its source. A handler that
// finds a backlog of catchUpAt events or more behind m catches the link up
// first (catchUp).
func (s *Service) isCovered(ctx context.Context, d *direction, cov *covered, key string, m *bus.Msg) bool {
	if cov.has(d.source, key, m.StreamSeq) {
		return true
	}
	// A dry run covers nothing; a target whose circuit is open would fail
	// the reconcile (its handlers wait for the circuit below).
	if m.Pending < s.catchUpAt || d.link.DryRun || d.tgt.BreakerState() == identitydomain.BreakerOpen {
		return false
	}
	s.catchUp(ctx, d, m.Pending)
	return cov.has(d.source, key, m.StreamSeq)
}

// resultOf decides what becomes of an event whose reconcile returned err.
// The replicator reads both sides on every attempt, so what the client
// calls final may only mean the world moved: a missing object or a
// conflict (another event's reconcile created the same user, say), a
// listing the server paged wrongly, or a mass-deletion guard that could
// not read or save its state, is tried again; one that persists is
// dead-lettered after max_deliver. The rest is as bus.ResultOf says.
func resultOf(err error) bus.Result {
	switch {
	case errors.Is(err, errUnsupported):
		return bus.Done()
	case errors.Is(err, identitydomain.ErrNotFound), errors.Is(err, identitydomain.ErrConflict),
		errors.Is(err, identitydomain.ErrInconsistentRead), errors.Is(err, errGuardState):
		return bus.Retry(err)
	}
	return bus.ResultOf(err)
}

// breakerPoll is how often a handler waiting for an open circuit looks again.
const breakerPoll = time.Second

// waitForBreaker blocks while the target's circuit is open, so a failing
// target's consumer waits (its messages in progress, not redelivered)
// instead of burning retries; it returns ctx's error when stopped.
func waitForBreaker(ctx context.Context, d Domain, now func() time.Time) error {
	if d.BreakerState() != identitydomain.BreakerOpen {
		return nil
	}
	t := time.NewTicker(breakerPoll)
	defer t.Stop()
	for d.BreakerState() == identitydomain.BreakerOpen {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s's circuit to close: %w", d.Domain(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
