package replicator

import (
	"context"
	"sync"
	"time"
)

// coveredMax bounds how many entities one target's covered set remembers;
// past it the set starts again (forgetting costs a reconcile, not safety).
const coveredMax = 100_000

// covered remembers, per entity, the last stream sequence a successful
// reconcile of it is known to cover: the stream's last sequence when the
// reconcile began. Every event stored by then was stored before the
// reconcile read the source, so the reconcile saw its change, and the
// event has nothing left to do.
//
// Coalescing folds the events of one entity that arrive together; this
// folds those that arrive after: in a burst of 10,000 membership changes
// over a few large groups, the events of the next batches were mostly
// stored before the reconcile of the first began, and each would read the
// whole group on both sides again (issue 18: 1,659 of 1,838 calls were
// such reads, a Free-tier domain's budget for 11 minutes).
//
// A full reconcile that ends cleanly covers every entity of its source at
// once (all): the events queued behind it, a backlog after an outage say,
// are then acknowledged without a call.
//
// Sequences, not times, so that no clock between the NATS server and this
// process can make an event look older than it is.
type covered struct {
	mu  sync.Mutex
	seq map[string]uint64 // coalesce key -> stream sequence covered
	all map[string]fullCover
}

// fullCover is what the newest clean full reconcile of a source covered:
// every event stored up to seq, but those of the objects in except.
type fullCover struct {
	seq    uint64
	except map[string]struct{} // coalesce keys
}

// has reports whether the event at seq of the entity key, from source
// domain, is covered.
func (c *covered) has(domain, key string, seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.all[domain]; seq <= f.seq {
		if _, out := f.except[key]; !out {
			return true
		}
	}
	return key != "" && seq <= c.seq[key]
}

// note records that a reconcile of key covered the stream up to seq.
func (c *covered) note(key string, seq uint64) {
	if key == "" || seq == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq == nil || len(c.seq) >= coveredMax {
		c.seq = map[string]uint64{}
	}
	c.seq[key] = max(c.seq[key], seq)
}

// noteAll records that a full reconcile of everything domain holds covered
// the stream up to seq, but the objects in except (whose plans a newer
// read made stale: the reconcile of that read may have failed). An older
// full reconcile ending later changes nothing.
func (c *covered) noteAll(domain string, seq uint64, except map[string]struct{}) {
	if seq == 0 || len(except) > coveredMax {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.all == nil {
		c.all = map[string]fullCover{}
	}
	if seq > c.all[domain].seq {
		c.all[domain] = fullCover{seq: seq, except: except}
	}
}

// lastSeqTTL is how long a stream's last sequence, once read, is used
// before it is read again. An older reading is still a sequence every
// message up to which was stored before the reconcile that uses it began,
// so it only covers less; reading it once per event would add a JetStream
// request to every event.
const lastSeqTTL = 250 * time.Millisecond

// lastSeq caches a stream's last sequence.
type lastSeq struct {
	mu  sync.Mutex
	seq uint64
	at  time.Time
}

// streamLast returns a recent last sequence of stream (see lastSeqTTL),
// or 0 when it cannot be read (what it would have covered is then handled
// without the shortcut).
func (s *Service) streamLast(ctx context.Context, stream string) uint64 {
	if stream == "" {
		return 0
	}
	v, _ := s.lastSeqs.LoadOrStore(stream, &lastSeq{})
	c := v.(*lastSeq)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < lastSeqTTL {
		return c.seq
	}
	st, err := s.bus.JetStream().Stream(ctx, stream)
	if err != nil {
		return 0
	}
	c.seq, c.at = st.CachedInfo().State.LastSeq, time.Now()
	return c.seq
}
