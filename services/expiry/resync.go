package expiry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// scan counts the grants by state and sets the gauges. It publishes a due
// message for every open grant past its deadline whose revocation failed
// (overdue, last_error: the consumer may have given up), and for every one
// whose timer has not fired within timerGrace of healthy scans (lateSince,
// kept by scanLoop: grant id -> the first scan that saw it late).
func (s *Service) scan(ctx context.Context, lateSince map[string]time.Time) {
	if _, err := s.init(ctx); err != nil {
		s.kit.Error(err)
		clear(lateSince)
		return
	}
	now := s.kit.Now()
	var c stateCounts
	var late []string
	seen := map[string]bool{}
	err := s.st.all(ctx, func(r *record, rev uint64) {
		g := r.g
		c.add(g.State)
		if !open(g) {
			return
		}
		past := now.Sub(g.ExpiresAt.AsTime())
		if past > overdueAfter || g.Overdue {
			c.overdue++
		}
		if past <= 0 || (r.claim != "" && now.Before(r.claimUntil)) {
			return // not due, or being revoked right now
		}
		if g.LastError != "" || g.Overdue {
			// A revocation failed: try again (the timer's job is done).
			if past > 2*overdueAfter {
				late = append(late, g.Id+"\x00"+strconv.FormatUint(rev, 10))
			}
			return
		}
		seen[g.Id] = true
		first, ok := lateSince[g.Id]
		if !ok {
			lateSince[g.Id] = now
			return
		}
		if now.Sub(first) >= timerGrace {
			late = append(late, g.Id+"\x00"+strconv.FormatUint(rev, 10))
		}
	})
	if err != nil {
		clear(lateSince)
		if ctx.Err() == nil {
			s.kit.Error(err)
		}
		return
	}
	for id := range lateSince {
		if !seen[id] {
			delete(lateSince, id)
		}
	}
	s.setCounts(c)
	for _, l := range late {
		id, rev, _ := strings.Cut(l, "\x00")
		if err := s.due(ctx, id, rev); err != nil && ctx.Err() == nil {
			s.kit.Error(err)
		}
	}
}

// scanLoop scans at start and every ScanInterval.
func (s *Service) scanLoop(ctx context.Context) {
	lateSince := map[string]time.Time{}
	s.scan(ctx, lateSince)
	if s.cfg.ScanInterval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.scan(ctx, lateSince)
		}
	}
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
				"member of a temporary group without a grant (reconcile on start)", "")
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
func (s *Service) reconcileOnStart(ctx context.Context) {
	if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
		s.kit.Error(err)
		s.kit.Log().Error("reconcile on start failed", "error", err)
	}
}
