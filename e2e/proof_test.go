//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
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

	"google.golang.org/protobuf/encoding/protojson"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/secret"
)

const (
	// tgtHost is where the target domain listens: the source's host, on a
	// port of its own, as in the compose stack (ingest tells domains apart
	// by host and port).
	tgtHost   = "127.0.0.1"
	linkName  = "src-to-tgt"
	tempGroup = "Temp-Admins"
	// grantSlack is how late after its deadline a grant may end and still be
	// "on time": the expiry timer fires at the deadline, the safety scan
	// runs every 2s, and a revocation may wait out a NATS restart.
	grantSlack = 15 * time.Second
)

// dbGroups are the source groups mapped to database roles: members of the
// first get APP_READ, of the second APP_READ and APP_WRITE.
var dbGroups = []string{"DB-Readers", "DB-Writers"}

// isTemp says which groups belong to the target (expiry's temporary groups)
// and are left out of the replication and of the comparison.
var isTemp = regexp.MustCompile(`^(?i)temp-.*$`).MatchString

// The proof of issue 8. See the package documentation.
func TestProof(t *testing.T) {
	if testing.Short() {
		t.Skip("the end-to-end proof takes minutes; run it with make e2e")
	}
	changes := envInt(t, "IAMFLOW_E2E_CHANGES", 3000)
	withKills := os.Getenv("IAMFLOW_E2E_KILLS") != "0"
	// The changes are spread over about this long, so the kills fall among them.
	driveFor := min(60*time.Second, time.Duration(changes)*20*time.Millisecond)
	ctx := t.Context()

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

	s := &stackT{t: t, dir: dir, bin: bin,
		adminToken: randomHex(t), clientSecret: randomHex(t), webhookPassword: randomHex(t),
		srcPort: freePort(t), natsPort: freePort(t), natsMon: freePort(t), ingestPort: freePort(t), tgtPort: freePortOn(t, tgtHost),
		adminPorts: map[string][2]int{}, procs: map[string]*proc{}}
	services := []string{"ingest", "capabilities", "expiry", "replicator", "dbprovisioner"}
	s.ordsPort = freePort(t)
	for _, n := range services {
		s.adminPorts[n] = [2]int{freePort(t), freePort(t)}
	}

	// Ingest is reached through a recorder that notes its every answer.
	rec := newWebhookRecorder(fmt.Sprintf("http://127.0.0.1:%d/v1/events", s.ingestPort))
	hook := httptest.NewServer(rec)
	t.Cleanup(hook.Close)

	srcURL := fmt.Sprintf("http://127.0.0.1:%d", s.srcPort)
	s.writeFiles(srcURL)

	// NATS, the target domain, and each service as its own process.
	s.add("nats", natsBin, []string{"-js", "-sd", filepath.Join(dir, "nats"), "-a", "127.0.0.1", "-p", strconv.Itoa(s.natsPort),
		"-m", strconv.Itoa(s.natsMon), "--server_name", "e2e"}, nil,
		httpOK(fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", s.natsMon)))
	// The changes are made with the emulator's second client (--admin-client-id):
	// a change made with iamflow's own client is an echo the replicator
	// rightly ignores.
	s.add("src", bin, []string{"emulate", "identity-domain", "--addr", fmt.Sprintf("127.0.0.1:%d", s.srcPort), "--tier", "unlimited",
		"--client-id", "iamflow", "--admin-client-id", "e2e-driver", "--client-secret", "env:E2E_CLIENT_SECRET", "--webhook", hook.URL,
		"--webhook-password", "env:E2E_WEBHOOK_PASSWORD", "src"}, nil,
		httpOK(srcURL+"/_emulator/stats"))
	s.add("tgt", bin, []string{"emulate", "identity-domain", "--addr", fmt.Sprintf("%s:%d", tgtHost, s.tgtPort), "--tier", "unlimited",
		"--client-id", "iamflow", "--client-secret", "env:E2E_CLIENT_SECRET", "--webhook", hook.URL,
		"--webhook-password", "env:E2E_WEBHOOK_PASSWORD", "--seed", filepath.Join(dir, "tgt-seed.yaml"), "tgt"}, nil,
		httpOK(fmt.Sprintf("http://%s:%d/_emulator/stats", tgtHost, s.tgtPort)))
	infra := []string{"nats", "src", "tgt", "ords"}
	s.add("ords", bin, []string{"emulate", "ords", "--addr", fmt.Sprintf("127.0.0.1:%d", s.ordsPort), "--client-id", "iamflow",
		"--client-secret", "env:E2E_CLIENT_SECRET", "--seed", filepath.Join(dir, "ords-seed.yaml"), "db1"}, nil,
		httpOK(fmt.Sprintf("http://127.0.0.1:%d/_emulator/stats", s.ordsPort)))
	for _, n := range services {
		p := s.adminPorts[n]
		s.add(n, bin, []string{"serve", "--config", s.cfgPath, n}, []string{
			fmt.Sprintf("IAMFLOW_ADMIN_GRPC_ADDR=127.0.0.1:%d", p[0]),
			fmt.Sprintf("IAMFLOW_ADMIN_HTTP_ADDR=127.0.0.1:%d", p[1]),
			"IAMFLOW_NATS_NAME=iamflow-" + n,
		}, httpOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", p[1])))
	}
	t.Cleanup(func() {
		order := slices.Clone(services)
		slices.Reverse(order)
		rinfra := slices.Clone(infra)
		slices.Reverse(rinfra)
		for _, n := range append(order, rinfra...) {
			s.procs[n].stop()
		}
		if t.Failed() {
			for _, n := range append(infra, services...) {
				t.Logf("----- last lines of %s's log:\n%s", n, s.procs[n].tail(25))
			}
		}
	})
	start := time.Now()
	for _, n := range append(infra, services...) {
		s.startReady(n)
	}
	t.Logf("stack up in %v: nats :%d, ingest :%d (via recorder %s), src %s, tgt %s:%d",
		time.Since(start).Round(time.Millisecond), s.natsPort, s.ingestPort, hook.URL, srcURL, tgtHost, s.tgtPort)

	srcClient := newClient(t, "src", srcURL, "e2e-driver", s.clientSecret, dir)
	tgtClient := newClient(t, "tgt", fmt.Sprintf("http://%s:%d", tgtHost, s.tgtPort), "iamflow", s.clientSecret, dir)
	conn, err := admin.Dial(ctx, fmt.Sprintf("127.0.0.1:%d", s.adminPorts["replicator"][0]), secret.NewValue(s.adminToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	repl := iamflowv1.NewReplicatorServiceClient(conn)

	// The changes, the grants and the kills, all at once.
	drv := newDriver(srcClient, 8, dbGroups...)
	driveStart := time.Now()
	driverDone := make(chan struct{})
	go func() {
		defer close(driverDone)
		drv.run(ctx, changes, 4, driveFor/time.Duration(changes))
	}()
	grants := &granter{s: s, drv: drv, tgt: tgtClient}
	grantsDone := make(chan struct{})
	go func() {
		defer close(grantsDone)
		grants.run(ctx, driverDone)
	}()
	var kills []killRecord
	if withKills {
		kills = s.killWhileDriving(drv, changes, rec)
	}
	<-driverDone
	<-grantsDone
	driveTime := time.Since(driveStart)
	made, drvErrs := drv.counts()
	for _, e := range drvErrs {
		t.Errorf("driver: %s", e)
	}

	// Every event the domains emitted is delivered: the webhook retried
	// through every outage.
	converge := time.Now()
	if err := waitFor(2*time.Minute, 200*time.Millisecond, func() error {
		for _, d := range []string{"src", "tgt"} {
			st, err := emulatorStats(ctx, s.domainURL(d))
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

	// The replicator catches up on events alone: its consumer has nothing
	// left, and the target equals the source.
	want, err := readSnapshot(ctx, srcClient, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lastDiff []string
	convergeErr := waitFor(3*time.Minute, 500*time.Millisecond, func() error {
		resp, err := repl.GetReplicatorStatus(ctx, &iamflowv1.GetReplicatorStatusRequest{Link: linkName})
		if err != nil {
			return err
		}
		for _, l := range resp.GetLinks() {
			for _, d := range l.GetDirections() {
				if d.GetPending() != 0 || d.GetAckPending() != 0 {
					return fmt.Errorf("replicator consumer for %s: %d pending, %d ack pending", d.GetTarget(), d.GetPending(), d.GetAckPending())
				}
			}
		}
		got, err := readSnapshot(ctx, tgtClient, isTemp)
		if err != nil {
			return err
		}
		if lastDiff = want.lower().diff(got); len(lastDiff) > 0 {
			return fmt.Errorf("target differs from the source in %d ways, first: %s", len(lastDiff), lastDiff[0])
		}
		return nil
	})
	convergeTime := time.Since(converge)
	if convergeErr != nil {
		t.Errorf("the target did not converge on events alone: %v\n%s", convergeErr, head(lastDiff, 20))
	}

	// A full reconcile then finds nothing to do (or repairs what events missed).
	reconcileStart := time.Now()
	out, err := s.cli(ctx, "reconcile", linkName, "--json", "--addr", fmt.Sprintf("127.0.0.1:%d", s.adminPorts["replicator"][0]))
	if err != nil {
		t.Fatalf("iamflow reconcile: %v", err)
	}
	var rr iamflowv1.ReconcileResponse
	if err := protojson.Unmarshal(out, &rr); err != nil {
		t.Fatalf("iamflow reconcile --json: %v\n%s", err, out)
	}
	reconcileActions := map[string]int64{}
	for _, r := range rr.GetReports() {
		if r.GetError() != "" {
			t.Errorf("reconcile %s -> %s: %s", r.GetSource(), r.GetTarget(), r.GetError())
		}
		for k, v := range r.GetActions() {
			if k != "skip" {
				reconcileActions[k] += v
			}
		}
	}
	reconcileTime := time.Since(reconcileStart)
	if len(reconcileActions) > 0 {
		t.Logf("the full reconcile repaired: %s", formatCounts(reconcileActions))
	}

	// Every target equals the source; no object was created twice.
	want, err = readSnapshot(ctx, srcClient, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readSnapshot(ctx, tgtClient, isTemp)
	if err != nil {
		t.Fatal(err)
	}
	if d := want.lower().diff(got); len(d) > 0 {
		t.Errorf("after the reconcile the target still differs from the source in %d ways:\n%s", len(d), head(d, 30))
	}
	if got.userCount != want.userCount || got.groupCount != want.groupCount {
		t.Errorf("target holds %d users and %d groups (temporary groups aside), the source %d and %d: something was created twice or lost",
			got.userCount, got.groupCount, want.userCount, want.groupCount)
	}
	// The source holds exactly what the driver says it made.
	if d := drv.model().lower().diff(want); len(d) > 0 {
		t.Errorf("the source differs from the driver's record in %d ways (a driver bug?):\n%s", len(d), head(d, 10))
	}

	// The database catalog matches the mapping.
	dbLine := s.checkCatalog(ctx, srcClient)

	// Every grant expired or was revoked on time, and left the group.
	grantStats := grants.check(ctx, tgtClient)

	// Ingest never answered 2xx for an event it then lost.
	acked, statuses, ackedBy := rec.snapshot()
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", s.natsPort)
	stored, streamMsgCount, err := streamContent(ctx, natsURL, "IAM_EVENTS")
	if err != nil {
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
	srcStats, _ := emulatorStats(ctx, s.domainURL("src"))
	tgtStats, _ := emulatorStats(ctx, s.domainURL("tgt"))
	if int64(ackedBy["src"]) != srcStats.Events.Delivered || int64(ackedBy["tgt"]) != tgtStats.Events.Delivered {
		t.Errorf("deliveries acknowledged by ingest (src %d, tgt %d) differ from the emulators' counts (src %d, tgt %d)",
			ackedBy["src"], ackedBy["tgt"], srcStats.Events.Delivered, tgtStats.Events.Delivered)
	}
	if withKills && statuses[503] == 0 {
		t.Logf("note: ingest never answered 503 (no delivery fell into the NATS outage)")
	}
	dlq, _ := streamMsgs(ctx, natsURL, "IAM_DLQ")

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
	row("changes made in src", fmt.Sprintf("%d in %v: %s", total, driveTime.Round(time.Millisecond), formatCounts(made)))
	row("source now", fmt.Sprintf("%d users, %d groups", want.userCount, want.groupCount))
	row("target now", fmt.Sprintf("%d users, %d groups (+ %s)", got.userCount, got.groupCount, tempGroup))
	row("events emitted / delivered", fmt.Sprintf("src %d/%d, tgt %d/%d (failed attempts: src %d, tgt %d)",
		srcStats.Events.Emitted, srcStats.Events.Delivered, tgtStats.Events.Emitted, tgtStats.Events.Delivered,
		srcStats.Events.Failed, tgtStats.Events.Failed))
	row("ingest answers", formatStatuses(statuses))
	row("acknowledged event ids", fmt.Sprintf("%d, of which lost: %d; IAM_EVENTS holds %d messages; IAM_DLQ %d", len(acked), lost, streamMsgCount, dlq))
	for _, k := range kills {
		row("kill "+k.name, fmt.Sprintf("at change %d, down %v, ready again after %v", k.atChange, k.down.Round(time.Millisecond), k.ready.Round(time.Millisecond)))
	}
	for _, n := range append(infra, services...) {
		starts, crashes := s.procs[n].stats()
		if crashes > 0 {
			row("unexpected exits "+n, fmt.Sprintf("%d (restarted by the test's supervisor; %d starts)", crashes, starts))
		}
	}
	row("all delivered after", deliveredIn.Round(time.Millisecond))
	row("converged (events) after", fmt.Sprintf("%v from the last change (%v)", convergeTime.Round(time.Millisecond), errText(convergeErr)))
	row("full reconcile", fmt.Sprintf("%v, repaired %s", reconcileTime.Round(time.Millisecond), orNothing(formatCounts(reconcileActions))))
	row("grants", grantStats)
	row("database db1", dbLine)
	tw.Flush()
	t.Logf("summary:\n%s", b.String())
}

// stackT is the running stack's configuration.
type stackT struct {
	t                                                         *testing.T
	dir, bin, cfgPath                                         string
	adminToken, clientSecret, webhookPassword                 string
	srcPort, natsPort, natsMon, ingestPort, tgtPort, ordsPort int
	adminPorts                                                map[string][2]int // grpc, http
	procs                                                     map[string]*proc
	env                                                       []string
}

// writeFiles writes the shared configuration and the target's seed.
func (s *stackT) writeFiles(srcURL string) {
	t := s.t
	s.cfgPath = filepath.Join(s.dir, "iamflow.yaml")
	s.env = []string{"E2E_ADMIN_TOKEN=" + s.adminToken, "E2E_CLIENT_SECRET=" + s.clientSecret, "E2E_WEBHOOK_PASSWORD=" + s.webhookPassword}
	cfg := fmt.Sprintf(`# written by e2e.TestProof
nats:
  urls: ["nats://127.0.0.1:%[1]d"]
  streams: {replicas: 1, storage: file}
admin:
  token: env:E2E_ADMIN_TOKEN
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
    url: http://%[7]s:%[3]d
    client_id: iamflow
    client_secret: env:E2E_CLIENT_SECRET
    tier: premium
    limits: {per_second: -1, per_minute: -1, token_per_second: -1, token_per_minute: -1}
ingest:
  listen: 127.0.0.1:%[4]d
  path: /v1/events
  username: iamflow
  password: env:E2E_WEBHOOK_PASSWORD
  publish_timeout: 2s
replicator:
  links:
    - name: %[5]s
      source: src
      targets: [tgt]
      groups: {exclude: ['(?i)temp-.*']}
      guard: {max_deletions: 100000, max_percent: 100, window: 1h}
  consumer:
    ack_wait: 10s
    max_deliver: 100
    backoff: [500ms, 1s, 2s, 5s]
  full_reconcile: {interval: 1h}
capabilities:
  domains: [tgt]
  default: {can_use_api_keys: false, can_use_auth_tokens: false}
  rules:
    - name: automation
      match: {user_name: 'svc-.*'}
      set: {can_use_api_keys: true}
expiry:
  groups:
    - {domain: tgt, group: %[6]s, max_duration: 1h, default_duration: 1m}
  scan_interval: 2s
`, s.natsPort, srcURL, s.tgtPort, s.ingestPort, linkName, tempGroup, tgtHost)
	cfg += fmt.Sprintf(`dbprovisioner:
  databases:
    - name: db1
      domain: src
      mode: user
      groups:
        - {group: %[2]s, roles: [APP_READ]}
        - {group: %[3]s, roles: [APP_READ, APP_WRITE]}
      on_leave: lock
      ords:
        url: http://127.0.0.1:%[1]d/ords/db1
        auth: oauth
        client_id: iamflow
        client_secret: env:E2E_CLIENT_SECRET
  consumer:
    ack_wait: 10s
    max_deliver: 100
    backoff: [500ms, 1s, 2s, 5s]
  reconcile: {interval: 0s, on_start: true}
`, s.ordsPort, dbGroups[0], dbGroups[1])
	ordsSeed := "databases:\n  - alias: db1\n    roles: [{name: APP_READ}, {name: APP_WRITE}]\n"
	if err := os.WriteFile(filepath.Join(s.dir, "ords-seed.yaml"), []byte(ordsSeed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	seed := fmt.Sprintf("groups:\n  - displayName: %s\n", tempGroup)
	if err := os.WriteFile(filepath.Join(s.dir, "tgt-seed.yaml"), []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "config", "check", "--config", s.cfgPath)
	cmd.Env = append(os.Environ(), s.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iamflow config check: %v\n%s", err, out)
	}
}

// add registers a supervised process.
func (s *stackT) add(name, bin string, args, env []string, ready func() error) {
	s.procs[name] = &proc{t: s.t, name: name, bin: bin, args: args, env: append(append([]string(nil), s.env...), env...),
		ready: ready, logPath: filepath.Join(s.dir, name+".log")}
}

// startReady starts a process and waits until it is ready.
func (s *stackT) startReady(name string) {
	s.t.Helper()
	p := s.procs[name]
	if err := p.start(); err != nil {
		s.t.Fatal(err)
	}
	if err := p.waitReady(60 * time.Second); err != nil {
		s.t.Fatalf("%v\n%s", err, p.tail(30))
	}
}

// domainURL is where a domain's emulator listens.
func (s *stackT) domainURL(name string) string {
	if name == "src" {
		return fmt.Sprintf("http://127.0.0.1:%d", s.srcPort)
	}
	return fmt.Sprintf("http://%s:%d", tgtHost, s.tgtPort)
}

// cli runs an iamflow command against the stack and returns its stdout.
func (s *stackT) cli(ctx context.Context, args ...string) ([]byte, error) {
	args = append(append([]string(nil), args...), "--config", s.cfgPath)
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("iamflow %s: %v: %s", strings.Join(args[:min(len(args), 2)], " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// checkCatalog waits until the database's accounts are what the mapping
// makes of the source: an open account with its groups' roles for every
// active member of a mapped group, and for anyone else no account or a
// locked one without mapped roles. It returns a summary line.
func (s *stackT) checkCatalog(ctx context.Context, src *identitydomain.Client) string {
	t := s.t
	var open, locked int
	err := waitFor(2*time.Minute, 500*time.Millisecond, func() error {
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
		if err := getJSON(ctx, fmt.Sprintf("http://127.0.0.1:%d/_emulator/users?db=db1", s.ordsPort), &users); err != nil {
			return err
		}
		open, locked = 0, 0
		have := map[string]bool{}
		var diffs []string
		for _, u := range users {
			have[u.Username] = true
			if _, known := want.users[strings.ToLower(u.Username)]; !known {
				diffs = append(diffs, fmt.Sprintf("account %s: no such user in the source", u.Username))
				continue
			}
			wantRoles := slices.Compact(slices.Sorted(slices.Values(roles[u.Username])))
			gotRoles := slices.DeleteFunc(slices.Clone(u.Roles), func(r string) bool { return r != "APP_READ" && r != "APP_WRITE" })
			slices.Sort(gotRoles)
			switch {
			case len(wantRoles) > 0 && (u.AccountStatus != "OPEN" || !slices.Equal(gotRoles, wantRoles)):
				diffs = append(diffs, fmt.Sprintf("account %s: %s with %v, want OPEN with %v", u.Username, u.AccountStatus, gotRoles, wantRoles))
			case len(wantRoles) == 0 && (u.AccountStatus == "OPEN" || len(gotRoles) > 0):
				diffs = append(diffs, fmt.Sprintf("account %s: %s with %v, want locked without mapped roles", u.Username, u.AccountStatus, gotRoles))
			case u.AccountStatus == "OPEN":
				open++
			default:
				locked++
			}
		}
		for _, a := range slices.Sorted(maps.Keys(roles)) {
			if !have[a] {
				diffs = append(diffs, fmt.Sprintf("account %s: missing", a))
			}
		}
		if len(diffs) > 0 {
			return fmt.Errorf("%d differences, first: %s", len(diffs), strings.Join(diffs[:min(5, len(diffs))], "; "))
		}
		return nil
	})
	if err != nil {
		t.Errorf("the database catalog does not match the mapping: %v", err)
	}
	return fmt.Sprintf("%d open accounts with their groups' roles, %d locked (left or deactivated)", open, locked)
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
	down, ready time.Duration
}

// killWhileDriving kills the replicator, the ingest and the NATS server with
// SIGKILL, one at a time, spread over the driver's run, and restarts each.
func (s *stackT) killWhileDriving(drv *driver, changes int, rec *webhookRecorder) []killRecord {
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
		p := s.procs[name]
		killed := time.Now()
		p.kill()
		// Stay down for an outage of minDown, and until it shows: a delivery
		// refused (ingest down: no answer; NATS down: 503), at most 10s.
		switch name {
		case "ingest", "nats":
			status := map[string]int{"ingest": 0, "nats": 503}[name]
			minDown := map[string]time.Duration{"ingest": time.Second, "nats": 3 * time.Second}[name]
			_, before, _ := rec.snapshot()
			_ = waitFor(10*time.Second, 20*time.Millisecond, func() error {
				_, now, _ := rec.snapshot()
				if now[status] <= before[status] {
					return fmt.Errorf("no %d answer yet", status)
				}
				if time.Since(killed) < minDown {
					return fmt.Errorf("down for %v", time.Since(killed))
				}
				return nil
			})
		}
		down := time.Since(killed)
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		if err := p.waitReady(60 * time.Second); err != nil {
			t.Fatalf("after SIGKILL: %v\n%s", err, p.tail(30))
		}
		out = append(out, killRecord{name: name, atChange: at, down: down, ready: time.Since(killed)})
		t.Logf("SIGKILL %s at change %d: down %v, ready again after %v", name, at, down.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	}
	return out
}

// granter adds temporary grants through `iamflow grant add` while the
// changes flow, and revokes some of them early.
type granter struct {
	s   *stackT
	drv *driver
	tgt *identitydomain.Client

	mu       sync.Mutex
	ids      []string
	revoked  map[string]bool
	failures int
	lastErr  string
}

func (g *granter) run(ctx context.Context, stop <-chan struct{}) {
	g.revoked = map[string]bool{}
	type pendingRevoke struct {
		id string
		at time.Time
	}
	var revokes []pendingRevoke
	tick := time.NewTicker(1500 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			// Revoke the remaining early ones now, then stop.
			for _, r := range revokes {
				g.revoke(ctx, r.id)
			}
			return
		case <-tick.C:
		}
		for len(revokes) > 0 && time.Now().After(revokes[0].at) {
			g.revoke(ctx, revokes[0].id)
			revokes = revokes[1:]
		}
		names := g.drv.someUserNames(1)
		if len(names) == 0 {
			continue
		}
		if _, found, err := g.tgt.FindUserByName(ctx, names[0]); err != nil || !found {
			continue // not replicated yet
		}
		n++
		dur := time.Duration(8+n%5*4) * time.Second
		out, err := g.s.cli(ctx, "grant", "add", "--domain", "tgt", "--group", tempGroup, "--user", names[0],
			"--for", dur.String(), "--reason", "e2e proof", "--requester", "e2e", "--json", "--timeout", "10s",
			"--addr", fmt.Sprintf("127.0.0.1:%d", g.s.adminPorts["expiry"][0]))
		if err != nil {
			g.fail(err)
			continue
		}
		var gr iamflowv1.Grant
		if err := protojson.Unmarshal(out, &gr); err != nil {
			g.fail(fmt.Errorf("grant add --json: %v: %s", err, out))
			continue
		}
		g.mu.Lock()
		g.ids = append(g.ids, gr.GetId())
		g.mu.Unlock()
		if n%3 == 0 {
			revokes = append(revokes, pendingRevoke{gr.GetId(), time.Now().Add(dur / 2)})
		}
	}
}

func (g *granter) revoke(ctx context.Context, id string) {
	if _, err := g.s.cli(ctx, "grant", "revoke", id, "--reason", "e2e early revoke", "--timeout", "10s",
		"--addr", fmt.Sprintf("127.0.0.1:%d", g.s.adminPorts["expiry"][0])); err != nil {
		g.fail(err)
		return
	}
	g.mu.Lock()
	g.revoked[id] = true
	g.mu.Unlock()
}

func (g *granter) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures++
	g.lastErr = err.Error()
}

// check waits until no grant is active any more, then checks each ended on
// time and the temporary group is empty. It returns a summary line.
func (g *granter) check(ctx context.Context, tgt *identitydomain.Client) string {
	t := g.s.t
	addr := fmt.Sprintf("127.0.0.1:%d", g.s.adminPorts["expiry"][0])
	var list iamflowv1.ListGrantsResponse
	err := waitFor(3*time.Minute, time.Second, func() error {
		out, err := g.s.cli(ctx, "grant", "list", "--json", "--addr", addr)
		if err != nil {
			return err
		}
		list.Reset()
		if err := protojson.Unmarshal(out, &list); err != nil {
			return fmt.Errorf("grant list --json: %v", err)
		}
		for _, gr := range list.GetGrants() {
			switch gr.GetState() {
			case iamflowv1.GrantState_GRANT_STATE_ACTIVE, iamflowv1.GrantState_GRANT_STATE_PENDING:
				return fmt.Errorf("grant %s is still %v (expires %v)", gr.GetId(), gr.GetState(), gr.GetExpiresAt().AsTime().Format(time.RFC3339))
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("grants did not all end: %v", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	states := map[string]int{}
	var worst time.Duration
	for _, gr := range list.GetGrants() {
		st := strings.ToLower(strings.TrimPrefix(gr.GetState().String(), "GRANT_STATE_"))
		states[st]++
		late := gr.GetEndedAt().AsTime().Sub(gr.GetExpiresAt().AsTime())
		switch gr.GetState() {
		case iamflowv1.GrantState_GRANT_STATE_EXPIRED:
			worst = max(worst, late)
			if late > grantSlack {
				t.Errorf("grant %s (%s in %s) expired %v after its deadline", gr.GetId(), gr.GetUserName(), gr.GetGroupName(), late.Round(time.Millisecond))
			}
		case iamflowv1.GrantState_GRANT_STATE_REVOKED:
			if !g.revoked[gr.GetId()] {
				t.Errorf("grant %s was revoked, but the test did not revoke it", gr.GetId())
			}
			if late > grantSlack {
				t.Errorf("grant %s ended %v after its deadline (revoked late)", gr.GetId(), late.Round(time.Millisecond))
			}
		default:
			t.Errorf("grant %s (%s) ended %v: %s", gr.GetId(), gr.GetUserName(), gr.GetState(), gr.GetLastError())
		}
	}
	if len(list.GetGrants()) < len(g.ids) {
		t.Errorf("iamflow lists %d grants, the test made %d", len(list.GetGrants()), len(g.ids))
	}
	if len(g.ids) == 0 {
		t.Errorf("no grant was made (failures %d, last: %s)", g.failures, g.lastErr)
	}
	grp, found, err := tgt.FindGroupByName(ctx, tempGroup)
	switch {
	case err != nil || !found:
		t.Errorf("temporary group %s: found %v, %v", tempGroup, found, err)
	default:
		n := 0
		for _, err := range tgt.GroupMembers(ctx, deref(grp.Id), 0) {
			if err != nil {
				t.Errorf("members of %s: %v", tempGroup, err)
				break
			}
			n++
		}
		if n != 0 {
			t.Errorf("temporary group %s still has %d members after every grant ended", tempGroup, n)
		}
	}
	return fmt.Sprintf("%d made (%d revoked early), final states %s, latest expiry %v after its deadline; %d add/revoke calls failed (last: %s)",
		len(g.ids), len(g.revoked), orNothing(formatCounts(states)), worst.Round(time.Millisecond), g.failures, orNothing(g.lastErr))
}

// newClient is the production Identity Domains client, with no client-side
// rate limit, for the test's own reads and changes.
func newClient(t *testing.T, name, url, id, sec, dir string) *identitydomain.Client {
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

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func envInt(t *testing.T, name string, def int) int {
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

// orNothing is s, or "nothing" when s is empty.
func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
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

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
