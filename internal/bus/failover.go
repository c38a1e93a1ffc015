package bus

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Results of a failover check, the result label of
// iamflow_bus_failover_checks_total.
const (
	failoverReconnected = "reconnected" // another server answered: the bus moved to it
	failoverStayed      = "stayed"      // no other server answered either
)

// failover moves the connection off a server that is up but serves no
// JetStream: a NATS server cut off from the rest of its cluster keeps its
// clients' TCP connections, so the client never reconnects on its own, and
// every JetStream request times out or finds no responder until the
// partition heals.
//
// The bus reports what its JetStream requests meet (publishes, consumer
// fetches, readiness checks). A failure of the kind a cut-off server causes
// opens an episode, which a later success of the same request (the same
// kind on the same stream) closes. When failures have kept coming for
// Config.FailoverAfter, the bus asks the other servers it knows (the
// configured URLs and those the cluster advertised), over a connection of
// its own, for the stream that failed: if one of them has a leader for it
// that hears from a majority of its replicas, the connected server is the
// one cut off and the bus reconnects (nats.Conn.ForceReconnect), and the
// next server gets a whole window of its own. If none has, the cluster as a
// whole cannot serve (an election, a lost quorum, every server down) and
// moving would not help: the bus stays and asks again only after another
// window. So it never reconnects more than once per window, and never
// while the whole cluster is failing.
type failover struct {
	nc    *nats.Conn
	after time.Duration
	urls  []string      // the configured URLs, with their credentials
	dial  []nats.Option // options of a probe connection to another server
	log   *slog.Logger
	m     *metrics

	mu     sync.Mutex
	ep     *episode    // nil while nothing fails; set with setEpisode
	open   atomic.Bool // ep != nil, read without mu by note's success path
	stayed string      // the server the bus said it stays on, until an episode ends well

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// request names what failed: a kind of request on a stream ("" for the
// account).
type request struct{ kind, stream string }

// Kinds of request the bus reports.
const (
	reqPublish = "publish"
	reqFetch   = "fetch"
	reqReady   = "account info"
)

// episode is a run of JetStream failures on one server.
type episode struct {
	first       request   // the request that failed first; its success ends the episode
	server      string    // id of the server it happens on
	began       time.Time // the first failure
	since       time.Time // the first failure, then the last check
	lastFailure time.Time
	lastCheck   time.Time
	err         error // the latest failure
}

// peerFresh is how recently a stream leader must have heard from a replica
// to count it: a leader cut off from its replicas keeps answering for a
// while (until it notices it lost its quorum), and how long ago it heard
// from them is what gives it away.
const peerFresh = 2 * time.Second

// probeEvery is how often an episode is looked at; probeTimeout bounds a
// probe connection's dial and its one request.
func (f *failover) probeEvery() time.Duration {
	return min(max(f.after/4, 100*time.Millisecond), time.Second)
}
func (f *failover) probeTimeout() time.Duration {
	return min(max(f.after/2, 250*time.Millisecond), 2*time.Second)
}

// startFailover starts watching b's connection; stop it with stop.
func startFailover(b *Bus, cfg Config, o options) *failover {
	ctx, cancel := context.WithCancel(context.Background())
	f := &failover{
		nc: b.nc, after: cfg.FailoverAfter, urls: slices.Clone(cfg.URLs), log: b.log, m: b.metrics,
		wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
	}
	name := cfg.Name
	if name == "" {
		name = "iamflow"
	}
	f.dial = append(connOptions(cfg, o),
		nats.Name(name+" (failover probe)"),
		nats.NoReconnect(),
		nats.RetryOnFailedConnect(false),
		nats.Timeout(f.probeTimeout()),
		// A probe's connection is no news: keep it out of the log.
		nats.DisconnectErrHandler(nil),
		nats.ReconnectHandler(nil),
		nats.ClosedHandler(nil),
	)
	go func() {
		defer close(f.done)
		f.watch(ctx)
	}()
	return f
}

// stop ends the watch and waits for it.
func (f *failover) stop() {
	f.cancel()
	<-f.done
}

// note reports how a request of kind on stream ended (nil f: no watch).
func (f *failover) note(kind, stream string, err error) {
	if f == nil {
		return
	}
	if err == nil && !f.open.Load() {
		// The common case, kept off the lock every publish would share:
		// no episode for a success to end.
		return
	}
	r := request{kind: kind, stream: stream}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil:
		if f.ep != nil && f.ep.first == r {
			f.setEpisode(nil)
			f.stayed = ""
		}
	case clusterTrouble(err):
		now := time.Now()
		if f.ep == nil {
			f.setEpisode(&episode{first: r, server: f.nc.ConnectedServerId(), began: now, since: now})
			select {
			case f.wake <- struct{}{}:
			default:
			}
		}
		f.ep.lastFailure, f.ep.err = now, err
	}
}

// setEpisode sets ep (nil ends the episode); f.mu is held.
func (f *failover) setEpisode(ep *episode) {
	f.ep = ep
	f.open.Store(ep != nil)
}

