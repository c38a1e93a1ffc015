//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/testutil"
)

const linkName = "src-to-tgt"

// dbGroups are the source groups mapped to database roles: members of the
// first get APP_READ, of the second APP_READ and APP_WRITE.
var dbGroups = []string{"DB-Readers", "DB-Writers"}

// isTemp says which groups belong to the target (expiry's temporary groups)
// and are left out of the replication and of the comparison.
var isTemp = regexp.MustCompile(`^(?i)temp-.*$`).MatchString

// services are iamflow's services, each its own process.
var services = []string{"ingest", "capabilities", "expiry", "replicator", "dbprovisioner"}

// infra are the processes iamflow depends on.
var infra = []string{"nats", "src", "tgt", "ords"}

// reconnectMargin is how long after NATS is ready again its clients may
// still be reconnecting (the bus retries every 2s).
const reconnectMargin = 5 * time.Second

// The proof of issues 8 and 21. See the package documentation.
func TestProof(tt *testing.T) {
	t := startProof(tt, "the end-to-end proof takes minutes; run it with make e2e")
	changes := envInt(t, "IAMFLOW_E2E_CHANGES", 3000)
	withKills := os.Getenv("IAMFLOW_E2E_KILLS") != "0"
	// The changes are spread over about this long, so the kills fall among them.
	driveFor := min(60*time.Second, time.Duration(changes)*20*time.Millisecond)
	ctx := t.Context()

	s := newStack(t, shape{natsNodes: 1, replicas: 1, initialSync: "300,20,600"})
	s.up()
	s.initialSync(ctx)
	r := s.drive(ctx, changes, driveFor/time.Duration(changes), func(drv *driver) []summaryRow {
		if !withKills {
			return nil
		}
		var rows []summaryRow
		for _, k := range s.killWhileDriving(ctx, drv, changes) {
			rows = append(rows, summaryRow{"kill " + k.name, fmt.Sprintf("at change %d, in flight: %s; down %v (%s), ready again after %v",
				k.atChange, k.inFlight, k.down.Round(time.Millisecond), k.landed, k.ready.Round(time.Millisecond))})
		}
		return rows
	})
	s.verify(ctx, r)
}

// shape is what a stack runs.
type shape struct {
	// natsNodes is 1 (one nats-server) or 3 (a JetStream cluster whose
	// streams and buckets have three replicas).
	natsNodes int
	// replicas is the number of processes of each service.
	replicas int
	// strictTimers: a grant the expiry service's safety scan had to end is
	// an error even when its deadline fell into a NATS fault (a cluster
	// with replicated streams must not lose a timer's delivery).
	strictTimers bool
	// afterOutage, if set, is every service's repair threshold after an
	// outage of NATS (the default is minutes).
	afterOutage time.Duration
	// initialSync, if set, is a directory (USERS,GROUPS,MEMBERSHIPS) the
	// source holds before the services start, without events: only the
	// replicator's full reconcile on start copies it, and it does so
	// through SCIM Bulk, which the target emulator offers as OCI does.
	initialSync string
}

