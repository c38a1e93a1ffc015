package replicator

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/memlimit"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// scalePoint is one size of the scaling curve: users, and per phase the
// seconds and peak heap (MB) of the full reconcile.
type scalePoint struct {
	users      int
	secs, heap map[string]float64
}

// BenchmarkFullReconcileMemory is the full reconcile's scaling curve:
// 10,000 and 50,000 users (5,000 groups and 200,000 memberships per 50,000
// users; -short: 1,000 and 4,000), each as a sub-benchmark users=N, so
//
//	-bench 'FullReconcileMemory/users=10000$'
//
// selects one. 200,000 users run only when the pattern names them
// (-bench 'FullReconcileMemory/users=200000$'). Each size reconciles into an empty target, then again
// into the now in-sync target. The emulated domains (`iamflow emulate
// identity-domain`) and JetStream (nats-server, as in microservices mode)
// run in processes of their own, so the heap measured is the replicator's
// alone: the peak while reconciling, and what is still live after a GC at
// the end. Baseline: the heap in use before the reconcile, same run. The
// other processes' peak resident sets are reported beside it.
//
// Per phase it reports the wall time, the HTTP calls to both domains
// (tokens excepted; a Bulk request is one call), how many of them were Bulk
// requests (OCI rations those apart from the other calls), the writes (creates,
// patches, puts, deletes, those inside Bulk requests included) and the
// heap. It fails when the in-sync pass writes anything, or when the target
// does not hold the source's users, groups and memberships afterwards. The
// parent prints the growth exponent of peak heap and of time between
// consecutive sizes (the log-log slope; 1 is linear). With -memprofile, a
// heap profile is written at each phase's peak, beside the profile, named
// for the size and phase.
func BenchmarkFullReconcileMemory(b *testing.B) {
	sizes := []int{10_000, 50_000}
	if f := flag.Lookup("test.bench"); f != nil && strings.Contains(f.Value.String(), "users=200000") {
		sizes = append(sizes, 200_000) // only when named: it takes over an hour and 6 GB of emulators
	}
	if testing.Short() {
		sizes = []int{1_000, 4_000} // two sizes: still a curve
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "iamflow")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/iamflow").CombinedOutput(); err != nil {
		b.Fatalf("build iamflow: %v\n%s", err, out)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(pipelinetest.IamflowSecret), 0o600); err != nil {
		b.Fatal(err)
	}
	natsBin := filepath.Join(dir, "nats-server")
	if out, err := exec.Command("go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		b.Fatalf("build nats-server: %v\n%s", err, out)
	}
	var curve []scalePoint
	for _, users := range sizes {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			pt := scalePoint{users: users, secs: map[string]float64{}, heap: map[string]float64{}}
			for range b.N {
				fullReconcileAtScale(b, bin, natsBin, secretFile, users, &pt)
			}
			curve = append(curve, pt)
		})
	}
	// A benchmark with sub-benchmarks has no result line to carry a log.
	for _, line := range growthExponents(curve) {
		fmt.Println("FullReconcileMemory", line)
	}
}