// clusterTrouble reports whether err is what a JetStream request meets
// when the server cannot reach the rest of the cluster: no responder for
// the subject (the stream's leader is elsewhere), no answer in time, or the
// server saying JetStream is unavailable (no meta leader).
func clusterTrouble(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, jetstream.ErrNoHeartbeat):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503
	}
	return false
}

func (f *failover) watch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
			f.follow(ctx)
		}
	}
}

// follow looks at the episode every little while until it ends.
func (f *failover) follow(ctx context.Context) {
	tick := time.NewTicker(f.probeEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if f.nc.IsClosed() || !f.check(ctx) {
			return
		}
	}
}

// check decides about the episode; false when it is over.
func (f *failover) check(ctx context.Context) bool {
	f.mu.Lock()
	ep := f.ep
	if ep == nil {
		f.mu.Unlock()
		return false
	}
	if f.nc.Status() != nats.CONNECTED || f.nc.ConnectedServerId() != ep.server {
		// The client reconnects on its own: the next server's failures
		// start afresh.
		f.setEpisode(nil)
		f.mu.Unlock()
		return false
	}
	now := time.Now()
	if now.Sub(ep.since) < f.after {
		f.mu.Unlock()
		return true
	}
	if !ep.lastFailure.After(ep.lastCheck) {
		// Nothing failed since the last check: nothing is asked of
		// JetStream any more, or it answers.
		f.setEpisode(nil)
		f.mu.Unlock()
		return false
	}
	first, failing, lastErr := ep.first, now.Sub(ep.began), ep.err
	f.mu.Unlock()

	other := f.findBetter(ctx, first.stream, ep.server)
	if ctx.Err() != nil {
		return false
	}
	if other == "" {
		f.m.failover.WithLabelValues(failoverStayed).Inc()
		f.mu.Lock()
		said := f.stayed == ep.server
		f.stayed = ep.server
		if f.ep == ep {
			ep.since, ep.lastCheck = time.Now(), time.Now()
		}
		f.mu.Unlock()
		if !said {
			f.log.Warn("JetStream keeps failing on the connected NATS server, and no other server serves it either; staying",
				"server", f.nc.ConnectedServerName(), "request", first.kind, "stream", first.stream, "error", lastErr)
		}
		return true
	}
	f.log.Warn("JetStream keeps failing on the connected NATS server while another serves it (this one is likely cut off from its cluster); reconnecting",
		"server", f.nc.ConnectedServerName(), "url", f.nc.ConnectedUrlRedacted(), "request", first.kind, "stream", first.stream,
		"failing_for", failing.Round(time.Millisecond), "error", lastErr, "serving", other)
	f.m.failover.WithLabelValues(failoverReconnected).Inc()
	f.mu.Lock()
	f.setEpisode(nil)
	f.mu.Unlock()
	if err := f.nc.ForceReconnect(); err != nil {
		f.log.Warn("reconnect to another NATS server", "error", err)
	}
	return false
}

// findBetter returns the redacted URL of a server other than the one with
// id current that serves stream ("": the account), "" if none does.
func (f *failover) findBetter(ctx context.Context, stream, current string) string {
	for _, u := range f.candidates() {
		if ctx.Err() != nil {
			return ""
		}
		if f.serves(ctx, u, stream, current) {
			return redactURLs(u)
		}
	}
	return ""
}

// candidates are the configured URLs and the servers the cluster
// advertised, each host once, the connected one left out.
func (f *failover) candidates() []string {
	seen := map[string]bool{}
	if cu, err := url.Parse(f.nc.ConnectedUrl()); err == nil {
		seen[cu.Host] = true
	}
	var out []string
	for _, s := range append(slices.Clone(f.urls), f.nc.DiscoveredServers()...) {
		u, err := url.Parse(s)
		if err != nil || seen[u.Host] {
			continue
		}
		seen[u.Host] = true
		out = append(out, s)
	}
	return out
}

// serves reports whether the server at u (not the one with id current)
// serves stream over a connection of its own: it has a leader for it that
// hears from a majority of its replicas (for the account: it answers).
func (f *failover) serves(ctx context.Context, u, stream, current string) bool {
	pc, err := nats.Connect(u, f.dial...)
	if err != nil {
		return false
	}
	defer pc.Close()
	if pc.ConnectedServerId() == current {
		return false
	}
	js, err := jetstream.New(pc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, f.probeTimeout())
	defer cancel()
	if stream == "" {
		_, err := js.AccountInfo(ctx)
		return err == nil
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return false
	}
	return hasQuorum(st.CachedInfo().Cluster)
}

// hasQuorum reports whether a stream's group has a leader that heard from
// a majority of the group lately (no cluster information: a single server,
// which serves what it answers for).
func hasQuorum(ci *jetstream.ClusterInfo) bool {
	if ci == nil {
		return true
	}
	if ci.Leader == "" {
		return false
	}
	heard := 1 // the leader
	for _, r := range ci.Replicas {
		if r.Current && !r.Offline && r.Active < peerFresh {
			heard++
		}
	}
	return heard > (1+len(ci.Replicas))/2
}
