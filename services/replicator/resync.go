package replicator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// stateBucket is the JetStream KV bucket of the full reconcile schedule.
const stateBucket = "iamflow_replicator_state"

// stateStore keeps when each link was last fully reconciled, so replicas
// sharing the work run each scheduled reconcile once between them, and a
// restart does not run one early.
type stateStore struct{ kv jetstream.KeyValue }

func openState(ctx context.Context, b *bus.Bus) (*stateStore, error) {
	kv, err := servicekit.OpenBucket(ctx, b, "replicator", jetstream.KeyValueConfig{
		Bucket: stateBucket, Description: "iamflow replicator: full reconcile schedule per link",
	})
	if err != nil {
		return nil, err
	}
	return &stateStore{kv: kv}, nil
}

// claim records now as link's last full reconcile if the previous one is
// at least interval old, and reports whether this process won the claim.
// The first claim of a link only starts its schedule: a fresh start (or a
// new replica) does not reconcile at once.
func (st *stateStore) claim(ctx context.Context, link string, now time.Time, interval time.Duration) (bool, error) {
	return st.claimEvery(ctx, "reconcile."+link, now, interval, false)
}

// claimEvery records now under key if the time it holds is at least every
// old, and reports whether this process won the claim; a key not yet
// written is won only with firstWins.
func (st *stateStore) claimEvery(ctx context.Context, key string, now time.Time, every time.Duration, firstWins bool) (bool, error) {
	val := []byte(now.UTC().Format(time.RFC3339Nano))
	e, err := st.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		_, err := st.kv.Create(ctx, key, val)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil // another replica claimed it
		}
		return err == nil && firstWins, err
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	last, err := time.Parse(time.RFC3339Nano, string(e.Value()))
	if err == nil && now.Sub(last) < every {
		return false, nil
	}
	if _, err := st.kv.Update(ctx, key, val, e.Revision()); err != nil {
		return false, nil // another replica claimed it
	}
	return true, nil
}

// claimSince records now as link's last full reconcile unless one began at
// or after since, and reports whether this process won the claim. A link
// never reconciled nor scheduled is claimed (and won) only if first;
// otherwise it is claimed for the schedule (one interval from now).
func (st *stateStore) claimSince(ctx context.Context, link string, now, since time.Time, first bool, interval time.Duration) (bool, error) {
	key := "reconcile." + link
	e, err := st.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) && !first:
		return st.claim(ctx, link, now, interval)
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err := st.kv.Create(ctx, key, []byte(now.UTC().Format(time.RFC3339Nano)))
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil // another replica claimed it
		}
		return err == nil, err
	case err != nil:
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	if last, err := time.Parse(time.RFC3339Nano, string(e.Value())); err == nil && !last.Before(since) {
		return false, nil
	}
	if _, err := st.kv.Update(ctx, key, []byte(now.UTC().Format(time.RFC3339Nano)), e.Revision()); err != nil {
		return false, nil // another replica claimed it
	}
	return true, nil
}

// claimCatchUp records now as link's last catch-up (catchUp) unless one
// began less than every ago, and reports whether this process won the
// claim: replicas sharing a backlog catch it up once between them.
func (st *stateStore) claimCatchUp(ctx context.Context, link string, now time.Time, every time.Duration) (bool, error) {
	return st.claimEvery(ctx, "catchup."+link, now, every, true)
}

// repairSlack: replicas that start, or get NATS back, within repairSlack
// of each other run one repair between them (the first to claim it).
const repairSlack = 10 * time.Second

// repairTries bounds the attempts of a repair; the schedule is the
// fallback. Right after NATS is back its streams may still be electing
// leaders.
const repairTries = 8

