package expiry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/nats-io/nats.go/jetstream"
)

// scan counts the grants by state and sets the gauges. It publishes a due
// message for every open grant past its deadline whose revocation failed
// (overdue, last_error: the consumer may have given up), and for every one
// whose timer has not fired within timerGrace of healthy scans (lateSince,
// kept by scanLoop: grant id -> the first scan that saw it late). The first
// scan of the process (atStart) publishes one at once for a grant whose
// timer should have fired but left no due message (the service was down
// for longer than a due message is kept, dueTTL).
func (s *Service) scan(ctx context.Context, lateSince map[string]time.Time, atStart bool) {
	if _, err := s.init(ctx); err != nil {
		s.kit.Error(err)
		clear(lateSince)
		return
	}
	s.syncClock(ctx)
	p := &scanPass{now: s.now(), atStart: atStart, lateSince: lateSince, seen: map[string]bool{}}
	err := s.st.all(ctx, func(r *record, rev uint64) { s.scanGrant(ctx, p, r, rev) })
	if err != nil {
		clear(lateSince)
		if ctx.Err() == nil {
			s.kit.Error(err)
		}
		return
	}
	for id := range lateSince {
		if !p.seen[id] {
			delete(lateSince, id)
		}
	}
	s.setCounts(p.counts)
	for _, l := range p.late {
		id, rev, _ := strings.Cut(l, "\x00")
		if err := s.due(ctx, id, rev); err != nil && ctx.Err() == nil {
			s.kit.Error(err)
		}
	}
}

// scanPass is what one scan has found so far.
type scanPass struct {
	now       time.Time
	atStart   bool
	lateSince map[string]time.Time // see scan
	seen      map[string]bool      // the open grants past their deadline with no failed revocation
	counts    stateCounts
	late      []string // "<grant id>\x00<revision>" of the grants to publish a due message for
}

// scanGrant counts one grant and judges whether the scan must publish a
// due message for it (see scan).
func (s *Service) scanGrant(ctx context.Context, p *scanPass, r *record, rev uint64) {
	g := r.g
	p.counts.add(g.State, 1)
	if !open(g) {
		return
	}
	past := p.now.Sub(g.ExpiresAt.AsTime())
	if past > overdueAfter || g.Overdue {
		p.counts.overdue++
	}
	if past <= 0 || (r.claim != "" && p.now.Before(r.claimUntil)) {
		return // not due, or being revoked right now
	}
	due := func() { p.late = append(p.late, g.Id+"\x00"+strconv.FormatUint(rev, 10)) }
	if g.LastError != "" || g.Overdue {
		// A revocation failed: try again (the timer's job is done).
		if past > 2*overdueAfter {
			due()
		}
		return
	}
	p.seen[g.Id] = true
	first, ok := p.lateSince[g.Id]
	if !ok {
		p.lateSince[g.Id] = p.now
		if p.atStart && past > timerLost && s.noDueMessage(ctx, g.Id) {
			due()
		}
		return
	}
	if p.now.Sub(first) >= timerGrace {
		due()
	}
}

// timerLost is how long past its deadline an open grant shows its timer
// lost if no due message for it is in the stream: the timer fires
// scheduleLead before the deadline, at most ~1.5 s late.
const timerLost = scheduleLead + 500*time.Millisecond

// noDueMessage reports whether the stream holds no due message for grant
// id (a failure to tell is not "none").
func (s *Service) noDueMessage(ctx context.Context, id string) bool {
	st, err := s.bus.JetStream().Stream(ctx, Stream)
	if err != nil {
		return false
	}
	_, err = st.GetLastMsgForSubject(ctx, dueSubject+"."+id)
	return errors.Is(err, jetstream.ErrMsgNotFound)
}

// scanLoop scans at start and every ScanInterval.
func (s *Service) scanLoop(ctx context.Context) {
	lateSince := map[string]time.Time{}
	servicekit.Schedule(ctx, true, s.cfg.ScanInterval, func(ctx context.Context, trigger string) {
		s.scan(ctx, lateSince, trigger == "on_start")
	})
}

// reconcile opens a grant for every member of a temporary group that has none.
func (s *Service) reconcile(ctx context.Context) error {
	var errs []error
	for _, tg := range s.cfg.Groups {
		c := s.clients[tg.Domain]
		g, found, err := c.FindGroupByName(ctx, tg.Group)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s/%s: %w", tg.Domain, tg.Group, err))
			continue
		}
		if !found || g.Id == nil {
			s.kit.Log().Warn("temporary group not found", "domain", tg.Domain, "group", tg.Group)
			continue
		}
		name := tg.Group
		if g.DisplayName != nil {
			name = *g.DisplayName
		}
		n := 0
		for m, err := range c.GroupMembers(ctx, *g.Id, 100) {
			if err != nil {
				errs = append(errs, fmt.Errorf("reconcile %s/%s: %w", tg.Domain, tg.Group, err))
				break
			}
			if m.Value == nil || (m.Type != "" && m.Type != "User") {
				continue
			}
			userName := ""
			if m.Name != nil {
				userName = *m.Name
			} else if m.Display != nil {
				userName = *m.Display
			}
			ng, err := s.adopt(ctx, tg, *g.Id, name, *m.Value, userName, sourceReconcile, Name,
				"member of a temporary group without a grant (reconcile on start or after an outage of NATS)", "")
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ng != nil {
				n++
			}
		}
		s.kit.Log().Info("temporary group reconciled", "domain", tg.Domain, "group", name, "grants_opened", n)
	}
	return errors.Join(errs...)
}

// reconcileOnStart opens, once when Run starts, a grant for every member of
// a temporary group that holds none (reconcile_on_start).
func (s *Service) reconcileOnStart(ctx context.Context) { s.reconcileRetrying(ctx, "start") }

// reconcileAfterOutages reconciles each time NATS is back after an outage
// of reconcile_after_outage or more.
func (s *Service) reconcileAfterOutages(ctx context.Context) {
	s.bus.WatchOutages(ctx, s.cfg.ReconcileAfterOutage, func(ctx context.Context, down time.Duration) {
		s.reconcileRetrying(ctx, "nats was away "+down.Round(time.Second).String())
	})
}

// reconcileTries bounds the attempts of a reconcile on start or after an
// outage (right after NATS is back, its streams may still be electing
// leaders); a grant already opened is not opened twice.
const reconcileTries = 8

// reconcileRetrying runs reconcile, retrying with backoff what fails.
func (s *Service) reconcileRetrying(ctx context.Context, why string) {
	wait := time.Second
	for try := 1; ; try++ {
		err := s.reconcile(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.kit.Error(err)
		if try == reconcileTries {
			s.kit.Log().Error("reconcile of the temporary groups failed", "why", why, "error", err)
			return
		}
		s.kit.Log().Warn("reconcile of the temporary groups failed; retrying", "why", why, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