// newStack builds the binaries and registers the processes of a stack of
// that shape in a new work directory; up starts them. Everything stops when
// the test ends.
func newStack(t *proofT, sh shape) *stackT {
	dir, err := os.MkdirTemp("", "iamflow-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("work directory (binaries, config, logs, NATS store): %s", dir)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("IAMFLOW_E2E_KEEP") == "1" {
			t.Logf("kept %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	bin, natsBin := buildBinaries(t, dir)

	s := &stackT{t: t, dir: dir, bin: bin, natsBin: natsBin, shape: sh,
		adminToken: randomHex(t), clientSecret: randomHex(t), webhookPassword: randomHex(t),
		procs: map[string]*proc{}, urls: map[string]string{}, addrs: map[string][2]string{}, conns: map[string]*grpc.ClientConn{},
		next: map[string]int{}}
	s.env = []string{"E2E_ADMIN_TOKEN=" + s.adminToken, "E2E_CLIENT_SECRET=" + s.clientSecret, "E2E_WEBHOOK_PASSWORD=" + s.webhookPassword}
	// Ingest is reached through a recorder that notes its every answer.
	s.rec = newWebhookRecorder()
	s.hook = httptest.NewServer(s.rec)
	t.Cleanup(s.hook.Close)
	t.Cleanup(s.closeConns)

	// Every process binds port 0 and says which port it got: nothing is
	// reserved and released for another process to take meanwhile.
	s.addNATS()
	// The changes are made with the emulator's second client
	// (--admin-client-id), as a person would; iamflow's own client is
	// iamflow's.
	srcArgs := []string{"emulate", "identity-domain", "--addr", "127.0.0.1:0", "--tier", "unlimited",
		"--client-id", "iamflow", "--admin-client-id", "e2e-driver", "--client-secret", "env:E2E_CLIENT_SECRET", "--webhook", s.hook.URL,
		"--webhook-password", "env:E2E_WEBHOOK_PASSWORD"}
	if sh.initialSync != "" {
		srcArgs = append(srcArgs, "--generate", sh.initialSync)
	}
	s.add("src", bin, append(srcArgs, "src")...)
	s.add("tgt", bin, "emulate", "identity-domain", "--addr", "127.0.0.1:0", "--tier", "unlimited",
		"--client-id", "iamflow", "--client-secret", "env:E2E_CLIENT_SECRET", "--webhook", s.hook.URL,
		"--webhook-password", "env:E2E_WEBHOOK_PASSWORD", "--seed", filepath.Join(dir, "tgt-seed.yaml"), "tgt")
	s.add("ords", bin, "emulate", "ords", "--addr", "127.0.0.1:0", "--client-id", "iamflow",
		"--client-secret", "env:E2E_CLIENT_SECRET", "--seed", filepath.Join(dir, "ords-seed.yaml"), "db1")
	for _, svc := range services {
		for _, n := range s.replicasOf(svc) {
			s.add(n, bin, "serve", "--config", filepath.Join(dir, "iamflow.yaml"), svc)
			// The NATS servers' monitoring shows which process is whose client.
			s.procs[n].env = append(slices.Clone(s.env), "IAMFLOW_NATS_NAME="+n)
		}
	}
	t.Cleanup(func() {
		order := slices.Clone(s.order)
		slices.Reverse(order)
		for _, n := range order {
			s.procs[n].stop()
		}
		if t.Failed() {
			for _, n := range s.order {
				t.Logf("----- last lines of %s's log:\n%s", n, s.procs[n].tail(25))
			}
		}
	})
	return s
}

// up starts the stack: NATS, the emulators, then every service process.
func (s *stackT) up() {
	start := time.Now()
	s.writeSeeds()
	s.startAllNATS()
	for _, n := range []string{"src", "tgt", "ords"} {
		s.startEmulator(n)
	}
	s.writeConfig()
	for _, svc := range services {
		for _, n := range s.replicasOf(svc) {
			s.startService(n)
		}
	}
	s.t.Logf("stack up in %v: nats via %s, ingest via recorder %s, src %s, tgt %s, ords %s",
		time.Since(start).Round(time.Millisecond), strings.Join(s.natsAddrs(), ","), s.hook.URL, s.urls["src"], s.urls["tgt"], s.urls["ords"])
}

// replicasOf names the processes of a service: the service's name when it
// runs once, "<name>-1", "<name>-2", ... when it runs in replicas.
func (s *stackT) replicasOf(svc string) []string {
	if s.shape.replicas <= 1 {
		return []string{svc}
	}
	out := make([]string, s.shape.replicas)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", svc, i+1)
	}
	return out
}

// summaryRow is one line of a proof's summary.
type summaryRow struct{ key, value string }

// driveRun is what a drive did.
type driveRun struct {
	drv        *driver
	grants     *granter
	src, tgt   *identitydomain.Client
	driveTime  time.Duration
	faultRows  []summaryRow
	extraLines []summaryRow
}

// drive makes changes in the source (changes of them, one every interval,
// from 4 workers) and grants in both domains while faults runs, and
// returns once the changes, the grants and faults are done. faults returns
// the summary's rows about what it did. When changes is 0 the driver runs
// until faults returns, then makes its finale.
func (s *stackT) drive(ctx context.Context, changes int, interval time.Duration, faults func(*driver) []summaryRow) *driveRun {
	t := s.t
	r := &driveRun{
		src: newClient(t, "src", s.urls["src"], "e2e-driver", s.clientSecret, s.dir),
		tgt: newClient(t, "tgt", s.urls["tgt"], "iamflow", s.clientSecret, s.dir),
	}
	if _, _, err := r.src.CreateGroup(ctx, identitydomains.Group{DisplayName: ptr(srcTempGroup)}); err != nil {
		t.Fatal(err)
	}

	// The changes, the grants and the faults, all at once.
	drv := newDriver(r.src, 8, dbGroups...)
	r.drv = drv
	drv.quiesce = func(ctx context.Context) {
		err := waitFor(time.Minute, 100*time.Millisecond, func() error {
			for _, d := range []string{"src", "tgt"} {
				if st, err := emulatorStats(ctx, s.urls[d]); err != nil || st.Events.Pending > 0 {
					return fmt.Errorf("%s: events pending (%v)", d, err)
				}
			}
			if n, err := s.replicatorBacklog(ctx); err != nil || n > 0 {
				return fmt.Errorf("replicator backlog %d (%v)", n, err)
			}
			return nil
		})
		if err != nil {
			t.Errorf("before the driver's finale, the replicator did not catch up: %v", err)
		}
	}
	faultsDone := make(chan struct{})
	n := changes
	if changes == 0 {
		n = math.MaxInt32
		drv.until = faultsDone
	}
	driveStart := time.Now()
	driverDone := make(chan struct{})
	go func() {
		defer close(driverDone)
		drv.run(ctx, n, 4, interval)
	}()
	r.grants = &granter{s: s, drv: drv, src: r.src, tgt: r.tgt}
	grantsDone := make(chan struct{})
	go func() {
		defer close(grantsDone)
		r.grants.run(ctx, driverDone)
	}()
	r.faultRows = faults(drv)
	close(faultsDone)
	<-driverDone
	<-grantsDone
	r.driveTime = time.Since(driveStart)
	return r
}

// verify checks what a drive left, once everything has settled, and logs
// the summary: every grant ended in time; every event was delivered; the
// target equals the source after the event path settled, before a full
// reconcile, which then repairs nothing; the database matches the mapping;
// no object exists twice; no acknowledged event was lost; ingest refused
// only during outages; no dead letters; no timer missed; no action decided
// twice.
func (s *stackT) verify(ctx context.Context, r *driveRun) {
	t := s.t
	made, drvErrs := r.drv.counts()
	for _, e := range drvErrs {
		t.Errorf("driver: %s", e)
	}
	grants := r.grants
	srcClient, tgtClient := r.src, r.tgt

	// Every grant ends (the temporary groups are part of what is compared).
	grantLine := grants.check(ctx)

	// Every event the domains emitted is delivered: the webhook retried
	// through every outage.
	converge := time.Now()
	if err := waitFor(2*time.Minute, 200*time.Millisecond, func() error {
		for _, d := range []string{"src", "tgt"} {
			st, err := emulatorStats(ctx, s.urls[d])
			if err != nil {
				return err
			}
			if st.Events.Pending != 0 {
				return fmt.Errorf("%s: %d events not delivered yet", d, st.Events.Pending)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("the emulated domains did not deliver every event: %v", err)
	}
	deliveredIn := time.Since(converge)

	// The event path settles, and then, before any full reconcile, the
	// target equals the source (issue 13).
	deleted, former := r.drv.gone()
	settled, eventDiff := s.settle(ctx, srcClient, tgtClient, deleted, former)
	settleTime := time.Since(converge)
	if len(eventDiff) > 0 {
		t.Errorf("after the event path settled (%s), before any full reconcile, the target differs from the source in %d ways:\n%s",
			settled, len(eventDiff), head(eventDiff, 30))
		t.Logf("what JetStream holds about the objects that differ:\n%s", s.traceObjects(ctx, r.drv.sourceIDs(objectsIn(eventDiff))))
	}

	// The database catalog matches the mapping.
	dbLine := s.checkCatalog(ctx, srcClient, deleted, former)

	// Every action iamflow took so far is recorded once (before the final
	// reconcile, whose records are its own).
	auditLine := s.checkDecisions(ctx)

	// The full reconcile then finds nothing to repair: what it repairs, the
	// event path missed.
	reconcileStart := time.Now()
	repairs := s.finalReconcile(ctx)
	reconcileTime := time.Since(reconcileStart)

	// Every target equals the source; no object was created twice.
	want, err := readSnapshot(ctx, srcClient, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readSnapshot(ctx, tgtClient, isTemp)
	if err != nil {
		t.Fatal(err)
	}
	if d := want.lower().targetDiff(got, deleted, former); len(d) > 0 {
		t.Errorf("after the full reconcile the target still differs from the source in %d ways:\n%s", len(d), head(d, 30))
	}
	if kept := got.deletedIn(deleted); got.userCount-kept != want.userCount || got.groupCount != want.groupCount {
		t.Errorf("target holds %d users (%d of them deleted in the source) and %d groups (temporary groups aside), the source %d and %d: something was created twice or lost",
			got.userCount, kept, got.groupCount, want.userCount, want.groupCount)
	}
	// The source holds exactly what the driver says it made (and the
	// source's temporary group, empty now).
	model := r.drv.model()
	model.groups[srcTempGroup] = []string{}
	maps.Copy(model.users, s.initial.users) // the driver leaves the generated directory alone
	maps.Copy(model.groups, s.initial.groups)
	if d := model.lower().diff(want); len(d) > 0 {
		t.Errorf("the source differs from the driver's record in %d ways (a driver bug?):\n%s", len(d), head(d, 10))
	}

	// Ingest never answered 2xx for an event it then lost, and refused
	// deliveries only while it or NATS was down.
	acked, statuses, ackedBy := s.rec.snapshot()
	var stored map[string]int
	var streamMsgCount uint64
	if err := waitFor(time.Minute, time.Second, func() error {
		var err error
		stored, streamMsgCount, err = streamContent(ctx, s.natsURL(), "IAM_EVENTS")
		return err
	}); err != nil {
		t.Fatalf("read IAM_EVENTS: %v", err)
	}
	lost := 0
	for id, dom := range acked {
		if stored[id] == 0 {
			if lost < 10 {
				t.Errorf("event %s from %s: ingest answered 2xx, but it is not in IAM_EVENTS", id, dom)
			}
			lost++
		}
	}
	srcStats, _ := emulatorStats(ctx, s.urls["src"])
	tgtStats, _ := emulatorStats(ctx, s.urls["tgt"])
	if int64(ackedBy["src"]) != srcStats.Events.Delivered || int64(ackedBy["tgt"]) != tgtStats.Events.Delivered {
		t.Errorf("deliveries acknowledged by ingest (src %d, tgt %d) differ from the emulators' counts (src %d, tgt %d)",
			ackedBy["src"], ackedBy["tgt"], srcStats.Events.Delivered, tgtStats.Events.Delivered)
	}
	s.checkRefusals()
	// Nothing in this run needs a person: every dead letter is a defect.
	var dlq int
	var dlqByConsumer string
	var letters []deadLetter
	if err := waitFor(time.Minute, time.Second, func() error {
		var err error
		dlq, dlqByConsumer, letters, err = deadLetters(ctx, s.natsURL())
		return err
	}); err != nil {
		t.Errorf("read IAM_DLQ: %v", err)
	}
	if len(letters) > 0 {
		t.Errorf("IAM_DLQ holds %d dead letters, but nothing in this run needs a person:\n%s", dlq, dlqByConsumer)
	}
	if missed := s.counter(ctx, "expiry", "timers_missed"); missed != int64(grants.byScanInCrash) {
		t.Errorf("expiry status: timers_missed = %d, %d of them explained by the NATS SIGKILL: grants ended late by the safety scan, not by their timers",
			missed, grants.byScanInCrash)
	}

	// The summary.
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	row := func(k string, v ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprint(v...)) }
	total := 0
	for k, v := range made {
		if !strings.HasSuffix(k, "_failed") {
			total += v
		}
	}
	row("changes made in src", fmt.Sprintf("%d in %v: %s", total, r.driveTime.Round(time.Millisecond), formatCounts(made)))
	row("source now", fmt.Sprintf("%d users, %d groups (%d users deleted, %d renamed)", want.userCount, want.groupCount, len(deleted), len(former)))
	row("target now", fmt.Sprintf("%d users (%d deleted in the source, kept inactive), %d groups (+ %s)", got.userCount, got.deletedIn(deleted), got.groupCount, tgtTempGroup))
	row("events emitted / delivered", fmt.Sprintf("src %d/%d, tgt %d/%d (failed attempts: src %d, tgt %d)",
		srcStats.Events.Emitted, srcStats.Events.Delivered, tgtStats.Events.Emitted, tgtStats.Events.Delivered,
		srcStats.Events.Failed, tgtStats.Events.Failed))
	row("ingest answers", formatStatuses(statuses))
	row("acknowledged event ids", fmt.Sprintf("%d, of which lost: %d; IAM_EVENTS holds %d messages; IAM_DLQ %d", len(acked), lost, streamMsgCount, dlq))
	for _, fr := range r.faultRows {
		row(fr.key, fr.value)
	}
	for _, n := range s.order {
		if starts, crashes := s.procs[n].stats(); len(crashes) > 0 {
			row("unexpected exits "+n, fmt.Sprintf("%d of %d starts: %s", len(crashes), starts, strings.Join(crashes, "; ")))
		}
	}
	row("all delivered after", deliveredIn.Round(time.Millisecond))
	row("event path settled", fmt.Sprintf("after %v (%s); target = source: %s", settleTime.Round(time.Millisecond), settled, diffText(eventDiff)))
	if s.initialLine != "" {
		row("initial sync (full reconcile)", s.initialLine)
	}
	row("final full reconcile", fmt.Sprintf("%v, had to repair: %s", reconcileTime.Round(time.Millisecond), repairs))
	row("grants", grantLine)
	row("database db1", dbLine)
	row("decisions (audit)", auditLine)
	row("known gaps", s.gapsLine())
	for _, fr := range r.extraLines {
		row(fr.key, fr.value)
	}
	tw.Flush()
	t.Logf("summary:\n%s", b.String())
}

// objectsIn returns the userNames and group names that lines of a
// targetDiff are about.
func objectsIn(diff []string) []string {
	var out []string
	for _, l := range diff {
		for _, kind := range []string{"user ", "group "} {
			if rest, ok := strings.CutPrefix(l, kind); ok {
				name, _, _ := strings.Cut(rest, ":")
				out = append(out, name)
			}
		}
	}
	return out
}

// stackT is the running stack.
type stackT struct {
	t                 *proofT
	dir, bin, natsBin string
	shape             shape
	// initial is the source's generated directory (shape.initialSync) and
	// initialLine what its sync did.
	initial                                   snapshot
	initialLine                               string
	adminToken, clientSecret, webhookPassword string
	env                                       []string
	procs                                     map[string]*proc
	order                                     []string // the processes in start order
	nats                                      []*natsNode
	// natsProxy is the one NATS server's client address (natsNodes 1).
	natsProxy *testutil.TCPProxy
	// routes[i][j] is how node i reaches node j's cluster port (natsNodes 3);
	// nowhere is where every node says others can reach it (see addNATS).
	routes  [][]*testutil.TCPProxy
	nowhere *testutil.TCPProxy
	rec     *webhookRecorder
	hook    *httptest.Server
	urls    map[string]string // src, tgt, ords: the emulators' base URLs

	mu      sync.Mutex
	addrs   map[string][2]string // service process -> the admin gRPC and HTTP addresses it bound
	conns   map[string]*grpc.ClientConn
	outages []outage
	next    map[string]int // service -> the replica the next call goes to
	gaps    map[string]int // known gaps seen, by id
}

// outage is one process down, from its SIGKILL until it was ready again;
// in a cluster, one NATS server's fault until it was current again.
type outage struct {
	name     string
	kind     faultKind // in a cluster
	from, to time.Time
}

func (o outage) String() string {
	what := "outage"
	if o.kind != "" {
		what = string(o.kind)
	}
	return fmt.Sprintf("the %s %s %s-%s", o.name, what, o.from.Format("15:04:05.000"), o.to.Format("15:04:05.000"))
}

// add registers a process.
func (s *stackT) add(name, bin string, args ...string) {
	s.procs[name] = &proc{t: s.t, name: name, bin: bin, args: args, env: s.env, logPath: filepath.Join(s.dir, name+".log")}
	s.order = append(s.order, name)
}

// emulatorURL matches the line an emulator prints with its base URL.
var emulatorURL = regexp.MustCompile(`^identity domain\s+\S+\s+(http://\S+)|what the databases hold: (http://[^/\s]+)/_emulator`)

// startEmulator starts an emulator and learns its URL from what it prints.
func (s *stackT) startEmulator(name string) {
	t, p := s.t, s.procs[name]
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	url, err := p.fromLog(60*time.Second, "its URL", func(line string) (string, bool) {
		m := emulatorURL.FindStringSubmatch(line)
		if m == nil {
			return "", false
		}
		return m[1] + m[2], true
	})
	if err != nil {
		t.Fatal(err)
	}
	s.urls[name] = url
	if err := waitFor(60*time.Second, 20*time.Millisecond, func() error { return httpOK(url + "/_emulator/stats") }); err != nil {
		t.Fatalf("%s not ready: %v", name, err)
	}
}

// startService starts an iamflow service, learns the addresses it bound
// from its log, and waits until it is ready.
func (s *stackT) startService(name string) {
	if err := s.tryStartService(name); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stackT) tryStartService(name string) error {
	p := s.procs[name]
	if err := p.start(); err != nil {
		return err
	}
	both, err := p.fromLog(60*time.Second, "its admin addresses", adminAddrs)
	if err != nil {
		return err
	}
	grpcAddr, httpAddr, _ := strings.Cut(both, " ")
	s.mu.Lock()
	s.addrs[name] = [2]string{grpcAddr, httpAddr}
	s.mu.Unlock()
	if strings.HasPrefix(name, "ingest") {
		addr, err := p.fromLog(60*time.Second, "its webhook address", ingestAddr)
		if err != nil {
			return err
		}
		s.rec.setTarget(name, "http://"+addr+"/v1/events")
	}
	if err := waitFor(60*time.Second, 20*time.Millisecond, func() error { return httpOK("http://" + httpAddr + "/readyz") }); err != nil {
		return fmt.Errorf("%s not ready: %w\n%s", name, err, p.tail(30))
	}
	// Ready means connected and serving; running means the service has
	// made its streams and buckets and consumes. The next process starts
	// after that, as a rolling deployment would start it.
	svc, _, _ := strings.Cut(name, "-")
	if err := waitFor(60*time.Second, 50*time.Millisecond, func() error {
		c, err := s.conn(context.Background(), name)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := iamflowv1.NewStatusServiceClient(c).GetStatus(ctx, &iamflowv1.GetStatusRequest{Service: svc})
		if err != nil {
			return err
		}
		for _, st := range resp.GetServices() {
			if st.GetState() != iamflowv1.State_STATE_RUNNING {
				return fmt.Errorf("%s is %v", st.GetName(), st.GetState())
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%s not running: %w\n%s", name, err, p.tail(30))
	}
	return nil
}

// grpcAddr is where a service process's admin gRPC API listens now. A
// service's name (rather than one of its processes' names) picks its
// replicas in turn.
func (s *stackT) grpcAddr(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[s.processFor(name)][0]
}

// processFor returns name if it is a process, else the next replica of the
// service name. s.mu is held.
func (s *stackT) processFor(name string) string {
	if _, ok := s.addrs[name]; ok || !slices.Contains(services, name) {
		return name
	}
	rs := s.replicasOf(name)
	i := s.next[name] % len(rs)
	s.next[name]++
	return rs[i]
}

// conn is a (cached) admin gRPC connection to a service process's current
// address (a service's name picks its replicas in turn).
func (s *stackT) conn(ctx context.Context, name string) (*grpc.ClientConn, error) {
	addr := s.grpcAddr(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[addr]; c != nil {
		return c, nil
	}
	c, err := admin.Dial(ctx, addr, secret.NewValue(s.adminToken))
	if err != nil {
		return nil, err
	}
	s.conns[addr] = c
	return c, nil
}

func (s *stackT) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// replicatorBacklog is how many events the replicator's consumers have not
// finished (see backlogOf).
func (s *stackT) replicatorBacklog(ctx context.Context) (uint64, error) {
	return backlogOf(ctx, s, "replicator", func(ctx context.Context, c *grpc.ClientConn) ([]*iamflowv1.DirectionStatus, error) {
		resp, err := iamflowv1.NewReplicatorServiceClient(c).GetReplicatorStatus(ctx, &iamflowv1.GetReplicatorStatusRequest{Link: linkName})
		var out []*iamflowv1.DirectionStatus
		for _, l := range resp.GetLinks() {
			out = append(out, l.GetDirections()...)
		}
		return out, err
	})
}

// backlog is how many messages a service's consumers have not finished, as
// its status reports them (see backlogOf).
func (s *stackT) backlog(ctx context.Context, service string) (uint64, error) {
	return backlogOf(ctx, s, service, func(ctx context.Context, c *grpc.ClientConn) ([]*iamflowv1.ConsumerStatus, error) {
		resp, err := iamflowv1.NewStatusServiceClient(c).GetStatus(ctx, &iamflowv1.GetStatusRequest{Service: service})
		var out []*iamflowv1.ConsumerStatus
		for _, st := range resp.GetServices() {
			out = append(out, st.GetConsumers()...)
		}
		return out, err
	})
}

// backlogOf is how many messages the consumers that list reads (on an admin
// connection to the process name, within five seconds) have not finished:
// pending, plus delivered and not acknowledged (including those waiting
// for a retry).
func backlogOf[C interface {
	GetPending() uint64
	GetAckPending() uint64
}](ctx context.Context, s *stackT, name string, list func(context.Context, *grpc.ClientConn) ([]C, error)) (uint64, error) {
	conn, err := s.conn(ctx, name)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	consumers, err := list(ctx, conn)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range consumers {
		n += c.GetPending() + c.GetAckPending()
	}
	return n, nil
}

// errStop ends a waitFor early with err.
type errStop struct{ error }

// counter sums one status counter of a service over its processes.
func (s *stackT) counter(ctx context.Context, service, name string) int64 {
	var sum int64
	for _, p := range s.replicasOf(service) {
		c, err := s.conn(ctx, p)
		if err != nil {
			s.t.Errorf("%s status: %v", p, err)
			return -1
		}
		resp, err := iamflowv1.NewStatusServiceClient(c).GetStatus(ctx, &iamflowv1.GetStatusRequest{Service: service})
		if err != nil || len(resp.GetServices()) != 1 {
			s.t.Errorf("%s status: %v", p, err)
			return -1
		}
		sum += resp.GetServices()[0].GetCounters()[name]
	}
	return sum
}

// writeSeeds writes the emulators' seeds: the target's temporary group, and
// the database's roles. (The source's temporary group is made through the
// API, so the replicator hears of it as of any other group.)
func (s *stackT) writeSeeds() {
	for name, content := range map[string]string{
		"tgt-seed.yaml":  fmt.Sprintf("groups:\n  - displayName: %s\n", tgtTempGroup),
		"ords-seed.yaml": "databases:\n  - alias: db1\n    roles: [{name: APP_READ}, {name: APP_WRITE}]\n",
	} {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
}

// writeConfig writes the services' shared configuration, once the
// emulators' and NATS's addresses are known, and checks it.
func (s *stackT) writeConfig() {
	t := s.t
	var urls []string
	for _, a := range s.natsAddrs() {
		urls = append(urls, `"nats://`+a+`"`)
	}
	var afterOutage, expiryAfterOutage string
	if d := s.shape.afterOutage; d > 0 {
		afterOutage = ", after_outage: " + d.String()
		expiryAfterOutage = "\n  reconcile_after_outage: " + d.String()
	}
	cfg := fmt.Sprintf(`# written by e2e (%[10]s)
nats:
  urls: [%[1]s]
  streams: {replicas: %[11]d, storage: file}
admin:
  token: env:E2E_ADMIN_TOKEN
  grpc_addr: 127.0.0.1:0
  http_addr: 127.0.0.1:0
telemetry: {log_level: info, log_format: json}
domains:
  - name: src
    oci_name: src
    url: %[2]s
    client_id: iamflow
    client_secret: env:E2E_CLIENT_SECRET
    tier: premium
    limits: {per_second: -1, per_minute: -1, token_per_second: -1, token_per_minute: -1}
  - name: tgt
    oci_name: tgt
    url: %[3]s
    client_id: iamflow
    client_secret: env:E2E_CLIENT_SECRET
    tier: premium
    limits: {per_second: -1, per_minute: -1, token_per_second: -1, token_per_minute: -1}
ingest:
  listen: 127.0.0.1:0
  path: /v1/events
  username: iamflow
  password: env:E2E_WEBHOOK_PASSWORD
  publish_timeout: 2s
replicator:
  links:
    - name: %[4]s
      source: src
      targets: [tgt]
      groups: {exclude: ['(?i)temp-.*']}
      attributes:
        user: [userName, displayName, name.givenName, name.familyName, emails, active]
      guard: {max_deletions: 100000, max_percent: 100, window: 1h}
  consumer:
    ack_wait: 10s
    max_deliver: 100
    backoff: [500ms, 1s, 2s, 5s]
  full_reconcile: {interval: 1h%[12]s}
capabilities:
  domains: [tgt]
  sweep: {interval: 0s%[12]s}
  default: {can_use_api_keys: false, can_use_auth_tokens: false}
  rules:
    - name: automation
      match: {user_name: 'svc-.*'}
      set: {can_use_api_keys: true}
expiry:
  groups:
    - {domain: tgt, group: %[5]s, max_duration: 1h, default_duration: 1m}
    - {domain: src, group: %[6]s, max_duration: 1h, default_duration: 1m}
  scan_interval: 2s%[13]s
dbprovisioner:
  databases:
    - name: db1
      domain: src
      mode: user
      groups:
        - {group: %[8]s, roles: [APP_READ]}
        - {group: %[9]s, roles: [APP_READ, APP_WRITE]}
      on_leave: lock
      ords:
        url: %[7]s/ords/db1
        auth: oauth
        client_id: iamflow
        client_secret: env:E2E_CLIENT_SECRET
  consumer:
    ack_wait: 10s
    max_deliver: 100
    backoff: [500ms, 1s, 2s, 5s]
  reconcile: {interval: 0s, on_start: true%[12]s}
`, strings.Join(urls, ", "), s.urls["src"], s.urls["tgt"], linkName, tgtTempGroup, srcTempGroup, s.urls["ords"], dbGroups[0], dbGroups[1],
		s.t.Name(), s.streamReplicas(), afterOutage, expiryAfterOutage)
	path := filepath.Join(s.dir, "iamflow.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "config", "check", "--config", path)
	cmd.Env = append(os.Environ(), s.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iamflow config check: %v\n%s", err, out)
	}
}

// cli runs an iamflow command against the stack and returns its stdout.
func (s *stackT) cli(ctx context.Context, args ...string) ([]byte, error) {
	args = append(append([]string(nil), args...), "--config", filepath.Join(s.dir, "iamflow.yaml"))
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("iamflow %s: %v: %s", strings.Join(args[:min(len(args), 2)], " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// lastFault describes the latest outage that began before at, and how long
// before: the context of a lateness the proof did not allow.
func (s *stackT) lastFault(at time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last *outage
	for i := range s.outages {
		if o := &s.outages[i]; !o.from.After(at) && (last == nil || o.from.After(last.from)) {
			last = o
		}
	}
	if last == nil {
		return "no fault before it"
	}
	return fmt.Sprintf("%v after the start of %s", at.Sub(last.from).Round(time.Millisecond), *last)
}

// overlapsOutage reports whether an outage of NATS, ingest or the
// replicator overlapped [from-2s, to].
func (s *stackT) overlapsOutage(from, to time.Time) bool {
	_, ok := s.during(from.Add(-2*time.Second), to)
	return ok
}

// during returns the outage of one of names (any, if none given) that
// overlaps [from, to], NATS's widened by reconnectMargin; of several (faults
// back to back), the one that ends last, since what it allows is the rest
// of the outage.
func (s *stackT) during(from, to time.Time, names ...string) (outage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found outage
	ok := false
	for _, o := range s.outages {
		if len(names) > 0 && !slices.Contains(names, o.name) {
			continue
		}
		end := o.to
		if o.name == "nats" {
			end = end.Add(reconnectMargin)
		}
		if !from.After(end) && !to.Before(o.from) && (!ok || o.to.After(found.to)) {
			found, ok = o, true
		}
	}
	return found, ok
}

// allowDirect is how late after deadline iamflow may remove a membership
// itself: directLateness, plus the rest of a NATS outage (and the
// reconnect) that overlaps the deadline's handling (the timer, its
// redelivery at the deadline and the grants live there: an outage that
// begins just after the deadline, before the revocation is done, holds it
// back too); byScan, when the safety scan ended it, also its grace and two
// scans.
func (s *stackT) allowDirect(deadline time.Time, byScan bool) time.Duration {
	allowed := directLateness
	if o, ok := s.during(deadline.Add(-2*time.Second), deadline.Add(directLateness), "nats"); ok {
		allowed += max(0, o.to.Add(reconnectMargin).Sub(deadline))
		if byScan {
			allowed += scanNet
		}
	}
	return allowed
}

// scanNet is how long after NATS is back the expiry service's safety scan
// may take to end a grant its timer did not: the timer's grace (5s) and two
// scans (scan_interval 2s), and a second.
const scanNet = 10 * time.Second

// allowReplicated is how long after a membership ended in the source it may
// still be in the target: replicatedLateness, plus, when an outage of NATS,
// ingest or the replicator overlaps, the rest of it and a redelivery
// (ack_wait 10s) and the emulator's webhook back-off.
func (s *stackT) allowReplicated(ended time.Time) time.Duration {
	allowed := replicatedLateness
	if o, ok := s.during(ended.Add(-2*time.Second), ended.Add(replicatedLateness)); ok {
		allowed += max(0, o.to.Sub(ended)) + 15*time.Second
	}
	return allowed
}

// checkRefusals: every delivery ingest refused fell into an outage, no
// answer while ingest was down, 503 while NATS was; anything else is an
// error.
func (s *stackT) checkRefusals() {
	var bad []string
	for _, r := range s.rec.refusals() {
		ok := false
		switch r.status {
		case 0:
			_, ok = s.during(r.at.Add(-time.Second), r.at, "ingest")
		case http.StatusServiceUnavailable:
			_, ok = s.during(r.at, r.at, "nats")
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%s at %s: %s", statusLabel(r.status), r.at.Format("15:04:05.000"), r.detail))
		}
	}
	if len(bad) > 0 {
		s.t.Errorf("ingest refused %d deliveries outside the outage that would explain it (no answer only while ingest is down, 503 only while NATS is):\n%s",
			len(bad), head(bad, 10))
	}
}

// settle waits until the replicator has nothing left to do and the target
// equals the source, or, once it has been idle for 5s, returns what still
// differs (nothing more will change it but a full reconcile).
func (s *stackT) settle(ctx context.Context, src, tgt *identitydomain.Client, deleted, former map[string]bool) (string, []string) {
	t := s.t
	var idleSince time.Time
	var diff []string
	deadline := time.Now().Add(3 * time.Minute)
	var failingSince time.Time
	for {
		backlog, err := s.replicatorBacklog(ctx)
		if err == nil {
			failingSince = time.Time{}
		} else if failingSince.IsZero() {
			failingSince = time.Now()
		}
		switch {
		case err != nil && time.Since(failingSince) > 20*time.Second:
			return "the replicator's status unreadable for 20s", []string{"replicator status: " + err.Error()}
		case err != nil:
			idleSince = time.Time{}
			diff = []string{"replicator status: " + err.Error()}
		case backlog > 0:
			idleSince = time.Time{}
			diff = []string{fmt.Sprintf("the replicator has %d events to finish", backlog)}
		default:
			if idleSince.IsZero() {
				idleSince = time.Now()
			}
			want, err1 := readSnapshot(ctx, src, nil)
			got, err2 := readSnapshot(ctx, tgt, isTemp)
			if err := cmpErr(err1, err2); err != nil {
				t.Fatalf("read the domains: %v", err)
			}
			diff = want.lower().targetDiff(got, deleted, former)
			if len(diff) == 0 {
				return "target equals source", nil
			}
			if time.Since(idleSince) >= 5*time.Second {
				return fmt.Sprintf("the replicator idle for %v", time.Since(idleSince).Round(time.Millisecond)), diff
			}
		}
		if time.Now().After(deadline) {
			return "not settled after 3m", diff
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func cmpErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// initialSync copies the directory the source was generated with
// (shape.initialSync) by a full reconcile, before any change is made (a
// first start does not reconcile on its own): it must create all of it and
// fail nothing. It remembers the source's directory for the checks after.
func (s *stackT) initialSync(ctx context.Context) {
	t := s.t
	if s.shape.initialSync == "" {
		s.initial = newSnapshot()
		return
	}
	var users, groups, members int
	if _, err := fmt.Sscanf(s.shape.initialSync, "%d,%d,%d", &users, &groups, &members); err != nil {
		t.Fatalf("initialSync %q: %v", s.shape.initialSync, err)
	}
	src := newClient(t, "src", s.urls["src"], "e2e-driver", s.clientSecret, s.dir)
	var err error
	if s.initial, err = readSnapshot(ctx, src, nil); err != nil {
		t.Fatalf("read the generated source: %v", err)
	}
	start := time.Now()
	out, err := s.cli(ctx, "reconcile", linkName, "--json", "--addr", s.grpcAddr("replicator"))
	if err != nil {
		t.Fatalf("iamflow reconcile (initial sync): %v", err)
	}
	var rr iamflowv1.ReconcileResponse
	if err := protojson.Unmarshal(out, &rr); err != nil {
		t.Fatalf("iamflow reconcile --json: %v\n%s", err, out)
	}
	actions := map[string]int{}
	for _, r := range rr.GetReports() {
		if r.GetError() != "" {
			t.Errorf("initial sync %s -> %s: %s", r.GetSource(), r.GetTarget(), r.GetError())
		}
		for _, a := range r.GetPlanned() {
			actions[a.GetKind()]++
		}
	}
	if actions["create_user"] != users || actions["create_group"] != groups || actions["add_member"] != members {
		t.Errorf("the initial sync of %d users, %d groups and %d memberships planned %v", users, groups, members, actions)
	}
	took := time.Since(start)
	// Through SCIM Bulk: users, and groups with their members (read now:
	// the counters do not outlive a process, which the drive may kill).
	st, err := emulatorStats(ctx, s.urls["tgt"])
	if err != nil {
		t.Fatalf("tgt stats: %v", err)
	}
	viaUsers, viaGroups, viaMembers := s.counter(ctx, "replicator", "bulk_creates"), s.counter(ctx, "replicator", "bulk_group_creates"),
		s.counter(ctx, "replicator", "bulk_member_changes")
	s.initialLine = fmt.Sprintf("%d users, %d groups, %d memberships in %v; %d Bulk requests carrying %d operations (%d users, %d groups with %d members)",
		actions["create_user"], actions["create_group"], actions["add_member"], took.Round(time.Millisecond),
		st.Calls[emu.OpBulk], st.BulkOperations, viaUsers, viaGroups, viaMembers)
	if viaUsers != int64(users) || viaGroups != int64(groups) || viaMembers != int64(members) {
		t.Errorf("the initial sync did not go wholly through SCIM Bulk: %s", s.initialLine)
	}
}

// finalReconcile runs a full reconcile of the link; anything it changes is
// an error (the event path should have done it), listed.
func (s *stackT) finalReconcile(ctx context.Context) string {
	t := s.t
	out, err := s.cli(ctx, "reconcile", linkName, "--json", "--addr", s.grpcAddr("replicator"))
	if err != nil {
		t.Errorf("iamflow reconcile: %v", err)
		return err.Error()
	}
	var rr iamflowv1.ReconcileResponse
	if err := protojson.Unmarshal(out, &rr); err != nil {
		t.Errorf("iamflow reconcile --json: %v\n%s", err, out)
		return err.Error()
	}
	actions := map[string]int64{}
	var planned, ids []string
	for _, r := range rr.GetReports() {
		if r.GetError() != "" {
			t.Errorf("reconcile %s -> %s: %s", r.GetSource(), r.GetTarget(), r.GetError())
		}
		for _, a := range r.GetPlanned() {
			if a.GetKind() == "skip" {
				continue
			}
			line := fmt.Sprintf("%s %s %s (source %s, target %s, member %s/%s)", a.GetKind(), a.GetEntity(), a.GetName(),
				a.GetSourceId(), a.GetTargetId(), a.GetMemberSourceId(), a.GetMemberTargetId())
			actions[a.GetKind()]++
			planned = append(planned, line)
			ids = append(ids, a.GetSourceId(), a.GetMemberSourceId())
		}
	}
	if len(actions) == 0 {
		return "nothing"
	}
	t.Errorf("the final full reconcile had to repair what the event path left (%v):\n%s", actions, head(planned, 20))
	t.Logf("what JetStream holds about the objects the event path left behind:\n%s", s.traceObjects(ctx, ids[:min(len(ids), 20)]))
	return fmt.Sprint(actions)
}

// checkCatalog waits until the database's accounts are what the mapping
// makes of the source: an open account with its groups' roles for every
// active member of a mapped group, and for anyone else (users who left,
// were deactivated, deleted or renamed away from the name) no account or a
// locked one without mapped roles. It returns a summary line.
func (s *stackT) checkCatalog(ctx context.Context, src *identitydomain.Client, deleted, former map[string]bool) string {
	t := s.t
	var open, locked, lockedGone int
	var idleSince time.Time
	err := waitFor(2*time.Minute, 500*time.Millisecond, func() error {
		if busy, err := s.backlog(ctx, "dbprovisioner"); err != nil || busy > 0 {
			idleSince = time.Time{}
			return fmt.Errorf("dbprovisioner: %d events to finish (%v)", busy, err)
		}
		if idleSince.IsZero() {
			idleSince = time.Now()
		}
		err := s.catalogDiff(ctx, src, deleted, former, &open, &locked, &lockedGone)
		if err != nil && time.Since(idleSince) >= 5*time.Second {
			return errStop{err}
		}
		return err
	})
	if err != nil {
		t.Errorf("the database catalog does not match the mapping (the dbprovisioner has nothing left to do): %v", err)
	}
	return fmt.Sprintf("%d open accounts with their groups' roles, %d locked (left or deactivated), %d locked (user deleted or renamed)", open, locked, lockedGone)
}

// catalogDiff compares the database's accounts with the mapping once.
func (s *stackT) catalogDiff(ctx context.Context, src *identitydomain.Client, deleted, former map[string]bool, open, locked, lockedGone *int) error {
	want, err := readSnapshot(ctx, src, nil)
	if err != nil {
		return err
	}
	roles := map[string][]string{} // ACCOUNT -> roles it must hold
	for i, g := range dbGroups {
		for _, m := range want.groups[strings.ToLower(g)] {
			if strings.HasSuffix(want.users[m], "|true") {
				r := []string{"APP_READ"}
				if i == 1 {
					r = append(r, "APP_WRITE")
				}
				roles[strings.ToUpper(m)] = append(roles[strings.ToUpper(m)], r...)
			}
		}
	}
	var users []ordsUser
	if err := getJSON(ctx, s.urls["ords"]+"/_emulator/users?db=db1", &users); err != nil {
		return err
	}
	*open, *locked, *lockedGone = 0, 0, 0
	have := map[string]bool{}
	var diffs []string
	for _, u := range users {
		have[u.Username] = true
		name := strings.ToLower(u.Username)
		_, live := want.users[name]
		why := ""
		switch {
		case deleted[name]:
			why = " (deleted in the source)"
		case former[name]:
			why = " (a name its user no longer has)"
		case !live:
			why = " (no such user in the source)"
		}
		wantRoles := slices.Compact(slices.Sorted(slices.Values(roles[u.Username])))
		gotRoles := slices.DeleteFunc(slices.Clone(u.Roles), func(r string) bool { return r != "APP_READ" && r != "APP_WRITE" })
		slices.Sort(gotRoles)
		switch {
		case len(wantRoles) > 0 && (u.AccountStatus != "OPEN" || !slices.Equal(gotRoles, wantRoles)):
			diffs = append(diffs, fmt.Sprintf("account %s: %s with %v, want OPEN with %v", u.Username, u.AccountStatus, gotRoles, wantRoles))
		case len(wantRoles) == 0 && (u.AccountStatus == "OPEN" || len(gotRoles) > 0):
			diffs = append(diffs, fmt.Sprintf("account %s%s: %s with %v, want locked without mapped roles", u.Username, why, u.AccountStatus, gotRoles))
		case u.AccountStatus == "OPEN":
			*open++
		case !live:
			*lockedGone++
		default:
			*locked++
		}
	}
	for _, a := range slices.Sorted(maps.Keys(roles)) {
		if !have[a] {
			diffs = append(diffs, fmt.Sprintf("account %s: missing", a))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%d differences:\n%s", len(diffs), head(diffs, 10))
	}
	return nil
}

// ordsUser is an account as the ORDS emulator lists it.
type ordsUser struct {
	Username      string   `json:"username"`
	AccountStatus string   `json:"accountStatus"`
	Roles         []string `json:"roles"`
}

// getJSON GETs url and decodes its JSON answer into v.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// killRecord is one SIGKILL and restart.
type killRecord struct {
	name        string
	atChange    int64
	inFlight    string
	landed      string
	down, ready time.Duration
}

// killWhileDriving kills the replicator, the ingest and the NATS server with
// SIGKILL, one at a time, spread over the driver's run, each while it has
// work in flight, keeps it down until traffic has met the outage, and
// restarts it. A kill that finds nothing in flight, or an outage no
// traffic met, is an error: the proof would not have tested anything.
func (s *stackT) killWhileDriving(ctx context.Context, drv *driver, changes int) []killRecord {
	t := s.t
	var out []killRecord
	for i, name := range []string{"replicator", "ingest", "nats"} {
		at := int64(changes * (i + 1) / 4)
		if err := waitFor(5*time.Minute, 20*time.Millisecond, func() error {
			if n := drv.issued.Load(); n < at {
				return fmt.Errorf("%d changes issued", n)
			}
			return nil
		}); err != nil {
			t.Fatalf("waiting to kill %s: %v", name, err)
		}
		// Strike while it has work in flight.
		var inFlight string
		err := waitFor(10*time.Second, 2*time.Millisecond, func() error {
			if name == "replicator" {
				n, err := s.replicatorBacklog(ctx)
				if err != nil || n == 0 {
					return fmt.Errorf("replicator backlog %d (%v)", n, err)
				}
				inFlight = fmt.Sprintf("%d events unfinished", n)
				return nil
			}
			if n := s.rec.inflight.Load(); n == 0 {
				return fmt.Errorf("no delivery in flight to ingest")
			}
			inFlight = "a delivery to ingest"
			return nil
		})
		if err != nil {
			t.Errorf("SIGKILL %s: it had no work in flight to be killed in: %v", name, err)
			inFlight = "nothing"
		}
		// What the outage must meet before it ends.
		status, minDown := map[string]int{"ingest": 0, "nats": http.StatusServiceUnavailable}[name],
			map[string]time.Duration{"replicator": time.Second, "ingest": time.Second, "nats": 3 * time.Second}[name]
		answered0, acked0 := s.rec.counts(status, "src")
		issued0 := drv.issued.Load()
		p := s.procs[name]
		killed := time.Now()
		p.kill()
		switch name {
		case "nats":
			s.natsProxy.Cut("")
		case "ingest":
			s.rec.setTarget(name, "") // its port is free now: nothing may answer on it for ingest
		}
		var landed string
		err = waitFor(15*time.Second, 20*time.Millisecond, func() error {
			answered, acked := s.rec.counts(status, "src")
			switch name {
			case "replicator":
				if acked-acked0 < 5 {
					return fmt.Errorf("only %d events from src stored for it while it was down", acked-acked0)
				}
				landed = fmt.Sprintf("%d src events stored meanwhile", acked-acked0)
			case "ingest":
				if answered == answered0 {
					return fmt.Errorf("no delivery met the dead webhook")
				}
				landed = fmt.Sprintf("%d deliveries found no webhook", answered-answered0)
			case "nats":
				if answered == answered0 {
					return fmt.Errorf("ingest answered no 503")
				}
				landed = fmt.Sprintf("ingest answered 503 %d times", answered-answered0)
			}
			if time.Since(killed) < minDown {
				return fmt.Errorf("down for %v", time.Since(killed))
			}
			return nil
		})
		if err != nil {
			t.Errorf("SIGKILL %s at change %d: the outage did not meet the traffic it should have: %v", name, at, err)
			landed = err.Error()
		}
		down := time.Since(killed)
		if name == "nats" {
			s.startNode(0)
		} else if err := s.tryStartService(name); err != nil {
			t.Fatalf("after SIGKILL: %v", err)
		}
		ready := time.Now()
		end := ready
		if name == "replicator" {
			end = s.replicatorCaughtUp(ctx)
			t.Logf("SIGKILL replicator: caught up with the events stored before its restart %v after it", end.Sub(ready).Round(time.Millisecond))
		}
		s.mu.Lock()
		s.outages = append(s.outages, outage{name: name, from: killed, to: end})
		s.mu.Unlock()
		if drv.issued.Load() == issued0 {
			t.Errorf("SIGKILL %s: no change was made in the source while it was down", name)
		}
		out = append(out, killRecord{name: name, atChange: at, inFlight: inFlight, landed: landed, down: down, ready: ready.Sub(killed)})
		t.Logf("SIGKILL %s at change %d (in flight: %s): down %v (%s), ready again after %v", name, at, inFlight,
			down.Round(time.Millisecond), landed, ready.Sub(killed).Round(time.Millisecond))
	}
	return out
}

// replicatorCatchUp caps how long after a restart the replicator's outage
// may last for the proof's allowances (replicatorCaughtUp).
const replicatorCatchUp = 30 * time.Second

// replicatorCaughtUp waits until the replicator has worked off every event
// stored before its restart (each of its consumers' ack floor has passed
// the last one) and returns when it had: the end of the replicator's
// outage as the changes see it, since a change stored just after the
// restart waits behind those events. The wait is capped at
// replicatorCatchUp; after it, the proof's ordinary bounds apply again, so
// a replicator that does not catch up still fails them.
func (s *stackT) replicatorCaughtUp(ctx context.Context) time.Time {
	err := func() error {
		nc, err := nats.Connect(s.natsURL(), nats.Name("e2e-catch-up"))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		st, err := js.Stream(ctx, "IAM_EVENTS")
		if err != nil {
			return err
		}
		last := st.CachedInfo().State.LastSeq
		return waitFor(replicatorCatchUp, 50*time.Millisecond, func() error {
			names := st.ConsumerNames(ctx)
			n := 0
			for name := range names.Name() {
				if !strings.HasPrefix(name, "replicator") {
					continue
				}
				n++
				c, err := st.Consumer(ctx, name)
				if err != nil {
					return err
				}
				if floor := c.CachedInfo().AckFloor.Stream; floor < last {
					return fmt.Errorf("consumer %s: acknowledged up to %d, the last event before the restart is %d", name, floor, last)
				}
			}
			if err := names.Err(); err != nil {
				return err
			}
			if n == 0 {
				return errors.New("no replicator consumer on IAM_EVENTS")
			}
			return nil
		})
	}()
	if err != nil {
		s.t.Logf("SIGKILL replicator: not caught up %v after its restart (%v); the proof's ordinary bounds apply from now", replicatorCatchUp, err)
	}
	return time.Now()
}

// newClient is the production Identity Domains client, with no client-side
// rate limit, for the test's own reads and changes.
func newClient(t *proofT, name, url, id, sec, dir string) *identitydomain.Client {
	t.Helper()
	p := filepath.Join(dir, "secret-"+name+"-"+id)
	if err := os.WriteFile(p, []byte(sec), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := identitydomain.DefaultConfig()
	cfg.URL, cfg.ClientID, cfg.ClientSecret = url, id, secret.Ref("file:"+p)
	cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 4, BaseDelay: 20 * time.Millisecond, MaxDelay: time.Second}
	c, err := identitydomain.New(t.Context(), name, cfg, identitydomain.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// emulatorStats reads an emulator's /_emulator/stats.
func emulatorStats(ctx context.Context, base string) (emu.Stats, error) {
	var st emu.Stats
	return st, getJSON(ctx, base+"/_emulator/stats", &st)
}

func randomHex(t *proofT) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func envInt(t *proofT, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 10 {
		t.Fatalf("%s=%q: want a number of changes, at least 10", name, v)
	}
	return n
}

func head(lines []string, n int) string {
	if len(lines) > n {
		return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n... and %d more", len(lines)-n)
	}
	return strings.Join(lines, "\n")
}

func formatCounts[N int | int64](m map[string]N) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func statusLabel(c int) string {
	if c == 0 {
		return "nothing (unreachable)"
	}
	return strconv.Itoa(c)
}

func formatStatuses(m map[int]int) string {
	var codes []int
	for k := range m {
		codes = append(codes, k)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		label := strconv.Itoa(c)
		if c == 0 {
			label = "unreachable"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", label, m[c]))
	}
	return strings.Join(parts, ", ")
}

func diffText(d []string) string {
	if len(d) == 0 {
		return "yes"
	}
	return fmt.Sprintf("NO, %d differences (first: %s)", len(d), d[0])
}
