//go:build linux

package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

// The proof at production shape (issue 21): three nats-servers in a
// JetStream cluster, every stream and bucket with three replicas, two
// processes of every service, and the changes and grants of TestProof
// flowing while NATS servers fail one at a time: SIGKILL of the server that
// leads IAM_EVENTS, of the one that leads the grants' bucket, of the
// JetStream meta leader; a rolling restart of every server; a partition of
// the server that leads IAM_EVENTS. Every check of TestProof holds
// (stackT.verify), strictly: no grant may be ended by the safety scan
// (replicated streams must not lose a timer), and no action may be decided
// twice (checkDecisions). The summary reports what each fault cost.
func TestClusterProof(tt *testing.T) {
	t := startProof(tt, "the cluster proof takes minutes; run it with make e2e-cluster")
	ctx := t.Context()
	s := newStack(t, shape{natsNodes: 3, replicas: 2, strictTimers: true})
	s.up()
	var faults []faultRecord
	// One change every 80 ms: the emulated domains deliver their events one
	// at a time, as OCI delivers to one endpoint, and faster changes would
	// queue there (measured: 20 s behind at 40 ms), so that the faults
	// would meet a backlog rather than changes as they are made.
	r := s.drive(ctx, 0, 80*time.Millisecond, func(drv *driver) []summaryRow {
		faults = s.clusterFaults(ctx, drv)
		var rows []summaryRow
		for _, f := range faults {
			rows = append(rows, summaryRow{f.title(), f.String()})
		}
		return rows
	})
	r.extraLines = append(r.extraLines, summaryRow{"replication", s.checkReplication(ctx)})
	s.verify(ctx, r)
	t.Logf("recovery per fault:\n%s", recoveryTable(faults))
}

// faultKind is what happens to a NATS server.
type faultKind string

const (
	faultKill      faultKind = "SIGKILL"
	faultRestart   faultKind = "SIGTERM and restart"
	faultPartition faultKind = "partition"
)

// faultPlan is one fault: what, and which server (chosen when it is due,
// from what the cluster reports then).
type faultPlan struct {
	kind faultKind
	why  string
	pick func(ctx context.Context) (int, error)
}

// faultRecord is what one fault cost.
type faultRecord struct {
	n          int
	kind       faultKind
	node, why  string
	atChange   int64
	inFlight   string
	led        []string                 // streams the server led when it failed
	newLeaders map[string]time.Duration // stream (or "meta") -> when another server led it, from the fault
	refused    int                      // deliveries ingest did not acknowledge, from the fault until the server caught up
	writesBack time.Duration            // from the fault to the first acknowledged delivery after the last refused one
	down       time.Duration            // from the fault to the restart or heal
	current    time.Duration            // from the restart or heal until the server was current again
	acked      int                      // deliveries acknowledged while it was down
	clients    []string                 // the iamflow processes connected to it when it failed
	// struck, restored and currentAt are when it failed, came back, and was current again.
	struck, restored, currentAt time.Time
}

func (f faultRecord) title() string { return fmt.Sprintf("fault %d: %s %s", f.n, f.kind, f.node) }

func (f faultRecord) String() string {
	var leaders []string
	for _, k := range slices.Sorted(maps.Keys(f.newLeaders)) {
		leaders = append(leaders, fmt.Sprintf("%s %v", k, f.newLeaders[k].Round(time.Millisecond)))
	}
	back := "restart"
	if f.kind == faultPartition {
		back = "heal"
	}
	return fmt.Sprintf("(%s) %s-%s, at change %d, in flight: %s; its clients: %s; it led %d streams; another server led them after: %s; "+
		"ingest refused %d deliveries, acknowledged again %v after the fault; %d acknowledged while it was away %v; current again %v after the %s",
		f.why, f.struck.Format("15:04:05.000"), f.currentAt.Format("15:04:05.000"), f.atChange, f.inFlight, strings.Join(f.clients, " "), len(f.led),
		strings.Join(leaders, ", "), f.refused, f.writesBack.Round(time.Millisecond),
		f.acked, f.down.Round(time.Millisecond), f.current.Round(time.Millisecond), back)
}

// maxLeader is the longest leader failover of a fault.
func (f faultRecord) maxLeader() time.Duration {
	var m time.Duration
	for _, d := range f.newLeaders {
		m = max(m, d)
	}
	return m
}