// fullReconcileAtScale runs one size of the curve: fresh emulators and
// JetStream, a reconcile into the empty target, one into the in-sync
// target, and the check that the target equals the source.
func fullReconcileAtScale(b *testing.B, bin, natsBin, secretFile string, users int, pt *scalePoint) {
	b.StopTimer()
	gen := fmt.Sprintf("%d,%d,%d", users, users/10, users*4)
	srcURL, srcPID := startEmulatorProcess(b, bin, secretFile, "src", gen)
	tgtURL, tgtPID := startEmulatorProcess(b, bin, secretFile, "tgt", "")
	natsURL, natsPID := startNATSProcess(b, natsBin)
	cfg := bus.DefaultConfig()
	cfg.Name, cfg.URLs = "bench", []string{natsURL}
	bs, err := bus.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	clients := map[string]Domain{}
	for name, url := range map[string]string{"src": srcURL, "tgt": tgtURL} {
		clients[name] = newClientURL(b, name, url, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, false)
	}
	// Warnings (a Bulk request that failed, a lease lost) explain a failed
	// reconcile; the debug log of 50,000 users would not fit.
	warnings := slog.New(slog.NewTextHandler(benchLog{b}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := New(context.Background(), config(link("hub", "src", "tgt")), bs, clients, servicekit.WithLogger(warnings))
	if err != nil {
		b.Fatal(err)
	}
	phases := []string{"empty", "in-sync"}
	if users >= 50_000 {
		// The in-sync pass again, in the share of a 2 GB container that
		// these users are of a 1,000,000-user directory, with the soft
		// memory limit iamflow serve would set there (internal/memlimit):
		// what the runtime does with a heap that must not double. Its peak
		// must stay within that share. Below 50,000 users what a reconcile
		// holds whatever the size (pages in flight, some 15 MB) is too
		// large a part of the share for it to say anything of 1,000,000.
		phases = append(phases, "in-sync-scaled-2GB")
	}
	for _, phase := range phases {
		container := int64(2<<30) * int64(users) / 1_000_000
		limit := debug.SetMemoryLimit(-1) // as it was: no limit unless GOMEMLIMIT says
		if phase == "in-sync-scaled-2GB" {
			debug.SetMemoryLimit(int64(float64(container) * memlimit.Share))
		}
		c0 := processOps(b, srcURL).add(processOps(b, tgtURL))
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		peak := watchPeakHeap(base, peakProfilePath(users, phase))
		b.StartTimer()
		start := time.Now()
		reps, err := svc.ReconcileLink(context.Background(), "hub", false)
		took := time.Since(start)
		b.StopTimer()
		p := peak()
		debug.SetMemoryLimit(limit)
		if err != nil {
			b.Fatal(err)
		}
		ops := processOps(b, srcURL).add(processOps(b, tgtURL)).sub(c0)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peakMB := float64(p) / (1 << 20)
		b.ReportMetric(took.Seconds(), phase+"-s")
		b.ReportMetric(float64(ops.calls), phase+"-calls")
		b.ReportMetric(float64(ops.byOp[emu.OpBulk]), phase+"-bulk-calls")
		b.ReportMetric(float64(ops.writes), phase+"-writes")
		b.ReportMetric(float64(base)/(1<<20), phase+"-baseline-heap-MB")
		b.ReportMetric(peakMB, phase+"-peak-heap-MB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), phase+"-after-gc-heap-MB")
		pt.secs[phase], pt.heap[phase] = took.Seconds(), peakMB
		b.Logf("%s: %d users, %d groups in %v, %d calls (%d reads, %d writes), actions %v", phase, reps[0].GetSourceUsers(), reps[0].GetSourceGroups(),
			took.Round(time.Millisecond), ops.calls, ops.calls-ops.requestsWriting, ops.writes, reps[0].GetActions())
		if phase == "in-sync-scaled-2GB" && p > uint64(container) {
			b.Errorf("the in-sync reconcile of %d users peaked at %.0f MB under a soft limit of %.0f MB: more than the %.0f MB that are these users' share of a 2 GB container for 1,000,000",
				users, peakMB, float64(container)*memlimit.Share/(1<<20), float64(container)/(1<<20))
		}
		if phase != "empty" && ops.writes != 0 {
			b.Fatalf("the reconcile into an in-sync target wrote %d times (%v): it must read pages only", ops.writes, ops.byOp)
		}
	}
	b.ReportMetric(peakRSSMB(b, natsPID), "jetstream-peak-rss-MB")
	b.ReportMetric(max(peakRSSMB(b, srcPID), peakRSSMB(b, tgtPID)), "emulator-peak-rss-MB")
	if diff := directoryDiff(b, clients["src"], clients["tgt"]); diff != "" {
		b.Fatalf("after the full reconcile the target differs from the source:\n%s", diff)
	}
}

// benchLog writes log lines to the benchmark's log.
type benchLog struct{ b *testing.B }

func (w benchLog) Write(p []byte) (int, error) {
	w.b.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// watchPeakHeap samples the heap in use every 10 ms until the returned
// function is called, which returns the highest sample. With a profile
// path, each time the peak has grown by a tenth it writes a heap profile
// there (the live heap as of the last GC, so the peak's).
func watchPeakHeap(base uint64, profile string) func() uint64 {
	var peak atomic.Uint64
	peak.Store(base)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		written := base
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
				if profile != "" && ms.HeapInuse > written+written/10 {
					written = ms.HeapInuse
					writeHeapProfile(profile)
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}

// peakProfilePath is where the heap profile at a phase's peak goes: beside
// -memprofile's, or nowhere without it.
func peakProfilePath(users int, phase string) string {
	f := flag.Lookup("test.memprofile")
	if f == nil || f.Value.String() == "" {
		return ""
	}
	p := f.Value.String()
	if dir := flag.Lookup("test.outputdir"); dir != nil && dir.Value.String() != "" && !filepath.IsAbs(p) {
		p = filepath.Join(dir.Value.String(), p)
	}
	return fmt.Sprintf("%s.peak-users=%d-%s", p, users, phase)
}

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.WriteHeapProfile(f)
}

// growthExponents are the log-log slopes of peak heap and of time against
// users between consecutive sizes of the curve, per phase.
func growthExponents(curve []scalePoint) []string {
	var lines []string
	for i := 1; i < len(curve); i++ {
		a, z := curve[i-1], curve[i]
		for _, phase := range []string{"empty", "in-sync"} {
			lines = append(lines, fmt.Sprintf("growth %s %d→%d users: peak heap ×%.2f (exponent %.2f), time ×%.2f (exponent %.2f)",
				phase, a.users, z.users, z.heap[phase]/a.heap[phase], slope(a.users, z.users, a.heap[phase], z.heap[phase]),
				z.secs[phase]/a.secs[phase], slope(a.users, z.users, a.secs[phase], z.secs[phase])))
		}
	}
	return lines
}

// slope is the log-log slope from (x0, y0) to (x1, y1).
func slope(x0, x1 int, y0, y1 float64) float64 {
	return math.Log(y1/y0) / math.Log(float64(x1)/float64(x0))
}

// opCounts is what an emulator counted: HTTP calls (tokens excepted),
// the calls that write, writes (each operation of a Bulk request counted),
// and every count by operation.
type opCounts struct {
	calls, requestsWriting, writes int64
	byOp                           map[emu.Operation]int64
}

func (o opCounts) add(p opCounts) opCounts {
	out := opCounts{calls: o.calls + p.calls, requestsWriting: o.requestsWriting + p.requestsWriting, writes: o.writes + p.writes, byOp: map[emu.Operation]int64{}}
	for op, n := range o.byOp {
		out.byOp[op] += n
	}
	for op, n := range p.byOp {
		out.byOp[op] += n
	}
	return out
}

func (o opCounts) sub(p opCounts) opCounts {
	out := opCounts{calls: o.calls - p.calls, requestsWriting: o.requestsWriting - p.requestsWriting, writes: o.writes - p.writes, byOp: map[emu.Operation]int64{}}
	for op, n := range o.byOp {
		if n -= p.byOp[op]; n != 0 {
			out.byOp[op] = n
		}
	}
	return out
}

// writeOp reports whether an operation changes the directory.
func writeOp(op emu.Operation) bool {
	for _, verb := range []string{"Create", "Patch", "Put", "Delete"} {
		if strings.HasPrefix(string(op), verb) {
			return true
		}
	}
	return false
}

// processOps reads an emulator process's call counts.
func processOps(b *testing.B, url string) opCounts {
	b.Helper()
	st := processStats(b, url)
	o := opCounts{byOp: map[emu.Operation]int64{}}
	for op, c := range st.Calls {
		if op == emu.OpToken {
			continue
		}
		o.byOp[op] = c
		o.calls += c
		if writeOp(op) {
			o.writes += c
			o.requestsWriting += c
		}
	}
	// Operations inside a Bulk request are counted under their own
	// operation too: the request is one call, carrying that many writes.
	o.calls -= st.BulkOperations
	o.requestsWriting += st.Calls[emu.OpBulk] - st.BulkOperations
	return o
}

// processStats reads an emulator process's statistics.
func processStats(b *testing.B, url string) emu.Stats {
	b.Helper()
	resp, err := http.Get(url + "/_emulator/stats")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var st emu.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		b.Fatal(err)
	}
	return st
}

// directoryDiff lists both domains and describes how the target's users
// (by userName: displayName, name, emails, active), groups (by displayName:
// description) and memberships (by userName) differ from the source's; ""
// when they are equal. At most ten differences are named.
func directoryDiff(b *testing.B, src, tgt Domain) string {
	b.Helper()
	ctx := context.Background()
	type side struct {
		users, groups map[string]string // name -> the compared attributes
	}
	read := func(d Domain) side {
		s := side{users: map[string]string{}, groups: map[string]string{}}
		names := map[string]string{} // id -> userName
		for u, err := range d.Users(ctx, identitydomain.ListOptions{Attributes: userAttributes}) {
			if err != nil {
				b.Fatalf("list users of %s: %v", d.Domain(), err)
			}
			var given, family string
			if u.Name != nil {
				given, family = str(u.Name.GivenName), str(u.Name.FamilyName)
			}
			var emails []string
			for _, e := range u.Emails {
				emails = append(emails, fmt.Sprintf("%s:%s:%v", e.Type, str(e.Value), e.Primary != nil && *e.Primary))
			}
			slices.Sort(emails)
			names[str(u.Id)] = str(u.UserName)
			s.users[str(u.UserName)] = fmt.Sprintf("displayName=%q name=%q/%q emails=%v active=%v",
				str(u.DisplayName), given, family, emails, u.Active == nil || *u.Active)
		}
		for g, err := range d.Groups(ctx, identitydomain.ListOptions{Attributes: withMembers}) {
			if err != nil {
				b.Fatalf("list groups of %s: %v", d.Domain(), err)
			}
			var desc string
			if x := g.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup; x != nil {
				desc = str(x.Description)
			}
			var members []string
			for _, m := range g.Members {
				n, ok := names[str(m.Value)]
				if !ok {
					n = "(no user " + str(m.Value) + ")"
				}
				members = append(members, n)
			}
			slices.Sort(members)
			s.groups[str(g.DisplayName)] = fmt.Sprintf("description=%q members=%v", desc, members)
		}
		return s
	}
	want, got := read(src), read(tgt)
	var diffs []string
	compare := func(kind string, want, got map[string]string) {
		for name, w := range want {
			if g, ok := got[name]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s: missing in the target", kind, name))
			} else if g != w {
				diffs = append(diffs, fmt.Sprintf("%s %s: target %s, source %s", kind, name, g, w))
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s: in the target only", kind, name))
			}
		}
	}
	compare("user", want.users, got.users)
	compare("group", want.groups, got.groups)
	if len(diffs) == 0 {
		return ""
	}
	slices.Sort(diffs)
	n := len(diffs)
	if n > 10 {
		diffs = append(diffs[:10], "...")
	}
	return fmt.Sprintf("%d differences:\n%s", n, strings.Join(diffs, "\n"))
}

// startNATSProcess runs a JetStream server (nats-server -js) in a process
// of its own, storing in a temporary directory, and returns its URL and
// process id.
func startNATSProcess(b *testing.B, natsBin string) (string, int) {
	b.Helper()
	cmd := exec.Command(natsBin, "-js", "-a", "127.0.0.1", "-p", "-1", "-sd", b.TempDir())
	out, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	re := regexp.MustCompile(`Listening for client connections on (\S+)`)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() { // keep the pipe drained
				}
			}()
			return "nats://" + m[1], cmd.Process.Pid
		}
	}
	b.Fatal("nats-server printed no client address")
	return "", 0
}

// peakRSSMB is a process's peak resident set (VmHWM), in MB.
func peakRSSMB(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Logf("peak RSS of process %d: %v", pid, err)
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%f kB", &kb); err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// startEmulatorProcess runs `iamflow emulate identity-domain NAME` (with a
// generated directory when gen is set) and returns its URL and process id.
func startEmulatorProcess(b *testing.B, bin, secretFile, name, gen string) (string, int) {
	b.Helper()
	args := []string{"emulate", "identity-domain", "--addr", "127.0.0.1:0", "--tier", "unlimited",
		"--client-id", pipelinetest.IamflowClientID, "--client-secret", "file:" + secretFile}
	if gen != "" {
		args = append(args, "--generate", gen)
	}
	cmd := exec.Command(bin, append(args, name)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	re := regexp.MustCompile(`identity domain \S+\s+(http://\S+)`)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() { // keep the pipe drained
				}
			}()
			return m[1], cmd.Process.Pid
		}
	}
	b.Fatalf("emulator %s printed no URL", name)
	return "", 0
}