// repair fully reconciles every link (on start, or after an outage of NATS
// longer than full_reconcile.after_outage: events sent meanwhile may be
// lost for good), unless a full reconcile began since, retrying what fails
// with backoff. With first, a link never reconciled is reconciled too.
func (s *Service) repair(ctx context.Context, why string, since time.Time, first bool) {
	for _, l := range s.cfg.Links {
		wait, won := time.Second, false
		for try := 1; ctx.Err() == nil; try++ {
			var err error
			if !won { // once won, the claim is this process's: retry the reconcile only
				if won, err = s.state.claimSince(ctx, l.Name, s.kit.Now(), since, first, s.cfg.FullReconcile.Interval); err == nil && !won {
					s.kit.Log().Info("repair left to the full reconcile claimed since", "link", l.Name, "why", why, "since", since)
					break
				}
			}
			if won {
				if _, err = s.ReconcileLink(ctx, l.Name, false); err == nil || errors.Is(err, errReconcileRunning) {
					s.kit.Log().Info("link repaired by a full reconcile", "link", l.Name, "why", why)
					break
				}
			}
			if try == repairTries {
				s.kit.Log().Error("full reconcile to repair failed; the schedule will retry", "link", l.Name, "why", why, "error", err)
				break
			}
			s.kit.Log().Warn("full reconcile to repair failed; retrying", "link", l.Name, "why", why, "retry_in", wait, "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 30*time.Second)
		}
	}
}

// repairAfterOutages runs repair each time NATS is back after an outage of
// full_reconcile.after_outage or more.
func (s *Service) repairAfterOutages(ctx context.Context) {
	s.bus.WatchOutages(ctx, s.cfg.FullReconcile.AfterOutage, func(ctx context.Context, down time.Duration) {
		// A reconcile another replica began after NATS was back for this
		// one repairs this outage too.
		s.repair(ctx, "nats was away "+down.Round(time.Second).String(), s.kit.Now().Add(-min(repairSlack, down)), true)
	})
}

// schedulePoll is how often the schedule is looked at.
const schedulePoll = time.Minute

// schedule runs each link's full reconcile every full_reconcile.interval
// (claimed through the state bucket) until ctx ends.
func (s *Service) schedule(ctx context.Context) {
	poll := min(schedulePoll, s.cfg.FullReconcile.Interval)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for _, l := range s.cfg.Links {
			if ctx.Err() != nil {
				return
			}
			won, err := s.state.claim(ctx, l.Name, s.kit.Now(), s.cfg.FullReconcile.Interval)
			if err != nil {
				s.kit.Log().Warn("full reconcile schedule not readable", "link", l.Name, "error", err)
				continue
			}
			if !won {
				continue
			}
			if _, err := s.ReconcileLink(ctx, l.Name, false); err != nil && ctx.Err() == nil {
				s.kit.Log().Error("scheduled full reconcile failed", "link", l.Name, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ReconcileLink runs a full reconcile of every direction of the named link now
// (with dryRun, only plans) and returns one report per direction.
func (s *Service) ReconcileLink(ctx context.Context, link string, dryRun bool) ([]*iamflowv1.ReconcileReport, error) {
	dirs := s.linkDirections(link)
	if len(dirs) == 0 {
		return nil, fmt.Errorf("reconcile %q: %w", link, errNoLink)
	}
	done := make(chan struct{})
	if _, busy := s.running.LoadOrStore(link, done); busy {
		return nil, fmt.Errorf("reconcile %q: %w", link, errReconcileRunning)
	}
	defer func() {
		s.running.Delete(link)
		close(done)
	}()
	var reps []*iamflowv1.ReconcileReport
	var errs []error
	for _, d := range dirs {
		start := s.kit.Now()
		// Every event stored by now is stored before the reconcile reads
		// the source: one that ends cleanly leaves those events nothing to do.
		begin := s.streamLast(ctx, s.cfg.Consumer.WithDefaults().Stream)
		rp, err := d.fullReconcile(ctx, dryRun)
		rep := rp.r
		reps = append(reps, rep)
		if err == nil && !rep.DryRun && rep.HeldDeletions == 0 {
			s.covers[d.target].noteAll(d.source, begin, rp.stale)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", d.name(), err))
			s.kit.Error(err)
		}
		d.log.Info("full reconcile done", "link", link, "source", d.source, "target", d.target, "dry_run", rep.DryRun,
			"source_users", rep.SourceUsers, "source_groups", rep.SourceGroups, "actions", rep.Actions,
			"held", rep.HeldDeletions, "took", s.kit.Now().Sub(start).Round(time.Millisecond), "error", err)
	}
	return reps, errors.Join(errs...)
}

// linkDirections returns the directions of a link.
func (s *Service) linkDirections(link string) []*direction {
	var out []*direction
	for _, d := range s.dirs {
		if d.link.Name == link {
			out = append(out, d)
		}
	}
	return out
}