// recoveryTable is the faults' costs as a table (docs/deployment.md).
func recoveryTable(faults []faultRecord) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tserver\tleaders moved within\tingest refused\tacknowledging again after\tdown\tcurrent again after")
	for _, f := range faults {
		fmt.Fprintf(tw, "%s (%s)\t%s\t%v\t%d\t%v\t%v\t%v\n", f.kind, f.why, f.node, f.maxLeader().Round(time.Millisecond), f.refused,
			f.writesBack.Round(time.Millisecond), f.down.Round(time.Millisecond), f.current.Round(time.Millisecond))
	}
	tw.Flush()
	return b.String()
}

// clusterFaults runs the faults one after the other, each once the whole
// cluster is current again, while the driver makes changes.
func (s *stackT) clusterFaults(ctx context.Context, drv *driver) []faultRecord {
	t := s.t
	// Traffic first.
	if err := waitFor(5*time.Minute, 20*time.Millisecond, func() error {
		if n := drv.issued.Load(); n < 200 {
			return fmt.Errorf("%d changes issued", n)
		}
		return nil
	}); err != nil {
		t.Fatalf("before the faults: %v", err)
	}
	leaderOf := func(stream string) func(ctx context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			name, err := s.streamLeader(ctx, 0, stream)
			if err != nil {
				return -1, err
			}
			if i := s.nodeIndex(name); i >= 0 {
				return i, nil
			}
			return -1, fmt.Errorf("stream %s: leader %q is not one of the servers", stream, name)
		}
	}
	node := func(i int) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { return i, nil }
	}
	plan := []faultPlan{
		{faultKill, "it leads IAM_EVENTS", leaderOf("IAM_EVENTS")},
		{faultKill, "it leads the grants' bucket KV_IAM_EXPIRY_GRANTS", leaderOf("KV_IAM_EXPIRY_GRANTS")},
		{faultKill, "it is the JetStream meta leader", func(ctx context.Context) (int, error) {
			name, err := s.metaLeader(ctx, 0)
			if err != nil {
				return -1, err
			}
			return s.nodeIndex(name), nil
		}},
	}
	for i := range s.nats {
		plan = append(plan, faultPlan{faultRestart, fmt.Sprintf("rolling restart, %d of %d", i+1, len(s.nats)), node(i)})
	}
	plan = append(plan, faultPlan{faultPartition, "it leads IAM_EVENTS", leaderOf("IAM_EVENTS")})

	var out []faultRecord
	for n, p := range plan {
		out = append(out, s.natsFault(ctx, drv, n+1, p))
	}
	return out
}

// natsFault runs one fault: it waits until every server is current, picks
// the server, strikes while a delivery is in flight, measures how soon
// another server leads each stream the victim led, keeps the victim away
// until traffic has met the fault (at least 3 s, 5 deliveries acknowledged
// by the others), restarts or heals it, and measures how soon it is
// current again. A fault that met no traffic is an error: it would have
// tested nothing.
func (s *stackT) natsFault(ctx context.Context, drv *driver, n int, p faultPlan) faultRecord {
	t := s.t
	for i := range s.nats {
		if err := s.waitCurrent(i, 2*time.Minute); err != nil {
			t.Fatalf("before fault %d: %v", n, err)
		}
	}
	var victim int
	if err := waitFor(30*time.Second, 200*time.Millisecond, func() error {
		var err error
		victim, err = p.pick(ctx)
		return err
	}); err != nil {
		t.Fatalf("fault %d (%s): pick the server: %v", n, p.why, err)
	}
	vname := s.nats[victim].name
	survivor := (victim + 1) % len(s.nats)
	rec := faultRecord{n: n, kind: p.kind, node: vname, why: p.why, newLeaders: map[string]time.Duration{}}
	leaders, err := s.leaders(ctx, survivor)
	if err != nil {
		t.Fatalf("fault %d: stream leaders: %v", n, err)
	}
	for st, l := range leaders {
		if l == vname {
			rec.led = append(rec.led, st)
		}
	}
	slices.Sort(rec.led)
	meta, _ := s.metaLeader(ctx, survivor)

	// Who is connected to it (a partition leaves them connected to it).
	rec.clients, _ = s.clientsOf(ctx, victim)

	// Strike while a delivery is in flight.
	if err := waitFor(10*time.Second, 2*time.Millisecond, func() error {
		if s.rec.inflight.Load() == 0 {
			return fmt.Errorf("no delivery in flight to ingest")
		}
		return nil
	}); err != nil {
		t.Errorf("fault %d (%s %s): no work in flight to strike: %v", n, p.kind, vname, err)
		rec.inFlight = "nothing"
	} else {
		rec.inFlight = "a delivery to ingest"
	}
	rec.atChange = drv.issued.Load()
	_, ackedSrc0 := s.rec.counts(http.StatusOK, "src")
	_, ackedTgt0 := s.rec.counts(http.StatusOK, "tgt")
	struck := time.Now()
	switch p.kind {
	case faultKill:
		s.stopNode(victim, syscall.SIGKILL)
	case faultRestart:
		s.stopNode(victim, syscall.SIGTERM)
	case faultPartition:
		s.partition(victim)
	}

	// Another server leads what the victim led.
	watch := slices.Clone(rec.led)
	if meta == vname {
		watch = append(watch, "meta")
	}
	left := slices.Clone(watch)
	if err := waitFor(time.Minute, 50*time.Millisecond, func() error {
		left = slices.DeleteFunc(left, func(st string) bool {
			var l string
			var err error
			if st == "meta" {
				l, err = s.metaLeader(ctx, survivor)
			} else {
				l, err = s.streamLeader(ctx, survivor, st)
			}
			if err != nil || l == "" || l == vname {
				return false
			}
			rec.newLeaders[st] = time.Since(struck)
			return true
		})
		if len(left) > 0 {
			return fmt.Errorf("no other leader yet for %v", left)
		}
		return nil
	}); err != nil {
		t.Errorf("fault %d (%s %s): %v", n, p.kind, vname, err)
	}

	// Traffic meets the fault: the others store deliveries without the
	// victim. A partition cuts off the victim's clients too; ingest's move
	// to another server (nats.failover_after) before the heal.
	if err := waitFor(time.Minute, 20*time.Millisecond, func() error {
		_, src := s.rec.counts(http.StatusOK, "src")
		_, tgt := s.rec.counts(http.StatusOK, "tgt")
		rec.acked = src + tgt - ackedSrc0 - ackedTgt0
		if rec.acked < 5 {
			return fmt.Errorf("only %d deliveries acknowledged since the fault", rec.acked)
		}
		if d := time.Since(struck); d < 3*time.Second {
			return fmt.Errorf("away for %v", d)
		}
		return nil
	}); err != nil {
		t.Errorf("fault %d (%s %s): the cluster did not take deliveries without it: %v", n, p.kind, vname, err)
	}
	if drv.issued.Load() == rec.atChange {
		t.Errorf("fault %d (%s %s): no change was made in the source meanwhile", n, p.kind, vname)
	}
	rec.down = time.Since(struck)

	restored := time.Now()
	if p.kind == faultPartition {
		s.heal(victim)
	} else {
		s.startNode(victim)
	}
	if err := s.waitCurrent(victim, 3*time.Minute); err != nil {
		t.Fatalf("fault %d: %v", n, err)
	}
	current := time.Now()
	rec.current = current.Sub(restored)
	rec.struck, rec.restored, rec.currentAt = struck, restored, current
	s.mu.Lock()
	s.outages = append(s.outages, outage{name: "nats", kind: p.kind, from: struck, to: current})
	s.mu.Unlock()

	// What ingest answered meanwhile.
	var lastRefused, firstOK time.Time
	for _, a := range s.rec.answersSince(struck) {
		if a.at.After(current.Add(reconnectMargin)) {
			break
		}
		if a.status < 200 || a.status > 299 {
			rec.refused++
			lastRefused, firstOK = a.at, time.Time{}
		} else if firstOK.IsZero() {
			firstOK = a.at
		}
	}
	if lastRefused.IsZero() {
		rec.writesBack = 0
	} else if !firstOK.IsZero() {
		rec.writesBack = firstOK.Sub(struck)
	}
	t.Logf("%s: %s", rec.title(), rec)
	return rec
}
